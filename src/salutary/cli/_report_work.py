"""``salutary report``'s work (imported when the command runs; its options are in
``_report``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from salutary._io import atomic_write
from salutary.benchmark import ResultStore, complete_groups, per_run, write_report
from salutary.cli._common import Say, fail
from salutary.exceptions import InputError

__all__ = ["MARKER", "report"]


#: Written next to a report: the store it was made from (relative to the report's folder).
MARKER = ".salutary-report.json"


def report(store: str, output: str | None, *, min_seeds: int, force: bool, say: Say) -> None:
    """Run ``salutary report`` on checked options (see :func:`salutary.cli._report.report`)."""
    out = Path(output) if output else Path(store).with_name(Path(store).name + "-report")
    try:
        _check_replace(out, Path(store), force)
    except InputError as exc:
        raise fail(str(exc)) from None
    results = ResultStore(store).load()
    if results.empty:
        raise fail(f"no results in store {store!r}; run `salutary bench` first")
    results, short = complete_groups(results, min_seeds)
    for g in short.itertuples(index=False):
        say.note(
            f"left out: {g.dataset} / {g.protocol} / {g.strategy} ({g.seeds} of {min_seeds} seeds)"
        )
    if results.empty:
        raise fail(f"no (protocol, dataset, strategy) in store {store!r} has {min_seeds} seeds")
    out.mkdir(parents=True, exist_ok=True)
    origin = json.dumps({"store": os.path.relpath(Path(store).resolve(), out.resolve())})
    atomic_write(out / MARKER, lambda tmp: tmp.write_text(origin + "\n", encoding="utf-8"))
    path = write_report(results, out)
    runs = per_run(results)
    atomic_write(out / "runs.csv", lambda tmp: runs.to_csv(tmp, index=False, float_format="%.6g"))
    atomic_write(out / "results.parquet", lambda tmp: results.to_parquet(tmp, index=False))
    say.result().print(f"Report written to {path} ({len(runs)} runs)")
    say.document(
        {
            "command": "report",
            "store": str(store),
            "output": str(out),
            "report": str(path),
            "runs": len(runs),
            "files": {name: str(out / name) for name in ("runs.csv", "results.parquet")},
            "left_out": [
                {"dataset": g["dataset"], "protocol": g["protocol"], "strategy": g["strategy"],
                 "seeds": int(g["seeds"])}
                for g in short.to_dict("records")
            ],
        }
    )  # fmt: skip


def _check_replace(out: Path, store: Path, force: bool) -> None:
    """InputError if ``out`` holds a report of another store (or of an unknown one)."""
    if force or not (out / "REPORT.md").exists():
        return
    made_from = None
    try:
        made_from = out / json.loads((out / MARKER).read_text(encoding="utf-8"))["store"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if made_from is not None and made_from.resolve() == store.resolve():
        return
    origin = f"store {str(made_from)!r}" if made_from is not None else "an unknown store"
    raise InputError(
        f"output folder {str(out)!r} holds the report of {origin}, not of {str(store)!r}; "
        "choose another --output, or pass --force to replace it"
    )
