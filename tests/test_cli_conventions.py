"""Command-line conventions (issue 21): a fast start, -h, -q/--verbose, `-` for standard
input and output, --json, shell completion, a short `salutary datasets`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_cli import (
    BUDGET,
    ROUNDS,
    Files,
    assert_bad_input,
    assert_ok,
    invoke,
    make_frame,
    read,
    runner,
)

import salutary.cli._label_work as label_work
from salutary.cli import COMMANDS, app, command
from salutary.cli._common import ORACLE_FREE_STRATEGIES, ORACLE_STRATEGIES
from salutary.cli._finetune import ARMS
from salutary.datasets import list_datasets
from salutary.finetune import ARMS as FINETUNE_ARMS
from salutary.strategies import STRATEGIES, oracle_free_strategies

SRC = str(Path(label_work.__file__).parents[2])
HEAVY = ("numpy", "pandas", "sklearn", "scipy", "matplotlib", "pyarrow", "salutary.labeler",
         "salutary.tabular", "salutary.strategies", "salutary.datasets")  # fmt: skip


def _modules_after(
    args: list[str], tmp_path: Path
) -> tuple[list[str], subprocess.CompletedProcess]:
    """The heavy modules imported by ``salutary ARGS`` in a fresh process."""
    code = (
        "import sys\n"
        "from salutary.cli import main\n"
        f"sys.argv = ['salutary', *{args!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "100"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
        check=False,
    )  # fmt: skip
    line = next(x for x in done.stderr.splitlines() if x.startswith("HEAVY="))
    return [m for m in line[len("HEAVY=") :].split(",") if m], done


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["label", "--help"],
        ["run", "-h"],
        ["finetune", "--help"],
        ["datasets", "--help"],
        ["label", "-l", "nope.csv", "-u", "u.csv", "-V", "v.csv", "-t", "y", "-o", "o.csv"],
        ["label", "--no-such-option"],
    ],
    ids=" ".join,
)
def test_help_version_and_usage_errors_import_no_numerical_module(args, tmp_path):
    heavy, done = _modules_after(args, tmp_path)
    assert heavy == [], (heavy, done.stderr)
    if "nope.csv" in args:
        assert "error: labeled file 'nope.csv' does not exist" in done.stderr


def test_running_a_command_imports_its_work(tmp_path):
    heavy, _ = _modules_after(["datasets"], tmp_path)
    assert "pandas" in heavy and "salutary.datasets" in heavy


# ------------------------------------------------------------------------ help, -h


@pytest.mark.parametrize("name", [None, *COMMANDS])
def test_dash_h_is_help(name):
    args = [name] if name else []
    short, long = invoke([*args, "-h"]), invoke([*args, "--help"])
    assert_ok(short)
    assert short.stdout == long.stdout
    assert "Usage: salutary" in short.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_the_listed_help_line_is_the_commands_own(name):
    """`salutary --help` lists the commands without importing them: its line for each is
    a copy, which must stay the first paragraph of the command's help."""
    real = command(name)
    first = " ".join((real.help or "").split("\n\n")[0].split())
    assert COMMANDS[name][1] == first


def test_copied_names_match_the_registries():
    assert list(ORACLE_FREE_STRATEGIES) == oracle_free_strategies()
    assert list(ORACLE_STRATEGIES) == [n for n, c in STRATEGIES.items() if c.requires_oracle]
    assert tuple(ARMS) == tuple(FINETUNE_ARMS)


def test_usage_errors_are_one_line():
    for args, fragment in (
        (["label", "-l", "a.csv"], "Missing option '--unlabeled'"),
        (["bogus"], "No such command 'bogus'"),
        (["run", "--seeds", "x"], "Invalid value for '--seeds'"),
        (["--bogus"], "No such option: --bogus"),
    ):
        result = invoke(args)
        assert result.exit_code == 2, args
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert fragment in lines[0] and "--help" in lines[0]
        assert result.stdout == ""


# ---------------------------------------------------------------------- completion


def test_show_completion_prints_a_bash_script():
    result = invoke(["--show-completion", "bash"])
    assert_ok(result)
    assert "_SALUTARY_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _salutary_completion salutary" in result.stdout


@pytest.mark.parametrize(
    ("words", "expected"), [("salutary la", "label"), ("salutary label --unl", "--unlabeled")]
)
def test_completion_completes_commands_and_their_options(words, expected, tmp_path):
    env = {
        **os.environ, "PYTHONPATH": SRC, "_SALUTARY_COMPLETE": "complete_bash",
        "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1),
    }  # fmt: skip
    code = "import sys; from salutary.cli import main; sys.argv = ['salutary']; main()"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert expected in done.stdout.split(), (done.stdout, done.stderr)


