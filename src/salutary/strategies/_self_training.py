"""Self-training: the model's own confident predictions, or a teacher's."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from salutary._sparse import vstack
from salutary._validation import StrOptions
from salutary.pool import RowScorer
from salutary.strategies._base import Selection, Strategy, rows_in, warm_clone
from salutary.strategies._uncertainty import margin_scores

__all__ = ["Confidence", "SelfTraining", "TeacherScorer", "ValidationTeacher"]


class Confidence(RowScorer):
    """The top-class probability of ``model`` and that class (an index into its classes)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def score_chunk(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proba = self.model.predict_proba(X)
        return proba.max(axis=1), proba.argmax(axis=1)


class SelfTraining(Strategy):
    """Self-training: the most confident pool samples, with the model's predicted labels.

    No oracle. The classic oracle-free baseline: it adds what the model already believes,
    which reinforces its mistakes as readily as its successes.
    """

    requires_oracle = False
    name = "self-training"

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        best = pool.top_k(Confidence(model), budget, rng)
        assert best.labels is not None  # Confidence labels every row
        return Selection(
            indices=best.indices, scores=best.scores, labels=model.classes_[best.labels]
        )


class TeacherScorer(RowScorer):
    """The teacher's predicted class, scored by the teacher's confidence
    (``pick="confident"``) or by the model's margin uncertainty (``"margin"``)."""

    def __init__(self, model: Any, teacher: Any, pick: str) -> None:
        self.model = model
        self.teacher = teacher
        self.pick = pick

    def score_chunk(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proba = self.teacher.predict_proba(X)
        if self.pick == "confident":
            score = proba.max(axis=1)
        else:  # the model's own uncertainty, as margin sampling measures it
            score = margin_scores(self.model.predict_proba(X))
        return score, proba.argmax(axis=1)


class ValidationTeacher(Strategy):
    """Self-training with a teacher that also learns from the validation labels.

    No oracle. The control for salutary labeling: it is given the same labeled
    validation set, but uses no influence function. A copy of the model, the teacher, is
    fit on the training rows plus the validation rows not already among them (warm
    started from the model); the pool samples the teacher is most confident about
    (``pick="confident"``), or those the model itself is least sure of (``"margin"``,
    smallest gap between its two most probable classes: margin sampling with the
    teacher as the oracle), are added with the teacher's predicted labels. The model
    itself never trains on the validation rows. It asks whether salutary labeling gains
    anything over simply passing the validation labels on to the pool. Under the
    ``fair`` protocol, where the validation rows are already training rows, it labels
    with the model's own predictions (with ``"confident"``, it is :class:`SelfTraining`).

    Parameters
    ----------
    pick : {"confident", "margin"}, default="confident"
    """

    requires_oracle = False
    uses_validation = True
    name = "val-teacher"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "pick": [StrOptions({"confident", "margin"})],
    }

    def __init__(self, pick: str = "confident") -> None:
        self.pick = pick

    def _select(
        self, model, X_train, y_train, pool, budget, *, X_val, y_val, sample_weight, trusted, rng
    ):
        y_val = np.asarray(y_val)
        # Validation rows of a class the model does not know would add a class to it.
        extra = ~rows_in(X_val, X_train) & np.isin(y_val, model.classes_)
        teacher = model
        if extra.any():
            w = None
            if sample_weight is not None:
                w = np.concatenate([sample_weight, np.ones(int(extra.sum()))])
            teacher = warm_clone(model).fit(
                vstack([X_train, X_val[extra]]),
                np.concatenate([y_train, y_val[extra]]),
                sample_weight=w,
            )
        best = pool.top_k(TeacherScorer(model, teacher, self.pick), budget, rng)
        assert best.labels is not None  # TeacherScorer labels every row
        return Selection(
            indices=best.indices, scores=best.scores, labels=teacher.classes_[best.labels]
        )
