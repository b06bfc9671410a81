"""``salutary finetune``: fine-tune a language model on salutary-labeled texts.

The options; the work is in ``_finetune_work``, imported when the command runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Annotated, Any

import typer

from salutary._lazy import import_deferred
from salutary.cli._common import (
    L2,
    Json,
    MultiValueCommand,
    Quiet,
    Rounds,
    Say,
    check_input_file,
    fail,
    positive,
)

__all__ = ["ARMS", "COMMAND", "QUICK", "LanguageModel", "finetune"]

#: The arms compared by default (``salutary.finetune.ARMS``, copied so that ``--help``
#: need not import it; a test checks that they match).
ARMS = ("initial", "random", "margin", "self-training", "salutary", "salutary-newton")


class LanguageModel(str, Enum):
    """Language models ``salutary finetune`` fine-tunes."""

    minilm = "minilm"
    smollm2 = "smollm2"


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
        "Examples (--quick is a first try: on 2 cores about 2 minutes with MiniLM, 8 with "
        "SmolLM2; the bare command embeds all 5,909 e-mails and runs six arms):\n\n"
        "    salutary finetune --quick\n"
        "    salutary finetune --quick --model smollm2\n"
        "    salutary finetune\n"
        "    salutary finetune --dataset twitter_sentiment --seeds 3 --output ft/\n"
        "    salutary finetune --input texts.csv --text-column body --label-column topic\n"
        "    salutary finetune --quick --quiet --json > quick.json\n\n"
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
    quiet: Quiet = False,
    json_output: Json = False,
) -> None:  # fmt: skip
    """Fine-tune a language model on salutary-labeled texts and compare with baselines.

    Per seed the corpus is split (stratified) into initial labeled texts, a pool,
    validation and test texts. Salutary labeling (and each other arm's strategy) runs on
    the frozen model's embeddings for ROUNDS rounds of BUDGET texts; the model is then
    fine-tuned on the initial texts plus the added ones and scored on the test texts.
    Writes runs.csv (one row per arm and seed), picks.csv (every added text with its
    label), summary.md and config.json.
    """
    say = Say(quiet=quiet, json=json_output)
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
    if input_file is not None and dataset is not None:
        raise fail("give either --dataset or --input, not both")
    if input_file is not None:
        check_input_file("input", input_file)
    import_deferred("salutary.cli._finetune_work").finetune(
        dataset=dataset, input_file=input_file, text_column=text_column,
        label_column=label_column, model=model.value, arms=arms, seeds=seeds, budget=budget,
        rounds=rounds, initial=initial, validation=validation, test=test,
        max_texts=max_texts, epochs=epochs, max_length=max_length, batch_size=batch_size,
        learning_rate=learning_rate, l2=l2, threads=threads, isolate=isolate, output=output,
        quick=quick, default_arms=default_arms, say=say,
    )  # fmt: skip
