"""Statistics across datasets in the benchmark report: Friedman, Nemenyi, Holm.

Oracles: ``scipy.stats.friedmanchisquare``, Holm's formula worked by hand, the
studentized-range values tabulated by Demšar (2006, Table 5a), ``scipy.stats.ttest_rel``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from salutary.benchmark.report import ablation_table, outcomes, rank_table, write_report
from salutary.benchmark.stats import critical_difference, friedman, holm


def test_friedman_matches_scipy_with_and_without_ties():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(7, 4))
    values[2, 1] = values[2, 3]  # a tie
    values[5, :3] = 0.5  # a three-way tie
    table = pd.DataFrame(values, columns=list("abcd"))
    result = friedman(table)
    expected = stats.friedmanchisquare(*values.T)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p == pytest.approx(expected.pvalue, rel=1e-10)
    assert result.n_datasets == 7
    # Average ranks, highest value first, by an explicit count per row.
    by_hand = np.array(
        [[1 + np.sum(row > v) + 0.5 * (np.sum(row == v) - 1) for v in row] for row in values]
    ).mean(axis=0)
    assert result.ranks.to_dict() == pytest.approx(dict(zip("abcd", by_hand, strict=True)))
    assert list(result.ranks) == sorted(result.ranks)


def test_friedman_of_a_clear_order():
    # Strategy "a" best on every dataset, "c" worst: ranks 1, 2, 3 exactly.
    table = pd.DataFrame({"c": [0.1, 0.2, 0.3, 0.1], "a": [0.9, 0.8, 0.7, 0.9], "b": 0.5})
    result = friedman(table)
    assert list(result.ranks.index) == ["a", "b", "c"]
    np.testing.assert_allclose(result.ranks.to_numpy(), [1.0, 2.0, 3.0])
    # n = 4, k = 3: chi2 = 12 * 4 / 12 * (1 + 4 + 9) - 3 * 4 * 4 = 8
    assert result.statistic == pytest.approx(8.0)
    with pytest.raises(ValueError, match="2 datasets"):
        friedman(table.iloc[:1])


@pytest.mark.parametrize(("k", "q"), [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (10, 3.164)])
def test_critical_difference_matches_demsar_table(k, q):
    for n in (5, 12):
        cd = critical_difference(k, n)
        # The table gives q to three decimals.
        assert cd == pytest.approx(q * np.sqrt(k * (k + 1) / (6 * n)), rel=3e-4)
    assert critical_difference(k, 12, alpha=0.1) < critical_difference(k, 12)


def test_holm_by_hand():
    p = [0.01, 0.04, 0.03, np.nan, 0.005]
    # m = 4 tested; sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06,
    # 0.04, then the running maximum keeps 0.06 for the last.
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, np.nan, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.4]), [0.8, 0.8])
    np.testing.assert_allclose(holm([0.9, 0.6, 0.01]), [1.0, 1.0, 0.03])  # capped at 1
    assert holm([]).shape == (0,)


def _runs(diffs: dict[str, float], noise: np.ndarray) -> pd.DataFrame:
    """Per-run metrics: on each dataset ``salutary`` beats ``random`` by ``diff + noise``."""
    rows = []
    for dataset, diff in diffs.items():
        for seed, eps in enumerate(noise):
            base = 0.6 + 0.01 * seed
            rows.append(("paper", dataset, "random", seed, base))
            rows.append(("paper", dataset, "salutary", seed, base + diff + eps))
    return pd.DataFrame(rows, columns=["protocol", "dataset", "strategy", "seed", "final"])


def test_outcomes_are_judged_after_holm():
    noise = np.array([0.01, -0.01, 0.02, -0.02, 0.0])
    runs = _runs({"A": 0.025, "B": 0.025, "C": 0.025, "D": 0.2}, noise)
    out = outcomes(runs).set_index("dataset")
    raw = stats.ttest_rel(0.025 + noise, np.zeros(5)).pvalue
    assert 0.0125 < raw < 0.05  # significant alone, not after Holm over 4 tests
    big = stats.ttest_rel(0.2 + noise, np.zeros(5)).pvalue
    assert out.loc["A", "p"] == pytest.approx(raw)
    # Sorted: big (x4), then the three equal ones (x3, x2, x1), running maximum: 3 raw.
    assert out.loc["D", "p_holm"] == pytest.approx(4 * big)
    for dataset in "ABC":
        assert out.loc[dataset, "p_holm"] == pytest.approx(3 * raw)
        assert out.loc[dataset, "outcome"] == "tie"
        assert out.loc[dataset, "outcome_random"] == "tie"
    assert out.loc["D", "outcome"] == "win"
    # Alone, one of them is a win: the correction is what makes the ties.
    assert outcomes(runs[runs.dataset == "A"]).loc[0, "outcome"] == "win"


def test_ablation_stars_follow_holm():
    noise = np.array([0.01, -0.01, 0.02, -0.02, 0.0])
    runs = _runs({"A": 0.025, "B": 0.025, "C": 0.025}, noise).replace(
        {"random": "salutary-newton", "salutary": "salutary-newton:steps=1"}
    )
    table = ablation_table(runs, metric="final")
    assert "*" not in table
    assert table.splitlines()[-1].endswith("| 0/3/0 | |")
    alone = ablation_table(runs[runs.dataset == "A"], metric="final")
    assert "(+0.025*)" in alone


def test_rank_table_drops_what_is_missing_most():
    rows = []
    for dataset in ("d1", "d2", "d3", "d4"):
        for strategy in ("random", "margin", "entropy", "badge"):
            if strategy == "badge" and dataset != "d1":
                continue  # badge ran on one dataset only
            if dataset == "d4" and strategy == "entropy":
                continue  # d4 lacks entropy
            rows.append(("paper", dataset, strategy, 0, 0.5))
    runs = pd.DataFrame(rows, columns=["protocol", "dataset", "strategy", "seed", "final"])
    table = rank_table(runs)
    # badge misses 3 of 4 datasets and goes first; then d4 misses 1 of 3 strategies,
    # more than any strategy misses (1 of 4 datasets).
    assert sorted(table.columns) == ["entropy", "margin", "random"]
    assert list(table.index) == ["d1", "d2", "d3"]


def test_report_has_the_rank_section_and_diagram(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    finals = {}
    for d, dataset in enumerate(("A", "B", "C", "D")):
        for s, strategy in enumerate(("salutary", "random", "margin")):
            for seed in range(3):
                start = 0.5 + 0.01 * seed
                end = start + 0.02 * s + 0.01 * d + rng.normal(scale=0.01)
                finals.setdefault((dataset, strategy), []).append(end)
                key = dict(protocol="paper", dataset=dataset, strategy=strategy, seed=seed)
                for rnd, acc in enumerate([start, end]):
                    agreement = np.nan if rnd == 0 else 1.0
                    rows.append(dict(key, round=rnd, accuracy=acc, seconds=0.1,
                                     label_agreement=agreement, budget=10))  # fmt: skip
    text = write_report(pd.DataFrame(rows), tmp_path).read_text()
    means = np.array(
        [[np.mean(finals[(d, s)]) for s in ("salutary", "random", "margin")] for d in "ABCD"]
    )
    expected = stats.friedmanchisquare(*means.T).statistic
    assert f"Friedman test: χ²(2) = {expected:.2f}" in text
    assert f"CD = {2.343 * np.sqrt(3 * 4 / 24):.2f}" in text
    assert "![critical difference paper](cd_paper.png)" in text
    assert (tmp_path / "cd_paper.png").stat().st_size > 1000
