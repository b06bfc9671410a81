"""``salutary bench``'s work (imported when the command runs; its options are in
``_bench``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer

from salutary.benchmark import PROTOCOLS, ResultStore, RunKey, grid, run_grid
from salutary.cli._common import Say, fail, plural, progress_bar, split_names, stage_progress
from salutary.datasets import BENCHMARK_DATASETS, Dataset, list_datasets
from salutary.distributed import get_client
from salutary.exceptions import InputError
from salutary.strategies import STRATEGIES
from salutary.tabular import load_table

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["bench"]


def bench(
    datasets: Sequence[str] | None,
    protocols: Sequence[str] | None,
    strategies: Sequence[str] | None,
    *,
    seeds: int,
    jobs: int | None,
    store: str,
    seed_from: str | None,
    say: Say,
    engine: str | None = None,
    scheduler: str | None = None,
    data: str | None = None,
    target: str | None = None,
    name: str | None = None,
    categorical: Sequence[str] = (),
    id_column: str | None = None,
    ignore: Sequence[str] = (),
    missing: str | None = None,
) -> None:
    """Run ``salutary bench`` on checked options (see :func:`salutary.cli._bench.bench`).

    With ``data`` (a file; ``target`` given) the grid runs on its rows, read by
    :func:`salutary.tabular.load_table`, under ``name`` (default: the file's stem).
    """
    infos = {i.name: i for i in list_datasets()}
    given: dict[str, Dataset] = {}
    try:
        engine = _engine(engine, scheduler, jobs)
        protocol_names = split_names(protocols, ["paper", "fair"])
        strategy_names = split_names(strategies, list(STRATEGIES))
        if data is None:
            names = split_names(datasets, BENCHMARK_DATASETS)
            for registered in names:
                if registered not in infos:
                    raise InputError(
                        f"unknown dataset {registered!r}; choose from {', '.join(infos)}"
                    )
                if not infos[registered].available():
                    hint = infos[registered].install_hint or ""
                    raise InputError(f"dataset {registered!r} is not installed: {hint}")
        else:
            names = [_dataset_name(name, data, infos)]
        keys = grid(names, protocol_names, strategy_names, range(seeds))
        if data is not None:
            assert target is not None  # checked with the options
            with stage_progress("reading", 1, quiet=say.quiet) as on_load:
                table = load_table(
                    data, target, categorical, id_column=id_column, ignore=ignore,
                    missing=missing or "error", progress=on_load,
                )  # fmt: skip
            dataset = Dataset(
                names[0], table.X, table.y, table.feature_names, target,
                description=f"{Path(data).name}, target {target!r}",
            )  # fmt: skip
            _check_splits(dataset, protocol_names, data)
            given[dataset.name] = dataset
            if table.dropped:
                say.note(f"note: {table.dropped} rows of {data} left out for missing values")
            if table.imputed:
                say.note(f"note: {table.imputed} missing feature values of {data} imputed")
    except (InputError, ValueError) as exc:
        raise fail(str(exc)) from None
    # Connect before anything is written: a wrong address leaves the store untouched.
    client = _dask_client(scheduler, jobs or 1) if engine == "dask" else None
    try:
        _bench(keys, ResultStore(store), seed_from=seed_from, jobs=jobs or 1, client=client,
               say=say, data=given)  # fmt: skip
    finally:
        if client is not None:
            client.close()


def _bench(
    keys: list[RunKey],
    results: ResultStore,
    *,
    seed_from: str | None,
    jobs: int,
    client: Client | None,
    say: Say,
    data: dict[str, Dataset],
) -> None:
    """Run the grid's ``keys`` into ``results`` and print what was done."""
    store = str(results.path)
    if seed_from is not None:
        try:
            added = results.import_frame(pd.read_parquet(seed_from))
        except (OSError, ValueError) as exc:
            raise fail(f"cannot read results file {seed_from!r}: {exc}") from None
        say.note(f"{added} runs copied from {seed_from}")
    if client is not None:
        workers = plural(len(client.nthreads()), "worker")
        say.note(f"Dask cluster at {client.scheduler_info()['address']}: {workers}")
    done = results.done()
    n_todo = sum(k not in done for k in keys)
    with progress_bar(quiet=say.quiet) as progress:
        task = progress.add_task(
            f"{n_todo} runs ({len(keys) - n_todo} already stored)", total=n_todo
        )

        def on_done(key, error):
            progress.update(
                task, advance=1, description=f"{key.dataset} {key.protocol} {key.strategy}"
            )
            if error:  # shown with --quiet too: an error
                progress.console.print(f"[red]failed[/red] {key}: {error.splitlines()[0]}")

        outcome = run_grid(results, keys, n_jobs=jobs, on_done=on_done, client=client, data=data)
    taken = f"{plural(len(outcome.taken), 'run')} by another process, " if outcome.taken else ""
    console = say.result()
    console.print(
        f"{plural(len(outcome.ran), 'run')} done, {len(outcome.skipped)} already stored, "
        f"{taken}{len(outcome.failed)} failed; store: {store}"
    )
    taken_keys = set(outcome.taken)
    held = {k: owner for k, owner in results.claimed().items() if k in taken_keys}
    if held:
        owners = ", ".join(sorted(set(held.values())))
        console.print(
            f"{plural(len(held), 'run')} still claimed by other processes ({owners}); run this "
            f"command again when they end, or delete their files in {results.claims_path} "
            "if those processes no longer run"
        )
    say.document(
        {
            "command": "bench",
            "store": store,
            "engine": "local" if client is None else "dask",
            "datasets": sorted({k.dataset for k in keys}),
            "runs": len(keys),
            "ran": len(outcome.ran),
            "already_stored": len(outcome.skipped),
            "taken_by_another_process": len(outcome.taken),
            "still_claimed": len(held),
            "failed": len(outcome.failed),
        }
    )
    if outcome.failed:
        raise typer.Exit(1)


#: A dataset name of --data: it is the first part of the store's file names
#: ``dataset__protocol__strategy__seed.parquet``.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _dataset_name(name: str | None, data: str, infos: dict) -> str:
    """The store name of the --data file's dataset (``name``, else the file's stem)."""
    shown = f"--name {name!r}" if name is not None else (
        f"dataset name {Path(data).stem!r} (the stem of --data file {data!r}; pass --name NAME)"
    )  # fmt: skip
    chosen = Path(data).stem if name is None else name
    if not _NAME.fullmatch(chosen) or "__" in chosen or chosen.endswith("_"):
        raise InputError(
            f"{shown}: a dataset name is letters, digits, '.', '-' and single '_' (not "
            "'__', which separates the parts of the store's file names, nor a final '_'), "
            "starting with a letter or digit"
        )
    if chosen in infos:
        raise InputError(
            f"{shown} is the name of a registered dataset, whose runs the store may hold; "
            "choose another name"
        )
    return chosen


def _check_splits(dataset: Dataset, protocols: Sequence[str], data: str) -> None:
    """A one-line error if a protocol cannot split the dataset (seed 0) or its pool is
    too small for the protocol's rounds: the runs would all fail."""
    for name in protocols:
        protocol = PROTOCOLS[name]
        try:
            split = protocol.make_split(dataset.X, dataset.y, 0)
        except ValueError as exc:
            raise InputError(
                f"data file {data!r} cannot be split by protocol {name!r} "
                f"({dataset.n_samples} rows, {len(dataset.classes)} classes): {exc}"
            ) from None
        budget = protocol.budget_for(dataset.n_samples)
        if budget * protocol.rounds > len(split.y_pool):
            raise InputError(
                f"data file {data!r} has too few rows for protocol {name!r}: its "
                f"{dataset.n_samples} rows leave an unlabeled pool of {len(split.y_pool)}, "
                f"fewer than {protocol.rounds} rounds x {budget} labels"
            )


def _engine(engine: str | None, scheduler: str | None, jobs: int | None) -> str:
    """The engine the options ask for: --scheduler means dask."""
    if scheduler is None:
        return engine or "local"
    if engine == "local":
        raise InputError("--scheduler runs the grid on a Dask cluster; drop --engine local")
    if jobs is not None:
        raise InputError(
            "--jobs sets the size of a local cluster; it cannot be used with --scheduler"
        )
    return "dask"


def _dask_client(scheduler: str | None, workers: int) -> Client:
    """A client of the scheduler, or of a new local cluster; one-line errors."""
    try:
        return get_client(scheduler, None if scheduler is not None else workers)
    except ImportError:
        raise fail("--engine dask needs dask: pip install 'salutary[dask]'") from None
    except ConnectionError as exc:
        raise fail(str(exc)) from None
