"""The corpus, its seeded split, and the texts each arm adds."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from salutary.loop import run_active_learning
from salutary.model import LogisticModel
from salutary.strategies import STRATEGIES, strategy_class
from salutary.text import TextCorpus, load_texts

__all__ = [
    "Picks",
    "TextSplit",
    "check_arm",
    "is_missing_label",
    "needs_oracle",
    "resolve_corpus",
    "select_texts",
    "split_texts",
    "subsample",
]


@dataclass(frozen=True)
class TextSplit:
    """Positions in a corpus: initial labeled texts, unlabeled pool, validation, test."""

    labeled: np.ndarray
    pool: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _take_stratified(
    rows: np.ndarray, y: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into (n chosen, rest), stratified on ``y[rows]`` when possible."""
    if n <= 0:
        return rows[:0], rows
    if n >= len(rows):
        return rows, rows[:0]
    try:
        rest, chosen = train_test_split(rows, test_size=n, random_state=seed, stratify=y[rows])
    except ValueError:  # a class too rare to stratify on
        rest, chosen = train_test_split(rows, test_size=n, random_state=seed)
    return np.sort(chosen), np.sort(rest)


def split_texts(
    y: np.ndarray, *, seed: int, n_initial: int = 100, n_validation: int = 500,
    n_test: int = 500, max_pool: int | None = None,
) -> TextSplit:  # fmt: skip
    """Seeded, stratified split of a corpus into the four parts.

    Labels ``y < 0`` mark unlabeled texts: they always go to the pool. Among the labeled
    texts the test and validation sets are drawn first, then ``n_initial`` initial texts
    (at least one of every class); the labeled texts left over join the pool with their
    labels hidden from oracle-free arms. The pool is capped at ``max_pool`` texts
    (stratified).

    Parameters
    ----------
    y : array-like of int, shape (n,)
        Class codes ``0..K-1``; negative for unlabeled texts.
    seed : int
    n_initial, n_validation, n_test : int
    max_pool : int or None, default=None

    Returns
    -------
    TextSplit
        Sorted, disjoint index arrays into the corpus.
    """
    y = np.asarray(y)
    if min(n_initial, n_validation, n_test) < 1:
        raise ValueError("n_initial, n_validation and n_test must each be at least 1")
    if max_pool is not None and max_pool < 1:
        raise ValueError(f"max_pool must be at least 1, got {max_pool}")
    rows = np.arange(len(y))
    known, unknown = rows[y >= 0], rows[y < 0]
    need = n_initial + n_validation + n_test
    if need > len(known) or (need == len(known) and not len(unknown)):
        raise ValueError(
            f"{len(known)} labeled texts are too few for initial + validation + test = "
            f"{need}{'' if len(unknown) else ' and a pool'}"
        )
    test, rest = _take_stratified(known, y, n_test, seed)
    validation, rest = _take_stratified(rest, y, n_validation, seed + 1)
    rng = np.random.default_rng(seed + 2)
    classes = np.unique(y[rest])
    if len(classes) > n_initial:
        raise ValueError(f"n_initial = {n_initial} is smaller than the {len(classes)} classes")
    first = np.array([rng.choice(rest[y[rest] == c]) for c in classes], dtype=np.intp)
    rest = np.setdiff1d(rest, first)
    more, rest = _take_stratified(rest, y, n_initial - len(first), seed + 2)
    pool = np.sort(np.concatenate([rest, unknown]))
    if max_pool is not None and len(pool) > max_pool:
        pool, _ = _take_stratified(pool, y, max_pool, seed + 3)
    labeled = np.sort(np.concatenate([first, more]))
    return TextSplit(labeled=labeled, pool=pool, validation=validation, test=test)


# ---------------------------------------------------------------------------- selection


@dataclass
class Picks:
    """Texts an arm adds to the initial labeled set.

    Attributes
    ----------
    indices : ndarray of int
        Corpus positions, in the order picked.
    labels : ndarray of int
        Labels they are trained with (true labels for oracle arms).
    seconds : float
        Wall time of the selection rounds (surrogate fits included).
    surrogate_accuracy : float
        Test accuracy of the logistic surrogate on the embeddings after the last round.
    agreement : float
        Share of ``labels`` equal to the true labels, over the picks whose true label is
        known (NaN if none).
    """

    indices: np.ndarray
    labels: np.ndarray
    seconds: float
    surrogate_accuracy: float
    agreement: float


def check_arm(arm: str) -> None:
    """ValueError unless ``arm`` is ``initial`` or a strategy name."""
    if arm != "initial" and arm not in STRATEGIES:
        raise ValueError(f"unknown arm {arm!r}; choose from initial, {', '.join(STRATEGIES)}")


