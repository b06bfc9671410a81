"""``salutary run``: compare strategies on a registered dataset with the paper's protocol."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from salutary._io import atomic_write
from salutary.cli._common import (
    L2,
    Budget,
    MultiValueCommand,
    Rounds,
    create_folder,
    fail,
    output_folder,
    progress_bar,
    split_names,
    stdout,
    versions,
)
from salutary.datasets import UnknownDatasetError, load_dataset
from salutary.exceptions import InputError
from salutary.experiment import DEFAULT_STRATEGIES, paper_split, run_experiment, summarize
from salutary.plots import learning_curve_plot
from salutary.strategies import STRATEGIES, is_oracle_free, parse_strategy
from salutary.tabular import check_budget

__all__ = ["COMMAND", "run"]


def _strategy_names(oracle: bool) -> str:
    return ", ".join(f"`{n}`" for n, cls in STRATEGIES.items() if cls.requires_oracle == oracle)


def _default_strategies() -> tuple[str, ...]:
    return DEFAULT_STRATEGIES


COMMAND: dict[str, Any] = dict(
    cls=MultiValueCommand,
    epilog=(
        "Examples:\n\n"
        "    salutary run\n"
        "    salutary run --dataset breast_cancer --seeds 3 --strategies salutary random\n"
        "    salutary run -d digits --budget 20 --rounds 15 --jobs 2 --output results/\n\n"
        f"Strategies that label their picks themselves (no oracle): {_strategy_names(False)}. "
        f"Strategies that get the true labels of their picks (an oracle): "
        f"{_strategy_names(True)}. See `salutary datasets` for the dataset names."
    ),
)


def run(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", "-d", metavar="NAME", help="Registered dataset (see `salutary datasets`)."
        ),
    ] = "wine_quality",
    strategies: Annotated[
        list[str] | None,
        typer.Option(
            "--strategies",
            "-s",
            metavar="NAME",
            help="Strategies to compare (several names after one flag, or comma-separated). "
            "Default: all.",
            show_default=False,
        ),
    ] = None,
    seeds: Annotated[
        int, typer.Option("--seeds", "-n", min=1, help="Number of seeds (0..N-1).")
    ] = 5,
    budget: Budget = 10,
    rounds: Rounds = 10,
    l2: L2 = 50.0,
    initial: Annotated[
        int,
        typer.Option(
            "--initial", min=1, help="Initial labeled rows (capped at a quarter of the pool)."
        ),
    ] = 300,
    jobs: Annotated[
        int,
        typer.Option("--jobs", "-j", min=-1, help="Worker processes (-1: all cores)."),
    ] = 1,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Output folder (default: salutary-results/DATASET/).",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare selection strategies on a dataset with the paper's protocol.

    Per seed: 20% test, 20% labeled validation, the rest a pool from which the initial
    labeled rows are drawn; features standardized. Every strategy then adds BUDGET rows
    per round for ROUNDS rounds. Prints mean +- std test accuracy over the seeds and
    writes results.csv, summary.csv, config.json and learning_curve.png.
    """
    try:
        if jobs == 0:
            raise InputError("--jobs must be a positive number of workers or -1, not 0")
        chosen = _parse_strategies(strategies)
        try:
            ds = load_dataset(dataset)
        except UnknownDatasetError as exc:
            raise InputError(str(exc)) from None
        except ImportError as exc:
            raise InputError(f"dataset {dataset!r} cannot be loaded: {exc}") from None
        split = paper_split(ds.X, ds.y, seed=0, n_initial=initial, standardize=False)
        check_budget(
            budget, rounds, len(split.y_pool), name=f"the training pool of dataset {ds.name!r}"
        )
        folder = output_folder(output, Path("salutary-results") / ds.name)
    except InputError as exc:
        raise fail(str(exc)) from None

    n_runs = len(chosen) * seeds
    with progress_bar() as progress:
        task = progress.add_task(f"{ds.name}: {n_runs} runs", total=n_runs)

        def on_done(strategy: str, seed: int) -> None:
            progress.update(task, advance=1, description=f"{ds.name}: {strategy} seed {seed}")

        results = run_experiment(
            ds.X,
            ds.y,
            strategies=chosen,
            seeds=range(seeds),
            budget=budget,
            rounds=rounds,
            l2=l2,
            n_initial=initial,
            n_jobs=jobs,
            on_done=on_done,
        )
        progress.update(task, description=f"{ds.name}: {n_runs} runs done")

    config = {
        "command": "run",
        "dataset": ds.name,
        "strategies": list(chosen),
        "seeds": list(range(seeds)),
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
    _print_run_table(results, ds.name, rounds=rounds, budget=budget)
    try:
        _write_run(create_folder(folder), results, config, ds.name, budget=budget)
    except OSError as exc:
        raise fail(f"cannot write into output folder {str(folder)!r}: {exc}") from None
    stdout().print(f"Results written to {folder}{'' if str(folder).endswith('/') else '/'}")


def _parse_strategies(values: Sequence[str] | None) -> tuple[str, ...]:
    names = split_names(values, _default_strategies())
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


def _round_columns(rounds: int, max_columns: int) -> list[int]:
    """Rounds to show: all of 0..R if they fit, else 0, every k-th round, and R."""
    limit = max(2, min(max_columns, 11))
    if rounds + 1 <= limit:
        return list(range(rounds + 1))
    step = math.ceil(rounds / (limit - 1))
    shown = list(range(0, rounds, step))
    return [*shown, rounds]


def _print_run_table(results, name: str, *, rounds: int, budget: int) -> None:
    console = stdout()
    summary = summarize(results)
    n_seeds = results["seed"].nunique()
    # Widths: strategy name, "oracle", "agree" and 6 per round column, plus padding.
    fixed = max(len(s) for s in summary["strategy"].unique()) + 3 + 9 + 8 + 2
    shown = _round_columns(rounds, (console.width - fixed) // 9)
    table = Table(
        title=f"{name}: test accuracy, mean ± std over {n_seeds} seed{'s' * (n_seeds != 1)}",
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
            cells.append(f"{m:.3f}\n[dim]±{s:.3f}[/dim]")
        a = agree.get(strategy, float("nan"))
        agree_cell = "-" if oracle or not math.isfinite(a) else f"{a:.0%}"
        table.add_row(strategy, "yes" if oracle else "no", *cells, agree_cell)
    console.print(table)
