"""The benchmark: protocols, a resumable results store, a parallel grid runner, the report.

``protocols`` (how a run is set up) -> ``store`` (one Parquet file per finished run) ->
``runner`` (run one key, or a grid of them in processes) and ``report`` (tables,
statistics, plots), which reads what the store holds.
"""

from salutary.benchmark.protocols import PROTOCOLS, Protocol, RunKey
from salutary.benchmark.report import (
    ALPHA,
    HYBRID,
    METHOD,
    VARIANTS,
    ablation_table,
    compare,
    complete_groups,
    markdown_table,
    outcomes,
    per_run,
    per_true_label,
    write_report,
)
from salutary.benchmark.runner import GridOutcome, grid, run_grid, run_one
from salutary.benchmark.store import ResultStore, with_n_true

__all__ = [
    "ALPHA",
    "HYBRID",
    "METHOD",
    "PROTOCOLS",
    "VARIANTS",
    "GridOutcome",
    "Protocol",
    "ResultStore",
    "RunKey",
    "ablation_table",
    "compare",
    "complete_groups",
    "grid",
    "markdown_table",
    "outcomes",
    "per_run",
    "per_true_label",
    "run_grid",
    "run_one",
    "with_n_true",
    "write_report",
]
