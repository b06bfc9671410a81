"""``salutary label``: label the rows of a user's unlabeled file.

This module holds the command's options and the checks that need no data (so that
``--help`` and a wrong path answer at once); the work is in ``_label_work``, imported
when the command runs.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Any

import typer

from salutary._lazy import import_deferred
from salutary.cli._common import (
    L2,
    ORACLE_FREE_STRATEGIES,
    STDIO,
    Budget,
    Json,
    MultiValueCommand,
    Quiet,
    Rounds,
    Say,
    Verbose,
    check_input_file,
    fail,
)

__all__ = ["COMMAND", "Engine", "Missing", "label"]


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

_STDIO_NOTE = (
    "`-` as a file name is standard input (for one of --labeled, --unlabeled, --validation: "
    "Parquet if it starts with Parquet's magic bytes PAR1, else CSV) or standard output "
    "(--output -: always CSV; the summary then goes to stderr)."
)


class LabelCommand(MultiValueCommand):
    """``salutary label``'s parser: says what to do when ``-v`` is used the old way."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = {a.partition("=")[0] for a in args}
        if "-v" in given and not given & {"--validation", "-V", "--help", "-h"}:
            # -v was --validation before it meant --verbose: a clear error, not click's
            # "missing option" or "unexpected extra argument"
            raise fail("-v now means --verbose; give the validation file with --validation or -V")
        return super().parse_args(ctx, args)


COMMAND: dict[str, Any] = dict(
    cls=LabelCommand,
    epilog=(
        "Examples:\n\n"
        "    salutary label --labeled labeled.csv --unlabeled pool.csv \\\n"
        "        --validation val.csv --target species \\\n"
        "        --budget 10 --rounds 10 --output salutary.csv\n"
        "    salutary label -l lab.parquet -u pool.parquet -V val.parquet -t y \\\n"
        "        --categorical zip_code region -o labeled_pool.parquet\n"
        "    cat pool.csv | salutary label -l lab.csv -u - -V val.csv -t y -o - > out.csv\n"
        "    salutary label -l lab.csv -u pool.csv -V val.csv -t y -o out.csv --json\n"
        "    salutary label -l lab.csv -u pool.csv -V val.csv -t y -o out.csv \\\n"
        "        --engine dask --scheduler tcp://scheduler-host:8786\n"
        "    salutary label -l lab.csv -u pool.csv -V val.csv -t y -o out.csv --review 3\n"
        "    salutary label -l lab.csv -u pool.csv -V val.csv -t y -o out.csv --review 3 \\\n"
        "        --answers out.review-1.csv\n\n"
        f"{_STDIO_NOTE} {_ROWS_NOTE} Bad input ends with exit status 2 and one `error: ...` "
        "line on stderr naming the file (and the column and row where that applies)."
    ),
)


