"""``salutary datasets``'s work (imported when the command runs; its options are in
``_datasets``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from salutary.cli._common import Say, fail
from salutary.datasets import DEFAULT_DATASET, DatasetInfo, list_datasets

__all__ = ["datasets"]


def datasets(names: Sequence[str], *, long: bool, say: Say) -> None:
    """Run ``salutary datasets`` (see :func:`salutary.cli._datasets.datasets`)."""
    infos = list_datasets()
    if names:
        known = {info.name: info for info in infos}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise fail(f"unknown dataset {unknown[0]!r}; choose from {', '.join(sorted(known))}")
        infos = [known[n] for n in dict.fromkeys(names)]
    if say.json:
        say.document({"command": "datasets", "datasets": [_entry(i) for i in infos]})
    elif names or long:
        _describe(say, infos)
    else:
        _compact(say, infos)


def _entry(info: DatasetInfo) -> dict[str, Any]:
    """A dataset for ``--json``."""
    installed = info.available()
    return {
        "name": info.name,
        "kind": info.kind,
        "rows": info.n_samples,
        "features": info.n_features,
        "classes": info.n_classes,
        "installed": installed,
        "default": info.name == DEFAULT_DATASET,
        "description": info.description,
        "source": info.source,
        "install": None if installed else (info.install_hint or None),
    }


def _compact(say: Say, infos: Sequence[DatasetInfo]) -> None:
    """One line per dataset (fits 80 columns)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for col in ("rows", "features", "classes"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("installed", no_wrap=True)
    for info in infos:
        default = " *" if info.name == DEFAULT_DATASET else ""
        table.add_row(
            f"{info.name}{default}",
            info.kind,
            f"{info.n_samples:,}",
            str(info.n_features),
            str(info.n_classes),
            "yes" if info.available() else "no",
        )
    console = say.result()
    console.print(table)
    console.print(
        "* the default of `salutary run`. `salutary datasets NAME` describes a dataset "
        "(source, how to install it); --long describes them all.",
        highlight=False,
        markup=False,
    )


def _describe(say: Say, infos: Sequence[DatasetInfo]) -> None:
    """Each dataset with its description and source (and how to install it)."""
    console = say.result()
    for i, info in enumerate(infos):
        installed = info.available()
        default = " (default)" if info.name == DEFAULT_DATASET else ""
        if i:
            console.print()
        console.print(f"[bold]{escape(info.name)}[/bold]{default}", highlight=False)
        console.print(
            f"{info.kind}, {info.n_samples:,} rows, {info.n_features} features, "
            f"{info.n_classes} classes; installed: {'yes' if installed else 'no'}",
            highlight=False,
            markup=False,
        )
        console.print(info.description, highlight=False, markup=False)
        console.print(f"[dim]source: {escape(info.source)}[/dim]", highlight=False)
        if not installed and info.install_hint:
            console.print(f"install: {info.install_hint}", highlight=False, markup=False)
