"""The examples of the README and of the documentation pages run as written.

Each ```python block runs alone, as a script a reader saved it to would (so every block
imports and makes what it uses). A line of an example that ends in ``# prints: TEXT`` is
checked: what the statement it ends prints must be TEXT (several claims in one compound
statement, e.g. an ``if __name__ == "__main__":`` block, are its lines of output). The
README's command-line example runs as written, after the Python block that writes its
input files.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sklearn

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The guide pages; docs/reference/ is generated from the docstrings and holds no examples.
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
PRINTS = re.compile(r"#\s*prints:\s*(.*?)\s*$")


def fenced_blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """(line number of the first code line, code) of every ```language block of a page."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == f"```{language}":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            blocks.append((i + 2, "\n".join(lines[i + 1 : j]) + "\n"))
            i = j
        i += 1
    return blocks


def python_blocks(path: Path = README) -> list[tuple[int, str]]:
    """(line number of the first code line, code) of every ```python block of a page."""
    return fenced_blocks(path, "python")


def _needs(code: str) -> list[str]:
    """Optional packages a block imports (its test is skipped without them)."""
    needs = []
    if "salutary.embeddings" in code or "salutary.finetune" in code:
        needs.append("torch")
    if "salutary.distributed" in code:
        needs.append("distributed")
    return needs


def run_block(path: Path, first_line: int, code: str, namespace: dict) -> list[str]:
    """Run ``code`` statement by statement; the mismatches of its ``# prints:`` lines."""
    lines = code.splitlines()
    problems = []
    for statement in ast.parse(code).body:
        span = lines[statement.lineno - 1 : statement.end_lineno]
        claims = [m.group(1) for m in map(PRINTS.search, span) if m]
        line = first_line + statement.lineno - 1
        module = ast.Module(body=[statement], type_ignores=[])
        ast.increment_lineno(module, first_line - 1)  # tracebacks name the page's lines
        out = io.StringIO()
        with contextlib.redirect_stdout(out) if claims else contextlib.nullcontext():
            exec(compile(module, str(path), "exec"), namespace)
        if claims and out.getvalue().strip() != "\n".join(claims):
            problems.append(
                f"{path.name} line {line}: printed {out.getvalue().strip()!r}, "
                f"the page says {chr(10).join(claims)!r}"
            )
    return problems


def _examples() -> list:
    return [
        pytest.param(path, first_line, code, id=f"{path.relative_to(ROOT)}:{first_line}")
        for path in PAGES
        for first_line, code in python_blocks(path)
    ]


def test_readme_has_checked_examples():
    blocks = python_blocks()
    assert len(blocks) >= 2
    claims = [line for _, code in blocks for line in code.splitlines() if PRINTS.search(line)]
    assert len(claims) >= 3
    # a claim sits on a print statement, or it would check nothing
    for line in claims:
        assert line.lstrip().startswith("print("), line


def test_docs_pages_have_checked_examples():
    claims = [
        line
        for path in PAGES[1:]
        for _, code in python_blocks(path)
        for line in code.splitlines()
        if PRINTS.search(line)
    ]
    assert len(claims) >= 12
    for line in claims:
        assert line.lstrip().startswith("print("), line


def test_readme_stays_short_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text) <= 10_000  # a five-minute read; the long narrative lives in docs/
    first = re.search(r"```\w*\n(.*?)```", text, re.S).group(1).splitlines()
    assert [line.split()[:2] for line in first] == [["make", "run"], ["make", "test"]]


def test_readme_links_point_to_files_of_the_repository():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    relative = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in relative)
    missing = [link for link in relative if not (ROOT / link).exists()]
    assert not missing


@pytest.mark.parametrize(("path", "first_line", "code"), _examples())
def test_example_runs_alone_and_prints_what_it_claims(
    path, first_line, code, tmp_path, monkeypatch
):
    for package in _needs(code):
        pytest.importorskip(package)
    monkeypatch.setenv("SALUTARY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with sklearn.config_context():  # an example may set global options
        problems = run_block(path, first_line, code, {"__name__": "__main__"})
    assert not problems, "\n".join(problems)


def _salutary_env() -> dict[str, str]:
    """The environment in which ``salutary`` is this checkout's command (else a skip)."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    # the package of this checkout, whichever copy the installed script points at
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    if shutil.which("salutary", path=env["PATH"]) is None:
        pytest.skip("the salutary command is not installed")
    return env


def test_readme_command_line_example_runs_as_written(tmp_path, monkeypatch):
    label = re.compile(r"^salutary label\b", re.M)
    commands = [(n, code) for n, code in fenced_blocks(README, "bash") if label.search(code)]
    assert len(commands) == 1
    line, command = commands[0]
    # the Python block just before it writes the files the command reads
    first_line, setup = max((b for b in python_blocks() if b[0] < line), key=lambda b: b[0])
    monkeypatch.chdir(tmp_path)
    assert not run_block(README, first_line, setup, {"__name__": "__main__"})

    argv = shlex.split(command.replace("\\\n", " "), comments=True)
    assert argv[:2] == ["salutary", "label"]
    env = _salutary_env()
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    # what the README says salutary.csv holds: 5 rounds of 20 pool rows, labeled
    pool = pd.read_csv(tmp_path / "pool.csv")
    labeled = pd.read_csv(tmp_path / "labeled.csv")
    out = pd.read_csv(tmp_path / "salutary.csv")
    assert len(out) == 100
    assert set(pool.columns) < set(out.columns)
    assert {"stabf", "salutary_row", "salutary_round", "salutary_score"} <= set(out.columns)
    assert out["salutary_round"].value_counts().sort_index().to_dict() == {
        r: 20 for r in range(1, 6)
    }
    assert out["salutary_row"].is_unique
    assert out["salutary_row"].between(1, len(pool)).all()
    assert set(out["stabf"]) <= set(labeled["stabf"])
    # each row is the pool row it names (data rows counted from 1)
    rows = pool.iloc[out["salutary_row"] - 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(out[pool.columns], rows, check_exact=False)


def test_readme_bench_example_runs_as_written(tmp_path, monkeypatch):
    bench = re.compile(r"^salutary bench --data\b", re.M)
    commands = [(n, code) for n, code in fenced_blocks(README, "bash") if bench.search(code)]
    assert len(commands) == 1
    line, block = commands[0]
    # the Python block just before it writes the file the command reads
    first_line, setup = max((b for b in python_blocks() if b[0] < line), key=lambda b: b[0])
    monkeypatch.chdir(tmp_path)
    assert not run_block(README, first_line, setup, {"__name__": "__main__"})

    env = _salutary_env()
    ran = []
    for command in block.replace("\\\n", " ").splitlines():
        argv = shlex.split(command, comments=True)
        assert argv[0] == "salutary"
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        ran.append(argv[1])
    assert ran == ["bench", "report"]

    # what the README says: the runs of the file's rows, and a report comparing them
    stored = sorted(p.name for p in (tmp_path / "my-bench").glob("*.parquet"))
    assert stored == [
        f"diabetes__paper__{strategy}__{seed}.parquet"
        for strategy in ("random", "salutary-newton")
        for seed in (0, 1)
    ]
    report = (tmp_path / "my-bench-report" / "REPORT.md").read_text(encoding="utf-8")
    assert "## Protocol `paper` (2 seeds)" in report
    assert "| diabetes | " in report
    assert (tmp_path / "my-bench-report" / "curve_paper_diabetes.png").exists()