def label(
    labeled: Annotated[
        str,
        typer.Option(
            "--labeled",
            "-l",
            metavar="FILE",
            help="Labeled rows (.csv, .parquet or .pq; - for standard input).",
            show_default=False,
        ),
    ],
    unlabeled: Annotated[
        str,
        typer.Option(
            "--unlabeled",
            "-u",
            metavar="FILE",
            help="Unlabeled pool; the target column may be absent or empty (it is ignored). "
            "- for standard input.",
            show_default=False,
        ),
    ],
    validation: Annotated[
        str,
        typer.Option(
            "--validation",
            "-V",
            metavar="FILE",
            help="Labeled validation rows (- for standard input).",
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
            "only on success. - writes CSV to standard output (nothing else goes there).",
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
            help=f"One of {', '.join(ORACLE_FREE_STRATEGIES)} (the first is the "
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
    check: Annotated[
        float,
        typer.Option(
            "--check",
            metavar="FRACTION",
            help="Share of the validation rows that never steers the selection: after "
            "each round the model is checked on them, and the first round that does not "
            "lower their loss is dropped and ends the run.",
        ),
    ] = 0.3,  # salutary.loop.CHECK_FRACTION (this module stays light; a test ties them)
    no_check: Annotated[
        bool,
        typer.Option(
            "--no-check",
            help="Every validation row steers the selection and all rounds run (the "
            "paper's method; no held-out check, no stopping rule).",
        ),
    ] = False,
    review: Annotated[
        int | None,
        typer.Option(
            "--review",
            min=1,
            metavar="N",
            help="Each round, send the N picks of smallest salutary_margin to a person: "
            "the run writes them to OUTPUT.review-R.csv (fill in its answer column) and "
            "OUTPUT.review-R.json (Label Studio tasks; labeling config OUTPUT.review.xml), "
            "saves its state to OUTPUT.review-state.json and stops.",
            show_default=False,
        ),
    ] = None,
    answers: Annotated[
        str | None,
        typer.Option(
            "--answers",
            metavar="FILE",
            help="With the options of the --review run that stopped: the filled review "
            "CSV, or Label Studio's JSON export of its tasks. Resumes with these answers "
            "as true labels until the next review or the end.",
            show_default=False,
        ),
    ] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    json_output: Json = False,
) -> None:
    """Label rows of an unlabeled file by salutary labeling and write them out.

    Features are every column except the target, --id and --ignore: numeric columns as
    they are, text columns one-hot encoded (categories from all three files; at most
    1,000 distinct values, dates and nested values refused), then standardized with the
    labeled rows' mean and deviation. Rows of the unlabeled file that already have a
    target value are labeled rows, never relabeled. Each round the BUDGET most helpful
    pool rows get their salutary label; after ROUNDS rounds the chosen rows are written
    with all their original columns, the target filled in, and the columns salutary_row
    (the row of the unlabeled file, from 1), salutary_round (1..R), salutary_score (the
    predicted decrease of the validation loss), salutary_margin (how much more the
    label is predicted to help than the runner-up label; near 0 or below: doubtful;
    empty for strategies without one) and salutary_agrees (whether the label is the
    model's own prediction), sorted by round then score (highest first).

    By default 30% of the validation rows (--check) never steer the selection: they check
    each round, and the run stops at the first round that does not lower their loss,
    without that round's rows. One line reports the held-out accuracy before and after
    and the rounds kept. --no-check runs every round on all validation rows.

    With --review N, each round's N least certain picks (smallest margin) are labeled by
    a person: the run stops at each round with a review file, and the same command with
    --answers FILE resumes it; the output then has a column salutary_source (human or
    salutary). Every row of a review needs an answer, one of the labels of the labeled
    file.

    With --engine dask the pool is held by the workers of a Dask cluster and each round
    scores it there (the model and the influence factors stay in this process); the
    result is the same file as with --engine memory.
    """
    say = Say(quiet=quiet, verbose=verbose, json=json_output, data_on_stdout=output == STDIO)
    inputs = {"labeled": labeled, "unlabeled": unlabeled, "validation": validation}
    check_inputs(inputs)
    check_review(review, answers, output, budget)
    if not 0 < check < 1:
        raise fail(f"--check {check:g}: give a share strictly between 0 and 1, or --no-check")
    work = import_deferred("salutary.cli._label_work")
    work.label(
        inputs, target, output, budget=budget, rounds=rounds, l2=l2, seed=seed,
        strategy=strategy, check=None if no_check else check,
        categorical=categorical or (), id_column=id_column,
        ignore=ignore or (), missing=missing.value, engine=engine.value, scheduler=scheduler,
        workers=workers, review=review, answers=answers, say=say,
    )  # fmt: skip


def check_inputs(inputs: dict[str, str]) -> None:
    """The checks of the input files that need no data (an ``error:`` exit if one fails):
    each file exists, and at most one of them is standard input (which is not a terminal)."""
    piped = [role for role, path in inputs.items() if path == STDIO]
    if len(piped) > 1:
        flags = " and ".join(f"--{role} -" for role in piped)
        raise fail(f"{flags}: only one input can be read from standard input")
    if piped and sys.stdin is not None and sys.stdin.isatty():
        raise fail(
            f"--{piped[0]} -: standard input is a terminal; pipe a CSV or Parquet file into it"
        )
    for role, path in inputs.items():
        if path != STDIO:
            check_input_file(role, path)


def check_review(review: int | None, answers: str | None, output: str, budget: int) -> None:
    """The checks of --review and --answers that need no data (an ``error:`` exit)."""
    if answers is not None and review is None:
        raise fail("--answers resumes a --review run: give the same options, --review included")
    if review is None:
        return
    if output == STDIO:
        raise fail("--review needs --output FILE: the review and state files go next to it")
    if review > budget:
        raise fail(f"--review {review} is more than --budget {budget}: a round has {budget} picks")
    if answers is not None:
        check_input_file("answers", answers)