# -------------------------------------------------------------- -q, --verbose, -v


def _half_known(files: Files) -> tuple[Path, pd.DataFrame]:
    pool = files.pool.copy()
    pool["species"] = None
    pool.loc[:9, "species"] = make_frame(200, 2)["species"].iloc[:10].to_numpy()
    return files.paths["unlabeled"].with_name("half_known.csv").resolve(), pool


def test_quiet_drops_progress_and_notes_but_not_results(tmp_path):
    files = Files(tmp_path)
    path, pool = _half_known(files)
    pool.to_csv(path, index=False)
    loud = invoke(files.args(unlabeled=path))
    assert_ok(loud)
    assert "note: 10 rows" in loud.stderr and "salutary labeling" in loud.stderr
    files.output.unlink()
    quiet = invoke(files.args("-q", unlabeled=path))
    assert_ok(quiet)
    assert "note:" not in quiet.stderr and "salutary labeling" not in quiet.stderr
    assert quiet.stdout == loud.stdout and "Wrote 15 rows" in quiet.stdout
    assert len(read(files.output)) == BUDGET * ROUNDS


def test_verbose_prints_a_line_per_round(tmp_path):
    files = Files(tmp_path)
    plain = invoke(files.args())
    assert "round 1:" not in plain.stderr
    files.output.unlink()
    result = invoke(files.args("-v"))
    assert_ok(result)
    rounds = [line for line in result.stderr.splitlines() if line.startswith("round ")]
    assert [line.split(":")[0] for line in rounds] == [f"round {r}" for r in range(1, ROUNDS + 1)]
    assert all(f"{BUDGET} rows labeled" in line for line in rounds)
    assert "read 60 labeled, 200 unlabeled and 60 validation rows" in result.stderr


def test_quiet_and_verbose_together_is_an_error(tmp_path):
    files = Files(tmp_path)
    assert_bad_input(invoke(files.args("-q", "--verbose")), files.out_dir, "--quiet and --verbose")


def test_validation_has_the_short_flag_capital_v_and_old_dash_v_explains(tmp_path):
    files = Files(tmp_path)
    args = files.args()
    i = args.index("--validation")
    args[i] = "-V"
    assert_ok(invoke(args))
    files.output.unlink()
    args[i] = "-v"  # the old meaning: one line saying what -v is now
    line = assert_bad_input(invoke(args), files.out_dir, "-v now means --verbose", "--validation")
    assert "-V" in line


# ------------------------------------------------------------- standard input/output


def test_unlabeled_from_standard_input_gives_the_same_file(tmp_path):
    files = Files(tmp_path)
    assert_ok(invoke(files.args()))
    expected = files.output.read_bytes()
    files.output.unlink()
    text = files.paths["unlabeled"].read_text()
    result = runner_invoke(files.args(unlabeled=Path("-")), text)
    assert_ok(result)
    assert files.output.read_bytes() == expected


def test_parquet_on_standard_input_is_recognized_by_its_magic_bytes(tmp_path):
    files = Files(tmp_path)
    assert_ok(invoke(files.args()))
    expected = read(files.output)
    files.output.unlink()
    buffer = io.BytesIO()
    files.pool.to_parquet(buffer, index=False)
    assert buffer.getvalue()[:4] == b"PAR1"
    result = runner_invoke(files.args(labeled=Path("-")), None)  # wrong input: labeled
    assert result.exit_code == 2
    files.output.unlink(missing_ok=True)
    result = runner_invoke(files.args(unlabeled=Path("-")), buffer.getvalue())
    assert_ok(result)
    pd.testing.assert_frame_equal(read(files.output), expected)


def test_an_error_in_standard_input_names_it(tmp_path):
    files = Files(tmp_path)
    bad = files.pool.copy()
    bad["x3"] = bad["x3"].astype(object)
    bad.loc[4, "x3"] = "n/a?"
    result = runner_invoke(files.args(unlabeled=Path("-")), bad.to_csv(index=False))
    line = assert_bad_input(result, files.out_dir, "unlabeled file '-' (standard input)")
    assert "row 5 (line 6)" in line and "salutary-stdin" not in line


