"""Influence of labeling a pool sample on the validation loss.

``_factors``: the closed-form first-order influence of softmax regression
(:class:`InfluenceFactors`, computed once per round, then scoring any number of pool
rows at the cost of predicting them). ``_newton``: the second-order look-ahead behind
``salutary-newton`` (the exact validation loss one Newton step after adding pairs).
"""

from salutary.influence._factors import (
    InfluenceFactors,
    influence_matrix,
    model_parameters,
)
from salutary.influence._newton import (
    NEWTON_MAX_PARAMS,
    REFACTOR_MAX_PARAMS,
    GrowingHessian,
    OneStepLosses,
    cross_entropy_sum,
    factorized_once,
    model_system,
    pair_hessian,
    symmetric_hessian,
)

__all__ = [
    "NEWTON_MAX_PARAMS",
    "REFACTOR_MAX_PARAMS",
    "GrowingHessian",
    "InfluenceFactors",
    "OneStepLosses",
    "cross_entropy_sum",
    "factorized_once",
    "influence_matrix",
    "model_parameters",
    "model_system",
    "pair_hessian",
    "symmetric_hessian",
]
