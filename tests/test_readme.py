"""The README's Python examples run as written, top to bottom, and print what they claim.

Each ```python block runs alone, as a script a reader saved it to would (so every block
imports and makes what it uses). A line of an example that ends in ``# prints: TEXT`` is
checked: what that statement prints must be TEXT.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import pytest
import sklearn

README = Path(__file__).resolve().parents[1] / "README.md"
PRINTS = re.compile(r"#\s*prints:\s*(.*?)\s*$")


def python_blocks() -> list[tuple[int, str]]:
    """(line number of the first code line, code) of every ```python block of the README."""
    blocks, lines = [], README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            blocks.append((i + 2, "\n".join(lines[i + 1 : j]) + "\n"))
            i = j
        i += 1
    return blocks


def _needs(code: str) -> list[str]:
    """Optional packages a block imports (its test is skipped without them)."""
    return ["torch"] if "salutary.embeddings" in code or "salutary.finetune" in code else []


def run_block(first_line: int, code: str, namespace: dict) -> list[str]:
    """Run ``code`` statement by statement; the mismatches of its ``# prints:`` lines."""
    lines = code.splitlines()
    problems = []
    for statement in ast.parse(code).body:
        claim = PRINTS.search(lines[statement.end_lineno - 1])  # type: ignore[operator]
        line = first_line + statement.lineno - 1
        module = ast.Module(body=[statement], type_ignores=[])
        ast.increment_lineno(module, first_line - 1)  # tracebacks name README lines
        out = io.StringIO()
        with contextlib.redirect_stdout(out) if claim else contextlib.nullcontext():
            exec(compile(module, str(README), "exec"), namespace)
        if claim and out.getvalue().strip() != claim.group(1):
            problems.append(
                f"README.md line {line}: printed {out.getvalue().strip()!r}, "
                f"the README says {claim.group(1)!r}"
            )
    return problems


def test_readme_has_checked_examples():
    blocks = python_blocks()
    assert len(blocks) >= 4
    claims = [line for _, code in blocks for line in code.splitlines() if PRINTS.search(line)]
    assert len(claims) >= 5
    # a claim sits on a print statement, or it would check nothing
    for line in claims:
        assert line.lstrip().startswith("print("), line


@pytest.mark.parametrize(
    ("first_line", "code"), python_blocks(), ids=[f"line{n}" for n, _ in python_blocks()]
)
def test_readme_example_runs_alone_and_prints_what_it_claims(
    first_line, code, tmp_path, monkeypatch
):
    for package in _needs(code):
        pytest.importorskip(package)
    monkeypatch.setenv("SALUTARY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with sklearn.config_context():  # an example may set global options
        problems = run_block(first_line, code, {"__name__": "__main__"})
    assert not problems, "\n".join(problems)