def test_only_one_input_can_be_standard_input(tmp_path):
    files = Files(tmp_path)
    args = files.args(unlabeled=Path("-"), validation=Path("-"))
    result = runner_invoke(args, "x")
    assert_bad_input(result, files.out_dir, "--unlabeled - and --validation -", "only one")


def test_output_to_standard_output_is_csv_and_nothing_else(tmp_path):
    files = Files(tmp_path)
    assert_ok(invoke(files.args()))
    expected = files.output.read_text()
    files.output.unlink()
    result = invoke(files.args(output=Path("-")))
    assert_ok(result)
    assert result.stdout == expected  # the file's bytes, and nothing else
    assert "Wrote 15 rows" in result.stderr and "standard output" in result.stderr
    assert os.listdir(files.out_dir) == [] and not Path("-").exists()
    quiet = invoke(files.args("-q", output=Path("-")))
    assert quiet.stdout == expected and "Wrote" not in quiet.stderr


def test_json_and_output_to_standard_output_are_refused_together(tmp_path):
    files = Files(tmp_path)
    result = invoke(files.args("--json", output=Path("-")))
    assert_bad_input(result, files.out_dir, "--json and --output -")


def runner_invoke(args: list[str], stdin: str | bytes | None):
    return runner.invoke(app, args, input=stdin, env={"COLUMNS": "120"})


# ---------------------------------------------------------------------------- --json


def test_label_json_matches_the_written_file(tmp_path):
    files = Files(tmp_path)
    result = invoke(files.args("--json"))
    assert_ok(result)
    doc = json.loads(result.stdout)  # all of stdout is one document
    out = read(files.output)
    assert doc["command"] == "label"
    assert doc["output"] == str(files.output)
    assert doc["rows"] == len(out) == BUDGET * ROUNDS
    assert doc["labels"] == {str(k): int(v) for k, v in out["species"].value_counts().items()}
    assert doc["columns"] == list(out.columns)
    assert (doc["budget"], doc["rounds"], doc["strategy"]) == (BUDGET, ROUNDS, "salutary-newton")
    assert doc["input_rows"] == {"labeled": 60, "unlabeled": 200, "validation": 60}
    assert doc["pool_rows"] == 200 and doc["known_rows"] == 0
    assert sorted(doc["classes"]) == ["cat", "dog", "fish"]


def test_run_json_matches_the_written_files(tmp_path):
    out = tmp_path / "res"
    args = ["run", "-d", "breast_cancer", "-n", "2", "-r", "2", "-b", "5", "-s", "random",
            "salutary", "--initial", "50", "-o", str(out), "--json"]  # fmt: skip
    result = invoke(args)
    assert_ok(result)
    doc = json.loads(result.stdout)
    summary = pd.read_csv(out / "summary.csv")
    config = json.loads((out / "config.json").read_text())
    assert doc["dataset"] == "breast_cancer" and doc["output"] == str(out)
    assert set(doc["files"]) == {"results.csv", "summary.csv", "config.json", "learning_curve.png"}
    assert all(Path(p).exists() for p in doc["files"].values())
    assert list(doc["strategies"]) == ["random", "salutary"]
    assert doc["strategies"]["random"]["oracle"] is True
    assert doc["strategies"]["random"]["label_agreement"] is None
    assert 0 <= doc["strategies"]["salutary"]["label_agreement"] <= 1
    for strategy, part in summary.groupby("strategy"):
        rounds = doc["strategies"][strategy]["rounds"]
        assert [r["round"] for r in rounds] == part["round"].tolist()
        assert [r["mean"] for r in rounds] == pytest.approx(part["mean"].tolist(), abs=1e-12)
        assert [r["std"] for r in rounds] == pytest.approx(part["std"].tolist(), abs=1e-12)
    assert doc["settings"]["seeds"] == config["seeds"] == [0, 1]
    assert doc["split_sizes"] == config["split_sizes"]


def test_datasets_json_lists_every_dataset():
    result = invoke(["datasets", "--json"])
    assert_ok(result)
    doc = json.loads(result.stdout)
    infos = list_datasets()
    assert [d["name"] for d in doc["datasets"]] == [i.name for i in infos]
    for entry, info in zip(doc["datasets"], infos, strict=True):
        assert set(entry) == {"name", "kind", "rows", "features", "classes", "installed",
                              "default", "description", "source", "install"}  # fmt: skip
        assert (entry["rows"], entry["features"], entry["classes"]) == (
            info.n_samples, info.n_features, info.n_classes
        )  # fmt: skip
        assert entry["installed"] == info.available()
        assert (entry["install"] is None) == entry["installed"] or not info.install_hint
    assert [d["name"] for d in doc["datasets"] if d["default"]] == ["wine_quality"]
    one = json.loads(invoke(["datasets", "wine", "--json"]).stdout)
    assert [d["name"] for d in one["datasets"]] == ["wine"]


