"""``salutary finetune``'s work (imported when the command runs; its options are in
``_finetune``)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from salutary._io import atomic_write
from salutary.cli._common import Say, fail, plural, progress_bar, split_names
from salutary.cli._output import create_folder, output_folder, versions
from salutary.exceptions import DatasetNotInstalledError, InputError, ModelNotInstalledError
from salutary.finetune import (
    FinetuneConfig,
    accuracy_text,
    finetune_markdown,
    is_missing_label,
    needs_oracle,
    prepare_finetune,
    run_finetune,
    summarize_finetune,
)
from salutary.strategies import STRATEGIES
from salutary.tabular import read_table
from salutary.text import load_texts

__all__ = ["finetune"]

_FINETUNE_DEFAULT_DATASET = "spam_assassin"


def finetune(
    *,
    dataset: str | None,
    input_file: str | None,
    text_column: str,
    label_column: str,
    model: str,
    arms: Sequence[str] | None,
    seeds: int,
    budget: int,
    rounds: int,
    initial: int,
    validation: int,
    test: int,
    max_texts: int | None,
    epochs: int | None,
    max_length: int,
    batch_size: int,
    learning_rate: float | None,
    l2: float,
    threads: int | None,
    isolate: bool,
    output: str | None,
    quick: bool,
    default_arms: Sequence[str],
    say: Say,
) -> None:
    """Run ``salutary finetune`` on checked options (see
    :func:`salutary.cli._finetune.finetune`)."""
    config = FinetuneConfig(
        n_initial=initial, n_validation=validation, n_test=test, budget=budget, rounds=rounds,
        l2=l2, max_length=max_length, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, threads=threads,
    )  # fmt: skip
    try:
        corpus, name = _finetune_corpus(dataset, input_file, text_column, label_column)
        chosen = _finetune_arms(arms, corpus, default_arms)
        try:  # every check of the comparison, before a model is loaded or a folder made
            plan = prepare_finetune(corpus, model=model, arms=chosen, seeds=range(seeds),
                             config=config, max_texts=max_texts)  # fmt: skip
        except (ValueError, TypeError) as exc:
            raise InputError(str(exc)) from None
        folder = output_folder(output, Path("salutary-results") / "finetune" / f"{name}-{model}")
    except InputError as exc:
        raise fail(str(exc)) from None
    comparison = _run_finetune_progress(
        corpus, name, model, chosen, seeds, config, max_texts=max_texts,
        isolate=isolate, n_texts=len(plan.texts), quiet=say.quiet,
    )  # fmt: skip
    settings = {
        "command": "finetune",
        "quick": quick,
        "dataset": name,
        "input": input_file,
        "model": model,
        "arms": list(chosen),
        "seeds": list(range(seeds)),
        "max_texts": max_texts,
        "isolate": isolate,
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "default_arms": list(default_arms),
        **versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    console = say.result()
    summary = _print_finetune_table(console, comparison.runs, name, model, seeds)
    try:
        _write_finetune(create_folder(folder), comparison, settings)
    except OSError as exc:
        raise fail(f"cannot write into output folder {str(folder)!r}: {exc}") from None
    console.print(f"Results written to {folder}{'' if str(folder).endswith('/') else '/'}")
    say.document(
        {
            "command": "finetune",
            "dataset": name,
            "model": model,
            "output": str(folder),
            "files": {
                f: str(folder / f) for f in ("runs.csv", "picks.csv", "summary.md", "config.json")
            },
            "arms": [
                {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                 for k, v in row.items()}
                for row in summary.to_dict("records")
            ],
        }
    )  # fmt: skip


def _finetune_corpus(
    dataset: str | None, input_file: str | None, text_column: str, label_column: str
) -> tuple[Any, str]:
    """The corpus to use (a TextCorpus or (texts, labels)) and its name; InputError if bad
    (the command has checked that at most one of ``dataset`` and ``input_file`` is given)."""
    if input_file is None:
        name = dataset or _FINETUNE_DEFAULT_DATASET
        try:
            corpus = load_texts(name)
        except DatasetNotInstalledError as exc:
            raise InputError(str(exc)) from None
        except ValueError as exc:
            raise InputError(str(exc)) from None
        return corpus, corpus.name

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


def _finetune_arms(
    values: Sequence[str] | None, corpus: Any, default_arms: Sequence[str]
) -> tuple[str, ...]:
    unlabeled = isinstance(corpus, tuple) and any(is_missing_label(v) for v in corpus[1])
    # the default leaves out the oracle arms when the texts include unlabeled ones
    default = [a for a in default_arms if a == "initial" or not (unlabeled and needs_oracle(a))]
    names = split_names(values, default)
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
                "initial, self-training, salutary or salutary-newton"
            )
    return tuple(names)


def _run_finetune_progress(
    corpus: Any, name: str, model: str, arms: Sequence[str], seeds: int, config: Any, *,
    max_texts: int | None, isolate: bool, n_texts: int, quiet: bool = False,
) -> Any:  # fmt: skip
    """:func:`salutary.finetune.run_finetune` with progress; one-line input errors.

    On a terminal: progress bars on stderr. Otherwise (piped, logged): a line on stderr
    per stage and per run, so a long first run (the embedding) is never silent.
    """
    n_runs = len(arms) * seeds
    err = Console(stderr=True, highlight=False, soft_wrap=True, quiet=quiet)  # a line is a line
    lines = quiet or not err.is_terminal  # quiet: lines, printed to a quiet console
    progress = progress_bar()
    state: dict[str, Any] = {"started": False, "done": 0, "t0": time.perf_counter()}
    if lines:
        err.print(
            f"embedding {n_texts:,} texts with {model} (read from the cache if embedded before)"
        )

    def on_start(arm: str, seed: int) -> None:
        if not state["started"]:
            state["started"] = True
            if lines:
                err.print(f"embeddings ready in {time.perf_counter() - state['t0']:.0f} s")
            else:  # started lazily: the embedding (before the first run) shows its own bar
                progress.start()
                state["runs"] = progress.add_task(f"{name} {model}: {n_runs} runs", total=n_runs)
                state["steps"] = progress.add_task("", total=None)
        state["run"] = f"[{state['done'] + 1}/{n_runs}] {arm}, seed {seed}"
        if lines:
            err.print(f"{state['run']}: selecting, fine-tuning, testing")
        else:
            progress.update(state["runs"], description=f"{name} {model}: {arm}, seed {seed}")
            progress.reset(state["steps"], total=None, description="  starting")

    def on_step(stage: str, done: int, total: int) -> None:
        if not lines:
            what = "fine-tuning steps" if stage == "finetune" else "test batches"
            progress.update(state["steps"], completed=done, total=total, description=f"  {what}")

    def on_result(result: Any) -> None:
        state["done"] += 1
        if lines:
            err.print(
                f"{state['run']}: test accuracy {result.accuracy:.3f} (selection "
                f"{result.selection_seconds:.1f} s, fine-tuning {result.finetune_seconds:.0f} s, "
                f"test {result.eval_seconds:.0f} s)"
            )
        else:
            progress.advance(state["runs"])

    try:
        return run_finetune(
            corpus, model=model, arms=arms, seeds=range(seeds), config=config,
            max_texts=max_texts, isolate=isolate, embed_progress=not lines, progress=on_step,
            on_start=on_start, on_result=on_result,
        )  # fmt: skip
    except (ModelNotInstalledError, ImportError) as exc:
        raise fail(str(exc)) from None
    except (ValueError, TypeError) as exc:
        if state["started"]:
            raise  # a failure inside a run is a bug, not bad input: keep the traceback
        raise fail(str(exc)) from None
    finally:
        if state["started"] and not lines:
            progress.stop()


def _print_finetune_table(console: Console, runs: Any, name: str, model: str, seeds: int) -> Any:
    """The summary table, at most 80 columns wide (the width of piped output)."""
    summary = summarize_finetune(runs)
    spread = seeds > 1  # one seed has no spread: no "± 0.000"
    table = Table(
        title=f"{name}, {model}: test accuracy after fine-tuning ({plural(seeds, 'seed')})",
        caption=("±: std over seeds. " if spread else "")
        + "agree: share of the added texts' labels equal to the hidden truth. Seconds: "
        "means per run (selection, fine-tuning); MiB: peak memory of a run's process. More "
        "in runs.csv and summary.md.",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
    )
    for col in ("arm", "added", "accuracy", "agree", "select s", "tune s", "MiB"):
        table.add_column(col, justify="left" if col == "arm" else "right", no_wrap=True)

    def fmt(v: float, spec: str) -> str:
        return "-" if not math.isfinite(v) else format(v, spec)

    for row in summary.to_dict("records"):
        accuracy = accuracy_text(row["accuracy_mean"], row["accuracy_std"], row["seeds"])
        cells = [
            str(row["arm"]), str(row["n_added"]), accuracy, fmt(row["label_agreement"], ".0%"),
            fmt(row["selection_seconds"], ".1f"), fmt(row["finetune_seconds"], ".0f"),
            fmt(row["peak_rss_mb"], ".0f"),
        ]  # fmt: skip
        table.add_row(*cells)
    console.print(table)
    return summary


def _write_finetune(folder: Path, comparison: Any, settings: dict) -> None:
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
