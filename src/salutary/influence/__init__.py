"""Influence of labeling a pool sample on the validation loss.

``_factors``: the closed-form first-order influence of softmax regression
(:class:`InfluenceFactors`, computed once per round, then scoring any number of pool
rows at the cost of predicting them). ``_lookahead``: the second-order look-ahead behind
``salutary-newton`` (the exact validation loss one Newton step after adding pairs), with
the training Hessian systems of ``_newton``. ``_kernel``: their solves through the kernel
of the training rows, for training sets with few rows for their parameters, and the
choice among the systems.
"""

from salutary.influence._factors import (
    InfluenceFactors,
    influence_matrix,
    model_parameters,
)
from salutary.influence._kernel import (
    KERNEL_MAX_SHARE,
    KernelHessian,
    kernel_pays,
    model_system,
)
from salutary.influence._lookahead import OneStepLosses, cross_entropy_sum, step_picks
from salutary.influence._newton import (
    MATRIX_FREE_MAX_PARAMS,
    MATRIX_FREE_TOL,
    NEWTON_MAX_PARAMS,
    REFACTOR_MAX_PARAMS,
    GrowingHessian,
    MatrixFreeHessian,
    factorized_once,
    matrix_free_system,
    pair_hessian,
    symmetric_hessian,
    training_objective,
    training_system,
)

__all__ = [
    "KERNEL_MAX_SHARE",
    "MATRIX_FREE_MAX_PARAMS",
    "MATRIX_FREE_TOL",
    "NEWTON_MAX_PARAMS",
    "REFACTOR_MAX_PARAMS",
    "GrowingHessian",
    "InfluenceFactors",
    "KernelHessian",
    "MatrixFreeHessian",
    "OneStepLosses",
    "cross_entropy_sum",
    "factorized_once",
    "influence_matrix",
    "kernel_pays",
    "matrix_free_system",
    "model_parameters",
    "model_system",
    "pair_hessian",
    "step_picks",
    "symmetric_hessian",
    "training_objective",
    "training_system",
]
