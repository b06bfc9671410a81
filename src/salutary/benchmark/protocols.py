"""Benchmark protocols (how a run is set up) and the key that names one run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from salutary.experiment import Split, authors_split, paper_split
from salutary.loop import PAPER_L2

__all__ = ["PROTOCOLS", "Protocol", "RunKey"]


@dataclass(frozen=True)
class Protocol:
    """How one benchmark run is set up.

    Attributes
    ----------
    name : str
    description : str
    test_size, val_size : float
        Fractions of the whole dataset held out for testing and labeled validation.
    n_initial : int
        Initial labeled samples (capped at a quarter of the training pool).
    budget : int or float
        Samples per round; a float below 1 is a fraction of the whole dataset.
    rounds : int
    l2 : float
        Penalty of the logistic model.
    train_on_validation : bool
        ``fair`` protocols: every strategy's model also trains on the validation
        labels (the initial labeled set becomes L ∪ V). Influence-based strategies still
        measure influence on V.
    split : {"paper", "authors"}
        :func:`salutary.experiment.paper_split` (standardized features) or
        :func:`salutary.experiment.authors_split` (the authors' notebook: raw features,
        three stratified splits with ``random_state`` the seed).
    fit_intercept : bool
        Whether the logistic model has an intercept.
    """

    name: str
    description: str
    test_size: float = 0.2
    val_size: float = 0.2
    n_initial: int = 300
    budget: int | float = 10
    rounds: int = 10
    l2: float = PAPER_L2
    train_on_validation: bool = False
    split: str = "paper"
    fit_intercept: bool = True

    def make_split(self, X: Any, y: Any, seed: int) -> Split:
        """This protocol's split of ``(X, y)`` for ``seed``."""
        if self.split == "authors":
            return authors_split(
                np.asarray(X), np.asarray(y), seed=seed, n_initial=self.n_initial,
                test_size=self.test_size, val_size=self.val_size,
            )  # fmt: skip
        return paper_split(
            X, y, seed=seed, n_initial=self.n_initial, test_size=self.test_size,
            val_size=self.val_size,
        )  # fmt: skip

    @property
    def model_params(self) -> dict[str, Any]:
        """Parameters of the protocol's :class:`salutary.LogisticModel`."""
        return {"l2": self.l2, "fit_intercept": self.fit_intercept}

    def budget_for(self, n_samples: int) -> int:
        """Samples per round for a dataset of ``n_samples``."""
        if isinstance(self.budget, float) and self.budget < 1:
            return max(1, math.ceil(self.budget * n_samples))
        return int(self.budget)


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("paper", "the paper's: 20% test, 20% validation, 300 initial, 10 x 10, λ=50"),
        Protocol(
            "fair",
            "as paper, but every model also trains on the validation labels (L ∪ V)",
            train_on_validation=True,
        ),
        Protocol("val1", "as paper with a 1% validation set", val_size=0.01),
        Protocol("val5", "as paper with a 5% validation set", val_size=0.05),
        Protocol("budget1pct", "as paper with 1% of the dataset per round", budget=0.01),
        Protocol("rounds30", "as paper with 30 rounds", rounds=30),
        Protocol("l2-1", "as paper with λ=1", l2=1.0),
        Protocol("l2-10", "as paper with λ=10", l2=10.0),
        Protocol("l2-200", "as paper with λ=200", l2=200.0),
        Protocol(
            "authors",
            "the authors' Wine Quality notebook: raw features, no intercept, their three "
            "stratified splits (seed 1 is theirs)",
            split="authors",
            fit_intercept=False,
        ),
    )
}


@dataclass(frozen=True, order=True)
class RunKey:
    """Identifies one run of the grid."""

    dataset: str
    protocol: str
    strategy: str
    seed: int

    @property
    def filename(self) -> str:
        # A strategy spec's ":" is not allowed in Windows file names: stored as "@".
        strategy = self.strategy.replace(":", "@")
        return f"{self.dataset}__{self.protocol}__{strategy}__{self.seed}.parquet"

    @classmethod
    def from_filename(cls, name: str) -> RunKey | None:
        parts = name.removesuffix(".parquet").split("__")
        if len(parts) != 4 or not name.endswith(".parquet") or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], parts[2].replace("@", ":"), int(parts[3]))
