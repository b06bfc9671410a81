"""The strategy registry: names, specs (``name:param=value``), and what each strategy is.

Everything outside this package that needs to know about strategies (the command line's
choices, the benchmark, the report's tables, fine-tuning's arms) asks here.
"""

from __future__ import annotations

import ast

from salutary.strategies._base import Strategy
from salutary.strategies._diversity import BadgeSampling, CoreSetSampling
from salutary.strategies._influence_baselines import ISAL, PredictedInfluence
from salutary.strategies._newton import NewtonGreedySalutary, SalutaryHybrid
from salutary.strategies._salutary import CrossFitSalutary, SalutaryLabeling, SalutaryOracle
from salutary.strategies._self_training import SelfTraining, ValidationTeacher
from salutary.strategies._uncertainty import (
    EntropySampling,
    LeastConfidenceSampling,
    MarginSampling,
    RandomSampling,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "get_strategy",
    "LOOP_OPTIONS",
    "is_oracle_free",
    "loop_options",
    "oracle_free_strategies",
    "parse_strategy",
    "strategy_class",
    "strategy_sort_key",
]

#: Every registered strategy by name, oracle-free ones first (the order tables use).
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        SalutaryLabeling,
        NewtonGreedySalutary,
        CrossFitSalutary,
        SelfTraining,
        ValidationTeacher,
        SalutaryOracle,
        SalutaryHybrid,
        RandomSampling,
        EntropySampling,
        MarginSampling,
        LeastConfidenceSampling,
        BadgeSampling,
        CoreSetSampling,
        ISAL,
        PredictedInfluence,
    )
}

#: The strategy of :class:`salutary.SalutaryLabeler` and ``salutary label``.
DEFAULT_STRATEGY = NewtonGreedySalutary.name


#: Options of a spec that belong to the labeling loop, not to the strategy:
#: ``check=F`` holds out a share F of the validation set to stop the rounds
#: (:func:`salutary.loop.run_active_learning`'s ``check_fraction``).
LOOP_OPTIONS: tuple[str, ...] = ("check",)


def loop_options(spec: str) -> dict[str, float]:
    """The loop options of a spec (``"salutary-newton:check=0.5"`` gives
    ``{"check": 0.5}``), checked; the rest of the spec is not read.

    Raises
    ------
    ValueError
        A loop option whose value is not a number strictly between 0 and 1.
    """
    out: dict[str, float] = {}
    for item in str(spec).split(":")[1:]:
        key, eq, raw = item.partition("=")
        if eq and key.strip() in LOOP_OPTIONS:
            try:
                value = float(raw)
            except ValueError:
                value = float("nan")
            if not 0 < value < 1:
                raise ValueError(
                    f"strategy {spec!r}: {key.strip()}={raw.strip()} is not a share "
                    "strictly between 0 and 1"
                )
            out[key.strip()] = value
    return out


def parse_strategy(spec: str) -> tuple[type[Strategy], dict[str, object]]:
    """Strategy class and parameters from a spec ``NAME[:PARAM=VALUE[:PARAM=VALUE...]]``.

    ``NAME`` is a registered name (see :data:`STRATEGIES`); each ``VALUE`` is read as a
    Python literal (``1``, ``0.5``, ``True``), or kept as a string (``solver=cg``).
    ``"salutary-newton:steps=1:labels=1"`` is :class:`NewtonGreedySalutary` with
    ``steps=1, labels=1``: variants for ablations run through the benchmark like any
    strategy, under their spec. Loop options (:data:`LOOP_OPTIONS`, e.g. ``check=0.5``)
    are checked and left out of the parameters (see :func:`loop_options`).

    Raises
    ------
    ValueError
        Unknown name or parameter, or an item that is not ``PARAM=VALUE``.
    """
    name, *items = str(spec).split(":")
    cls = STRATEGIES.get(name.strip())
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    valid = cls().get_params()
    loop = loop_options(spec)
    params: dict[str, object] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"strategy {spec!r}: {item!r} is not PARAM=VALUE")
        if key in loop:
            continue
        if key not in valid:
            raise ValueError(
                f"strategy {spec!r}: {cls.name!r} has no parameter {key!r}; "
                f"it has {', '.join(valid) or 'none'}"
            )
        try:
            params[key] = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            params[key] = raw.strip()
    return cls, params


def strategy_class(spec: str) -> type[Strategy]:
    """The registered class behind a strategy name or spec (see :func:`parse_strategy`)."""
    return parse_strategy(spec)[0]


def get_strategy(strategy: str | Strategy) -> Strategy:
    """A strategy instance from its registered name or spec, or the instance itself.

    A spec's parameters are checked here (see :func:`parse_strategy` for the
    ``NAME:PARAM=VALUE`` form); an instance's when it selects.

    Raises
    ------
    ValueError
        Unknown name or parameter, or a parameter value the strategy does not accept.
    """
    if isinstance(strategy, Strategy):
        return strategy
    cls, params = parse_strategy(strategy)
    instance = cls(**params)
    instance.validate()
    return instance


def is_oracle_free(spec: str) -> bool:
    """Whether a strategy name or spec labels its picks itself (unknown: no)."""
    try:
        return not strategy_class(spec).requires_oracle
    except ValueError:
        return False


def oracle_free_strategies() -> list[str]:
    """Names of the strategies that need no oracle, the default first, then registry order."""
    free = [name for name, cls in STRATEGIES.items() if not cls.requires_oracle]
    return sorted(free, key=lambda name: name != DEFAULT_STRATEGY)


def strategy_sort_key(spec: str) -> tuple[int, str]:
    """Registry order; a spec (``name:param=value``) right after its base strategy."""
    order = list(STRATEGIES)
    base = spec.split(":")[0]
    return (order.index(base) if base in order else len(order), spec)
