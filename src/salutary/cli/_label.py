"""``salutary label``: label the rows of a user's unlabeled file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pandas as pd
import typer

from salutary.cli._common import (
    L2,
    Budget,
    MultiValueCommand,
    Rounds,
    fail,
    progress_bar,
    stage_progress,
    stdout,
)
from salutary.distributed import DaskPool, get_client, scatter_pool
from salutary.exceptions import InputError
from salutary.loop import LabelRound, label_pool
from salutary.model import LogisticModel
from salutary.pool import ArrayPool
from salutary.strategies import DEFAULT_STRATEGY, oracle_free_strategies, parse_strategy
from salutary.tabular import Tables, check_budget, check_output, load_tables, write_table

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["COMMAND", "ROUND_COLUMN", "ROW_COLUMN", "SCORE_COLUMN", "label"]

#: Columns the ``label`` output adds to the unlabeled file's columns.
ROW_COLUMN = "salutary_row"
ROUND_COLUMN = "salutary_round"
SCORE_COLUMN = "salutary_score"


def _label_strategy(spec: str) -> str:
    """A strategy spec ``salutary label`` can run (oracle-free), or an InputError."""
    try:
        cls, params = parse_strategy(spec)
        cls(**params).validate()
    except ValueError as exc:
        raise InputError(f"--strategy: {exc}") from None
    if cls.requires_oracle:
        raise InputError(
            f"--strategy {spec!r} needs true labels for its picks, which salutary label "
            f"does not have; choose from {', '.join(oracle_free_strategies())}"
        )
    return spec


class Missing(str, Enum):
    """What ``salutary label`` does with a missing feature value."""

    error = "error"
    drop = "drop"
    impute = "impute"


class Engine(str, Enum):
    """Where ``salutary label`` scores the pool."""

    memory = "memory"
    dask = "dask"


_ROWS_NOTE = (
    "Rows in messages are data rows numbered from 1 (the header is not counted); for CSV "
    "files the line in the file is given too, e.g. 'row 7 (line 8)'."
)


COMMAND: dict[str, Any] = dict(
    cls=MultiValueCommand,
    epilog=(
        "Examples:\n\n"
        "    salutary label --labeled labeled.csv --unlabeled pool.csv \\\n"
        "        --validation val.csv --target species \\\n"
        "        --budget 10 --rounds 10 --output salutary.csv\n"
        "    salutary label -l lab.parquet -u pool.parquet -v val.parquet -t y \\\n"
        "        --categorical zip_code region -o labeled_pool.parquet\n"
        "    salutary label -l lab.csv -u pool.csv -v val.csv -t y -o out.csv \\\n"
        "        --engine dask --scheduler tcp://scheduler-host:8786\n\n"
        f"{_ROWS_NOTE} Bad input ends with exit status 2 and one `error: ...` line on stderr "
        "naming the file (and the column and row where that applies)."
    ),
)


def label(
    labeled: Annotated[
        str,
        typer.Option(
            "--labeled",
            "-l",
            metavar="FILE",
            help="Labeled rows (.csv, .parquet or .pq).",
            show_default=False,
        ),
    ],
    unlabeled: Annotated[
        str,
        typer.Option(
            "--unlabeled",
            "-u",
            metavar="FILE",
            help="Unlabeled pool; the target column may be absent or empty (it is ignored).",
            show_default=False,
        ),
    ],
    validation: Annotated[
        str,
        typer.Option(
            "--validation",
            "-v",
            metavar="FILE",
            help="Labeled validation rows.",
            show_default=False,
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--target", "-t", metavar="COLUMN", help="Name of the label column.", show_default=False
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Where to write the labeled pool rows (.csv, .parquet or .pq); replaced "
            "only on success.",
            show_default=False,
        ),
    ],
    budget: Budget = 10,
    rounds: Rounds = 10,
    l2: L2 = 50.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed for tie-breaking.")] = 0,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            "-s",
            metavar="NAME[:PARAM=VALUE...]",
            help=f"One of {', '.join(oracle_free_strategies())} (the first is the "
            "default: batch-aware, second-order; salutary is the paper's first-order top-b; "
            "val-teacher is self-training with a teacher that also learns the validation "
            "labels); parameters after the name, e.g. salutary-newton:abstain=True.",
            show_default=False,
        ),
    ] = None,
    categorical: Annotated[
        list[str] | None,
        typer.Option(
            "--categorical",
            "-c",
            metavar="COLUMN",
            help="Feature column to one-hot encode even if it holds numbers (repeatable, "
            "or several names after one flag).",
            show_default=False,
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="COLUMN",
            help="A column of the unlabeled file that identifies its rows (unique): carried "
            "to the output, never a feature.",
            show_default=False,
        ),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            metavar="COLUMN",
            help="Column that is not a feature (repeatable, or several names after one flag).",
            show_default=False,
        ),
    ] = None,
    missing: Annotated[
        Missing,
        typer.Option(
            "--missing",
            help="A missing feature value: an error naming it; drop its row (from every "
            "file: a pool row is then not labeled); or impute it (numeric columns: the "
            "labeled file's median; text columns: a category of its own).",
        ),
    ] = Missing.error,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="Score the pool in this process (memory) or on a Dask cluster (dask; "
            "needs `pip install 'salutary[dask]'`). Both write the same file.",
        ),
    ] = Engine.memory,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="With --engine dask: address of a running dask.distributed scheduler, "
            "e.g. tcp://scheduler-host:8786. Default: start a local cluster.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="With --engine dask and no --scheduler: worker processes of the local "
            "cluster (default: one per core).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Label rows of an unlabeled file by salutary labeling and write them out.

    Features are every column except the target, --id and --ignore: numeric columns as
    they are, text columns one-hot encoded (categories from all three files; at most
    1,000 distinct values, dates and nested values refused), then standardized with the
    labeled rows' mean and deviation. Rows of the unlabeled file that already have a
    target value are labeled rows, never relabeled. Each round the BUDGET most helpful
    pool rows get their salutary label; after ROUNDS rounds the chosen rows are written
    with all their original columns, the target filled in, and the columns salutary_row
    (the row of the unlabeled file, from 1), salutary_round (1..R) and salutary_score,
    sorted by round then score (highest first).

    With --engine dask the pool is held by the workers of a Dask cluster and each round
    scores it there (the model and the influence factors stay in this process); the
    result is the same file as with --engine memory.
    """
    try:
        _check_engine_options(engine, scheduler, workers)
        strategy = _label_strategy(strategy or DEFAULT_STRATEGY)
        check_output(output)
        with stage_progress("reading", 3) as on_load:
            tables = load_tables(
                labeled, unlabeled, validation, target, categorical or (), id_column=id_column,
                ignore=ignore or (), missing=missing.value, progress=on_load,
            )  # fmt: skip
        check_budget(budget, rounds, len(tables.pool_rows), name=_pool_name(tables))
        _check_not_an_input(output, tables)
        for col in (ROW_COLUMN, ROUND_COLUMN, SCORE_COLUMN):
            if col in tables.unlabeled.columns:
                raise InputError(
                    f"{tables.unlabeled_file.name} already has a column {col!r}, which the "
                    "output adds; rename it"
                )
    except InputError as exc:
        raise fail(str(exc)) from None
    _input_notes(tables)

    if engine is Engine.dask:
        client = _dask_client(scheduler, workers)
        try:
            frame = _salutary_label(
                tables, budget=budget, rounds=rounds, l2=l2, seed=seed, client=client,
                strategy=strategy,
            )  # fmt: skip
        finally:
            client.close()
    else:
        frame = _salutary_label(
            tables, budget=budget, rounds=rounds, l2=l2, seed=seed, strategy=strategy
        )
    try:
        check_output(output)  # the directory may have gone away meanwhile
        write_table(frame, output)
    except InputError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write output file {output!r}: {exc.strerror or exc}") from None
    _label_summary(frame, tables.target, output, budget=budget, rounds=rounds)


