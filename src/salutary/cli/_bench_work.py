"""``salutary bench``'s work (imported when the command runs; its options are in
``_bench``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
import typer

from salutary.benchmark import ResultStore, RunKey, grid, run_grid
from salutary.cli._common import Say, fail, plural, progress_bar, split_names
from salutary.datasets import BENCHMARK_DATASETS, list_datasets
from salutary.distributed import get_client
from salutary.exceptions import InputError
from salutary.strategies import STRATEGIES

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
) -> None:
    """Run ``salutary bench`` on checked options (see :func:`salutary.cli._bench.bench`)."""
    try:
        engine = _engine(engine, scheduler, jobs)
        names = split_names(datasets, BENCHMARK_DATASETS)
        infos = {i.name: i for i in list_datasets()}
        for name in names:
            if name not in infos:
                raise InputError(f"unknown dataset {name!r}; choose from {', '.join(infos)}")
            if not infos[name].available():
                hint = infos[name].install_hint or ""
                raise InputError(f"dataset {name!r} is not installed: {hint}")
        keys = grid(
            names,
            split_names(protocols, ["paper", "fair"]),
            split_names(strategies, list(STRATEGIES)),
            range(seeds),
        )
    except (InputError, ValueError) as exc:
        raise fail(str(exc)) from None
    # Connect before anything is written: a wrong address leaves the store untouched.
    client = _dask_client(scheduler, jobs or 1) if engine == "dask" else None
    try:
        _bench(keys, ResultStore(store), seed_from=seed_from, jobs=jobs or 1, client=client,
               say=say)  # fmt: skip
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

        outcome = run_grid(results, keys, n_jobs=jobs, on_done=on_done, client=client)
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
