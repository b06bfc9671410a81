"""Running the arms: one (arm, seed) in this process or a fresh one, and the comparison."""

from __future__ import annotations

import math
import os
import pickle
import resource
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any, cast

import numpy as np
import pandas as pd

from salutary._optional import import_optional
from salutary.embeddings import EmbeddingCache
from salutary.exceptions import ModelNotInstalledError
from salutary.finetune._models import check_model, embed_texts, load_classifier
from salutary.finetune._split import (
    TextSplit,
    check_arm,
    needs_oracle,
    resolve_corpus,
    select_texts,
    split_texts,
    subsample,
)
from salutary.text import TextCorpus

__all__ = [
    "ARMS",
    "DEFAULT_EPOCHS",
    "DEFAULT_LEARNING_RATE",
    "ArmResult",
    "FinetuneComparison",
    "FinetuneConfig",
    "FinetunePlan",
    "prepare_finetune",
    "run_arm",
    "run_finetune",
    "worker_main",
]

#: The arms compared by default, all adding ``budget x rounds`` texts but ``initial``:
#: the package's default strategy (``salutary-newton``) and the paper's (``salutary``)
#: against the initial labels alone, two oracle baselines and self-training.
ARMS: tuple[str, ...] = (
    "initial",
    "random",
    "margin",
    "self-training",
    "salutary",
    "salutary-newton",
)

#: Learning rates used when :attr:`FinetuneConfig.learning_rate` is None (chosen on the
#: validation texts of spam_assassin, seed 0, initial labels only).
DEFAULT_LEARNING_RATE: dict[str, float] = {"minilm": 3e-4, "smollm2": 3e-3}

#: Epochs used when :attr:`FinetuneConfig.epochs` is None (chosen the same way).
DEFAULT_EPOCHS: dict[str, int] = {"minilm": 5, "smollm2": 3}


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
    check_model(model)
    config = FinetuneConfig() if config is None else config
    if config.threads is not None:
        torch = import_optional("torch", error=ModelNotInstalledError, what="fine-tuning")
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


def worker_main(fd: int) -> None:
    """Body of the fresh process of one isolated run (see ``_run_isolated``).

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
    read_fd, write_fd = os.pipe()
    code = f"from salutary.finetune._runs import worker_main; worker_main({write_fd})"
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
                stdin = cast(IO[bytes], proc.stdin)  # a pipe: stdin=subprocess.PIPE
                stdin.write(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
                stdin.close()
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
class FinetunePlan:
    """A checked comparison (:func:`prepare_finetune`): the texts, their codes and splits.

    Attributes
    ----------
    name : str
        Name of the corpus.
    texts : list of str
        The (subsampled) texts.
    y : ndarray of int
        Their class codes, ``-1`` for unlabeled texts.
    classes : tuple
        Class names; codes index into it.
    rows : ndarray of int
        Positions of the texts in the corpus as given.
    splits : dict of int to TextSplit
        The split of every seed.
    arms : list of str
    seeds : list of int
    """

    name: str
    texts: list[str]
    y: np.ndarray
    classes: tuple
    rows: np.ndarray  # positions of the (subsampled) texts in the corpus as given
    splits: dict[int, TextSplit]
    arms: list[str]
    seeds: list[int]


def prepare_finetune(
    corpus: Any, *, model: str, arms: Sequence[str], seeds: Sequence[int],
    config: FinetuneConfig, max_texts: int | None,
) -> FinetunePlan:  # fmt: skip
    """Check every argument of :func:`run_finetune` and split, before any model is loaded.

    Raises ValueError or TypeError with a one-line message for bad input.
    """
    check_model(model)
    arms, seeds = list(arms), [int(s) for s in seeds]
    if not arms or not seeds:
        raise ValueError("need at least one arm and one seed")
    for arm in arms:
        check_arm(arm)
    if max_texts is not None and max_texts < 1:
        raise ValueError(f"max_texts must be at least 1, got {max_texts}")
    if config.budget < 1 or config.rounds < 1:
        raise ValueError(f"budget and rounds must be at least 1: {config.budget}, {config.rounds}")
    name, texts, y, classes = resolve_corpus(corpus)
    rows = subsample(y, max_texts)
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
        oracle = [a for a in arms if needs_oracle(a)]
        if oracle and np.any(y[split.pool] < 0):
            raise ValueError(
                f"arm {oracle[0]!r} needs the true labels of the texts it picks, but the pool "
                "has unlabeled texts; use only initial and oracle-free arms (salutary, "
                "salutary-newton, self-training)"
            )
    return FinetunePlan(name, texts, y, classes, rows, splits, arms, seeds)


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
    prep = prepare_finetune(corpus, model=model, arms=arms, seeds=seeds, config=config,
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
            payload: dict[str, Any] = {
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


def _as_mapping(result: ArmResult) -> Mapping[str, Any]:
    return {k: v for k, v in asdict(result).items() if k not in ("added", "added_labels")}