def _pool_name(tables: Tables) -> str:
    """The pool in messages: the unlabeled file, less the rows that cannot be labeled."""
    n_out = len(tables.unlabeled) - len(tables.pool_rows)
    return tables.unlabeled_file.name + (
        f" (less {n_out} rows already labeled or with missing values)" if n_out else ""
    )


def _input_notes(tables: Tables) -> None:
    """One line on stderr per thing done to the input that the user should know."""
    if len(tables.known_rows):
        typer.echo(
            f"note: {len(tables.known_rows)} rows of the {tables.unlabeled_file.name} "
            f"already have a value in {tables.target!r}: they are used as labeled rows and "
            "not relabeled",
            err=True,
        )
    dropped = {role: n for role, n in tables.dropped.items() if n}
    if dropped:
        shown = ", ".join(f"{n} of the {role} file" for role, n in dropped.items())
        typer.echo(f"note: rows left out for missing values: {shown}", err=True)
    if tables.imputed:
        typer.echo(f"note: {tables.imputed} missing feature values imputed", err=True)


def _check_not_an_input(output: str, tables: Tables) -> None:
    out = Path(output)
    if not out.exists():
        return
    for table in (tables.labeled_file, tables.unlabeled_file, tables.validation_file):
        try:
            same = out.samefile(table.path)
        except OSError:
            same = False
        if same:
            raise InputError(
                f"output file {output!r} is the {table.name}; write the result elsewhere"
            )


