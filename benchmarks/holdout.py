"""SalutaryLabeler with a held-out validation set: which share to hold out, and whether the
final model should also train on the held-out rows.

Usage::

    python benchmarks/holdout.py --seeds 10 11 12 ... [--datasets wine_quality ...]
        [--fractions 0.2 0.5] [--jobs 2] [--output holdout.csv]

Per dataset and seed, ``paper_split`` (20% test, 20% validation, 300 initial labels,
standardized) gives the rows a user would have. Two regimes of labeled rows: ``all``
(the 300 initial labels and the validation rows: every label the paper's protocol has)
and ``small`` (the 300 initial labels only). ``SalutaryLabeler(validation_fraction=f)``
(default strategy, 10 rounds of 10, ``LogisticModel(l2=50)``) fits on the labeled rows
plus the pool (``-1``); the test accuracy of its final model is recorded with
``train_on_validation`` False and True (the same picks: the second refits on the
held-out rows too), next to ``none``, the model fit on all labeled rows with nothing
added. Prints mean accuracy per configuration and paired comparisons (two-sided paired
t-test over seeds, p < 0.05) and writes every run to ``--output``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import ttest_rel
from threadpoolctl import threadpool_limits

from salutary import LogisticModel, SalutaryLabeler
from salutary.datasets import load_dataset
from salutary.experiment import paper_split

TABULAR = ["wine_quality", "electrical_grid", "adult", "letter", "magic", "spambase", "pima"]


def one(dataset: str, seed: int, fractions: list[float]) -> list[dict]:
    data = load_dataset(dataset)
    s = paper_split(data.X, data.y, seed=seed)
    rows = []
    regimes = {
        "all": (np.vstack([s.X_labeled, s.X_val]), np.concatenate([s.y_labeled, s.y_val])),
        "small": (s.X_labeled, s.y_labeled),
    }
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for regime, (X_lab, y_lab) in regimes.items():
            none = LogisticModel(l2=50.0).fit(X_lab, y_lab)
            base = dict(dataset=dataset, seed=seed, regime=regime, n_labeled=len(y_lab))
            rows.append(
                {**base, "config": "none", "fraction": np.nan, "n_val": 0,
                 "accuracy": none.score(s.X_test, s.y_test), "agreement": np.nan,
                 "seconds": 0.0}
            )  # fmt: skip
            X = np.vstack([X_lab, s.X_pool])
            # -1 marks the pool; string labels go in an object array (scikit-learn's way).
            y = np.concatenate([y_lab.astype(object), np.full(len(s.y_pool), -1, dtype=object)])
            if y_lab.dtype.kind not in "US":
                y = y.astype(y_lab.dtype)
            for f in fractions:
                t0 = time.perf_counter()
                lab = SalutaryLabeler(
                    LogisticModel(l2=50.0, warm_start=True), validation_fraction=f,
                    train_on_validation=False, random_state=seed,
                ).fit(X, y)  # fmt: skip
                seconds = time.perf_counter() - t0
                added = np.flatnonzero(lab.labeled_iter_ > 0)
                truth = np.concatenate([y_lab, s.y_pool])
                agree = float(np.mean(lab.transduction_[added] == truth[added]))
                both = lab.transduction_ != -1
                refit = LogisticModel(l2=50.0).fit(X[both], lab.transduction_[both].astype(
                    y_lab.dtype))  # fmt: skip
                for tov, model in ((False, lab.estimator_), (True, refit)):
                    rows.append(
                        {**base, "config": f"f={f:g}, train_on_validation={tov}",
                         "fraction": f, "n_val": int(lab.validation_mask_.sum()),
                         "accuracy": model.score(s.X_test, s.y_test), "agreement": agree,
                         "seconds": seconds}
                    )  # fmt: skip
    return rows


def paired(runs: pd.DataFrame, a: str, b: str) -> tuple[float, float]:
    wide = runs.pivot_table(index="seed", columns="config", values="accuracy")
    d = (wide[a] - wide[b]).dropna()
    if len(d) < 2 or np.all(d == d.iloc[0]):
        return float(d.mean()) if len(d) else np.nan, np.nan
    return float(d.mean()), float(ttest_rel(wide[a], wide[b]).pvalue)


def verdict(diff: float, p: float) -> str:
    if not p < 0.05:
        return "tie"
    return "win" if diff > 0 else "loss"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=TABULAR)
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(10, 20)))
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.2, 0.5])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--output", default="holdout.csv")
    args = ap.parse_args()
    tasks = [(d, s) for d in args.datasets for s in args.seeds]
    out = Parallel(n_jobs=args.jobs)(delayed(one)(d, s, args.fractions) for d, s in tasks)
    runs = pd.DataFrame([r for rows in out for r in rows])
    runs.to_csv(args.output, index=False)
    pd.set_option("display.width", 200)
    print(f"seeds {args.seeds}; mean test accuracy (and agreement of the added labels)")
    table = runs.pivot_table(index=["regime", "dataset"], columns="config", values="accuracy")
    print(table.round(4).to_string())
    for regime, part in runs.groupby("regime"):
        print(f"\nregime {regime}: paired over seeds, per dataset (win / tie / loss)")
        configs = [c for c in part["config"].unique() if c != "none"]
        for f in args.fractions:
            on, off = (f"f={f:g}, train_on_validation={t}" for t in (True, False))
            counts = {"tov True vs False": [], "tov True vs none": [], "tov False vs none": []}
            for _, d in part.groupby("dataset"):
                counts["tov True vs False"].append(verdict(*paired(d, on, off)))
                counts["tov True vs none"].append(verdict(*paired(d, on, "none")))
                counts["tov False vs none"].append(verdict(*paired(d, off, "none")))
            for name, v in counts.items():
                print(f"  f={f:g} {name}: {v.count('win')} / {v.count('tie')} / {v.count('loss')}")
        means = part.groupby("config")["accuracy"].mean().loc[["none", *configs]]
        print("  mean over datasets:", means.round(4).to_dict())


if __name__ == "__main__":
    main()
