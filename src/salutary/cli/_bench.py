"""``salutary bench``: run a grid of benchmark runs into a resumable store.

The options; the work is in ``_bench_work``, imported when the command runs.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import typer

from salutary._lazy import import_deferred
from salutary.cli._common import Json, MultiValueCommand, Quiet, Say, check_input_file, fail
from salutary.cli._label import Missing

__all__ = ["COMMAND", "Engine", "bench"]


class Engine(str, Enum):
    """Where ``salutary bench`` runs the grid."""

    local = "local"
    dask = "dask"


COMMAND: dict[str, Any] = dict(
    cls=MultiValueCommand,
    epilog=(
        "Examples:\n\n"
        "    salutary bench --seeds 10 --jobs 2\n"
        "    salutary bench --datasets wine_quality pima --protocols paper fair \\\n"
        "        --strategies salutary random margin --seeds 3\n"
        "    salutary bench -d pima -p paper -s random -n 1 --quiet --json\n"
        "    salutary bench --seeds 10 --scheduler tcp://scheduler-host:8786\n"
        "    salutary bench --data mydata.csv --target label --seeds 5 --jobs 2\n\n"
        "Each finished (dataset, protocol, strategy, seed) run is stored at once as its own "
        "Parquet file; stop it any time and run the same command again to continue. Several "
        "bench processes (also on machines sharing the store folder) may run the same grid: "
        "each run is claimed before it starts, so none runs twice. On a Dask cluster "
        "(--engine dask, --scheduler) the runs are mapped over the workers and this process "
        "stores each result as it arrives; the workers need salutary and the grid's "
        "datasets, not the store. With --data the grid runs on the rows of your CSV or "
        "Parquet file, read as `salutary label` reads its files (text columns one-hot "
        "encoded, --categorical, --id, --ignore, --missing; every row needs a target "
        "value), under its name in the store (--name, default the file's stem); the "
        "workers get the data from this process. Bad input ends with exit status 2 and "
        "one `error: ...` line naming the file (and the column and row where that "
        "applies), before the store is created."
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
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", min=1, show_default=False,
                     help="Worker processes (with --engine dask: workers of the local "
                     "cluster). Default: 1."),
    ] = None,
    engine: Annotated[
        Engine | None,
        typer.Option("--engine", show_default=False,
                     help="Run the grid in processes of this machine (local) or on a "
                     "dask.distributed cluster (dask; needs `pip install 'salutary[dask]'`): "
                     "the one at --scheduler, else a local cluster of --jobs workers. Both "
                     "store the same results. Default: local, dask with --scheduler."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", metavar="ADDRESS", show_default=False,
                     help="Address of a running dask.distributed scheduler, e.g. "
                     "tcp://scheduler-host:8786: run the grid on its workers."),
    ] = None,
    store: Annotated[
        str, typer.Option("--store", metavar="DIR", help="Results store (a folder).")
    ] = "benchmarks/store",
    seed_from: Annotated[
        str | None,
        typer.Option("--from", metavar="FILE", show_default=False,
                     help="First copy into the store the runs of a consolidated results "
                     "file, e.g. benchmarks/results/results.parquet, so only missing runs run."),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", metavar="FILE", show_default=False,
                     help="Benchmark on your own labeled rows (.csv, .parquet or .pq) instead "
                     "of --datasets; needs --target."),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", metavar="COLUMN", show_default=False,
                     help="With --data: the label column."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", show_default=False,
                     help="With --data: the dataset's name in the store (letters, digits, "
                     ". - and single _). Default: the file's stem."),
    ] = None,
    categorical: Annotated[
        list[str] | None,
        typer.Option("--categorical", "-c", metavar="COLUMN", show_default=False,
                     help="With --data: a feature column to one-hot encode even if it holds "
                     "numbers (repeatable, or several names after one flag)."),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id", metavar="COLUMN", show_default=False,
                     help="With --data: a column that identifies the rows (unique): never a "
                     "feature."),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", metavar="COLUMN", show_default=False,
                     help="With --data: a column that is not a feature (repeatable)."),
    ] = None,
    missing: Annotated[
        Missing | None,
        typer.Option("--missing", show_default=False,
                     help="With --data: a missing feature value is an error naming it "
                     "(error, the default), drops its row (drop), or is filled in (impute: "
                     "numeric columns the file's median, text columns a category of its "
                     "own)."),
    ] = None,
    quiet: Quiet = False,
    json_output: Json = False,
) -> None:  # fmt: skip
    """Run a grid of benchmark runs into a resumable results store.

    Protocols: paper (20% test, 20% validation, 300 initial, 10 rounds of 10, λ=50), fair
    (as paper, every model also trains on the validation labels), the sweeps val1,
    val5, budget1pct, rounds30, l2-1, l2-10, l2-200, and authors (the authors' Wine
    Quality setting: their split, raw features, no intercept; seed 1 is their notebook's).

    With --engine dask or --scheduler the runs go to the workers of a Dask cluster, one
    BLAS thread per run as with --jobs, and give the same results.
    """
    say = Say(quiet=quiet, json=json_output)
    _check_data_options(data, datasets=datasets, target=target, name=name,
                        categorical=categorical, id_column=id_column, ignore=ignore,
                        missing=missing)  # fmt: skip
    import_deferred("salutary.cli._bench_work").bench(
        datasets, protocols, strategies, seeds=seeds, jobs=jobs, store=store,
        seed_from=seed_from, engine=None if engine is None else engine.value,
        scheduler=scheduler, say=say,
        data=data, target=target, name=name, categorical=categorical or (),
        id_column=id_column, ignore=ignore or (),
        missing=None if missing is None else missing.value,
    )  # fmt: skip


def _check_data_options(data: str | None, datasets: list[str] | None, **given: Any) -> None:
    """An ``error:`` exit for options that do not go together with (or without) --data,
    and for a --data file that does not exist; before anything is read or written."""
    if data is None:
        flags = {"id_column": "id"}
        unused = [f"--{flags.get(k, k)}" for k, v in given.items() if v]
        if unused:
            verb = "needs" if len(unused) == 1 else "need"
            raise fail(f"{' and '.join(unused)} {verb} --data FILE")
        return
    if datasets:
        raise fail(
            "--data and --datasets cannot be used together: --data benchmarks the file's "
            "rows alone; run salutary bench once per dataset (into one --store if you like)"
        )
    if given["target"] is None:
        raise fail("--data needs --target COLUMN, the file's label column")
    check_input_file("data", data)
