"""``salutary datasets``: list the registered datasets."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

from salutary.cli._common import stdout
from salutary.datasets import DEFAULT_DATASET, list_datasets

__all__ = ["COMMAND", "datasets"]


COMMAND: dict[str, Any] = dict(
    epilog=(
        "Examples:\n\n"
        "    salutary datasets\n"
        "    salutary run --dataset digits\n\n"
        "A dataset that is not available names the command that installs it."
    ),
)


def datasets() -> None:
    """List the datasets `salutary run --dataset` accepts (nothing is downloaded)."""
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
    stdout().print(table)
