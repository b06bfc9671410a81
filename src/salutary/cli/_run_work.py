"""``salutary run``'s work (imported when the command runs; its options are in ``_run``)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.table import Table

from salutary._io import atomic_write
from salutary.cli._common import Say, fail, progress_bar, split_names
from salutary.cli._output import create_folder, output_folder, versions
from salutary.datasets import UnknownDatasetError, load_dataset
from salutary.exceptions import InputError
from salutary.experiment import (
    DEFAULT_STRATEGIES,
    authors_split,
    paper_split,
    run_experiment,
    summarize,
)
from salutary.plots import learning_curve_plot
from salutary.strategies import is_oracle_free, parse_strategy
from salutary.tabular import check_budget

__all__ = ["FILES", "round_columns", "parse_strategies", "run"]

#: The files ``salutary run`` writes in its output folder.
FILES = ("results.csv", "summary.csv", "config.json", "learning_curve.png")


def run(
    dataset: str,
    strategies: Sequence[str] | None,
    *,
    seeds: range,
    budget: int,
    rounds: int,
    l2: float,
    initial: int,
    jobs: int,
    output: str | None,
    say: Say,
    protocol: str = "paper",
) -> None:
    """Run ``salutary run`` on checked options (see :func:`salutary.cli._run.run`)."""
    try:
        chosen = parse_strategies(strategies)
        try:
            ds = load_dataset(dataset)
        except UnknownDatasetError as exc:
            raise InputError(str(exc)) from None
        except ImportError as exc:
            raise InputError(f"dataset {dataset!r} cannot be loaded: {exc}") from None
        if protocol == "authors":
            try:
                split = authors_split(ds.X, ds.y, seed=seeds[0], n_initial=initial)
            except ValueError as exc:  # too few rows of a class to stratify
                raise InputError(f"dataset {ds.name!r} cannot be split so: {exc}") from None
        else:
            split = paper_split(ds.X, ds.y, seed=seeds[0], n_initial=initial, standardize=False)
        check_budget(
            budget, rounds, len(split.y_pool), name=f"the training pool of dataset {ds.name!r}"
        )
        folder = output_folder(output, Path("salutary-results") / ds.name)
    except InputError as exc:
        raise fail(str(exc)) from None

    n_runs = len(chosen) * len(seeds)
    t0 = time.perf_counter()
    with progress_bar(quiet=say.quiet) as progress:
        task = progress.add_task(f"{ds.name}: {n_runs} runs", total=n_runs)

        def on_done(strategy: str, seed: int) -> None:
            progress.update(task, advance=1, description=f"{ds.name}: {strategy} seed {seed}")
            if say.verbose:
                progress.console.print(
                    f"{ds.name}: {strategy} seed {seed} done "
                    f"({time.perf_counter() - t0:.1f} s)",
                    highlight=False, markup=False,
                )  # fmt: skip

        results = run_experiment(
            ds.X,
            ds.y,
            strategies=chosen,
            seeds=seeds,
            budget=budget,
            rounds=rounds,
            l2=l2,
            n_initial=initial,
            n_jobs=jobs,
            on_done=on_done,
            split=protocol,
            fit_intercept=protocol != "authors",
        )
        progress.update(task, description=f"{ds.name}: {n_runs} runs done")

    config = {
        "command": "run",
        "dataset": ds.name,
        "strategies": list(chosen),
        "protocol": protocol,
        "seeds": list(seeds),
        "budget": budget,
        "rounds": rounds,
        "l2": l2,
        "n_initial": initial,
        "n_initial_used": len(split.y_labeled),
        "n_jobs": jobs,
        "output": str(folder),
        "dataset_shape": {
            "n_samples": ds.n_samples,
            "n_features": ds.n_features,
            "n_classes": len(ds.classes),
        },
        "split_sizes": {
            "labeled": len(split.y_labeled),
            "pool": len(split.y_pool),
            "validation": len(split.y_val),
            "test": len(split.y_test),
        },
        **versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    console = say.result()
    _print_run_table(console, results, ds.name, rounds=rounds, budget=budget)
    try:
        _write_run(create_folder(folder), results, config, ds.name, budget=budget)
    except OSError as exc:
        raise fail(f"cannot write into output folder {str(folder)!r}: {exc}") from None
    console.print(f"Results written to {folder}{'' if str(folder).endswith('/') else '/'}")
    say.document(_run_document(results, config, folder))


def parse_strategies(values: Sequence[str] | None) -> tuple[str, ...]:
    names = split_names(values, DEFAULT_STRATEGIES)
    for name in names:
        try:
            parse_strategy(name)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    if not names:
        raise InputError("--strategies needs at least one strategy name")
    return tuple(names)


def _write_run(folder: Path, results, config: dict, name: str, *, budget: int) -> None:
    frame = results.copy()
    frame.insert(0, "dataset", name)
    atomic_write(folder / "results.csv", lambda tmp: frame.to_csv(tmp, index=False))
    summary = summarize(results)
    atomic_write(folder / "summary.csv", lambda tmp: summary.to_csv(tmp, index=False))
    text = json.dumps(config, indent=2) + "\n"
    atomic_write(folder / "config.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    atomic_write(
        folder / "learning_curve.png",
        lambda tmp: learning_curve_plot(results, tmp, title=name, budget=budget),
    )


def round_columns(rounds: int, max_columns: int) -> list[int]:
    """Rounds to show: all of 0..R if they fit, else 0, every k-th round, and R."""
    limit = max(2, min(max_columns, 11))
    if rounds + 1 <= limit:
        return list(range(rounds + 1))
    step = math.ceil(rounds / (limit - 1))
    shown = list(range(0, rounds, step))
    return [*shown, rounds]


def _print_run_table(console: Any, results, name: str, *, rounds: int, budget: int) -> None:
    summary = summarize(results)
    n_seeds = results["seed"].nunique()
    # Widths: strategy name, "oracle", "agree" and 6 per round column, plus padding.
    fixed = max(len(s) for s in summary["strategy"].unique()) + 3 + 9 + 8 + 2
    shown = round_columns(rounds, (console.width - fixed) // 9)
    table = Table(
        title=f"{name}: test accuracy, mean ± std over {n_seeds} seeds"
        if n_seeds > 1
        else f"{name}: test accuracy, 1 seed",
        caption=(
            "oracle: yes = the strategy's picks get their true labels; no = it labels them "
            "itself. agree: share of its labels equal to the hidden truth."
        ),
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("strategy", no_wrap=True)
    table.add_column("oracle")
    for r in shown:
        table.add_column(f"r{r}\n+{r * budget}" if r else "r0\nstart", justify="right")
    table.add_column("agree", justify="right")
    agreement = results[results["round"] > 0].groupby("strategy", sort=False)["label_agreement"]
    agree = agreement.mean()
    for key, part in summary.groupby("strategy", sort=False):
        strategy = str(key)
        by_round = part.set_index("round")
        oracle = not is_oracle_free(strategy)
        cells = []
        for r in shown:
            m, s = by_round.loc[r, "mean"], by_round.loc[r, "std"]
            # one seed has no spread: no "±0.000"
            cells.append(f"{m:.3f}\n[dim]±{s:.3f}[/dim]" if n_seeds > 1 else f"{m:.3f}")
        a = agree.get(strategy, float("nan"))
        agree_cell = "-" if oracle or not math.isfinite(a) else f"{a:.0%}"
        table.add_row(strategy, "yes" if oracle else "no", *cells, agree_cell)
    console.print(table)


def _run_document(results, config: dict, folder: Path) -> dict[str, Any]:
    """``--json``: the settings, the files written, and per strategy the test accuracy of
    every round (mean, std and count over the seeds, as in summary.csv) and its agreement
    with the hidden labels."""
    summary = summarize(results)
    agreement = results[results["round"] > 0].groupby("strategy", sort=False)["label_agreement"]
    agree = agreement.mean()
    strategies = {}
    for key, part in summary.groupby("strategy", sort=False):
        strategy = str(key)
        a = float(agree.get(strategy, np.nan))
        oracle = not is_oracle_free(strategy)
        strategies[strategy] = {
            "oracle": oracle,
            # as in the table: no agreement for a strategy whose labels are the truth
            "label_agreement": a if math.isfinite(a) and not oracle else None,
            "rounds": [
                {"round": int(r["round"]), "mean": float(r["mean"]), "std": float(r["std"]),
                 "count": int(r["count"])}
                for r in part.to_dict("records")
            ],
        }  # fmt: skip
    return {
        "command": "run",
        "dataset": config["dataset"],
        "output": str(folder),
        "files": {name: str(folder / name) for name in FILES},
        "settings": {k: config[k] for k in ("protocol", "seeds", "budget", "rounds", "l2",
                                              "n_initial", "n_initial_used", "n_jobs")},
        "split_sizes": config["split_sizes"],
        "strategies": strategies,
    }  # fmt: skip
