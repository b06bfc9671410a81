"""A person in the loop: SalutaryLabeler(oracle=...), salutary label --review/--answers,
the review files in their documented formats, and a real Label Studio server."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import BUDGET, CLASSES, FEATURES, ROUNDS, Files, assert_ok, encode, invoke
from test_influence import _dense_influence
from test_readme import fenced_blocks

from salutary import LogisticModel, SalutaryLabeler
from salutary.datasets import load_frame
from salutary.review import STATE_VERSION, read_answers

REVIEW = 2
STATE = "result.review-state.json"


def person(row: int, suggestion: str) -> str:
    """A person who answers the class after the suggestion when the row number is odd, and
    agrees otherwise (so some answers differ from the suggestions)."""
    i = list(CLASSES).index(suggestion)
    return str(CLASSES[(i + 1) % len(CLASSES)]) if row % 2 else suggestion


def fill_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    frame["answer"] = [
        person(r, s)
        for r, s in zip(frame["salutary_row"], frame["salutary_suggestion"], strict=True)
    ]
    frame.to_csv(path, index=False)
    return frame


def label_studio_export(tasks: list[dict]) -> list[dict]:
    """What Label Studio's JSON export holds for the imported tasks once a person chose a
    label in each (its documented task format: id, data, annotations, predictions)."""
    out = []
    for i, task in enumerate(tasks):
        data = task["data"]
        choice = person(data["salutary_row"], data["salutary_suggestion"])
        out.append(
            {
                "id": 100 + i,
                "data": data,
                "annotations": [
                    {  # a cancelled (skipped) annotation first: ignored
                        "id": 2 * i,
                        "result": [],
                        "was_cancelled": True,
                    },
                    {
                        "id": 2 * i + 1,
                        "result": [
                            {
                                "id": f"r{i}",
                                "from_name": "label",
                                "to_name": "row",
                                "type": "choices",
                                "value": {"choices": [choice]},
                                "origin": "manual",
                            }
                        ],
                        "was_cancelled": False,
                        "ground_truth": False,
                        "lead_time": 3.5,
                        "task": 100 + i,
                    },
                ],
                "predictions": task["predictions"],
            }
        )
    return out


def run_review(files: Files, answer_with, *extra: str) -> list[str]:
    """--review until the rounds are done, answering each review file with
    ``answer_with(round, out_dir)`` (which returns the answers file); the stdout of each run."""
    args = files.args("--review", str(REVIEW), *extra)
    result = invoke(args)
    assert_ok(result)
    said = [result.stdout]
    for r in range(1, ROUNDS + 1):
        assert not files.output.exists()
        answers = answer_with(r, files.out_dir)
        result = invoke([*args, "--answers", str(answers)])
        assert_ok(result)
        said.append(result.stdout)
    assert files.output.exists()
    return said


def answer_csv(r: int, out_dir: Path) -> Path:
    path = out_dir / f"result.review-{r}.csv"
    fill_csv(path)
    return path


def answer_label_studio(r: int, out_dir: Path) -> Path:
    tasks = json.loads((out_dir / f"result.review-{r}.json").read_text())
    path = out_dir / f"export-{r}.json"
    path.write_text(json.dumps(label_studio_export(tasks)))
    return path


def oracle_run(files: Files, **params) -> tuple[SalutaryLabeler, list]:
    """SalutaryLabeler with an oracle giving the same person's answers."""
    X_lab, X_pool, X_val, y_lab, y_val = encode(files)
    n = len(y_lab)
    calls = []

    def oracle(indices, X_rows, suggestions):
        calls.append((indices.copy(), X_rows.copy(), suggestions.copy()))
        return np.array(
            [
                list(CLASSES).index(person(int(i) - n + 1, str(CLASSES[s])))
                for i, s in zip(indices, suggestions, strict=True)
            ]
        )

    labeler = SalutaryLabeler(
        estimator=LogisticModel(l2=50.0, warm_start=True), budget=BUDGET, rounds=ROUNDS,
        random_state=0, oracle=oracle, review=REVIEW, **params,
    )  # fmt: skip
    y = np.concatenate([y_lab, np.full(len(X_pool), -1)])
    labeler.fit(np.vstack([X_lab, X_pool]), y, X_val, y_val)
    return labeler, calls


