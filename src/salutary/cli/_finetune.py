"""``salutary finetune``: fine-tune a language model on salutary-labeled texts."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from salutary._io import atomic_write
from salutary.cli._common import (
    L2,
    MultiValueCommand,
    Rounds,
    create_folder,
    fail,
    output_folder,
    plural,
    positive,
    progress_bar,
    split_names,
    stdout,
    versions,
)
from salutary.exceptions import DatasetNotInstalledError, InputError, ModelNotInstalledError
from salutary.finetune import (
    ARMS,
    FinetuneConfig,
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

__all__ = ["COMMAND", "QUICK", "LanguageModel", "finetune"]


class LanguageModel(str, Enum):
    """Language models ``salutary finetune`` fine-tunes."""

    minilm = "minilm"
    smollm2 = "smollm2"


_FINETUNE_DEFAULT_DATASET = "spam_assassin"

#: ``--quick``: a first try that finishes in minutes on 2 cores (a small stratified
#: subsample, the package's default strategy against the initial labels and margin, one
#: epoch). Options given explicitly win over these.
QUICK: dict[str, Any] = {
    "max_texts": 1000,
    "validation": 200,
    "test": 300,
    "arms": ["initial", "margin", "salutary-newton"],
    "epochs": 1,
}


COMMAND: dict[str, Any] = dict(
    cls=MultiValueCommand,
    epilog=(
        "Examples (--quick is a first try: on 2 cores about 2 minutes with MiniLM, 7 with "
        "SmolLM2; the bare command embeds all 5,909 e-mails and runs six arms):\n\n"
        "    salutary finetune --quick\n"
        "    salutary finetune --quick --model smollm2\n"
        "    salutary finetune\n"
        "    salutary finetune --dataset twitter_sentiment --seeds 3 --output ft/\n"
        "    salutary finetune --input texts.csv --text-column body --label-column topic\n\n"
        "Arms: `initial` (initial labels only), `random` and `margin` (their picks with the "
        "true labels), `self-training` (pseudo-labels), `salutary` (the paper's salutary "
        "labels), `salutary-newton` (the package's default strategy); every arm but "
        "`initial` adds BUDGET x ROUNDS texts. In an --input file, an empty label or "
        "-1 marks an unlabeled text; those texts join the pool, and then only the arms "
        "without an oracle can run (`initial`, `self-training`, `salutary`, "
        "`salutary-newton`). Bad input ends with exit status 2 and one "
        "`error: ...` line on stderr."
    ),
)


def finetune(
    ctx: typer.Context,
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
                     "Default: initial, random, margin, self-training, salutary, "
                     "salutary-newton (without the oracle arms when the pool has unlabeled "
                     "texts)."),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", "-n", min=1, help="Seeds 0..N-1.")] = 1,
    budget: Annotated[int, typer.Option("--budget", "-b", min=1, help="Texts per round.")] = 20,
    rounds: Rounds = 5,
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
        typer.Option("--learning-rate", callback=lambda v: v if v is None else positive(v),
                     show_default=False,
                     help="Default: 3e-4 (minilm), 3e-3 (smollm2, LoRA)."),
    ] = None,
    l2: L2 = 50.0,
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
    quick: Annotated[
        bool,
        typer.Option("--quick",
                     help="A first try in minutes: --max-texts 1000 --validation 200 --test "
                     "300 --arms initial,margin,salutary-newton --epochs 1 (options given "
                     "explicitly win)."),
    ] = False,
) -> None:  # fmt: skip
    """Fine-tune a language model on salutary-labeled texts and compare with baselines.

    Per seed the corpus is split (stratified) into initial labeled texts, a pool,
    validation and test texts. Salutary labeling (and each other arm's strategy) runs on
    the frozen model's embeddings for ROUNDS rounds of BUDGET texts; the model is then
    fine-tuned on the initial texts plus the added ones and scored on the test texts.
    Writes runs.csv (one row per arm and seed), picks.csv (every added text with its
    label), summary.md and config.json.
    """
    default_arms: Sequence[str] = ARMS
    if quick:  # the preset fills what the command line leaves at its default
        # by name: typer vendors its own copy of click's ParameterSource
        given = {k for k in QUICK if getattr(ctx.get_parameter_source(k), "name", "") != "DEFAULT"}
        preset = {k: v for k, v in QUICK.items() if k not in given}
        max_texts = preset.get("max_texts", max_texts)
        validation = preset.get("validation", validation)
        test = preset.get("test", test)
        default_arms = preset.get("arms", ARMS)
        epochs = preset.get("epochs", epochs)
    config = FinetuneConfig(
        n_initial=initial, n_validation=validation, n_test=test, budget=budget, rounds=rounds,
        l2=l2, max_length=max_length, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, threads=threads,
    )  # fmt: skip
    try:
        corpus, name = _finetune_corpus(dataset, input_file, text_column, label_column)
        chosen = _finetune_arms(arms, corpus, default_arms)
        try:  # every check of the comparison, before a model is loaded or a folder made
            plan = prepare_finetune(corpus, model=model.value, arms=chosen, seeds=range(seeds),
                             config=config, max_texts=max_texts)  # fmt: skip
        except (ValueError, TypeError) as exc:
            raise InputError(str(exc)) from None
        folder = output_folder(
            output, Path("salutary-results") / "finetune" / f"{name}-{model.value}"
        )
    except InputError as exc:
        raise fail(str(exc)) from None
    comparison = _run_finetune_progress(
        corpus, name, model.value, chosen, seeds, config, max_texts=max_texts,
        isolate=isolate, n_texts=len(plan.texts),
    )  # fmt: skip
    settings = {
        "command": "finetune",
        "quick": quick,
        "dataset": name,
        "input": input_file,
        "model": model.value,
        "arms": list(chosen),
        "seeds": list(range(seeds)),
        "max_texts": max_texts,
        "isolate": isolate,
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "default_arms": list(default_arms),
        **versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _print_finetune_table(comparison.runs, name, model.value, seeds)
    try:
        _write_finetune(create_folder(folder), comparison, settings)
    except OSError as exc:
        raise fail(f"cannot write into output folder {str(folder)!r}: {exc}") from None
    stdout().print(f"Results written to {folder}{'' if str(folder).endswith('/') else '/'}")


def _finetune_corpus(
    dataset: str | None, input_file: str | None, text_column: str, label_column: str
) -> tuple[Any, str]:
    """The corpus to use (a TextCorpus or (texts, labels)) and its name; InputError if bad."""
    if input_file is not None and dataset is not None:
        raise InputError("give either --dataset or --input, not both")
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
    max_texts: int | None, isolate: bool, n_texts: int,
) -> Any:  # fmt: skip
    """:func:`salutary.finetune.run_finetune` with progress; one-line input errors.

    On a terminal: progress bars on stderr. Otherwise (piped, logged): a line on stderr
    per stage and per run, so a long first run (the embedding) is never silent.
    """
    n_runs = len(arms) * seeds
    err = Console(stderr=True, highlight=False, soft_wrap=True)  # a line is a line
    lines = not err.is_terminal
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


def _print_finetune_table(runs: Any, name: str, model: str, seeds: int) -> None:
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
        accuracy = f"{row['accuracy_mean']:.3f}"
        if spread:
            accuracy += f" ± {row['accuracy_std']:.3f}"
        cells = [
            str(row["arm"]), str(row["n_added"]), accuracy, fmt(row["label_agreement"], ".0%"),
            fmt(row["selection_seconds"], ".1f"), fmt(row["finetune_seconds"], ".0f"),
            fmt(row["peak_rss_mb"], ".0f"),
        ]  # fmt: skip
        table.add_row(*cells)
    stdout().print(table)


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
