"""A person in the loop: the least certain salutary labels go to a person.

:class:`ReviewStrategy` wraps an oracle-free strategy: each round it keeps the
strategy's picks and labels, and sends the ``review`` picks whose label has the smallest
margin (``Selection.margins``, the ``salutary_margin`` of the output) to an oracle, a
person, through the loop's partial-oracle machinery (``Selection.ask``, as
``salutary-hybrid``). :func:`review_oracle` turns a callable that answers a
:class:`ReviewRequest` into the loop's oracle.

For ``salutary label --review N`` the picks go to files: :func:`review_frame` (CSV, an
empty ``answer`` column), :func:`label_studio_tasks` (Label Studio task JSON with the
salutary label as a prediction) and :func:`label_studio_config` (the matching labeling
config); :func:`read_answers` reads the filled CSV or Label Studio's JSON export back;
:class:`ReviewState` is the versioned JSON state file between runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from salutary._io import atomic_write
from salutary.exceptions import InputError
from salutary.pool import Pool
from salutary.strategies import Selection, Strategy, get_strategy

__all__ = [
    "ANSWER_COLUMN",
    "LABEL_STUDIO_CHOICES",
    "LABEL_STUDIO_TEXT",
    "STATE_VERSION",
    "SUGGESTION_COLUMN",
    "ReviewRequest",
    "ReviewState",
    "ReviewStrategy",
    "file_digest",
    "label_studio_config",
    "label_studio_tasks",
    "read_answers",
    "review_frame",
    "review_oracle",
]

#: Columns the review CSV adds: the salutary label, and the person's answer (empty).
SUGGESTION_COLUMN = "salutary_suggestion"
ANSWER_COLUMN = "answer"
#: Names in the Label Studio config: the Choices control and the Text view of a row.
LABEL_STUDIO_CHOICES = "label"
LABEL_STUDIO_TEXT = "row"
#: The task data field holding the row as text (one ``column: value`` line each).
TEXT_FIELD = "salutary_text"
#: Version of the state file; a file of another version is refused.
STATE_VERSION = 1
STATE_FORMAT = "salutary-review-state"


@dataclass
class ReviewRequest:
    """The picks of one round that go to a person.

    Attributes
    ----------
    round : int
        The round (from 1).
    rows : ndarray of int
        The picks, as positions in the original pool, in the order the loop picked them.
    suggestions : ndarray
        The strategy's label of each.
    margins : ndarray of float
        The margin of each suggestion (smallest first is the least certain).
    scores : ndarray of float
        The strategy's score of each pick.
    """

    round: int
    rows: np.ndarray
    suggestions: np.ndarray
    margins: np.ndarray
    scores: np.ndarray


class ReviewStrategy(Strategy):
    """An oracle-free strategy whose ``review`` least certain picks go to the oracle.

    Picks and labels are the wrapped strategy's (it is called with the same arguments
    and the same ``rng``, and nothing else draws from it); the ``review`` picks of
    smallest margin (``Selection.margins``; ties by pick order) are marked for the
    oracle (``Selection.ask``), the others keep their salutary label.

    Parameters
    ----------
    strategy : str or Strategy
        An oracle-free strategy that gives margins (the influence-based ones).
    review : int, default=1
        Picks per round sent to the oracle (all of them when a round picks fewer).

    Attributes
    ----------
    round_ : int
        Rounds selected so far.
    request_ : ReviewRequest or None
        The picks of the last round sent to the oracle (rows as positions in the pool
        the strategy was given).
    """

    name: ClassVar[str] = "review"
    requires_oracle: ClassVar[bool] = True
    partial_oracle: ClassVar[bool] = True
    uses_validation: ClassVar[bool] = True
    baseline: ClassVar[bool] = False

    def __init__(self, strategy: str | Strategy, review: int = 1) -> None:
        self.strategy = strategy
        self.review = review

    def validate(self) -> None:
        """Check ``review`` and the wrapped strategy (it must label its picks itself)."""
        if isinstance(self.review, bool) or int(self.review) != self.review or self.review < 1:
            raise ValueError(f"review must be an integer >= 1, got {self.review!r}")
        inner = get_strategy(self.strategy)
        if inner.requires_oracle:
            raise ValueError(
                f"strategy {inner.name!r} needs an oracle; review needs one that labels"
            )

    def _select(
        self, model, X_train, y_train, pool: Pool, budget, *, X_val, y_val, sample_weight,
        trusted, rng,
    ) -> Selection:  # fmt: skip
        if getattr(self, "strategy_", None) is None:
            self.strategy_ = get_strategy(self.strategy)
        inner = self.strategy_
        sel = inner.select(
            model, X_train, y_train, pool, budget, X_val=X_val, y_val=y_val,
            sample_weight=sample_weight, trusted=trusted, rng=rng,
        )  # fmt: skip
        self.round_ = getattr(self, "round_", 0) + 1
        n = len(sel.indices)
        if n and (sel.margins is None or np.isnan(np.asarray(sel.margins, float)).any()):
            raise InputError(
                f"strategy {inner.name!r} gives no margins, so its least certain labels are "
                "unknown; review needs an influence-based strategy (e.g. salutary-newton)"
            )
        margins = np.zeros(0) if not n else np.asarray(sel.margins, dtype=np.float64)
        ask = np.zeros(n, dtype=bool)
        ask[np.argsort(margins, kind="stable")[: min(int(self.review), n)]] = True
        labels = np.asarray(sel.labels)
        self.request_ = ReviewRequest(
            self.round_, np.asarray(sel.indices)[ask], labels[ask] if n else labels[:0],
            margins[ask], np.asarray(sel.scores, dtype=np.float64)[ask],
        )  # fmt: skip
        return Selection(sel.indices, sel.scores, sel.labels, ask=ask, margins=sel.margins)


def review_oracle(
    strategy: ReviewStrategy, answer: Callable[[ReviewRequest], Any]
) -> Callable[[np.ndarray], np.ndarray]:
    """The loop's oracle (``oracle(rows)``) that asks ``answer`` about the picks
    ``strategy`` sent to it, with their suggestions and margins.

    ``rows`` are positions in the original pool (the loop's); the request carries them,
    in the same order, with the suggestion, margin and score of each.
    """

    def oracle(rows: np.ndarray) -> np.ndarray:
        last = strategy.request_
        request = ReviewRequest(
            last.round, np.asarray(rows), last.suggestions, last.margins, last.scores
        )
        labels = np.asarray(answer(request))
        if labels.shape != (len(rows),):
            raise ValueError(
                f"the oracle returned labels of shape {labels.shape} for {len(rows)} picks"
            )
        return labels

    return oracle


# ------------------------------------------------------------------------------ files


def review_frame(
    rows: pd.DataFrame,
    *,
    salutary_rows: np.ndarray,
    round: int,
    suggestions: Sequence[Any],
    scores: np.ndarray,
    margins: np.ndarray,
) -> pd.DataFrame:
    """The review CSV's rows: the original columns, then ``salutary_row`` (from 1),
    ``salutary_round``, ``salutary_suggestion``, ``salutary_score``, ``salutary_margin``
    and an empty ``answer``; least certain (smallest margin) first."""
    out = rows.reset_index(drop=True).copy()
    out["salutary_row"] = np.asarray(salutary_rows, dtype=np.int64)
    out["salutary_round"] = int(round)
    out[SUGGESTION_COLUMN] = list(suggestions)
    out["salutary_score"] = np.asarray(scores, dtype=np.float64)
    out["salutary_margin"] = np.asarray(margins, dtype=np.float64)
    out[ANSWER_COLUMN] = ""
    return out.sort_values("salutary_margin", kind="mergesort").reset_index(drop=True)


def label_studio_tasks(frame: pd.DataFrame, model_version: str = "salutary") -> list[dict]:
    """Label Studio tasks (the JSON import format) of a :func:`review_frame`.

    Each task's ``data`` holds the row's columns (``answer`` left out), and
    ``salutary_text``, the original columns as ``column: value`` lines for the Text view
    of :func:`label_studio_config`; its ``predictions`` hold the suggestion as the
    result of the ``choices`` control, with the margin as the prediction's ``score``
    (Label Studio sorts tasks by it: smallest, least certain, first).
    """
    data = json.loads(
        frame.drop(columns=ANSWER_COLUMN).to_json(orient="records", double_precision=15)
    )
    shown = [c for c in frame.columns if c not in _ADDED]
    tasks = []
    for record in data:
        record[TEXT_FIELD] = "\n".join(f"{c}: {_shown(record[c])}" for c in shown)
        margin = record["salutary_margin"]
        tasks.append(
            {
                "data": record,
                "predictions": [
                    {
                        "model_version": model_version,
                        "score": margin,
                        "result": [
                            {
                                "from_name": LABEL_STUDIO_CHOICES,
                                "to_name": LABEL_STUDIO_TEXT,
                                "type": "choices",
                                "value": {"choices": [str(record[SUGGESTION_COLUMN])]},
                            }
                        ],
                    }
                ],
            }
        )
    return tasks


_ADDED = (
    "salutary_row", "salutary_round", SUGGESTION_COLUMN, "salutary_score", "salutary_margin",
    ANSWER_COLUMN,
)  # fmt: skip


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def label_studio_config(classes: Sequence[Any], target: str) -> str:
    """A Label Studio labeling config matching :func:`label_studio_tasks`: a Text view
    ``row`` of the task's ``salutary_text`` and a single-choice control ``label`` with
    one choice per class."""
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in classes)
    return (
        "<View>\n"
        f"  <Header value={quoteattr(f'{target}: salutary suggests $' + SUGGESTION_COLUMN)}/>\n"
        f'  <Text name="{LABEL_STUDIO_TEXT}" value="${TEXT_FIELD}"/>\n'
        f'  <Choices name="{LABEL_STUDIO_CHOICES}" toName="{LABEL_STUDIO_TEXT}" '
        'choice="single" showInline="true" required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def read_answers(
    path: str | os.PathLike[str], expected: Sequence[int], classes: Sequence[str]
) -> dict[int, str]:
    """The answers of a filled review file, checked: ``{salutary_row: label}``.

    Parameters
    ----------
    path : str or path-like
        The review CSV with its ``answer`` column filled in, or Label Studio's JSON
        export of the review tasks (``JSON``: the last annotation that was not cancelled,
        its ``choices`` result; or ``JSON_MIN``: the ``label`` field).
    expected : sequence of int
        The ``salutary_row`` values of the picks under review: each needs an answer.
    classes : sequence of str
        The known labels, as text.

    Raises
    ------
    InputError
        One line naming the file and the row (and value) of the first problem: a row that
        is not under review or is there twice, a missing answer, an unknown label.
    """
    path = Path(path)
    name = path.name
    if path.suffix.lower() == ".json":
        found = _json_answers(path)
    else:
        found = _csv_answers(path)
    known = set(classes)
    want = [int(r) for r in expected]
    answers: dict[int, str] = {}
    for where, row, value in found:
        if row not in want:
            raise InputError(
                f"{name}: {where} has salutary_row {row}, which is not under review "
                f"(rows {', '.join(map(str, sorted(want)))})"
            )
        if row in answers:
            raise InputError(f"{name}: {where}: salutary_row {row} is answered twice")
        if value is None or value == "":
            raise InputError(
                f"{name}: {where} (salutary_row {row}) has no answer; answer every row "
                "of the review"
            )
        if value not in known:
            raise InputError(
                f"{name}: {where} (salutary_row {row}): answer {value!r} is not a known "
                f"label ({', '.join(classes)})"
            )
        answers[row] = value
    missing = [r for r in want if r not in answers]
    if missing:
        raise InputError(
            f"{name}: salutary_row {missing[0]} is under review but not in the file "
            f"({len(missing)} of {len(want)} rows missing); answer every row of the review"
        )
    return answers


def _csv_answers(path: Path) -> list[tuple[str, int, str | None]]:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path.name}: not a readable CSV file ({exc})") from None
    for col in ("salutary_row", ANSWER_COLUMN):
        if col not in frame.columns:
            raise InputError(f"{path.name} has no column {col!r}; pass the filled review CSV")
    found = []
    for i, (row, value) in enumerate(zip(frame["salutary_row"], frame[ANSWER_COLUMN], strict=True)):
        where = f"row {i + 1} (line {i + 2})"
        found.append((where, _row_number(path.name, where, row), value.strip()))
    return found


def _json_answers(path: Path) -> list[tuple[str, int, str | None]]:
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path.name}: not a JSON file ({exc})") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise InputError(f"{path.name}: expected a list of Label Studio tasks (its JSON export)")
    found = []
    for i, task in enumerate(tasks):
        where = f"task {i + 1}" + (f" (id {task['id']})" if "id" in task else "")
        if isinstance(task.get("data"), dict):  # JSON: data and annotations
            row = task["data"].get("salutary_row")
            value = _annotated_choice(task.get("annotations") or [])
        else:  # JSON_MIN: the data's fields and the control's name at the top level
            row = task.get("salutary_row")
            value = task.get(LABEL_STUDIO_CHOICES)
            if isinstance(value, dict):
                value = (value.get("choices") or [None])[0]
        found.append(
            (where, _row_number(path.name, where, row), None if value is None else str(value))
        )
    return found


def _annotated_choice(annotations: list[Any]) -> str | None:
    """The choice of the last annotation that was not cancelled (None without one)."""
    for ann in reversed(annotations):
        if not isinstance(ann, dict) or ann.get("was_cancelled"):
            continue
        for item in ann.get("result") or []:
            if item.get("type") == "choices" and item.get("from_name") == LABEL_STUDIO_CHOICES:
                choices = (item.get("value") or {}).get("choices") or []
                if choices:
                    return str(choices[0])
    return None


def _row_number(name: str, where: str, value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise InputError(f"{name}: {where}: salutary_row {value!r} is not a row number") from None


# ------------------------------------------------------------------------------ state


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class ReviewState:
    """What a ``salutary label --review`` run saves between its runs (JSON, versioned).

    Resuming replays the rounds from the start with the same inputs, options and seed
    (so the same picks, checked against ``answered``), giving the saved answers where
    a person was asked, until a round that has none: no model or random state is
    pickled, and a state file is readable and checkable by eye.

    Attributes
    ----------
    options : dict
        The options of the run (a resumed run must use the same).
    inputs : dict
        Per input file, its SHA-256 (a resumed run must read the same bytes).
    classes : list of str
        The known labels.
    answered : dict of int to dict
        Per answered round: ``rows`` (salutary_row of each pick reviewed) and ``answers``.
    pending : dict or None
        The round waiting for answers: ``round``, ``rows``, ``suggestions``, ``files``.
    labeled : list of dict
        Every row labeled so far (``row``, ``round``, ``label``, ``source``), for reading.
    done : bool
        Whether the rounds are done and the output written.
    """

    options: dict[str, Any]
    inputs: dict[str, str]
    classes: list[str]
    answered: dict[int, dict[str, list]] = field(default_factory=dict)
    pending: dict[str, Any] | None = None
    labeled: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False

    def answers_of(self, round: int) -> dict[int, str] | None:
        """``{salutary_row: label}`` of an answered round, None if it has no answers."""
        got = self.answered.get(round)
        if got is None:
            return None
        return dict(zip(got["rows"], got["answers"], strict=True))

    def to_json(self) -> str:
        """The state as JSON text."""
        doc = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "done": self.done,
            "options": self.options,
            "inputs": self.inputs,
            "classes": self.classes,
            "answered": {str(r): v for r, v in sorted(self.answered.items())},
            "pending": self.pending,
            "labeled": self.labeled,
        }
        return json.dumps(doc, indent=1) + "\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state file atomically."""
        text = self.to_json()
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReviewState:
        """Read a state file; InputError (one line) if it is missing, not one, or of
        another version."""
        path = Path(path)
        if not path.is_file():
            raise InputError(
                f"no review state {str(path)!r}: --answers resumes a run started with "
                "--review and the same --output"
            )
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"review state {path.name} is not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise InputError(f"{path.name} is not a salutary review state file")
        if doc.get("version") != STATE_VERSION:
            raise InputError(
                f"review state {path.name} has version {doc.get('version')!r}; this salutary "
                f"reads version {STATE_VERSION}: finish the review with the salutary that "
                "started it, or start again with --review"
            )
        try:
            return cls(
                options=dict(doc["options"]),
                inputs=dict(doc["inputs"]),
                classes=[str(c) for c in doc["classes"]],
                answered={int(r): dict(v) for r, v in doc["answered"].items()},
                pending=doc["pending"],
                labeled=list(doc["labeled"]),
                done=bool(doc["done"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(
                f"review state {path.name} is damaged ({type(exc).__name__}: {exc})"
            ) from None

    def check_same_run(
        self, options: Mapping[str, Any], inputs: Mapping[str, str], name: str
    ) -> None:
        """InputError naming the first option or input file that differs from the run
        that wrote the state."""
        for key, value in self.options.items():
            if options.get(key) != value:
                raise InputError(
                    f"--{key.replace('_', '-')} is {options.get(key)!r} here but was {value!r} "
                    f"in the run that wrote {name}; resume with the same options"
                )
        for role, digest in self.inputs.items():
            if inputs.get(role) != digest:
                raise InputError(
                    f"the {role} file is not the one the review in {name} was made with "
                    "(its content changed); resume with the same files"
                )