# ------------------------------------------------------------------------ oracle=


def test_oracle_gets_the_picks_of_smallest_margin_and_its_answers_become_labels(tmp_path):
    files = Files(tmp_path)
    X_lab, X_pool, X_val, y_lab, y_val = encode(files)
    n = len(y_lab)
    # Without the held-out check, so every round asks (and round 1 sees all of X_val).
    labeler, calls = oracle_run(files, check_fraction=None)
    plain = SalutaryLabeler(
        estimator=LogisticModel(l2=50.0, warm_start=True), budget=BUDGET, rounds=1,
        random_state=0, check_fraction=None,
    )  # fmt: skip
    y = np.concatenate([y_lab, np.full(len(X_pool), -1)])
    plain.fit(np.vstack([X_lab, X_pool]), y, X_val, y_val)
    assert len(calls) == ROUNDS and all(len(c[0]) == REVIEW for c in calls)
    # Round 1 picks the same rows with the same labels as without an oracle; their margins,
    # computed here from a dense influence with the initial model, choose the asked ones.
    first = np.flatnonzero(plain.labeled_iter_ == 1)
    labels = plain.transduction_[first]
    influence = _dense_influence(
        LogisticModel(l2=50.0).fit(X_lab, y_lab), X_lab, X_val, y_val, X_pool[first - n]
    )
    own = influence[np.arange(len(first)), labels]
    others = influence.copy()
    others[np.arange(len(first)), labels] = -np.inf
    margins = own - others.max(axis=1)
    np.testing.assert_allclose(margins, plain.salutary_margin_[first], rtol=1e-6)
    smallest = first[np.argsort(margins)[:REVIEW]]
    indices, X_rows, suggestions = calls[0]
    assert sorted(indices) == sorted(smallest)
    np.testing.assert_array_equal(X_rows, np.vstack([X_lab, X_pool])[indices])
    np.testing.assert_array_equal(suggestions, plain.transduction_[indices])
    # the answers are the labels of those rows, marked as reviewed
    asked = np.concatenate([c[0] for c in calls])
    assert sorted(np.flatnonzero(labeler.reviewed_)) == sorted(asked)
    for idx, _, sug in calls:
        expected = [
            list(CLASSES).index(person(int(i) - n + 1, str(CLASSES[s])))
            for i, s in zip(idx, sug, strict=True)
        ]
        np.testing.assert_array_equal(labeler.transduction_[idx], expected)
    assert np.isnan(labeler.salutary_margin_[asked]).all()
    assert (labeler.labeled_iter_ > 0).sum() == BUDGET * ROUNDS


def test_oracle_answers_outside_the_labels_and_strategies_without_margins_are_refused():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = np.where(np.arange(120) < 60, (X[:, 0] > 0).astype(int), -1)
    bad = SalutaryLabeler(rounds=1, budget=4, oracle=lambda i, X, s: np.full(len(i), 7))
    with pytest.raises(ValueError, match=r"oracle answered 7 for row \d+, which is not a label"):
        bad.fit(X, y)
    short = SalutaryLabeler(rounds=1, budget=4, oracle=lambda i, X, s: [0])
    with pytest.raises(ValueError, match="oracle returned labels of shape"):
        SalutaryLabeler(rounds=1, budget=4, review=2, oracle=short.oracle).fit(X, y)
    no_margin = SalutaryLabeler(
        rounds=1, budget=4, strategy="self-training", oracle=lambda i, X, s: s
    )
    with pytest.raises(ValueError, match="gives no margins"):
        no_margin.fit(X, y)


# ----------------------------------------------------------------- --review / --answers