def test_bench_and_report_json(tmp_path):
    store = tmp_path / "store"
    args = ["bench", "-d", "breast_cancer", "-p", "paper", "-s", "random", "-n", "1",
            "--store", str(store), "-q", "--json"]  # fmt: skip
    result = invoke(args)
    assert_ok(result)
    doc = json.loads(result.stdout)
    assert (doc["runs"], doc["ran"], doc["failed"]) == (1, 1, 0)
    again = json.loads(invoke(args).stdout)
    assert (again["ran"], again["already_stored"]) == (0, 1)
    report = invoke(["report", "--store", str(store), "--json"])
    assert_ok(report)
    rdoc = json.loads(report.stdout)
    runs = pd.read_csv(rdoc["files"]["runs.csv"])
    assert rdoc["runs"] == len(runs) == 1
    assert Path(rdoc["report"]).name == "REPORT.md" and Path(rdoc["report"]).exists()


# ------------------------------------------------------------------------ datasets


def test_datasets_fits_a_screen_of_80_columns():
    result = invoke_80(["datasets"])
    assert_ok(result)
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert len(lines) <= len(list_datasets()) + 6  # header, rule, one line each, a note
    for info in list_datasets():
        [row] = [line for line in lines if line.split() and line.split()[0] == info.name]
        cells = row.replace("*", "").split()
        assert cells == [
            info.name, info.kind, f"{info.n_samples:,}", str(info.n_features),
            str(info.n_classes), "yes" if info.available() else "no",
        ]  # fmt: skip
        assert info.description[:30] not in result.stdout


def test_datasets_describes_the_named_ones_and_all_with_long():
    infos = {i.name: i for i in list_datasets()}
    one = invoke_80(["datasets", "mnist"])
    assert_ok(one)
    text = " ".join(one.stdout.split())
    assert "mnist" in text and infos["mnist"].source in text
    assert infos["wine"].source not in text
    if not infos["mnist"].available():
        assert " ".join(infos["mnist"].install_hint.split()) in text
    every = " ".join(invoke_80(["datasets", "--long"]).stdout.split())
    assert all(i.source in every for i in infos.values())


def test_datasets_unknown_name_is_one_line(tmp_path):
    result = invoke(["datasets", "nope"])
    assert_bad_input(result, tmp_path, "unknown dataset 'nope'", "wine_quality")


def invoke_80(args: list[str]):
    return runner.invoke(app, args, env={"COLUMNS": "80"})


def test_a_signal_wrapped_by_an_import_still_ends_quietly():
    """Commands import their work late: a SIGTERM then may arrive inside an import, where
    Python wraps it (a RuntimeError of __set_name__); it is still status 143, one line."""
    from salutary.cli import Terminated, main

    def wrapped(*args, **kwargs):
        try:
            raise Terminated
        except Terminated as exc:
            raise RuntimeError("Error calling __set_name__") from exc

    real = app.__class__.__call__
    try:
        app.__class__.__call__ = wrapped  # type: ignore[method-assign]
        with pytest.raises(SystemExit) as ended:
            main()
    finally:
        app.__class__.__call__ = real  # type: ignore[method-assign]
    assert ended.value.code == 143


def test_a_reader_that_stops_early_is_no_bug(tmp_path):
    """`salutary label ... -o - | head`: the closed pipe ends it quietly (status 1)."""
    files = Files(tmp_path)
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "120"}
    code = "import sys; from salutary.cli import main; sys.argv[0] = 'salutary'; main()"
    for output, extra in ((Path("-"), "-q"), (files.output, "--json")):
        args = [sys.executable, "-c", code, *files.args(extra, output=output)]
        proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        proc.stdout.close()  # the reader is gone before anything is written
        err = proc.stderr.read()
        proc.wait(timeout=120)
        assert proc.returncode == 1, err
        assert "Traceback" not in err and "error:" not in err, err


def test_python_dash_m_salutary_cli_is_the_command():
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-m", "salutary.cli", "--version"],
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("salutary ")
    done = subprocess.run([sys.executable, "-m", "salutary.cli", "-h"],
                          capture_output=True, text=True, env=env, check=False)  # fmt: skip
    assert "Usage: salutary [OPTIONS] COMMAND" in done.stdout
