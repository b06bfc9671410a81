"""salutary: grow a training set from an unlabeled pool with zero human annotation.

Salutary labeling (Xiao & Liu, 2024) gives every unlabeled sample the label whose
addition is predicted, by the influence function of an L2 logistic model, to lower the
loss on a labeled validation set most, and adds the most helpful samples round by round.
"""

import os
import signal
import sys

if os.path.basename(sys.argv[0]) == "salutary":  # the console script, still importing:
    # an interrupt now ends it quietly (status 130, 143) instead of printing the traceback
    # of an import; salutary.cli.main turns interrupts into exceptions again.
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(130))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))

from typing import TYPE_CHECKING

from salutary._lazy import lazy_attributes

if TYPE_CHECKING:
    from salutary.influence import InfluenceFactors, influence_matrix
    from salutary.labeler import SalutaryLabeler
    from salutary.loop import ActiveLearningResult, run_active_learning
    from salutary.model import LogisticModel
    from salutary.strategies import STRATEGIES, Selection, Strategy, get_strategy

# Imported on first use, so that `import salutary` (and the command line's --help) does
# not load numpy, SciPy and scikit-learn.
_PUBLIC = {
    "STRATEGIES": "salutary.strategies",
    "ActiveLearningResult": "salutary.loop",
    "InfluenceFactors": "salutary.influence",
    "LogisticModel": "salutary.model",
    "SalutaryLabeler": "salutary.labeler",
    "Selection": "salutary.strategies",
    "Strategy": "salutary.strategies",
    "get_strategy": "salutary.strategies",
    "influence_matrix": "salutary.influence",
    "run_active_learning": "salutary.loop",
}
__getattr__, __dir__ = lazy_attributes(globals(), _PUBLIC)

__version__ = "0.1.0"

__all__ = [
    "STRATEGIES",
    "ActiveLearningResult",
    "InfluenceFactors",
    "LogisticModel",
    "SalutaryLabeler",
    "Selection",
    "Strategy",
    "get_strategy",
    "influence_matrix",
    "run_active_learning",
]