def test_review_csv_round_trip_equals_the_oracle_run(tmp_path):
    files = Files(tmp_path)
    said = run_review(files, answer_csv)
    assert "--answers" in said[0] and "result.review-1.csv" in said[0].replace("\n", "")
    review = pd.read_csv(files.out_dir / "result.review-1.csv")
    assert list(review.columns) == [
        *FEATURES, "salutary_row", "salutary_round", "salutary_suggestion", "salutary_score",
        "salutary_margin", "answer",
    ]  # fmt: skip
    assert len(review) == REVIEW and review["salutary_margin"].is_monotonic_increasing
    # the rows are the unlabeled file's, with their original values
    back = files.pool.iloc[review["salutary_row"] - 1][FEATURES].reset_index(drop=True)
    pd.testing.assert_frame_equal(back, review[FEATURES])

    out = pd.read_csv(files.output)
    human = out[out["salutary_source"] == "human"]
    assert len(human) == REVIEW * ROUNDS
    assert set(out["salutary_source"]) == {"human", "salutary"}
    for r in range(1, ROUNDS + 1):  # the answers became the labels of those rows
        filled = pd.read_csv(files.out_dir / f"result.review-{r}.csv")
        got = out.set_index("salutary_row").loc[filled["salutary_row"]]
        assert (got["species"].to_numpy() == filled["answer"].to_numpy()).all()
        assert (got["salutary_source"] == "human").all() and (got["salutary_round"] == r).all()
    # the person disagreed with some suggestions, so the answers, not the suggestions, count
    suggested = pd.concat(
        pd.read_csv(files.out_dir / f"result.review-{r}.csv") for r in range(1, ROUNDS + 1)
    )
    assert (suggested["answer"] != suggested["salutary_suggestion"]).any()

    labeler, _ = oracle_run(files)  # the same answers through oracle=
    n = len(files.lab)
    rounds = labeler.labeled_iter_[n:]
    chosen = np.flatnonzero(rounds > 0)
    expected = pd.DataFrame(
        {
            "salutary_row": chosen + 1,
            "species": CLASSES[labeler.transduction_[n:][chosen]],
            "salutary_round": rounds[chosen],
            "salutary_source": np.where(labeler.reviewed_[n:][chosen], "human", "salutary"),
        }
    ).sort_values("salutary_row")
    got = out[expected.columns].sort_values("salutary_row")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    state = json.loads((files.out_dir / STATE).read_text())
    assert state["version"] == STATE_VERSION and state["done"] is True
    assert len(state["labeled"]) == BUDGET * ROUNDS


def test_review_label_studio_export_gives_the_same_result(tmp_path):
    (tmp_path / "csv").mkdir()
    (tmp_path / "ls").mkdir()
    csv_files = Files(tmp_path / "csv")
    run_review(csv_files, answer_csv)
    ls_files = Files(tmp_path / "ls")
    run_review(ls_files, answer_label_studio)
    pd.testing.assert_frame_equal(pd.read_csv(ls_files.output), pd.read_csv(csv_files.output))
    tasks = json.loads((ls_files.out_dir / "result.review-1.json").read_text())
    review = pd.read_csv(csv_files.out_dir / "result.review-1.csv")
    assert len(tasks) == REVIEW
    for task, (_, row) in zip(tasks, review.iterrows(), strict=True):
        assert set(task) == {"data", "predictions"}
        assert task["data"]["salutary_row"] == row["salutary_row"]
        assert task["data"]["color"] == row["color"]
        (pred,) = task["predictions"]
        assert pred["score"] == pytest.approx(row["salutary_margin"])
        (result,) = pred["result"]
        assert result == {
            "from_name": "label", "to_name": "row", "type": "choices",
            "value": {"choices": [row["salutary_suggestion"]]},
        }  # fmt: skip
    config = (ls_files.out_dir / "result.review.xml").read_text()
    assert '<Choices name="label" toName="row"' in config
    assert '<Text name="row" value="$salutary_text"/>' in config
    assert all(f'<Choice value="{c}"/>' in config for c in CLASSES)


