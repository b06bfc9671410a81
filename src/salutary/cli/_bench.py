"""``salutary bench``: run a grid of benchmark runs into a resumable store."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
import typer

from salutary.benchmark import ResultStore, grid, run_grid
from salutary.cli._common import MultiValueCommand, fail, plural, progress_bar, split_names, stdout
from salutary.datasets import BENCHMARK_DATASETS, list_datasets
from salutary.exceptions import InputError
from salutary.strategies import STRATEGIES

__all__ = ["COMMAND", "bench"]


COMMAND: dict[str, Any] = dict(
    cls=MultiValueCommand,
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
    try:
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
    results = ResultStore(store)
    if seed_from is not None:
        try:
            added = results.import_frame(pd.read_parquet(seed_from))
        except (OSError, ValueError) as exc:
            raise fail(f"cannot read results file {seed_from!r}: {exc}") from None
        stdout().print(f"{added} runs copied from {seed_from}")
    done = results.done()
    n_todo = sum(k not in done for k in keys)
    with progress_bar() as progress:
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
    taken = f"{plural(len(outcome.taken), 'run')} by another process, " if outcome.taken else ""
    stdout().print(
        f"{plural(len(outcome.ran), 'run')} done, {len(outcome.skipped)} already stored, "
        f"{taken}{len(outcome.failed)} failed; store: {store}"
    )
    taken_keys = set(outcome.taken)
    held = {k: owner for k, owner in results.claimed().items() if k in taken_keys}
    if held:
        owners = ", ".join(sorted(set(held.values())))
        stdout().print(
            f"{plural(len(held), 'run')} still claimed by other processes ({owners}); run this "
            f"command again when they end, or delete their files in {results.claims_path} "
            "if those processes no longer run"
        )
    if outcome.failed:
        raise typer.Exit(1)
