"""A sequence-classification language model with its tokenizer and a training loop."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from salutary._optional import import_optional
from salutary.exceptions import ModelNotInstalledError

if TYPE_CHECKING:
    import torch

__all__ = ["TextClassifier"]


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
        torch = import_optional("torch", error=ModelNotInstalledError, what="fine-tuning")
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
        torch = import_optional("torch", error=ModelNotInstalledError, what="fine-tuning")
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
        torch = import_optional("torch", error=ModelNotInstalledError, what="fine-tuning")
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