def test_label_studio_json_min_export_is_read(tmp_path):
    path = tmp_path / "min.json"
    path.write_text(json.dumps([{"id": 1, "salutary_row": 5, "label": "dog", "x1": 0.1}]))
    assert read_answers(path, [5], list(CLASSES)) == {5: "dog"}


def _started(files: Files) -> tuple[list[str], Path]:
    args = files.args("--review", str(REVIEW))
    assert_ok(invoke(args))
    review = files.out_dir / "result.review-1.csv"
    fill_csv(review)
    return args, review


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_refused(result, folder: Path, before: dict[str, bytes], *fragments: str) -> None:
    """Exit 2, one ``error:`` line naming the fragments, no traceback, nothing changed."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert _snapshot(folder) == before


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (
            lambda f: f.assign(answer=["dgo", *f["answer"][1:]]),
            ["row 1 (line 2)", "'dgo'", "not a known label"],
        ),
        (lambda f: f.assign(answer=["", *f["answer"][1:]]), ["row 1 (line 2)", "has no answer"]),
        (lambda f: f.iloc[1:], ["is under review but not in the file"]),
        (
            lambda f: f.assign(salutary_row=[999, *f["salutary_row"][1:]]),
            ["salutary_row 999", "not under review"],
        ),
        (lambda f: pd.concat([f, f.iloc[:1]]), ["answered twice"]),
        (lambda f: f.drop(columns="answer"), ["no column 'answer'"]),
    ],
)  # fmt: skip
def test_bad_answers_are_one_line_and_change_nothing(tmp_path, edit, fragments):
    files = Files(tmp_path)
    args, review = _started(files)
    edit(pd.read_csv(review)).to_csv(review, index=False)
    before = _snapshot(files.out_dir)
    assert_refused(
        invoke([*args, "--answers", str(review)]),
        files.out_dir,
        before,
        "result.review-1.csv",
        *fragments,
    )


def test_a_label_studio_task_without_annotation_is_a_missing_answer(tmp_path):
    files = Files(tmp_path)
    args, _ = _started(files)
    tasks = label_studio_export(json.loads((files.out_dir / "result.review-1.json").read_text()))
    tasks[1]["annotations"] = tasks[1]["annotations"][:1]  # only the cancelled one
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    before = _snapshot(files.out_dir)
    assert_refused(
        invoke([*args, "--answers", str(export)]),
        files.out_dir,
        before,
        "export.json",
        "task 2 (id 101)",
        "has no answer",
    )


def test_state_version_options_and_inputs_are_checked(tmp_path):
    files = Files(tmp_path)
    args, review = _started(files)
    state_path = files.out_dir / STATE
    state = json.loads(state_path.read_text())
    before = _snapshot(files.out_dir)
    # another seed, another --review
    for flag, value, fragment in (
        ("--seed", "5", "--seed is 5 here but was 0"),
        ("--review", "1", "--review is 1 here but was 2"),
    ):
        changed = (
            [a for a in args if a not in ("--review", str(REVIEW))]
            if flag == "--review"
            else list(args)
        )
        result = invoke([*changed, flag, value, "--answers", str(review)])
        assert_refused(result, files.out_dir, before, fragment)
    # another pool file
    pool = files.pool.copy()
    pool.loc[0, "x1"] += 1
    pool.to_csv(files.paths["unlabeled"], index=False)
    assert_refused(
        invoke([*args, "--answers", str(review)]),
        files.out_dir,
        before,
        "the unlabeled file is not the one",
    )
    files.pool.to_csv(files.paths["unlabeled"], index=False)
    # another version of the state file
    state_path.write_text(json.dumps({**state, "version": STATE_VERSION + 1}))
    before = _snapshot(files.out_dir)
    assert_refused(
        invoke([*args, "--answers", str(review)]),
        files.out_dir,
        before,
        STATE,
        f"version {STATE_VERSION + 1}",
    )
    state_path.write_text("{not json")
    before = _snapshot(files.out_dir)
    assert_refused(
        invoke([*args, "--answers", str(review)]), files.out_dir, before, STATE, "not valid JSON"
    )
    state_path.unlink()
    before = _snapshot(files.out_dir)
    assert_refused(
        invoke([*args, "--answers", str(review)]), files.out_dir, before, "no review state", STATE
    )


def test_a_pending_review_is_not_overwritten_and_a_finished_one_not_resumed(tmp_path):
    files = Files(tmp_path)
    args, _ = _started(files)
    before = _snapshot(files.out_dir)
    assert_refused(invoke(args), files.out_dir, before, STATE, "waiting for answers (round 1)")
    run_review_rest = [*args, "--answers"]
    for r in range(1, ROUNDS + 1):
        assert_ok(invoke([*run_review_rest, str(answer_csv(r, files.out_dir))]))
    before = _snapshot(files.out_dir)
    last = str(files.out_dir / f"result.review-{ROUNDS}.csv")
    assert_refused(invoke([*run_review_rest, last]), files.out_dir, before, "is finished")
    assert_ok(invoke(args))  # a new review may start once the last one is done


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--answers", "x.csv"], "--answers resumes a --review run"),
        (["--review", "9"], f"--review 9 is more than --budget {BUDGET}"),
        (["--review", "1", "--answers", "nope.csv"], "answers file 'nope.csv' does not exist"),
        # found in round 1: -q keeps the progress bar (cleared on a terminal) off stderr
        (["--review", "1", "--strategy", "self-training", "-q"], "gives no margins"),
    ],
)
def test_review_option_errors(tmp_path, extra, fragment):
    files = Files(tmp_path)
    before = _snapshot(files.out_dir)
    assert_refused(invoke(files.args(*extra)), files.out_dir, before, fragment)


def test_review_stop_in_json(tmp_path):
    files = Files(tmp_path)
    result = invoke(files.args("--review", "1", "--json"))
    assert_ok(result)
    doc = json.loads(result.stdout)
    assert doc["status"] == "review" and doc["round"] == 1 and doc["rows"] == 1
    assert Path(doc["review_csv"]).name == "result.review-1.csv"
    assert Path(doc["state"]).name == STATE
    assert sorted(os.listdir(files.out_dir)) == sorted(
        ["result.review-1.csv", "result.review-1.json", "result.review.xml", STATE]
    )


def test_review_needs_an_output_file(tmp_path):
    files = Files(tmp_path)
    result = invoke(files.args("--review", "1", output="-"))
    assert result.exit_code == 2 and "--review needs --output FILE" in result.stderr


# ---------------------------------------------------------------- a real Label Studio


def _label_studio() -> str | None:
    """The ``label-studio`` command: $SALUTARY_LABEL_STUDIO, or on the PATH."""
    found = os.environ.get("SALUTARY_LABEL_STUDIO") or shutil.which("label-studio")
    return found if found and os.access(found, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabelStudio:
    """A Label Studio server on 127.0.0.1 with a fresh data folder, spoken to over its API."""

    TOKEN = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, command: str, folder: Path) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        env = {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(folder),
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        }
        self.log = (folder / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [
                command, "start", "--no-browser", "--internal-host", "127.0.0.1",
                "--port", self.url.rsplit(":", 1)[1], "--username", "review@example.com",
                "--password", "review-pass-123", "--user-token", self.TOKEN,
            ],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.proc.returncode}")
            try:
                self.call("GET", "/api/projects")
                return
            except OSError:
                time.sleep(1)
        raise TimeoutError(f"label-studio did not answer within {seconds} s")

    def call(self, method: str, path: str, body=None):
        req = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Token {self.TOKEN}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    command = _label_studio()
    if command is None:
        pytest.skip("label-studio is not installed (set SALUTARY_LABEL_STUDIO or put it on PATH)")
    server = LabelStudio(command, tmp_path_factory.mktemp("label-studio"))
    try:
        server.wait(300)
        yield server
    finally:
        server.stop()


def test_round_trip_through_a_real_label_studio(tmp_path, label_studio):
    """Each round: a project with the written config, the review tasks imported with their
    predictions, one annotation per task made through the API, the JSON export resumed."""
    files = Files(tmp_path)
    args = files.args("--review", str(REVIEW))
    assert_ok(invoke(args))
    for r in range(1, ROUNDS + 1):
        config = (files.out_dir / "result.review.xml").read_text()
        tasks = json.loads((files.out_dir / f"result.review-{r}.json").read_text())
        project = label_studio.call(
            "POST", "/api/projects", {"title": f"review {r}", "label_config": config}
        )
        pid = project["id"]
        label_studio.call("POST", f"/api/projects/{pid}/import", tasks)
        listed = label_studio.call("GET", f"/api/tasks?project={pid}&fields=all")
        listed = listed["tasks"] if isinstance(listed, dict) else listed
        assert len(listed) == REVIEW
        for task in listed:
            data = task["data"]
            choice = person(data["salutary_row"], data["salutary_suggestion"])
            label_studio.call(
                "POST", f"/api/tasks/{task['id']}/annotations",
                {"result": [{
                    "from_name": "label", "to_name": "row", "type": "choices",
                    "value": {"choices": [choice]},
                }]},
            )  # fmt: skip
        export = label_studio.call("GET", f"/api/projects/{pid}/export?exportType=JSON")
        assert all(len(t["predictions"]) == 1 for t in export)  # the pre-annotations came in
        path = tmp_path / f"export-{r}.json"
        path.write_text(json.dumps(export))
        assert_ok(invoke([*args, "--answers", str(path)]))
    (tmp_path / "csv").mkdir()
    expected = Files(tmp_path / "csv")
    run_review(expected, answer_csv)
    pd.testing.assert_frame_equal(pd.read_csv(files.output), pd.read_csv(expected.output))


# ------------------------------------------------------------------ the documented commands


def test_the_documented_review_commands_run_on_a_bundled_dataset(tmp_path, monkeypatch):
    """docs/your-files.md's --review and --answers commands, as written, on Electrical Grid
    Stability; the answers are the pool's hidden labels."""
    page = Path(__file__).resolve().parents[1] / "docs" / "your-files.md"
    start = page.read_text(encoding="utf-8").index("## Reviewing the least certain labels")
    start_line = page.read_text(encoding="utf-8")[:start].count("\n") + 1
    (_, block), *_ = [b for b in fenced_blocks(page, "bash") if b[0] > start_line]
    commands = [
        shlex.split(c, comments=True)
        for c in block.replace("\\\n", " ").splitlines()
        if c.startswith("salutary label")
    ]
    first, resume = commands
    assert "--review" in first and resume[-2:] == ["--answers", "reviewed.review-1.csv"]
    df = load_frame("electrical_grid").sample(frac=1, random_state=0)
    monkeypatch.chdir(tmp_path)
    df[:200].to_csv("labeled.csv", index=False)
    df[200:1200].to_csv("validation.csv", index=False)
    df[1200:].drop(columns="stabf").to_csv("pool.csv", index=False)
    truth = df[1200:]["stabf"].to_numpy()

    assert_ok(invoke(first[1:]))
    for r in range(1, 6):
        review = pd.read_csv(f"reviewed.review-{r}.csv")
        assert len(review) == 3
        review["answer"] = truth[review["salutary_row"] - 1]
        review.to_csv(f"reviewed.review-{r}.csv", index=False)
        assert_ok(invoke([*resume[1:-1], f"reviewed.review-{r}.csv"]))
    out = pd.read_csv("reviewed.csv")
    human = out[out["salutary_source"] == "human"]
    assert len(out) == 100 and len(human) == 15
    assert (human["stabf"].to_numpy() == truth[human["salutary_row"] - 1]).all()
