"""SalutaryLabeler: salutary labeling as a scikit-learn semi-supervised classifier."""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_is_fitted,
    check_random_state,
    column_or_1d,
    validate_data,
)

from salutary._sparse import vstack
from salutary._validation import Interval, validate_params
from salutary.embeddings import Embedder
from salutary.loop import (
    CHECK_FRACTION,
    LabelRound,
    check_seed,
    check_xy,
    default_model,
    held_out_check,
    label_pool,
    oracle_free_strategy,
    round_rng,
    stratified_split,
    termination,
    validation_loss,
)
from salutary.pool import ArrayPool
from salutary.review import ReviewRequest, ReviewStrategy, review_oracle
from salutary.strategies import DEFAULT_STRATEGY, Strategy, loop_options

__all__ = ["EXPECTED_FAILED_CHECKS", "SalutaryLabeler"]

#: The scikit-learn estimator checks :class:`SalutaryLabeler` does not pass, and why
#: (scikit-learn takes them as ``expected_failed_checks``; tags no longer carry them).
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_classifiers_classes": (
        "-1 marks unlabeled rows and string labels need dtype object, as for "
        "LabelPropagation, LabelSpreading and SelfTrainingClassifier, which the check "
        "exempts by name"
    ),
}


def _estimator_has(attr: str) -> Callable[[Any], bool]:
    def check(self: SalutaryLabeler) -> bool:
        est = getattr(self, "estimator_", None) or self.estimator or default_model()
        return hasattr(est, attr)

    return check


