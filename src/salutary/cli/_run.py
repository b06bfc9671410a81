"""``salutary run``: compare strategies on a registered dataset with the paper's protocol.

The options; the work is in ``_run_work``, imported when the command runs.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from salutary._lazy import import_deferred
from salutary.cli._common import (
    L2,
    ORACLE_FREE_STRATEGIES,
    ORACLE_STRATEGIES,
    Budget,
    Json,
    MultiValueCommand,
    Quiet,
    Rounds,
    Say,
    Verbose,
    fail,
)

__all__ = ["COMMAND", "RunProtocol", "run"]


class RunProtocol(str, Enum):
    """How ``salutary run`` splits the data and which model it fits."""

    paper = "paper"
    authors = "authors"


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{n}`" for n in names)


COMMAND: dict[str, Any] = dict(
    cls=MultiValueCommand,
    epilog=(
        "Examples:\n\n"
        "    salutary run\n"
        "    salutary run --dataset breast_cancer --seeds 3 --strategies salutary random\n"
        "    salutary run -d digits --budget 20 --rounds 15 --jobs 2 --output results/\n"
        "    salutary run -d wine --seeds 2 --json > wine.json\n"
        "    salutary run --protocol authors --first-seed 1 --seeds 1 \\\n"
        "        -s salutary:hessian=pool margin\n\n"
        f"Strategies that label their picks themselves (no oracle): "
        f"{_names(ORACLE_FREE_STRATEGIES)}. Strategies that get the true labels of their "
        f"picks (an oracle): {_names(ORACLE_STRATEGIES)}. See `salutary datasets` for the "
        "dataset names."
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
    first_seed: Annotated[
        int, typer.Option("--first-seed", min=0, help="First seed: seeds FIRST..FIRST+N-1.")
    ] = 0,
    protocol: Annotated[
        RunProtocol,
        typer.Option(
            "--protocol",
            help="paper: the split described below. authors: the authors' Wine Quality "
            "notebook: three stratified splits with random_state=SEED (test 20%, then "
            "validation, then the initial rows), raw features, no intercept; seed 1 is "
            "their split.",
        ),
    ] = RunProtocol.paper,
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
    quiet: Quiet = False,
    verbose: Verbose = False,
    json_output: Json = False,
) -> None:
    """Compare selection strategies on a dataset with the paper's protocol.

    Per seed: 20% test, 20% labeled validation, the rest a pool from which the initial
    labeled rows are drawn; features standardized (--protocol authors: the authors'
    split, raw features, no intercept). Every strategy then adds BUDGET rows per round
    for ROUNDS rounds. Prints mean +- std test accuracy over the seeds and
    writes results.csv, summary.csv, config.json and learning_curve.png.
    """
    say = Say(quiet=quiet, verbose=verbose, json=json_output)
    if jobs == 0:
        raise fail("--jobs must be a positive number of workers or -1, not 0")
    import_deferred("salutary.cli._run_work").run(
        dataset, strategies, seeds=range(first_seed, first_seed + seeds), budget=budget,
        rounds=rounds, l2=l2, initial=initial, jobs=jobs, output=output, say=say,
        protocol=protocol.value,
    )  # fmt: skip
