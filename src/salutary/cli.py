"""Command line: ``salutary label``, ``run``, ``bench``, ``report``, ``finetune``, ``datasets``."""

from __future__ import annotations

import json
import math
import platform
import sys
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from salutary.tabular import (
    InputError,
    atomic_write,
    check_budget,
    check_output,
    load_tables,
    write_table,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from distributed import Client
    from rich.console import Console

    from salutary.tabular import Tables

__all__ = ["app", "main"]

#: Columns the ``label`` output adds to the unlabeled file's columns.
ROUND_COLUMN = "salutary_round"
SCORE_COLUMN = "salutary_score"


class _Command(TyperCommand):
    """A command whose multiple-value options also take several values after one flag.

    ``--strategies random salutary`` is read as ``--strategies random --strategies
    salutary`` (click itself only accepts the repeated form, which keeps working).
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        names = {
            opt
            for p in self.params
            if getattr(p, "multiple", False)
            for opt in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))
        }
        return super().parse_args(ctx, _expand_multiple(args, names))


def _expand_multiple(args: Sequence[str], names: set[str]) -> list[str]:
    out: list[str] = []
    current: str | None = None  # the multiple-value option being read
    needs_value = False
    for i, tok in enumerate(args):
        if tok == "--":
            out.extend(args[i:])
            break
        if tok.startswith("-") and len(tok) > 1:
            opt, has_value, _ = tok.partition("=")
            current = opt if opt in names else None
            needs_value = current is not None and not has_value
            out.append(tok)
        elif current is not None and not needs_value:
            out.extend([current, tok])
        else:
            needs_value = False
            out.append(tok)
    return out


app = typer.Typer(
    name="salutary",
    help=(
        "Salutary labeling: grow a training set from an unlabeled pool with zero human "
        "annotation.\n\n"
        "Each round fits an L2 logistic model, gives every unlabeled row the label whose "
        "addition is predicted (by the influence function) to lower the loss on a labeled "
        "validation set most, and adds the most helpful rows with those labels."
    ),
    epilog=(
        "Examples:\n\n"
        "    salutary label -l labeled.csv -u pool.csv -v val.csv -t label -o out.csv\n"
        "    salutary run --dataset breast_cancer --seeds 3\n"
        "    salutary datasets\n\n"
        "Run `salutary COMMAND --help` for the options of a command."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        from salutary import __version__

        typer.echo(f"salutary {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Salutary labeling: grow a training set from an unlabeled pool without annotation."""


def _fail(message: str) -> typer.Exit:
    """Print ``error: message`` as one line on stderr; return the exit to raise (status 2)."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    return typer.Exit(2)


def _n(count: int, noun: str) -> str:
    """'1 run', '2 runs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _positive(value: float) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise typer.BadParameter(f"must be a positive number, got {value}")
    return value


# Options shared by `label` and `run`.
_Budget = Annotated[int, typer.Option("--budget", "-b", min=1, help="Rows per round.")]
_Rounds = Annotated[int, typer.Option("--rounds", "-r", min=1, help="Rounds.")]
_L2 = Annotated[
    float,
    typer.Option("--l2", callback=_positive, help="L2 penalty of the logistic model (C = 1 / l2)."),
]


def _stdout() -> Console:
    from rich.console import Console

    return Console()


def _progress():
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


# ------------------------------------------------------------------------------ label


class LabelStrategy(str, Enum):
    """Oracle-free strategies ``salutary label`` can use."""

    salutary_newton = "salutary-newton"
    salutary = "salutary"
    self_training = "self-training"
    val_teacher = "val-teacher"


def _label_strategy(spec: str) -> str:
    """A strategy spec ``salutary label`` can run (oracle-free), or an InputError."""
    from salutary.strategies import parse_strategy

    try:
        cls, _ = parse_strategy(spec)
    except ValueError as exc:
        raise InputError(f"--strategy: {exc}") from None
    if cls.requires_oracle:
        free = ", ".join(s.value for s in LabelStrategy)
        raise InputError(
            f"--strategy {spec!r} needs true labels for its picks, which salutary label "
            f"does not have; choose from {free}"
        )
    return spec


class Engine(str, Enum):
    """Where ``salutary label`` scores the pool."""

    memory = "memory"
    dask = "dask"


_ROWS_NOTE = (
    "Rows in messages are data rows numbered from 1 (the header is not counted); for CSV "
    "files the line in the file is given too, e.g. 'row 7 (line 8)'."
)


@app.command(
    cls=_Command,
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
    budget: _Budget = 10,
    rounds: _Rounds = 10,
    l2: _L2 = 50.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed for tie-breaking.")] = 0,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            "-s",
            metavar="NAME[:PARAM=VALUE...]",
            help="salutary-newton (batch-aware, second-order; the default), salutary (the "
            "paper's first-order top-b; the only one --engine dask runs, and its default), "
            "self-training or val-teacher (self-training with a teacher that also learns the "
            "validation labels); parameters after the name, e.g. "
            "salutary-newton:abstain=True.",
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

    Features are every column except the target: numeric columns as they are, text
    columns one-hot encoded (categories from all three files), then standardized with
    the labeled rows' mean and deviation. Each round the BUDGET most helpful pool rows
    get their salutary label; after ROUNDS rounds the chosen rows are written with all
    their original columns, the target filled in, and the columns salutary_round (1..R)
    and salutary_score, sorted by round then score (highest first).

    With --engine dask the pool is held by the workers of a Dask cluster and each round
    scores it there (the model and the influence factors stay in this process); the
    result is the same file as with --engine memory.
    """
    try:
        _check_engine_options(engine, scheduler, workers)
        if engine is Engine.dask:
            if strategy not in (None, LabelStrategy.salutary.value):
                raise InputError(
                    f"--engine dask scores first-order influence only; use --strategy "
                    f"salutary (or --engine memory for {strategy})"
                )
            strategy = LabelStrategy.salutary.value
        strategy = _label_strategy(strategy or LabelStrategy.salutary_newton.value)
        check_output(output)
        tables = load_tables(labeled, unlabeled, validation, target, categorical or ())
        check_budget(budget, rounds, tables.unlabeled_file)
        _check_not_an_input(output, tables)
        for col in (ROUND_COLUMN, SCORE_COLUMN):
            if col in tables.unlabeled.columns:
                raise InputError(
                    f"{tables.unlabeled_file.name} already has a column {col!r}, which the "
                    "output adds; rename it"
                )
    except InputError as exc:
        raise _fail(str(exc)) from None

    if engine is Engine.dask:
        client = _dask_client(scheduler, workers)
        try:
            frame = _salutary_label(
                tables, budget=budget, rounds=rounds, l2=l2, seed=seed, client=client
            )
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
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write output file {output!r}: {exc.strerror or exc}") from None
    _label_summary(frame, tables.target, output, budget=budget, rounds=rounds)


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
        from salutary.distributed import get_client

        return get_client(scheduler, workers)
    except ImportError:
        raise _fail("--engine dask needs dask: pip install 'salutary[dask]'") from None
    except ConnectionError as exc:
        raise _fail(str(exc)) from None


def _salutary_label(
    tables: Tables,
    *,
    budget: int,
    rounds: int,
    l2: float,
    seed: int,
    client: Client | None = None,
    strategy: str = "salutary",
) -> pd.DataFrame:
    """Salutary labeling of the encoded tables (in memory, or on ``client``'s cluster)."""
    import numpy as np

    with _progress() as progress:
        task = progress.add_task(
            f"salutary labeling: {budget} of {len(tables.X_pool)} rows per round", total=rounds
        )

        def on_round(r: int) -> None:
            progress.update(task, completed=r, description=f"salutary labeling: round {r}")

        kw = dict(budget=budget, rounds=rounds, l2=l2, seed=seed, on_round=on_round)
        if client is None:
            pool_round, pool_label, pool_score = _label_in_memory(tables, strategy=strategy, **kw)
        else:
            pool_round, pool_label, pool_score = _label_on_dask(tables, client=client, **kw)
        progress.update(task, description=f"salutary labeling: {rounds} rounds done")

    chosen = np.flatnonzero(pool_round > 0)
    out = tables.unlabeled.iloc[chosen].copy()
    out[tables.target] = tables.classes[pool_label[chosen]]
    out[ROUND_COLUMN] = pool_round[chosen].astype(np.int64)
    out[SCORE_COLUMN] = pool_score[chosen].astype(np.float64)
    out = out.sort_values([ROUND_COLUMN, SCORE_COLUMN], ascending=[True, False], kind="mergesort")
    return out.reset_index(drop=True)


def _label_in_memory(
    tables: Tables, *, budget, rounds, l2, seed, on_round, strategy="salutary"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pool row: round it was labeled in (-1: never), label code and score."""
    import numpy as np

    from salutary import LogisticModel, SalutaryLabeler

    n_lab = len(tables.y_labeled_codes)
    X = np.vstack([tables.X_labeled, tables.X_pool])
    y = np.concatenate([tables.y_labeled_codes, np.full(len(tables.X_pool), -1, dtype=np.int64)])
    labeler = SalutaryLabeler(
        estimator=LogisticModel(l2=l2, warm_start=True),
        budget=budget,
        rounds=rounds,
        strategy=strategy,
        random_state=seed,
        callback=lambda r, _labeler: on_round(r),
    ).fit(X, y, tables.X_val, tables.y_val_codes)
    return (
        labeler.labeled_iter_[n_lab:],
        labeler.transduction_[n_lab:],
        labeler.salutary_score_[n_lab:],
    )


def _label_on_dask(
    tables: Tables, *, budget, rounds, l2, seed, on_round, client
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As :func:`_label_in_memory`, with the pool held and scored by the cluster."""
    import numpy as np

    from salutary import LogisticModel
    from salutary.distributed import label_rounds, scatter_pool

    n_pool = len(tables.X_pool)
    pool_round = np.full(n_pool, -1, dtype=np.int64)
    pool_label = np.full(n_pool, -1, dtype=np.int64)
    pool_score = np.full(n_pool, np.nan)
    on_round(0)

    def record(done) -> None:
        pool_round[done.rows] = done.round
        pool_label[done.rows] = done.labels
        pool_score[done.rows] = done.scores
        on_round(done.round)

    label_rounds(
        LogisticModel(l2=l2, warm_start=True),
        tables.X_labeled,
        tables.y_labeled_codes,
        scatter_pool(tables.X_pool, client),
        tables.X_val,
        tables.y_val_codes,
        budget=budget,
        rounds=rounds,
        random_state=seed,
        client=client,
        callback=record,
    )
    return pool_round, pool_label, pool_score


def _label_summary(frame: pd.DataFrame, target: str, output: str, *, budget, rounds) -> None:
    console = _stdout()
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


# -------------------------------------------------------------------------------- run


def _strategy_names(oracle: bool) -> str:
    from salutary.strategies import STRATEGIES

    return ", ".join(f"`{n}`" for n, cls in STRATEGIES.items() if cls.requires_oracle == oracle)


def _default_strategies() -> tuple[str, ...]:
    from salutary.experiment import DEFAULT_STRATEGIES

    return DEFAULT_STRATEGIES


@app.command(
    cls=_Command,
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
    budget: _Budget = 10,
    rounds: _Rounds = 10,
    l2: _L2 = 50.0,
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
    from salutary.datasets import UnknownDatasetError, load_dataset
    from salutary.experiment import paper_split, run_experiment

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
        folder = _output_folder(output, Path("salutary-results") / ds.name)
    except InputError as exc:
        raise _fail(str(exc)) from None

    n_runs = len(chosen) * seeds
    with _progress() as progress:
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
        **_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _print_run_table(results, ds.name, rounds=rounds, budget=budget)
    try:
        _write_run(folder, results, config, ds.name, budget=budget)
    except OSError as exc:
        raise _fail(f"cannot write into output folder {str(folder)!r}: {exc}") from None
    _stdout().print(f"Results written to {folder}{'' if str(folder).endswith('/') else '/'}")


def _names(values: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """Names given after one flag, repeated, or comma-separated; ``default`` if none."""
    if not values:
        return list(default)
    names = [v.strip() for value in values for v in value.split(",") if v.strip()]
    return list(dict.fromkeys(names))


def _parse_strategies(values: Sequence[str] | None) -> tuple[str, ...]:
    from salutary.strategies import parse_strategy

    names = _names(values, _default_strategies())
    for name in names:
        try:
            parse_strategy(name)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    if not names:
        raise InputError("--strategies needs at least one strategy name")
    return tuple(names)


def _versions() -> dict[str, str]:
    import numpy
    import pandas
    import sklearn

    from salutary import __version__

    return {
        "salutary_version": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scikit_learn": sklearn.__version__,
    }


def _write_run(folder: Path, results, config: dict, name: str, *, budget: int) -> None:
    from salutary.experiment import learning_curve_plot, summarize

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
    from rich import box
    from rich.table import Table

    from salutary.experiment import _oracle_free, summarize

    console = _stdout()
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
    for strategy, part in summary.groupby("strategy", sort=False):
        by_round = part.set_index("round")
        oracle = not _oracle_free(strategy)
        cells = []
        for r in shown:
            m, s = by_round.loc[r, "mean"], by_round.loc[r, "std"]
            cells.append(f"{m:.3f}\n[dim]±{s:.3f}[/dim]")
        a = agree.get(strategy, float("nan"))
        agree_cell = "-" if oracle or not math.isfinite(a) else f"{a:.0%}"
        table.add_row(strategy, "yes" if oracle else "no", *cells, agree_cell)
    console.print(table)


# ------------------------------------------------------------------------ bench/report


@app.command(
    cls=_Command,
    epilog=(
        "Examples:\n\n"
        "    salutary bench --seeds 10 --jobs 2\n"
        "    salutary bench --datasets wine_quality pima --protocols paper fair \\\n"
        "        --strategies salutary random margin --seeds 3\n\n"
        "Each finished (dataset, protocol, strategy, seed) run is stored at once as its own "
        "Parquet file; stop it any time and run the same command again to continue. Several "
        "bench processes (also on machines sharing the store folder) may run the same grid: "
        "each run is claimed before it starts, so none runs twice."
    ),
)
def bench(
    datasets: Annotated[
        list[str] | None,
        typer.Option("--datasets", "-d", metavar="NAME", help="Default: the nine benchmark sets.",
                     show_default=False),
    ] = None,
    protocols: Annotated[
        list[str] | None,
        typer.Option("--protocols", "-p", metavar="NAME", help="Default: paper and fair.",
                     show_default=False),
    ] = None,
    strategies: Annotated[
        list[str] | None,
        typer.Option("--strategies", "-s", metavar="NAME", help="Default: all.",
                     show_default=False),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", "-n", min=1, help="Seeds 0..N-1.")] = 10,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")] = 1,
    store: Annotated[
        str, typer.Option("--store", metavar="DIR", help="Results store (a folder).")
    ] = "benchmarks/store",
    seed_from: Annotated[
        str | None,
        typer.Option("--from", metavar="FILE", show_default=False,
                     help="First copy into the store the runs of a consolidated results "
                     "file, e.g. benchmarks/results/results.parquet, so only missing runs run."),
    ] = None,
) -> None:  # fmt: skip
    """Run a grid of benchmark runs into a resumable results store.

    Protocols: paper (20% test, 20% validation, 300 initial, 10 rounds of 10, λ=50), fair
    (as paper, every model also trains on the validation labels), and the sweeps val1,
    val5, budget1pct, rounds30, l2-1, l2-10, l2-200.
    """
    from salutary.bench import ResultStore, grid, run_grid
    from salutary.datasets import BENCHMARK_DATASETS, list_datasets
    from salutary.strategies import STRATEGIES

    try:
        names = _names(datasets, BENCHMARK_DATASETS)
        infos = {i.name: i for i in list_datasets()}
        for name in names:
            if name not in infos:
                raise InputError(f"unknown dataset {name!r}; choose from {', '.join(infos)}")
            if not infos[name].available():
                hint = infos[name].install_hint or ""
                raise InputError(f"dataset {name!r} is not installed: {hint}")
        keys = grid(names, _names(protocols, ["paper", "fair"]), _names(strategies, STRATEGIES),
                    range(seeds))  # fmt: skip
    except (InputError, ValueError) as exc:
        raise _fail(str(exc)) from None
    results = ResultStore(store)
    if seed_from is not None:
        import pandas as pd

        try:
            added = results.import_frame(pd.read_parquet(seed_from))
        except (OSError, ValueError) as exc:
            raise _fail(f"cannot read results file {seed_from!r}: {exc}") from None
        _stdout().print(f"{added} runs copied from {seed_from}")
    done = results.done()
    n_todo = sum(k not in done for k in keys)
    with _progress() as progress:
        task = progress.add_task(
            f"{n_todo} runs ({len(keys) - n_todo} already stored)", total=n_todo
        )

        def on_done(key, error):
            progress.update(
                task, advance=1, description=f"{key.dataset} {key.protocol} {key.strategy}"
            )
            if error:
                progress.console.print(f"[red]failed[/red] {key}: {error.splitlines()[0]}")

        outcome = run_grid(results, keys, n_jobs=jobs, on_done=on_done)
    taken = f"{_n(len(outcome.taken), 'run')} by another process, " if outcome.taken else ""
    _stdout().print(
        f"{_n(len(outcome.ran), 'run')} done, {len(outcome.skipped)} already stored, "
        f"{taken}{len(outcome.failed)} failed; store: {store}"
    )
    taken_keys = set(outcome.taken)
    held = {k: owner for k, owner in results.claimed().items() if k in taken_keys}
    if held:
        owners = ", ".join(sorted(set(held.values())))
        _stdout().print(
            f"{_n(len(held), 'run')} still claimed by other processes ({owners}); run this "
            f"command again when they end, or delete their files in {results.claims_path} "
            "if those processes no longer run"
        )
    if outcome.failed:
        raise typer.Exit(1)


@app.command(
    epilog=(
        "Examples:\n\n"
        "    salutary report\n"
        "    salutary report --store runs/ --output out/\n"
        "    salutary report --min-seeds 10\n\n"
        "`--min-seeds 10` keeps a grid that is still running out of the report until each "
        "(protocol, dataset, strategy) has its 10 seeds."
    ),
)
def report(
    store: Annotated[
        str, typer.Option("--store", metavar="DIR", help="Results store (a folder).")
    ] = "benchmarks/store",
    output: Annotated[
        str, typer.Option("--output", "-o", metavar="DIR", help="Where the report goes.")
    ] = "benchmarks/results",
    min_seeds: Annotated[
        int,
        typer.Option(
            "--min-seeds",
            min=1,
            help="Leave out every (protocol, dataset, strategy) with fewer seeds stored, "
            "e.g. the unfinished part of a grid that is still running.",
        ),
    ] = 1,
) -> None:
    """Write REPORT.md, learning curves, per-run metrics (runs.csv) and every round of every
    run (results.parquet, which `salutary bench --from` can resume from) from a store."""
    from salutary.bench import ResultStore
    from salutary.report import complete_groups, per_run, write_report

    results = ResultStore(store).load()
    if results.empty:
        raise _fail(f"no results in store {store!r}; run `salutary bench` first")
    results, short = complete_groups(results, min_seeds)
    for g in short.itertuples(index=False):
        typer.echo(
            f"left out: {g.dataset} / {g.protocol} / {g.strategy} ({g.seeds} of {min_seeds} seeds)",
            err=True,
        )
    if results.empty:
        raise _fail(f"no (protocol, dataset, strategy) in store {store!r} has {min_seeds} seeds")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    path = write_report(results, out)
    runs = per_run(results)
    atomic_write(out / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False, float_format="%.6g"))
    atomic_write(out / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    _stdout().print(f"Report written to {path} ({len(runs)} runs)")


# --------------------------------------------------------------------------- finetune


class LanguageModel(str, Enum):
    """Language models ``salutary finetune`` fine-tunes."""

    minilm = "minilm"
    smollm2 = "smollm2"


_FINETUNE_DEFAULT_DATASET = "spam_assassin"


@app.command(
    cls=_Command,
    epilog=(
        "Examples:\n\n"
        "    salutary finetune\n"
        "    salutary finetune --dataset twitter_sentiment --seeds 3 --output ft/\n"
        "    salutary finetune --model smollm2 --arms initial,salutary --max-texts 2000\n"
        "    salutary finetune --input texts.csv --text-column body --label-column topic\n\n"
        "Arms: `initial` (initial labels only), `random` and `margin` (their picks with the "
        "true labels), `self-training` (pseudo-labels), `salutary` (salutary labels); every "
        "arm but `initial` adds BUDGET x ROUNDS texts. In an --input file, an empty label or "
        "-1 marks an unlabeled text; those texts join the pool, and then only `initial`, "
        "`self-training` and `salutary` can run. Bad input ends with exit status 2 and one "
        "`error: ...` line on stderr."
    ),
)
def finetune(
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", "-d", metavar="NAME", show_default=False,
                     help="Text corpus: spam_assassin (bundled, the default), bbc_news or "
                     "twitter_sentiment."),
    ] = None,
    input_file: Annotated[
        str | None,
        typer.Option("--input", "-i", metavar="FILE", show_default=False,
                     help="Your texts instead: a .csv, .parquet or .pq file with a text and a "
                     "label column."),
    ] = None,
    text_column: Annotated[
        str, typer.Option("--text-column", metavar="COLUMN", help="With --input: the texts.")
    ] = "text",
    label_column: Annotated[
        str,
        typer.Option("--label-column", metavar="COLUMN",
                     help="With --input: the labels (empty or -1 = unlabeled)."),
    ] = "label",
    model: Annotated[
        LanguageModel,
        typer.Option("--model", "-m", help="minilm: all-MiniLM-L6-v2, full fine-tuning; "
                     "smollm2: SmolLM2-135M-Instruct (GGUF), LoRA adapters."),
    ] = LanguageModel.minilm,
    arms: Annotated[
        list[str] | None,
        typer.Option("--arms", "-a", metavar="NAME", show_default=False,
                     help="Arms to compare (several after one flag, or comma-separated). "
                     "Default: initial, random, margin, self-training, salutary (without "
                     "the oracle arms when the pool has unlabeled texts)."),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", "-n", min=1, help="Seeds 0..N-1.")] = 1,
    budget: Annotated[int, typer.Option("--budget", "-b", min=1, help="Texts per round.")] = 20,
    rounds: _Rounds = 5,
    initial: Annotated[
        int, typer.Option("--initial", min=1, help="Initial labeled texts.")
    ] = 100,
    validation: Annotated[
        int, typer.Option("--validation", min=1, help="Labeled validation texts.")
    ] = 500,
    test: Annotated[int, typer.Option("--test", min=1, help="Held-out test texts.")] = 500,
    max_texts: Annotated[
        int | None,
        typer.Option("--max-texts", min=1, show_default=False,
                     help="Use a stratified subsample of this many texts (the same for "
                     "every seed)."),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, show_default=False,
                     help="Fine-tuning epochs. Default: 5 (minilm), 3 (smollm2)."),
    ] = None,
    max_length: Annotated[
        int, typer.Option("--max-length", min=4, help="Tokens per text.")
    ] = 64,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Batch size.")] = 16,
    learning_rate: Annotated[
        float | None,
        typer.Option("--learning-rate", callback=lambda v: v if v is None else _positive(v),
                     show_default=False,
                     help="Default: 3e-4 (minilm), 3e-3 (smollm2, LoRA)."),
    ] = None,
    l2: _L2 = 50.0,
    threads: Annotated[
        int | None,
        typer.Option("--threads", min=1, show_default=False,
                     help="torch threads per run (default: torch's choice)."),
    ] = None,
    isolate: Annotated[
        bool,
        typer.Option("--isolate/--no-isolate",
                     help="Run each arm and seed in a fresh process (measures its peak "
                     "memory)."),
    ] = True,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="DIR", show_default=False,
                     help="Output folder (default: salutary-results/finetune/NAME-MODEL/)."),
    ] = None,
) -> None:  # fmt: skip
    """Fine-tune a language model on salutary-labeled texts and compare with baselines.

    Per seed the corpus is split (stratified) into initial labeled texts, a pool,
    validation and test texts. Salutary labeling (and each other arm's strategy) runs on
    the frozen model's embeddings for ROUNDS rounds of BUDGET texts; the model is then
    fine-tuned on the initial texts plus the added ones and scored on the test texts.
    Writes runs.csv (one row per arm and seed), picks.csv (every added text with its
    label), summary.md and config.json.
    """
    from salutary.finetune import ARMS, FinetuneConfig, prepare_finetune

    config = FinetuneConfig(
        n_initial=initial, n_validation=validation, n_test=test, budget=budget, rounds=rounds,
        l2=l2, max_length=max_length, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, threads=threads,
    )  # fmt: skip
    try:
        corpus, name = _finetune_corpus(dataset, input_file, text_column, label_column)
        chosen = _finetune_arms(arms, corpus)
        try:  # every check of the comparison, before a model is loaded or a folder made
            prepare_finetune(corpus, model=model.value, arms=chosen, seeds=range(seeds),
                             config=config, max_texts=max_texts)  # fmt: skip
        except (ValueError, TypeError) as exc:
            raise InputError(str(exc)) from None
        folder = _output_folder(
            output, Path("salutary-results") / "finetune" / f"{name}-{model.value}"
        )
    except InputError as exc:
        raise _fail(str(exc)) from None
    comparison = _run_finetune_progress(
        corpus, name, model.value, chosen, seeds, config, max_texts=max_texts, isolate=isolate
    )
    settings = {
        "command": "finetune",
        "dataset": name,
        "input": input_file,
        "model": model.value,
        "arms": list(chosen),
        "seeds": list(range(seeds)),
        "max_texts": max_texts,
        "isolate": isolate,
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "default_arms": list(ARMS),
        **_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _print_finetune_table(comparison.runs, name, model.value, seeds)
    try:
        _write_finetune(folder, comparison, settings)
    except OSError as exc:
        raise _fail(f"cannot write into output folder {str(folder)!r}: {exc}") from None
    _stdout().print(f"Results written to {folder}{'' if str(folder).endswith('/') else '/'}")


def _finetune_corpus(
    dataset: str | None, input_file: str | None, text_column: str, label_column: str
) -> tuple[Any, str]:
    """The corpus to use (a TextCorpus or (texts, labels)) and its name; InputError if bad."""
    if input_file is not None and dataset is not None:
        raise InputError("give either --dataset or --input, not both")
    if input_file is None:
        from salutary.datasets import DatasetNotInstalledError
        from salutary.text import load_texts

        name = dataset or _FINETUNE_DEFAULT_DATASET
        try:
            corpus = load_texts(name)
        except DatasetNotInstalledError as exc:
            raise InputError(str(exc)) from None
        except ValueError as exc:
            raise InputError(str(exc)) from None
        return corpus, corpus.name
    from salutary.tabular import read_table

    table = read_table(input_file, "input")
    # CSV: the exact cell text, so a text "NA" stays a text and a label "01" stays "01".
    frame = table.text if table.text is not None else table.frame
    for col, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
        if col not in frame.columns:
            cols = ", ".join(repr(str(c)) for c in frame.columns[:10])
            raise InputError(f"{table.name} has no column {col!r} ({flag}); columns: {cols}")
    if text_column == label_column:
        raise InputError("--text-column and --label-column name the same column")
    texts = []
    for i, value in enumerate(frame[text_column].tolist()):
        if not isinstance(value, str) or not value.strip():
            raise InputError(
                f"{table.name}, column {text_column!r}, {table.row(i)}: the text is empty"
                if value is None or isinstance(value, str) or _isnan(value)
                else f"{table.name}, column {text_column!r}, {table.row(i)}: "
                f"not a text but {type(value).__name__}"
            )
        texts.append(value)
    return (texts, frame[label_column].tolist()), Path(input_file).stem


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _finetune_arms(values: Sequence[str] | None, corpus: Any) -> tuple[str, ...]:
    from salutary.finetune import ARMS, is_missing_label, needs_oracle
    from salutary.strategies import STRATEGIES

    unlabeled = isinstance(corpus, tuple) and any(is_missing_label(v) for v in corpus[1])
    default = [a for a in ARMS if a == "initial" or not (unlabeled and needs_oracle(a))]
    names = _names(values, default)
    known = ["initial", *STRATEGIES]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(
            f"unknown arm{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(known)}"
        )
    if not names:
        raise InputError("--arms needs at least one arm name")
    if unlabeled:
        oracle = [n for n in names if needs_oracle(n)]
        if oracle:
            raise InputError(
                f"arm{'s' if len(oracle) > 1 else ''} {', '.join(map(repr, oracle))} need the "
                "true labels of the texts they pick, but the input has unlabeled texts; use "
                "initial, self-training and salutary"
            )
    return tuple(names)


def _output_folder(output: str | None, default: Path) -> Path:
    folder = Path(output) if output else default
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"output folder {str(folder)!r} exists and is not a folder") from None
    except OSError as exc:
        raise InputError(
            f"cannot create output folder {str(folder)!r}: {exc.strerror or exc}"
        ) from None
    return folder


def _run_finetune_progress(
    corpus: Any, name: str, model: str, arms: Sequence[str], seeds: int, config: Any, *,
    max_texts: int | None, isolate: bool,
) -> Any:  # fmt: skip
    """:func:`salutary.finetune.run_finetune` under a progress bar; one-line input errors."""
    from salutary.finetune import ModelNotInstalledError, run_finetune

    n_runs = len(arms) * seeds
    progress = _progress()
    state: dict[str, Any] = {"started": False}

    def on_start(arm: str, seed: int) -> None:
        # Started lazily: the embedding (before the first run) shows its own bar.
        if not state["started"]:
            progress.start()
            state["started"] = True
            state["runs"] = progress.add_task(f"{name} {model}: {n_runs} runs", total=n_runs)
            state["steps"] = progress.add_task("", total=None)
        progress.update(state["runs"], description=f"{name} {model}: {arm}, seed {seed}")
        progress.reset(state["steps"], total=None, description="  starting")

    def on_step(stage: str, done: int, total: int) -> None:
        what = "fine-tuning steps" if stage == "finetune" else "test batches"
        progress.update(state["steps"], completed=done, total=total, description=f"  {what}")

    def on_result(result: Any) -> None:
        progress.advance(state["runs"])

    try:
        return run_finetune(
            corpus, model=model, arms=arms, seeds=range(seeds), config=config,
            max_texts=max_texts, isolate=isolate, progress=on_step, on_start=on_start,
            on_result=on_result,
        )  # fmt: skip
    except (ModelNotInstalledError, ImportError) as exc:
        raise _fail(str(exc)) from None
    except (ValueError, TypeError) as exc:
        if state["started"]:
            raise  # a failure inside a run is a bug, not bad input: keep the traceback
        raise _fail(str(exc)) from None
    finally:
        if state["started"]:
            progress.stop()


def _print_finetune_table(runs: Any, name: str, model: str, seeds: int) -> None:
    from rich import box
    from rich.table import Table

    from salutary.finetune import summarize_finetune

    summary = summarize_finetune(runs)
    table = Table(
        title=f"{name}, {model}: test accuracy after fine-tuning ({seeds} "
        f"seed{'s' * (seeds != 1)})",
        caption="±: std over seeds. agree: share of the added texts' labels equal to the "
        "hidden truth. Seconds are means per run; MiB the peak of a run's process. More "
        "columns in runs.csv and summary.md.",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for col in ("arm", "added", "accuracy", "±", "agree", "select s", "tune s", "MiB"):
        table.add_column(col, justify="left" if col == "arm" else "right", no_wrap=True)

    def fmt(v: float, spec: str) -> str:
        return "-" if not math.isfinite(v) else format(v, spec)

    for row in summary.itertuples(index=False):
        table.add_row(
            row.arm, str(row.n_added), f"{row.accuracy_mean:.3f}", f"{row.accuracy_std:.3f}",
            fmt(row.label_agreement, ".0%"), fmt(row.selection_seconds, ".1f"),
            fmt(row.finetune_seconds, ".0f"), fmt(row.peak_rss_mb, ".0f"),
        )  # fmt: skip
    _stdout().print(table)


def _write_finetune(folder: Path, comparison: Any, settings: dict) -> None:
    from salutary.finetune import finetune_markdown

    runs, picks = comparison.runs, comparison.picks
    atomic_write(folder / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False))
    atomic_write(folder / "picks.csv", lambda tmp: picks.to_csv(tmp, index=False))
    text = (
        f"# Fine-tuning {settings['model']} on {settings['dataset']}\n\n"
        + finetune_markdown(runs)
        + "\nSettings: `"
        + json.dumps(settings["config"])
        + "`\n"
    )
    atomic_write(folder / "summary.md", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    config = json.dumps(settings, indent=2) + "\n"
    atomic_write(folder / "config.json", lambda tmp: tmp.write_text(config, encoding="utf-8"))


# --------------------------------------------------------------------------- datasets


@app.command(
    epilog=(
        "Examples:\n\n"
        "    salutary datasets\n"
        "    salutary run --dataset digits\n\n"
        "A dataset that is not available names the command that installs it."
    ),
)
def datasets() -> None:
    """List the datasets `salutary run --dataset` accepts (nothing is downloaded)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from salutary.datasets import DEFAULT_DATASET, list_datasets

    table = Table(title="Datasets", box=box.SIMPLE_HEAD, show_lines=True)
    table.add_column("name", no_wrap=True)
    table.add_column("samples", justify="right")
    table.add_column("features", justify="right")
    table.add_column("classes", justify="right")
    table.add_column("available")
    table.add_column("description and source", ratio=1)
    for info in list_datasets():
        available = info.available()
        name = f"{info.name} (default)" if info.name == DEFAULT_DATASET else info.name
        note = f"{escape(info.description)}\n[dim]{escape(info.source)}[/dim]"
        if not available and info.install_hint:
            note += f"\n[dim]install: {escape(info.install_hint)}[/dim]"
        table.add_row(
            name,
            f"{info.n_samples:,}",
            str(info.n_features),
            str(info.n_classes),
            "yes" if available else "no",
            note,
        )
    _stdout().print(table)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main() -> None:
    """Entry point of the ``salutary`` console script."""
    # Warnings (a small validation set, a fallback) are for the user: one line each, on
    # stderr, without the source location.
    warnings.formatwarning = _one_line_warning
    app(prog_name="salutary")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