def select_texts(
    embeddings: np.ndarray, y: np.ndarray, split: TextSplit, arm: str, *, budget: int = 20,
    rounds: int = 5, seed: int = 0, l2: float = 50.0,
) -> Picks:  # fmt: skip
    """Pick ``budget x rounds`` pool texts (and labels) for an arm on the frozen embeddings.

    The embeddings are standardized with the mean and deviation of the labeled and pool
    rows (no labels used); an L2 logistic model on them is the surrogate the strategy
    scores with (:func:`salutary.run_active_learning`). Oracle arms (``random``,
    ``margin``, ...) get the true labels of their picks; oracle-free arms (``salutary``,
    ``self-training``) never read the pool's labels: ``y[split.pool]`` is used only to
    report :attr:`Picks.agreement` afterwards.

    Parameters
    ----------
    embeddings : ndarray of shape (n_texts, d)
    y : ndarray of int, shape (n_texts,)
    split : TextSplit
    arm : str
        ``initial`` (picks nothing) or a strategy name.
    budget, rounds : int
    seed : int
    l2 : float, default=50.0
        Penalty of the surrogate (the paper's λ).

    Returns
    -------
    Picks
    """
    check_arm(arm)
    X = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"embeddings of shape {X.shape} do not match {len(y)} labels")
    scaler = StandardScaler().fit(X[np.concatenate([split.labeled, split.pool])])

    def part(rows: np.ndarray) -> np.ndarray:
        return scaler.transform(X[rows])

    oracle = needs_oracle(arm)
    if oracle and np.any(y[split.pool] < 0):
        raise ValueError(
            f"arm {arm!r} asks an oracle for the true labels of its picks, but "
            f"{int(np.sum(y[split.pool] < 0))} pool texts are unlabeled; use only initial "
            "and oracle-free arms (salutary, salutary-newton, self-training)"
        )
    t0 = time.perf_counter()
    result = run_active_learning(
        part(split.labeled), y[split.labeled], part(split.pool),
        part(split.validation), y[split.validation], part(split.test), y[split.test],
        # rounds=0 for `initial`: only the surrogate's fit on the initial labels.
        strategy="self-training" if arm == "initial" else arm,
        budget=budget, rounds=0 if arm == "initial" else rounds, seed=seed,
        y_pool=y[split.pool] if oracle else None,
        model=LogisticModel(l2=l2, warm_start=True),
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    picked: list[Any] = [np.asarray(s, dtype=np.intp) for s in result.selected]
    given: list[Any] = [np.asarray(s) for s in result.labels]
    chosen = np.concatenate(picked or [[]])
    labels = np.concatenate(given or [[]])
    indices = split.pool[chosen.astype(np.intp)]
    labels = labels.astype(y.dtype) if len(labels) else y[:0]
    known = y[indices] >= 0  # agreement over the picks whose truth is known
    agreement = float(np.mean(labels[known] == y[indices][known])) if known.any() else np.nan
    return Picks(indices, labels, seconds, float(result.accuracy[-1]), agreement)


def needs_oracle(arm: str) -> bool:
    """Whether ``arm`` gets the true labels of its picks (``initial`` picks nothing)."""
    return arm != "initial" and strategy_class(arm).requires_oracle


def subsample(y: np.ndarray, max_texts: int | None) -> np.ndarray:
    """Rows of a fixed stratified subsample of ``max_texts`` texts (all rows if None)."""
    rows = np.arange(len(y))
    if max_texts is None or max_texts >= len(y):
        return rows
    # A fixed seed, independent of the run seeds: every seed shares the subsample and its
    # cached embeddings.
    chosen, _ = _take_stratified(rows, y, max_texts, 0)
    return chosen


def is_missing_label(value: Any) -> bool:
    """Whether ``value`` marks an unlabeled text: None, NaN, ``""``, ``-1`` or ``"-1"``."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return str(value).strip() in ("", "-1")


def resolve_corpus(
    corpus: TextCorpus | str | tuple[Sequence[str], Sequence[Any]],
) -> tuple[str, list[str], np.ndarray, tuple]:
    """(name, texts, codes with -1 for unlabeled, class names) of any accepted corpus."""
    if isinstance(corpus, str):
        corpus = load_texts(corpus)
    if hasattr(corpus, "texts") and hasattr(corpus, "classes"):
        named: Any = corpus  # a TextCorpus, or any object with its attributes
        y = np.asarray(named.y, dtype=np.int64)
        return str(named.name), list(named.texts), y, tuple(named.classes)
    try:
        texts, labels = corpus
    except (TypeError, ValueError):
        raise TypeError(
            "corpus must be a TextCorpus, a corpus name or a (texts, labels) pair"
        ) from None
    texts = list(texts)
    values = list(labels)
    if len(texts) != len(values):
        raise ValueError(f"{len(texts)} texts but {len(values)} labels")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"text {i} is not a string but {type(t).__name__}")
    missing = np.array([is_missing_label(v) for v in values], dtype=bool)
    # Integral floats (a label column with empty cells read as float) are integers.
    values = [int(v) if isinstance(v, (float, np.floating)) and float(v).is_integer() else v
              for v in values]  # fmt: skip
    known = [v for v, m in zip(values, missing, strict=True) if not m]
    try:
        classes = sorted(set(known))
    except TypeError:  # mixed types: order by text
        classes = sorted(set(known), key=str)
    index = {c: k for k, c in enumerate(classes)}
    y = np.array([-1 if m else index[v] for v, m in zip(values, missing, strict=True)])
    if len(classes) < 2:
        raise ValueError(f"the labeled texts have {len(classes)} class(es); need two")
    return "texts", texts, y.astype(np.int64), tuple(classes)