class SalutaryLabeler(ClassifierMixin, BaseEstimator):
    """Semi-supervised classifier that labels its own training data by salutary labeling.

    Follows scikit-learn's semi-supervised convention: ``y`` holds ``-1`` for unlabeled
    samples (as ``SelfTrainingClassifier``; string labels need ``dtype=object``). A
    share of the labeled rows (``validation_fraction``, stratified) is held out as the
    validation set; or pass one explicitly (``X_val``, ``y_val``). Each of ``rounds``
    rounds fits the estimator on the other labeled rows plus those labeled so far,
    scores every unlabeled sample and class by its influence on the validation loss,
    and adds the ``budget`` most helpful samples with their salutary labels. No true
    label beyond the labeled rows is used.

    By default a share of the validation set (``check_fraction``) never steers the
    selection: it checks every round. The rounds stop at the first one whose refit does
    not lower the loss on it, and that round's labels are dropped
    (``termination_condition_ == "held_out_loss"``).

    In a :class:`~sklearn.pipeline.Pipeline`, ``cross_val_score`` or ``GridSearchCV``
    it needs nothing beyond ``fit(X, y)``. An explicit validation set travels through a
    Pipeline by metadata routing, transformed by the steps before it::

        sklearn.set_config(enable_metadata_routing=True)
        pipe = Pipeline(
            [("scale", StandardScaler()),
             ("label", SalutaryLabeler().set_fit_request(X_val=True, y_val=True))],
            transform_input=["X_val"],
        ).fit(X, y, X_val=X_val, y_val=y_val)

    (Without ``transform_input``, the steps before it do not transform ``X_val``.) In
    ``GridSearchCV`` and ``cross_val_score`` rely on the held-out validation set:
    scikit-learn cuts every fit parameter with as many rows as ``X`` into folds, a
    given ``X_val`` of that length included.

    With an ``encoder``, ``X``, ``X_val`` and the inputs of ``predict`` are raw data
    (texts, images, ...) that the frozen encoder embeds first: the estimator, the
    influence scores and the salutary labels all live on the embeddings (the paper's
    convex surrogate of a deep model). ``X`` and ``X_val`` are embedded once per fit,
    through the embedding cache, so refitting on the same data does not re-embed.

    Parameters
    ----------
    estimator : estimator, default=None
        L2 logistic model refit every round; ``LogisticModel(l2=50)`` by default.
    encoder : encoder, Embedder or None, default=None
        Frozen encoder applied to every input: anything
        :func:`salutary.embeddings.as_encoder` accepts (a ``torch.nn.Module``, a
        sentence-transformers model directory, a fitted scikit-learn transformer, an
        encoder object), or a :class:`salutary.embeddings.Embedder` to choose the cache,
        progress bar and batch size (by default: the default cache, no progress bar).
        None: ``X`` is used as it is.
    budget : int, default=10
        Samples labeled per round.
    rounds : int, default=10
        Rounds at most; fewer when the unlabeled rows run out (the last round takes
        what is left) or a round adds nothing (see ``termination_condition_``).
    strategy : str or Strategy, default="salutary-newton"
        An oracle-free strategy. The default (batch-aware selection scored by the
        validation loss after one Newton step; budgets above 5% of the training set in
        sub-batches with a refit in between) beat the paper's first-order top-b,
        ``"salutary"``, in our benchmark (README, "Benchmark").
    check_fraction : float or None, default=0.3
        Share of the validation set (held out or given) kept from the selection to check
        each round (stratified, drawn with ``random_state``): a round whose refit does
        not lower the summed cross-entropy on it is dropped, and the rounds stop. None:
        every validation row steers the selection and all rounds run (the paper's
        method). In the benchmark the check kept the default strategy from ever being
        significantly worse than the model with nothing added (docs, "The held-out
        check"); it costs part of the gains where the method wins.
    validation_fraction : float, default=0.5
        Share of the labeled rows held out as the validation set (stratified, drawn with
        ``random_state``) when ``fit`` gets no ``X_val``. Chosen on the benchmark's 7
        tabular datasets (seeds 10-19, held-out rows in the final model): 0.5 tied or
        beat fitting on all labeled rows with nothing added on all but one dataset,
        0.2 lost to it on 2 to 3 of 7 (``benchmarks/holdout.py``; BENCHMARKS.md).
    train_on_validation : bool, default=True
        Whether the final estimator also trains on the validation rows (held out or
        given), after the rounds: the validation labels then count twice, to choose
        the labels and to fit the model. In the same measurement it was never worse
        than leaving them out, and better on 2 to 3 of 7 datasets.
    random_state : int, RandomState instance or None, default=None
        Seeds the held-out split and tie-breaking.
    callback : callable or None, default=None
        Called as ``callback(round, labeler)`` after the initial fit (round 0) and after
        every round, e.g. to drive a progress bar.
    oracle : callable or None, default=None
        A person in the loop: each round, the ``review`` picks whose salutary label has
        the smallest margin (the least certain) are labeled by
        ``oracle(indices, X_rows, suggestions)`` instead of by the strategy:
        ``indices`` are their rows in ``X``, ``X_rows`` those rows as the estimator sees
        them (embedded with an encoder), ``suggestions`` their salutary labels; it
        returns their true labels (labels of ``y``). The strategy must give margins
        (the influence-based ones do). ``salutary label --review`` does the same with
        files.
    review : int, default=3
        With an ``oracle``: picks per round it is asked about (all of them when a
        round picks fewer). Ignored without one.

    Attributes
    ----------
    estimator_ : estimator
        The final estimator: fitted on the labeled training rows, every row labeled by
        the strategy, and, with ``train_on_validation``, the validation rows (on the
        embeddings when an encoder is used; on arrays, without feature names, as
        ``SelfTrainingClassifier``'s).
    embedder_ : Embedder or None
        The fitted embedding step; None without an encoder.
    classes_ : ndarray
    n_features_in_ : int
        Number of features of ``X`` (without an encoder).
    feature_names_in_ : ndarray of str
        Column names of ``X`` when it is a DataFrame with string column names.
    transduction_ : ndarray of shape (n_samples,)
        Labels of the rows of ``X`` after the rounds: the given ones, the salutary ones,
        ``-1`` for rows still unlabeled.
    labeled_iter_ : ndarray of shape (n_samples,)
        Round in which each sample was labeled: 0 for the given labels, -1 never.
    reviewed_ : ndarray of bool, shape (n_samples,)
        The rows the ``oracle`` labeled (their ``salutary_margin_`` is NaN: the margin
        was of the suggestion, which ``transduction_`` no longer holds).
    validation_mask_ : ndarray of bool, shape (n_samples,)
        The rows held out as the validation set (none with an explicit ``X_val``).
    salutary_score_ : ndarray of shape (n_samples,)
        Predicted validation-loss decrease of the samples labeled by the strategy
        (NaN elsewhere): what chose the row, not how sure its label is.
    salutary_margin_ : ndarray of shape (n_samples,)
        How much better each strategy-labeled sample's label is predicted to be than its
        runner-up: the first-order influence of the label minus the largest influence of
        another label, with the model of the round that chose it (for
        ``"salutary-newton"`` too, whose greedy steps choose by the validation loss after
        a Newton step; with sub-batches, the round's first model). Near 0: two labels
        were about equally good, the label is a coin toss; negative: the first-order
        influence preferred another label. Margins shrink as the rounds go: compare
        them within a round (``labeled_iter_``). NaN elsewhere, and for strategies
        without influence margins (``"salutary-crossfit"``, ``"self-training"``,
        ``"val-teacher"``).
    salutary_agrees_ : ndarray of bool, shape (n_samples,)
        Whether each strategy-labeled sample's label equals the prediction of the model
        of the round that chose it (before the round's refit). ``False`` elsewhere: read
        it where ``labeled_iter_ > 0``. In the benchmark (7 tabular datasets, 10 seeds,
        the default strategy) labels the model disagreed with were right 57% of the
        time, the others 85%; the smallest tenth of each round's margins 69%, the
        largest 85% (``benchmarks/margin_deciles.py``; docs, "Your own files").
    validation_loss_ : list of float
        Summed validation cross-entropy after each fit of the rounds kept (``n_iter_ + 1``
        values).
    held_out_loss_, held_out_accuracy_ : list of float
        With the check: summed cross-entropy and accuracy on the held-out check rows
        after the initial fit and after each round that ran, the dropped one included
        (``n_iter_ + 1`` or ``n_iter_ + 2`` values); empty without the check.
    n_iter_ : int
        Rounds kept.
    termination_condition_ : {"max_iter", "held_out_loss", "no_change", "all_labeled"}
        Why the rounds stopped: all ``rounds`` ran; the held-out check dropped the last
        round (its refit did not lower the held-out loss); a round added nothing (a
        strategy that abstains); no unlabeled row was left.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from salutary import SalutaryLabeler
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> y_some = np.where(np.random.default_rng(0).random(len(y)) < 0.3, y, -1)
    >>> model = make_pipeline(StandardScaler(), SalutaryLabeler(rounds=3, random_state=0))
    >>> model.fit(X, y_some).score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict[str, list[Any] | str] = {  # noqa: RUF012 (scikit-learn's form)
        "estimator": "no_validation",
        "encoder": "no_validation",
        "budget": [Interval(Integral, 1, None, closed="left")],
        "rounds": [Interval(Integral, 0, None, closed="left")],
        "strategy": [str, Strategy],
        "check_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "train_on_validation": ["boolean"],
        "random_state": ["random_state"],
        "callback": [callable, None],
        "oracle": [callable, None],
        "review": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        estimator: object | None = None,
        *,
        encoder: object | None = None,
        budget: int = 10,
        rounds: int = 10,
        strategy: str | Strategy = DEFAULT_STRATEGY,
        check_fraction: float | None = CHECK_FRACTION,
        validation_fraction: float = 0.5,
        train_on_validation: bool = True,
        random_state: int | np.random.RandomState | None = None,
        callback: Callable[[int, SalutaryLabeler], None] | None = None,
        oracle: Callable[[np.ndarray, Any, np.ndarray], Any] | None = None,
        review: int = 3,
    ) -> None:
        self.estimator = estimator
        self.encoder = encoder
        self.budget = budget
        self.rounds = rounds
        self.strategy = strategy
        self.check_fraction = check_fraction
        self.validation_fraction = validation_fraction
        self.train_on_validation = train_on_validation
        self.random_state = random_state
        self.callback = callback
        self.oracle = oracle
        self.review = review

    def fit(
        self,
        X: Any,
        y: Any,
        X_val: Any = None,
        y_val: Any = None,
        sample_weight: Any = None,
    ) -> SalutaryLabeler:
        """Label up to ``budget x rounds`` of the unlabeled rows and fit the final estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Features (a CSR matrix stays sparse through the model, the influence and
            every strategy but BADGE and CoreSet), or raw inputs (e.g. a list of texts)
            when ``encoder`` is set.
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled samples.
        X_val, y_val : array-like, optional
            An explicit labeled validation set (raw inputs when ``encoder`` is set);
            ``validation_fraction`` of the labeled rows otherwise.
        sample_weight : array-like of shape (n_samples,), optional
            Training weights of the rows of ``X``, in every fit a row takes part in
            (labeled by the strategy included). The validation loss is unweighted.

        Returns
        -------
        self : SalutaryLabeler
        """
        validate_params(self)
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither")
        strat = oracle_free_strategy(self.strategy)  # fails before the (slow) embedding
        if isinstance(self.strategy, str) and loop_options(self.strategy):
            raise ValueError(
                f"strategy {self.strategy!r}: check= is not a strategy parameter; use "
                "check_fraction"
            )
        y = self._check_y(y, _num_samples(X))
        X, X_val = self._features_for_fit(X, X_val, y, y_val)
        w = None if sample_weight is None else _check_sample_weight(sample_weight, X)
        labeled = y != -1
        check_classification_targets(y[labeled])
        if len(np.unique(y[labeled])) < 2:
            raise ValueError(
                "need labeled samples (y != -1) of at least two classes; got "
                f"{'one class' if labeled.any() else 'none'}"
            )
        rng = round_rng(self.random_state)  # the rounds' generator, as before hold-outs
        split_seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        self.validation_mask_ = np.zeros(len(y), dtype=bool)
        if X_val is None:
            self.validation_mask_[self._hold_out(y, labeled, int(split_seed))] = True
            X_val, y_val = X[self.validation_mask_], y[self.validation_mask_]
        else:
            X_val, y_val = check_xy("X_val", X_val, column_or_1d(y_val), X.shape[1])
        train = labeled & ~self.validation_mask_
        unseen = np.setdiff1d(y_val, y[train])
        if len(unseen):
            raise ValueError(f"y_val has labels never seen in y: {unseen[:5].tolist()}")
        pool_rows = np.flatnonzero(~labeled)
        X_steer, y_steer, X_check, y_check = X_val, y_val, None, None
        if self.check_fraction is not None:
            X_steer, y_steer, X_check, y_check = held_out_check(
                X_val, y_val, self.check_fraction, check_seed(self.random_state)
            )

        self.transduction_ = y.copy()
        self.labeled_iter_ = np.where(labeled, 0, -1)
        self.salutary_score_ = np.full(len(y), np.nan)
        self.salutary_margin_ = np.full(len(y), np.nan)
        self.salutary_agrees_ = np.zeros(len(y), dtype=bool)
        self.reviewed_ = np.zeros(len(y), dtype=bool)
        self.validation_loss_: list[float] = []
        self.held_out_loss_: list[float] = []
        self.held_out_accuracy_: list[float] = []

        def on_round(done: LabelRound) -> None:
            if X_check is not None:
                self.held_out_loss_.append(done.held_out_loss)
                self.held_out_accuracy_.append(done.held_out_accuracy)
            if not done.kept:  # dropped by the held-out check: nothing added
                if self.callback is not None:
                    self.callback(done.round, self)
                return
            rows = pool_rows[done.rows]
            self.transduction_[rows] = done.labels
            self.labeled_iter_[rows] = done.round
            self.salutary_score_[rows] = done.scores
            self.salutary_margin_[rows] = done.margins
            self.salutary_agrees_[rows] = done.agrees
            self.reviewed_[rows] = done.asked
            self.validation_loss_.append(validation_loss(done.model, X_val, y_val))
            if self.callback is not None:
                self.callback(done.round, self)

        pool = ArrayPool(X[pool_rows])
        oracle = None
        if self.oracle is not None:
            strat = ReviewStrategy(strat, self.review)
            oracle = review_oracle(strat, self._asker(X, pool_rows, np.unique(y[labeled])))
        done, model = label_pool(
            default_model() if self.estimator is None else self.estimator,
            X[train], y[train], pool, X_steer, y_steer, strategy=strat, budget=self.budget,
            rounds=self.rounds, random_state=rng,
            callback=on_round, sample_weight=None if w is None else w[train],
            pool_weight=None if w is None else w[pool_rows], oracle=oracle,
            X_check=X_check, y_check=y_check,
        )  # fmt: skip
        self.n_iter_ = sum(r.kept for r in done)
        self.termination_condition_ = termination(done, self.rounds, pool)
        if self.train_on_validation:
            model = self._fit_final(model, X, X_val, y_val, w)
        self.estimator_ = model
        self.classes_ = model.classes_
        return self

    def _asker(
        self, X: Any, pool_rows: np.ndarray, classes: np.ndarray
    ) -> Callable[[ReviewRequest], np.ndarray]:
        """What the review oracle calls: ``self.oracle`` with rows of ``X``, checked."""

        def ask(request: ReviewRequest) -> np.ndarray:
            rows = pool_rows[request.rows]
            labels = np.asarray(self.oracle(rows, X[rows], request.suggestions))  # type: ignore[misc]
            if labels.shape != (len(rows),):
                raise ValueError(
                    f"oracle returned labels of shape {labels.shape} for {len(rows)} rows"
                )
            unknown = ~np.isin(labels, classes)
            if unknown.any():
                i = int(np.flatnonzero(unknown)[0])
                raise ValueError(
                    f"oracle answered {labels[i].tolist()!r} for row {rows[i]}, which is not "
                    f"a label of y ({classes.tolist()})"
                )
            return labels

        return ask

    @staticmethod
    def _check_y(y: Any, n_samples: int) -> np.ndarray:
        """``y`` as a 1-D array with ``-1`` for unlabeled rows, as SelfTrainingClassifier
        reads it."""
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in ("U", "S"):
            raise ValueError(
                "y has dtype string. If you wish to predict on string targets, use dtype "
                "object, and use -1 as the label for unlabeled samples."
            )
        if len(y) != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {len(y)}")
        return y

    def _features_for_fit(self, X: Any, X_val: Any, y: np.ndarray, y_val: Any) -> tuple:
        """``X`` and ``X_val`` as arrays (embedded with an encoder); records the input
        features scikit-learn style."""
        self.embedder_ = None
        if self.encoder is None:
            X = validate_data(
                self, X, accept_sparse="csr", dtype=(np.float64, np.float32), reset=True
            )
            return X, X_val
        for attr in ("n_features_in_", "feature_names_in_"):  # from an earlier fit
            self.__dict__.pop(attr, None)
        if X_val is not None and np.shape(y_val) != (_num_samples(X_val),):
            raise ValueError(
                f"X_val has {_num_samples(X_val)} samples but its labels have shape "
                f"{np.shape(y_val)}"
            )
        embedder = self.encoder if isinstance(self.encoder, Embedder) else None
        self.embedder_ = clone(embedder or Embedder(self.encoder)).fit(X)
        # float64 like every dataset of the registry (the encoders give float32).
        X = self.embedder_.transform(X).astype(np.float64)
        if X_val is not None:
            X_val = self.embedder_.transform(X_val).astype(np.float64)
        return X, X_val

    def _hold_out(self, y: np.ndarray, labeled: np.ndarray, seed: int) -> np.ndarray:
        """Rows of ``X`` held out as the validation set: a stratified share of the labeled
        rows, with every class of the validation set kept in the training part."""
        rows = np.flatnonzero(labeled)
        y_lab = y[rows]
        train, val, _, _ = stratified_split(rows, y_lab, self.validation_fraction, seed)
        alone = ~np.isin(y[val], y[train])  # a class only in validation: train on it
        train, val = np.concatenate([train, val[alone]]), val[~alone]
        if len(val) == 0 or len(np.unique(y[train])) < 2:
            raise ValueError(
                f"{len(rows)} labeled rows are too few to hold out a validation set "
                f"(validation_fraction={self.validation_fraction}); label more rows, or "
                "pass X_val and y_val"
            )
        return np.sort(val)

    def _fit_final(
        self, model: Any, X: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, w: Any
    ) -> Any:
        """The final estimator, refit on every labeled row and the validation rows."""
        rows = np.flatnonzero((self.transduction_ != -1) & ~self.validation_mask_)
        X_fit = vstack([X[rows], X_val])
        y_fit = np.concatenate([self.transduction_[rows], y_val])
        if w is None:
            return model.fit(X_fit, y_fit)
        w_val = w[self.validation_mask_] if self.validation_mask_.any() else np.ones(len(y_val))
        return model.fit(X_fit, y_fit, sample_weight=np.concatenate([w[rows], w_val]))

    def _features(self, X: Any) -> Any:
        check_is_fitted(self)
        if self.embedder_ is None:
            return validate_data(
                self, X, accept_sparse="csr", dtype=(np.float64, np.float32), reset=False
            )
        return self.embedder_.transform(X).astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Predict with the final estimator (embedding ``X`` first if there is an encoder)."""
        X = self._features(X)  # NotFittedError before the attribute lookup
        return self.estimator_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from the final estimator (embedding ``X`` first if needed)."""
        X = self._features(X)  # NotFittedError before the attribute lookup
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of the class probabilities from the final estimator."""
        X = self._features(X)  # NotFittedError before the attribute lookup
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision function of the final estimator."""
        X = self._features(X)  # NotFittedError before the attribute lookup
        return self.estimator_.decision_function(X)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = self.encoder is not None  # texts for sentence encoders
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = self.encoder is None
        return tags
