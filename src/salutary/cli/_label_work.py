"""``salutary label``'s work: read the files, label the pool, write the result (imported
when the command runs; its options are in ``_label``)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import typer

from salutary._io import atomic_write
from salutary.cli._common import STDIO, Say, fail, progress_bar, stage_progress, write_stdout
from salutary.distributed import DaskPool, get_client, scatter_pool
from salutary.exceptions import InputError
from salutary.loop import LabelRound, check_seed, held_out_check, label_pool, termination
from salutary.model import LogisticModel
from salutary.pool import ArrayPool
from salutary.review import (
    ANSWER_COLUMN,
    SUGGESTION_COLUMN,
    ReviewRequest,
    ReviewState,
    ReviewStrategy,
    file_digest,
    label_studio_config,
    label_studio_tasks,
    read_answers,
    review_frame,
    review_oracle,
)
from salutary.strategies import (
    DEFAULT_STRATEGY,
    loop_options,
    oracle_free_strategies,
    parse_strategy,
)
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
    "RunSummary",
    "SOURCE_COLUMN",
    "label",
    "review_paths",
    "stdin_as_file",
]

#: Columns the ``label`` output adds to the unlabeled file's columns.
ROW_COLUMN = "salutary_row"
ROUND_COLUMN = "salutary_round"
SCORE_COLUMN = "salutary_score"
MARGIN_COLUMN = "salutary_margin"
AGREES_COLUMN = "salutary_agrees"
EVIDENCE_COLUMNS = (ROW_COLUMN, ROUND_COLUMN, SCORE_COLUMN, MARGIN_COLUMN, AGREES_COLUMN)
#: With --review: who labeled each row, "human" or "salutary".
SOURCE_COLUMN = "salutary_source"
#: Columns the review files add, which the unlabeled file must not have.
REVIEW_COLUMNS = (SOURCE_COLUMN, SUGGESTION_COLUMN, ANSWER_COLUMN, "salutary_text")

#: How standard input is named in messages.
STDIN_NAME = "'-' (standard input)"


def _label_strategy(spec: str) -> str:
    """A strategy spec ``salutary label`` can run (oracle-free), or an InputError."""
    try:
        cls, params = parse_strategy(spec)
        cls(**params).validate()
        loop = loop_options(spec)
    except ValueError as exc:
        raise InputError(f"--strategy: {exc}") from None
    if loop:
        raise InputError(
            f"--strategy {spec!r}: {', '.join(loop)}= is not a strategy parameter; use "
            "--check FRACTION or --no-check"
        )
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
    check: float | None,
    categorical: Sequence[str],
    id_column: str | None,
    ignore: Sequence[str],
    missing: str,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    say: Say,
    review: int | None = None,
    answers: str | None = None,
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
            for col in (*EVIDENCE_COLUMNS, *(REVIEW_COLUMNS if review else ())):
                if col in tables.unlabeled.columns:
                    raise InputError(
                        f"{tables.unlabeled_file.name} already has a column {col!r}, which "
                        "the output adds; rename it"
                    )
            plan = None
            if review is not None:
                options = {
                    "target": target, "budget": budget, "rounds": rounds, "l2": l2,
                    "seed": seed, "strategy": strategy, "check": check, "review": review,
                    "categorical": list(categorical), "id": id_column, "ignore": list(ignore),
                    "missing": missing,
                }  # fmt: skip
                digests = {role: file_digest(path) for role, path in paths.items()}
                plan = _review_plan(output, options, digests, tables, answers)
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

    client = _dask_client(scheduler, workers) if engine == "dask" else None
    try:
        frame, checked = _salutary_label(
            tables, budget=budget, rounds=rounds, l2=l2, seed=seed, client=client,
            strategy=strategy, check=check, say=say, plan=plan,
        )  # fmt: skip
    except InputError as exc:
        raise fail(str(exc)) from None
    except _ReviewNeeded as stop:
        assert plan is not None
        _stop_for_review(stop.request, stop.labeled, plan, tables, output, say)
        return
    finally:
        if client is not None:
            client.close()
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
    if plan is not None:
        plan.state.done, plan.state.pending = True, None
        plan.state.labeled = [
            {"row": int(r), "round": int(k), "label": str(a), "source": str(src)}
            for r, k, a, src in zip(
                frame[ROW_COLUMN],
                frame[ROUND_COLUMN],
                frame[tables.target],
                frame[SOURCE_COLUMN],
                strict=True,
            )
        ]
        plan.state.save(plan.state_path)
    counts = _label_counts(frame, tables.target)
    _label_summary(say, frame, counts, tables.target, output, checked)
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
            "rounds_kept": checked.kept,
            "termination": checked.termination,
            "held_out": None
            if check is None
            else {
                "fraction": check,
                "rows": checked.rows,
                "loss_before": checked.loss_before,
                "loss_after": checked.loss_after,
                "accuracy_before": checked.accuracy_before,
                "accuracy_after": checked.accuracy_after,
            },
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
            **(
                {}
                if plan is None
                else {"review": review, "reviewed": int((frame[SOURCE_COLUMN] == "human").sum())}
            ),
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


@dataclass
class RunSummary:
    """What the summary line says: rounds kept of those asked for, why the rounds
    stopped, and the held-out check's loss and accuracy before and after (NaN, and
    ``rows`` 0, without the check)."""

    rounds: int
    kept: int
    termination: str
    rows: int = 0
    loss_before: float = float("nan")
    loss_after: float = float("nan")
    accuracy_before: float = float("nan")
    accuracy_after: float = float("nan")
    rose: bool = False

    def line(self) -> str:
        """``held-out accuracy 0.712 -> 0.741; kept 6 of 10 rounds (stopped: ...)``."""
        why = {
            "held_out_loss": "stopped: held-out loss " + ("rose" if self.rose else "did not fall"),
            "no_change": "stopped: a round added nothing",
            "all_labeled": "stopped: no unlabeled row left",
            "max_iter": "all rounds ran",
        }[self.termination]
        return (
            f"held-out accuracy {self.accuracy_before:.3f} -> {self.accuracy_after:.3f} "
            f"({self.rows} held-out validation rows); kept {self.kept} of {self.rounds} "
            f"rounds ({why})"
        )


def _salutary_label(
    tables: Tables,
    *,
    budget: int,
    rounds: int,
    l2: float,
    seed: int,
    strategy: str,
    say: Say,
    check: float | None = None,
    client: Client | None = None,
    plan: _ReviewPlan | None = None,
) -> tuple[pd.DataFrame, RunSummary]:
    """Label the encoded pool (in memory, or on ``client``'s cluster): one loop for both.

    With ``check``, that share of the validation rows is held out from the selection
    and checks each round (:func:`salutary.loop.held_out_check`). With a review
    ``plan``, its least certain picks take the saved answers; at the first round without
    answers, :class:`_ReviewNeeded` stops the rounds."""
    n_pool = len(tables.X_pool)
    pool_round = np.full(n_pool, -1, dtype=np.int64)
    pool_label = np.full(n_pool, -1, dtype=np.int64)
    pool_score = np.full(n_pool, np.nan)
    pool_margin = np.full(n_pool, np.nan)
    pool_agrees = np.zeros(n_pool, dtype=bool)
    pool_asked = np.zeros(n_pool, dtype=bool)
    strat: str | ReviewStrategy = strategy
    oracle = None
    if plan is not None:
        strat = ReviewStrategy(strategy, plan.review)
        oracle = review_oracle(strat, _saved_answers(plan, tables))
    pool = ArrayPool(tables.X_pool) if client is None else DaskPool(
        scatter_pool(tables.X_pool, client), client
    )  # fmt: skip
    X_val, y_val, X_check, y_check = tables.X_val, tables.y_val_codes, None, None
    if check is not None:
        try:
            X_val, y_val, X_check, y_check = held_out_check(X_val, y_val, check, check_seed(seed))
        except ValueError as exc:
            raise InputError(f"{tables.validation_file.name}: {exc} (--no-check)") from None
    initial: list[LabelRound] = []  # round 0: the held-out check before any round
    t0 = time.perf_counter()
    with progress_bar(quiet=say.quiet) as progress:
        task = progress.add_task(
            f"salutary labeling: {budget} of {n_pool} rows per round", total=rounds
        )

        def on_round(done: LabelRound) -> None:
            if done.round == 0:
                initial.append(replace(done, model=None))
            progress.update(
                task, completed=done.round, description=f"salutary labeling: round {done.round}"
            )
            if not done.kept:
                if say.verbose:
                    progress.console.print(
                        f"round {done.round}: dropped, held-out loss "
                        f"{done.held_out_loss_before:.4g} -> {done.held_out_loss:.4g}",
                        highlight=False, markup=False, soft_wrap=True,
                    )  # fmt: skip
                return
            pool_round[done.rows] = done.round
            pool_label[done.rows] = done.labels
            pool_score[done.rows] = done.scores
            pool_margin[done.rows] = done.margins
            pool_agrees[done.rows] = done.agrees
            pool_asked[done.rows] = done.asked
            if say.verbose and len(done.rows):  # round 0 is the initial fit
                labels = np.bincount(done.labels, minlength=len(tables.classes))
                shown = ", ".join(
                    f"{c}: {n}" for c, n in zip(tables.classes, labels, strict=True) if n
                )
                checked = (
                    f", held-out loss {done.held_out_loss_before:.4g} -> {done.held_out_loss:.4g}"
                    if X_check is not None
                    else ""
                )
                progress.console.print(
                    f"round {done.round}: {len(done.rows)} rows labeled ({shown}), best score "
                    f"{np.max(done.scores):.4g}{checked}, {time.perf_counter() - t0:.1f} s",
                    highlight=False, markup=False, soft_wrap=True,
                )  # fmt: skip

        try:
            done, _ = label_pool(
                LogisticModel(l2=l2, warm_start=True), tables.X_labeled,
                tables.y_labeled_codes, pool, X_val, y_val,
                strategy=strat, budget=budget, rounds=rounds, random_state=seed,
                callback=on_round, oracle=oracle, X_check=X_check, y_check=y_check,
            )  # fmt: skip
        except _ReviewNeeded as stop:  # the rows labeled before the round under review
            stop.labeled = _labeled_so_far(tables, pool_round, pool_label, pool_asked)
            raise
        kept = sum(r.kept for r in done)
        progress.update(task, description=f"salutary labeling: {kept} rounds kept")
    first = initial[0]
    last = done[-1] if done else first
    summary = RunSummary(rounds, kept, termination(done, rounds, pool))
    if X_check is not None and y_check is not None:
        summary.rows = len(y_check)
        summary.loss_before, summary.accuracy_before = first.held_out_loss, first.held_out_accuracy
        if last.kept:
            summary.loss_after, summary.accuracy_after = last.held_out_loss, last.held_out_accuracy
        else:
            summary.loss_after = last.held_out_loss_before
            summary.accuracy_after = last.held_out_accuracy_before
            summary.rose = last.held_out_loss > last.held_out_loss_before

    chosen = np.flatnonzero(pool_round > 0)
    rows = tables.pool_rows[chosen]  # rows of the unlabeled file
    out = tables.unlabeled.iloc[rows].copy()
    out[tables.target] = tables.classes[pool_label[chosen]]
    out[ROW_COLUMN] = rows.astype(np.int64) + 1
    out[ROUND_COLUMN] = pool_round[chosen].astype(np.int64)
    out[SCORE_COLUMN] = pool_score[chosen].astype(np.float64)
    out[MARGIN_COLUMN] = pool_margin[chosen]
    out[AGREES_COLUMN] = pool_agrees[chosen]
    if plan is not None:
        out[SOURCE_COLUMN] = np.where(pool_asked[chosen], "human", "salutary")
    out = out.sort_values([ROUND_COLUMN, SCORE_COLUMN], ascending=[True, False], kind="mergesort")
    return out.reset_index(drop=True), summary


def _label_counts(frame: pd.DataFrame, target: str) -> pd.Series:
    """How many rows got each label (labels sorted where they can be)."""
    counts = frame[target].value_counts(sort=False)
    return counts.sort_index() if _sortable(counts.index) else counts


def _label_summary(
    say: Say, frame: pd.DataFrame, counts: pd.Series, target: str, output: str, run: RunSummary
) -> None:
    """Two lines on stdout, three with the held-out check (on stderr when stdout is the
    data; none with --json)."""
    console = say.result()
    shown = ", ".join(f"{k}: {v}" for k, v in counts.items())
    where = "standard output" if output == STDIO else output
    console.print(
        f"Wrote {len(frame)} rows ({run.kept} of {run.rounds} rounds) to {where}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    console.print(
        f"Salutary labels ({target}): {shown}", highlight=False, markup=False, soft_wrap=True
    )
    if run.rows:
        console.print(run.line(), highlight=False, markup=False, soft_wrap=True)


def _sortable(index: Any) -> bool:
    try:
        index.sort_values()
    except TypeError:
        return False
    return True


# ---------------------------------------------------------------------------- --review


def review_paths(output: str, round: int | None = None) -> dict[str, Path]:
    """The files of a --review run next to ``output``: its state, the labeling config,
    and (with ``round``) that round's review CSV and Label Studio tasks."""
    stem = Path(output).with_suffix("")
    paths = {
        "state": stem.with_name(f"{stem.name}.review-state.json"),
        "config": stem.with_name(f"{stem.name}.review.xml"),
    }
    if round is not None:
        paths["csv"] = stem.with_name(f"{stem.name}.review-{round}.csv")
        paths["json"] = stem.with_name(f"{stem.name}.review-{round}.json")
    return paths


@dataclass
class _ReviewPlan:
    """A --review run: how many picks a round sends to a person, and the state."""

    review: int
    state: ReviewState
    state_path: Path


class _ReviewNeeded(Exception):
    """Raised by the oracle at the first round whose picks have no saved answers."""

    def __init__(self, request: ReviewRequest) -> None:
        super().__init__(f"round {request.round} needs a review")
        self.request = request
        self.labeled: list[dict[str, Any]] = []


def _review_plan(
    output: str,
    options: dict[str, Any],
    digests: dict[str, str],
    tables: Tables,
    answers: str | None,
) -> _ReviewPlan:
    """The state of a --review run: new, or the saved one with ``answers`` added."""
    state_path = review_paths(output)["state"]
    classes = [str(c) for c in tables.classes]
    if answers is None:
        if state_path.exists():
            old = ReviewState.load(state_path)
            if not old.done:
                raise InputError(
                    f"{state_path.name} holds a review waiting for answers (round "
                    f"{(old.pending or {}).get('round')}); resume it with --answers, or "
                    "delete it to start again"
                )
        state = ReviewState(options, digests, classes)
        return _ReviewPlan(int(options["review"]), state, state_path)
    state = ReviewState.load(state_path)
    if state.done or state.pending is None:
        raise InputError(
            f"the review in {state_path.name} is finished (the output was written); "
            "run without --answers to start a new one"
        )
    state.check_same_run(options, digests, state_path.name)
    pending = state.pending
    got = read_answers(answers, pending["rows"], classes)
    state.answered[int(pending["round"])] = {
        "rows": list(pending["rows"]),
        "answers": [got[int(r)] for r in pending["rows"]],
    }
    state.pending = None
    return _ReviewPlan(int(options["review"]), state, state_path)


def _saved_answers(plan: _ReviewPlan, tables: Tables) -> Any:
    """What the review oracle asks: the saved answers of a round, as class codes;
    :class:`_ReviewNeeded` for a round without."""
    code = {str(c): i for i, c in enumerate(tables.classes)}

    def answer(request: ReviewRequest) -> np.ndarray:
        rows = (tables.pool_rows[request.rows] + 1).tolist()
        got = plan.state.answers_of(request.round)
        if got is None:
            raise _ReviewNeeded(request)
        if sorted(got) != sorted(rows):
            raise InputError(
                f"round {request.round} now picks rows {sorted(rows)} for review, not the "
                f"rows {sorted(got)} answered in {plan.state_path.name}: the inputs or "
                "options differ from the run that wrote it"
            )
        return np.array([code[got[r]] for r in rows], dtype=np.int64)

    return answer


def _stop_for_review(
    request: ReviewRequest,
    labeled: list[dict[str, Any]],
    plan: _ReviewPlan,
    tables: Tables,
    output: str,
    say: Say,
) -> None:
    """Write the review files of ``request``'s round and the state, and say what next."""
    paths = review_paths(output, request.round)
    rows = tables.pool_rows[request.rows]
    frame = review_frame(
        tables.unlabeled.iloc[rows], salutary_rows=rows + 1, round=request.round,
        suggestions=tables.classes[request.suggestions], scores=request.scores,
        margins=request.margins,
    )  # fmt: skip
    tasks = json.dumps(label_studio_tasks(frame), indent=1, allow_nan=False)
    config = label_studio_config(tables.classes.tolist(), tables.target)
    state = plan.state
    state.pending = {
        "round": request.round,
        "rows": frame[ROW_COLUMN].astype(int).tolist(),
        "suggestions": frame[SUGGESTION_COLUMN].astype(str).tolist(),
        "files": [paths["csv"].name, paths["json"].name],
    }
    state.labeled = labeled
    try:
        atomic_write(paths["csv"], lambda tmp: frame.to_csv(tmp, index=False))
        atomic_write(paths["json"], lambda tmp: tmp.write_text(tasks, encoding="utf-8"))
        atomic_write(paths["config"], lambda tmp: tmp.write_text(config, encoding="utf-8"))
        state.save(plan.state_path)
    except OSError as exc:
        raise fail(f"cannot write the review files next to {output!r}: {exc}") from None
    console = say.result()
    for line in (
        f"Round {request.round}: {len(frame)} rows for a person to label in {paths['csv']} "
        f"(fill in its {ANSWER_COLUMN!r} column), or in Label Studio: import "
        f"{paths['json']} into a project with the labeling config {paths['config']}",
        f"State saved to {plan.state_path}. Then run the same command with --answers "
        f"{paths['csv']} (or Label Studio's JSON export)",
    ):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    say.document(
        {
            "command": "label",
            "status": "review",
            "round": request.round,
            "rows": len(frame),
            "review_csv": str(paths["csv"]),
            "review_json": str(paths["json"]),
            "config": str(paths["config"]),
            "state": str(plan.state_path),
        }
    )


def _labeled_so_far(
    tables: Tables,
    pool_round: np.ndarray,
    pool_label: np.ndarray,
    pool_asked: np.ndarray,
) -> list[dict[str, Any]]:
    """The pool rows labeled so far, for the state file (the person's answers as text)."""
    chosen = np.flatnonzero(pool_round > 0)
    return [
        {
            "row": int(tables.pool_rows[i]) + 1,
            "round": int(pool_round[i]),
            "label": str(tables.classes[pool_label[i]]),
            "source": "human" if pool_asked[i] else "salutary",
        }
        for i in chosen
    ]
