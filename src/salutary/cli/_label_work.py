"""``salutary label``'s work: read the files, label the pool, write the result (imported
when the command runs; its options are in ``_label``)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import typer

from salutary.cli._common import STDIO, Say, fail, progress_bar, stage_progress, write_stdout
from salutary.distributed import DaskPool, get_client, scatter_pool
from salutary.exceptions import InputError
from salutary.loop import LabelRound, label_pool
from salutary.model import LogisticModel
from salutary.pool import ArrayPool
from salutary.strategies import DEFAULT_STRATEGY, oracle_free_strategies, parse_strategy
from salutary.tabular import Tables, check_budget, check_output, load_tables, write_table

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "AGREES_COLUMN",
    "EVIDENCE_COLUMNS",
    "MARGIN_COLUMN",
    "ROUND_COLUMN",
    "ROW_COLUMN",
    "SCORE_COLUMN",
    "label",
    "stdin_as_file",
]

#: Columns the ``label`` output adds to the unlabeled file's columns.
ROW_COLUMN = "salutary_row"
ROUND_COLUMN = "salutary_round"
SCORE_COLUMN = "salutary_score"
MARGIN_COLUMN = "salutary_margin"
AGREES_COLUMN = "salutary_agrees"
EVIDENCE_COLUMNS = (ROW_COLUMN, ROUND_COLUMN, SCORE_COLUMN, MARGIN_COLUMN, AGREES_COLUMN)

#: How standard input is named in messages.
STDIN_NAME = "'-' (standard input)"


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


def label(
    inputs: Mapping[str, str],
    target: str,
    output: str,
    *,
    budget: int,
    rounds: int,
    l2: float,
    seed: int,
    strategy: str | None,
    categorical: Sequence[str],
    id_column: str | None,
    ignore: Sequence[str],
    missing: str,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    say: Say,
) -> None:
    """Run ``salutary label`` on checked options (see :func:`salutary.cli._label.label`)."""
    to_stdout = output == STDIO
    with stdin_as_file(inputs) as (paths, shown):
        try:
            _check_engine_options(engine, scheduler, workers)
            strategy = _label_strategy(strategy or DEFAULT_STRATEGY)
            if not to_stdout:
                check_output(output)
            t0 = time.perf_counter()
            with stage_progress("reading", 3, quiet=say.quiet) as on_load:
                tables = load_tables(
                    paths["labeled"], paths["unlabeled"], paths["validation"], target,
                    categorical, id_column=id_column, ignore=ignore, missing=missing,
                    progress=on_load,
                )  # fmt: skip
            check_budget(budget, rounds, len(tables.pool_rows), name=_pool_name(tables))
            if not to_stdout:
                _check_not_an_input(output, tables)
            for col in EVIDENCE_COLUMNS:
                if col in tables.unlabeled.columns:
                    raise InputError(
                        f"{tables.unlabeled_file.name} already has a column {col!r}, which "
                        "the output adds; rename it"
                    )
        except InputError as exc:
            raise fail(shown(str(exc))) from None
        for line in _input_notes(tables):
            say.note(shown(line))
    say.detail(
        f"read {len(tables.X_labeled)} labeled, {len(tables.unlabeled)} unlabeled and "
        f"{len(tables.X_val)} validation rows in {time.perf_counter() - t0:.1f} s: "
        f"{tables.X_pool.shape[1]} features, {len(tables.classes)} classes, "
        f"{len(tables.pool_rows)} rows to label from"
    )

    if engine == "dask":
        client = _dask_client(scheduler, workers)
        try:
            frame = _salutary_label(
                tables, budget=budget, rounds=rounds, l2=l2, seed=seed, client=client,
                strategy=strategy, say=say,
            )  # fmt: skip
        finally:
            client.close()
    else:
        frame = _salutary_label(
            tables, budget=budget, rounds=rounds, l2=l2, seed=seed, strategy=strategy, say=say
        )
    if to_stdout:
        _write_stdout(frame)
    else:
        try:
            check_output(output)  # the directory may have gone away meanwhile
            write_table(frame, output)
        except InputError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            raise fail(f"cannot write output file {output!r}: {exc.strerror or exc}") from None
    counts = _label_counts(frame, tables.target)
    _label_summary(say, frame, counts, tables.target, output, budget=budget, rounds=rounds)
    say.document(
        {
            "command": "label",
            "output": output,
            "format": "csv"
            if to_stdout
            else Path(output).suffix.lower().lstrip(".").replace("pq", "parquet"),
            "rows": len(frame),
            "target": tables.target,
            "labels": {str(k): int(v) for k, v in counts.items()},
            "strategy": strategy,
            "budget": budget,
            "rounds": rounds,
            "l2": l2,
            "seed": seed,
            "engine": engine,
            "columns": [str(c) for c in frame.columns],
            "input_rows": {
                "labeled": len(tables.X_labeled),
                "unlabeled": len(tables.unlabeled),
                "validation": len(tables.X_val),
            },
            "pool_rows": len(tables.pool_rows),
            "known_rows": len(tables.known_rows),
            "dropped_rows": {role: int(n) for role, n in tables.dropped.items()},
            "imputed_values": int(tables.imputed),
            "features": int(tables.X_pool.shape[1]),
            "classes": [str(c) for c in tables.classes],
        }
    )


@contextmanager
def stdin_as_file(
    inputs: Mapping[str, str],
) -> Iterator[tuple[dict[str, str], Any]]:
    """The input paths, with ``-`` replaced by a temporary copy of standard input (Parquet
    if it starts with ``PAR1``, else CSV), and a function that puts the name of standard
    input back into a message. The copy is removed on leaving."""
    piped = [role for role, path in inputs.items() if path == STDIO]
    if not piped:
        yield dict(inputs), lambda text: text
        return
    data = typer.get_binary_stream("stdin").read()
    # Arrow's readers take a file; a copy (not a pipe) also lets the CSV reader seek
    with tempfile.TemporaryDirectory(prefix="salutary-stdin-") as folder:
        suffix = ".parquet" if data[:4] == b"PAR1" else ".csv"
        path = Path(folder) / f"stdin{suffix}"
        path.write_bytes(data)
        del data
        paths = {**inputs, piped[0]: str(path)}

        def shown(text: str) -> str:
            return text.replace(repr(str(path)), STDIN_NAME).replace(str(path), STDIN_NAME)

        yield paths, shown


def _write_stdout(frame: pd.DataFrame) -> None:
    """The result as CSV on standard output, written once it is all made."""
    write_stdout(frame.to_csv(index=False))


def _pool_name(tables: Tables) -> str:
    """The pool in messages: the unlabeled file, less the rows that cannot be labeled."""
    n_out = len(tables.unlabeled) - len(tables.pool_rows)
    return tables.unlabeled_file.name + (
        f" (less {n_out} rows already labeled or with missing values)" if n_out else ""
    )


def _input_notes(tables: Tables) -> list[str]:
    """A line per thing done to the input that the user should know."""
    notes = []
    if len(tables.known_rows):
        notes.append(
            f"note: {len(tables.known_rows)} rows of the {tables.unlabeled_file.name} "
            f"already have a value in {tables.target!r}: they are used as labeled rows and "
            "not relabeled"
        )
    dropped = {role: n for role, n in tables.dropped.items() if n}
    if dropped:
        shown = ", ".join(f"{n} of the {role} file" for role, n in dropped.items())
        notes.append(f"note: rows left out for missing values: {shown}")
    if tables.imputed:
        notes.append(f"note: {tables.imputed} missing feature values imputed")
    return notes


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


def _check_engine_options(engine: str, scheduler: str | None, workers: int | None) -> None:
    if engine != "dask":
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
    say: Say,
    client: Client | None = None,
) -> pd.DataFrame:
    """Label the encoded pool (in memory, or on ``client``'s cluster): one loop for both."""
    n_pool = len(tables.X_pool)
    pool_round = np.full(n_pool, -1, dtype=np.int64)
    pool_label = np.full(n_pool, -1, dtype=np.int64)
    pool_score = np.full(n_pool, np.nan)
    pool_margin = np.full(n_pool, np.nan)
    pool_agrees = np.zeros(n_pool, dtype=bool)
    pool = ArrayPool(tables.X_pool) if client is None else DaskPool(
        scatter_pool(tables.X_pool, client), client
    )  # fmt: skip
    t0 = time.perf_counter()
    with progress_bar(quiet=say.quiet) as progress:
        task = progress.add_task(
            f"salutary labeling: {budget} of {n_pool} rows per round", total=rounds
        )

        def on_round(done: LabelRound) -> None:
            pool_round[done.rows] = done.round
            pool_label[done.rows] = done.labels
            pool_score[done.rows] = done.scores
            pool_margin[done.rows] = done.margins
            pool_agrees[done.rows] = done.agrees
            progress.update(
                task, completed=done.round, description=f"salutary labeling: round {done.round}"
            )
            if say.verbose and len(done.rows):  # round 0 is the initial fit
                labels = np.bincount(done.labels, minlength=len(tables.classes))
                shown = ", ".join(
                    f"{c}: {n}" for c, n in zip(tables.classes, labels, strict=True) if n
                )
                progress.console.print(
                    f"round {done.round}: {len(done.rows)} rows labeled ({shown}), best score "
                    f"{np.max(done.scores):.4g}, {time.perf_counter() - t0:.1f} s",
                    highlight=False, markup=False, soft_wrap=True,
                )  # fmt: skip

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
    out[MARGIN_COLUMN] = pool_margin[chosen]
    out[AGREES_COLUMN] = pool_agrees[chosen]
    out = out.sort_values([ROUND_COLUMN, SCORE_COLUMN], ascending=[True, False], kind="mergesort")
    return out.reset_index(drop=True)


def _label_counts(frame: pd.DataFrame, target: str) -> pd.Series:
    """How many rows got each label (labels sorted where they can be)."""
    counts = frame[target].value_counts(sort=False)
    return counts.sort_index() if _sortable(counts.index) else counts


def _label_summary(
    say: Say, frame: pd.DataFrame, counts: pd.Series, target: str, output: str, *, budget, rounds
) -> None:
    """Two lines on stdout (on stderr when stdout is the data; none with --json)."""
    console = say.result()
    shown = ", ".join(f"{k}: {v}" for k, v in counts.items())
    where = "standard output" if output == STDIO else output
    console.print(
        f"Wrote {len(frame)} rows ({rounds} rounds x {budget}) to {where}",
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