def _check_engine_options(engine: Engine, scheduler: str | None, workers: int | None) -> None:
    if engine is not Engine.dask:
        given = [
            o for o, v in (("--scheduler", scheduler), ("--workers", workers)) if v is not None
        ]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise InputError(f"{' and '.join(given)} {verb} --engine dask")
    elif scheduler is not None and workers is not None:
        raise InputError(
            "--workers sets the size of a local cluster; it cannot be used with --scheduler"
        )


def _dask_client(scheduler: str | None, workers: int | None) -> Client:
    """A client of the scheduler, or of a new local cluster; one-line errors."""
    try:
        return get_client(scheduler, workers)
    except ImportError:
        raise fail("--engine dask needs dask: pip install 'salutary[dask]'") from None
    except ConnectionError as exc:
        raise fail(str(exc)) from None


def _salutary_label(
    tables: Tables,
    *,
    budget: int,
    rounds: int,
    l2: float,
    seed: int,
    strategy: str,
    client: Client | None = None,
) -> pd.DataFrame:
    """Label the encoded pool (in memory, or on ``client``'s cluster): one loop for both."""
    n_pool = len(tables.X_pool)
    pool_round = np.full(n_pool, -1, dtype=np.int64)
    pool_label = np.full(n_pool, -1, dtype=np.int64)
    pool_score = np.full(n_pool, np.nan)
    pool = ArrayPool(tables.X_pool) if client is None else DaskPool(
        scatter_pool(tables.X_pool, client), client
    )  # fmt: skip
    with progress_bar() as progress:
        task = progress.add_task(
            f"salutary labeling: {budget} of {n_pool} rows per round", total=rounds
        )

        def on_round(done: LabelRound) -> None:
            pool_round[done.rows] = done.round
            pool_label[done.rows] = done.labels
            pool_score[done.rows] = done.scores
            progress.update(
                task, completed=done.round, description=f"salutary labeling: round {done.round}"
            )

        label_pool(
            LogisticModel(l2=l2, warm_start=True), tables.X_labeled, tables.y_labeled_codes,
            pool, tables.X_val, tables.y_val_codes, strategy=strategy, budget=budget,
            rounds=rounds, random_state=seed, callback=on_round,
        )  # fmt: skip
        progress.update(task, description=f"salutary labeling: {rounds} rounds done")

    chosen = np.flatnonzero(pool_round > 0)
    rows = tables.pool_rows[chosen]  # rows of the unlabeled file
    out = tables.unlabeled.iloc[rows].copy()
    out[tables.target] = tables.classes[pool_label[chosen]]
    out[ROW_COLUMN] = rows.astype(np.int64) + 1
    out[ROUND_COLUMN] = pool_round[chosen].astype(np.int64)
    out[SCORE_COLUMN] = pool_score[chosen].astype(np.float64)
    out = out.sort_values([ROUND_COLUMN, SCORE_COLUMN], ascending=[True, False], kind="mergesort")
    return out.reset_index(drop=True)


def _label_summary(frame: pd.DataFrame, target: str, output: str, *, budget, rounds) -> None:
    console = stdout()
    counts = frame[target].value_counts(sort=False)
    counts = counts.sort_index() if _sortable(counts.index) else counts
    shown = ", ".join(f"{k}: {v}" for k, v in counts.items())
    console.print(
        f"Wrote {len(frame)} rows ({rounds} rounds x {budget}) to {output}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    console.print(
        f"Salutary labels ({target}): {shown}", highlight=False, markup=False, soft_wrap=True
    )


def _sortable(index: Any) -> bool:
    try:
        index.sort_values()
    except TypeError:
        return False
    return True
