"""Selection strategies behind one interface.

A strategy sees the fitted model, the current training set, the remaining pool (through
:class:`salutary.pool.Pool`) and the labeled validation set, and returns which pool rows
to add. Oracle strategies (``requires_oracle = True``) return indices only: the labeling
loop asks the oracle for their labels. Oracle-free strategies also return the labels
they assign. A strategy may also mix the two: it returns labels for all its picks and
says, in ``Selection.ask``, which of them go to the oracle instead. No strategy is ever
handed the pool's labels.

One family per module: ``_uncertainty`` (random, entropy, margin, least confidence),
``_diversity`` (BADGE, CoreSet), ``_salutary`` (the paper's method, its oracle
ablation, cross-fitting), ``_newton`` (batch-aware second-order selection, the hybrid),
``_self_training`` (self-training, the validation teacher), ``_influence_baselines``
(ISAL, predicted influence); ``_registry`` names them.
"""

from salutary.pool import RowScorer, top_k
from salutary.strategies._base import Selection, Strategy, rows_in, warm_clone
from salutary.strategies._diversity import BadgeSampling, CoreSetSampling
from salutary.strategies._influence_baselines import ISAL, PredictedInfluence
from salutary.strategies._newton import (
    NewtonGreedySalutary,
    SalutaryHybrid,
    label_margin,
)
from salutary.strategies._registry import (
    DEFAULT_STRATEGY,
    LOOP_OPTIONS,
    STRATEGIES,
    get_strategy,
    is_oracle_free,
    loop_options,
    oracle_free_strategies,
    parse_strategy,
    strategy_class,
    strategy_sort_key,
)
from salutary.strategies._salutary import (
    BestLabels,
    CrossFitSalutary,
    SalutaryLabeling,
    SalutaryOracle,
)
from salutary.strategies._self_training import SelfTraining, ValidationTeacher
from salutary.strategies._uncertainty import (
    EntropySampling,
    LeastConfidenceSampling,
    MarginSampling,
    RandomSampling,
    entropy_scores,
    least_confidence_scores,
    margin_scores,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "ISAL",
    "LOOP_OPTIONS",
    "STRATEGIES",
    "BadgeSampling",
    "BestLabels",
    "CoreSetSampling",
    "CrossFitSalutary",
    "EntropySampling",
    "LeastConfidenceSampling",
    "MarginSampling",
    "NewtonGreedySalutary",
    "PredictedInfluence",
    "RandomSampling",
    "RowScorer",
    "SalutaryHybrid",
    "SalutaryLabeling",
    "SalutaryOracle",
    "Selection",
    "SelfTraining",
    "Strategy",
    "ValidationTeacher",
    "entropy_scores",
    "get_strategy",
    "is_oracle_free",
    "label_margin",
    "least_confidence_scores",
    "loop_options",
    "margin_scores",
    "oracle_free_strategies",
    "parse_strategy",
    "rows_in",
    "strategy_class",
    "strategy_sort_key",
    "top_k",
    "warm_clone",
]
