"""The sdist and the wheel as a user gets them.

A clean copy of the project is built into an sdist with the installed setuptools (offline,
no build isolation), and the wheel is built from the unpacked sdist, as ``python -m build``
does: so the wheel's contents also prove that the sdist is complete. The tests then read
the archives: the wheel's package files, entry point and metadata (licence, classifiers),
and the sdist's copy of every file README.md links to, computed from README.md now.
"""

from __future__ import annotations

import configparser
import email.parser
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import salutary
from salutary.cli import main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PAPER = "https://arxiv.org/abs/2405.17627"

# Left out of the copy: a release is built from a clean checkout, and a stale egg-info or
# build/ in the working tree would leak files into the archives. Paths from the root.
_NOT_SOURCE = {
    ".git",
    ".venv",
    "build",
    "dist",
    "site",
    "salutary-results",
    ".hypothesis",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "benchmarks/store",
}


def _not_source(folder: str, names: list[str]) -> set[str]:
    here = Path(folder).relative_to(ROOT)
    return {
        name
        for name in names
        if (here / name).as_posix() in _NOT_SOURCE
        or name == "__pycache__"
        or name.endswith(".egg-info")
    }


_BUILD = """
import sys
from setuptools import build_meta
hook = build_meta.build_sdist if sys.argv[1] == "sdist" else build_meta.build_wheel
print(hook(sys.argv[2]))
"""


@dataclass
class Dists:
    sdist: Path
    wheel: Path

    def sdist_names(self) -> set[str]:
        """Paths in the sdist relative to its top folder (``salutary-0.1.0/``)."""
        with tarfile.open(self.sdist) as tar:
            return {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}

    def wheel_names(self) -> set[str]:
        with zipfile.ZipFile(self.wheel) as whl:
            return set(whl.namelist())

    def wheel_read(self, name: str) -> bytes:
        with zipfile.ZipFile(self.wheel) as whl:
            return whl.read(name)

    @property
    def dist_info(self) -> str:
        name, ver = self.wheel.name.split("-")[:2]
        return f"{name}-{ver}.dist-info"

    def metadata(self) -> Message:
        text = self.wheel_read(f"{self.dist_info}/METADATA").decode("utf-8")
        return email.parser.Parser().parsestr(text)


def _build(kind: str, source: Path, out: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, kind, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"building the {kind} failed:\n{done.stderr[-4000:]}"
    return out / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> Dists:
    # The build runs in the installed setuptools, so it must be one the project builds with.
    for spec in PYPROJECT["build-system"]["requires"]:
        req = Requirement(spec)
        have = installed_version(req.name)
        assert req.specifier.contains(have), (
            f"{req.name} {have} is installed, the build needs {spec}: install the test extra"
        )
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=_not_source)
    out = work / "dist"
    sdist = _build("sdist", source, out)
    with tarfile.open(sdist) as tar:
        # the safe filter where this Python has it (3.10.12 and later)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(work / "unpacked", **safe)
    (unpacked,) = (work / "unpacked").iterdir()
    wheel = _build("wheel", unpacked, out)
    return Dists(sdist=sdist, wheel=wheel)


# Inline links and images, [text](target "title"), also with text over several lines.
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# Reference definitions, [label]: target
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
_HTML = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
_CODE = re.compile(r"^```.*?^```[ \t]*$|`[^`\n]*`", re.MULTILINE | re.DOTALL)


def relative_link_targets(markdown: str) -> set[str]:
    """Files and folders a Markdown text links to by relative path (anchors dropped)."""
    text = _CODE.sub("", markdown)  # a link in code is shown, not followed
    targets = set()
    for pattern in (_INLINE, _REFERENCE, _HTML):
        for match in pattern.finditer(text):
            target = match.group(1).split("#", 1)[0].split("?", 1)[0]
            if target and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^/", target):
                targets.add(target.removeprefix("./"))
    return targets


def test_relative_link_targets_finds_every_kind_of_relative_link():
    text = (
        "See [the\nscaling notes](docs/scaling.md#dask) and ![curve](./fig.png).\n"
        '[`report`](benchmarks/results/REPORT.md "the report"), [site](https://x.org/a.md),\n'
        "[mail](mailto:a@b.c), [top](#usage), [abs](/etc/passwd), [dir](docs/)\n"
        '<img src="logo.svg"> <a href="BENCHMARKS.md?plain=1">b</a>\n'
        "`[code](not-a-link.md)`\n```\n[block](neither.md)\n```\n"
        "[ref]: CHANGELOG.md\n"
    )
    assert relative_link_targets(text) == {
        "docs/scaling.md",
        "fig.png",
        "benchmarks/results/REPORT.md",
        "docs/",
        "logo.svg",
        "BENCHMARKS.md",
        "CHANGELOG.md",
    }


def readme_targets() -> list[str]:
    targets = sorted(relative_link_targets((ROOT / "README.md").read_text(encoding="utf-8")))
    assert targets, "README.md links to no file: the link parser no longer reads it"
    return targets


def test_sdist_holds_every_file_the_readme_links_to(dists):
    names = dists.sdist_names()
    missing = []
    for target in readme_targets():
        path = target.rstrip("/")
        if (ROOT / path).is_dir():
            found = any(name.startswith(path + "/") for name in names)
        else:
            found = path in names
        if not found:
            where = "" if (ROOT / path).exists() else " (and not in the repository either)"
            missing.append(target + where)
    assert not missing, f"README.md links to files the sdist lacks: {missing}"


def test_sdist_holds_licence_citation_changelog_and_the_tests(dists):
    names = dists.sdist_names()
    for name in ("LICENSE", "CITATION.cff", "CHANGELOG.md", "README.md", "pyproject.toml"):
        assert name in names
    tests = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("*.py")}
    assert "tests/conftest.py" in tests
    assert tests <= names, sorted(tests - names)
    assert not [name for name in names if name.endswith(".pyc")]


def test_wheel_holds_the_typing_marker_and_the_bundled_data(dists):
    names = dists.wheel_names()
    assert "salutary/py.typed" in names
    data = [p for p in (ROOT / "src/salutary/data").iterdir() if p.suffix in {".parquet", ".md"}]
    assert any(p.suffix == ".parquet" for p in data)
    for path in data:
        name = f"salutary/data/{path.name}"
        assert name in names, name
        assert dists.wheel_read(name) == path.read_bytes(), name
    # the wheel installs only the package: no tests, benchmarks or docs at the top level
    assert {name.split("/")[0] for name in names} == {"salutary", dists.dist_info}


def test_wheel_holds_every_module_and_no_other(dists):
    # a subpackage that package discovery misses would install without its modules
    src = ROOT / "src"
    modules = {p.relative_to(src).as_posix() for p in (src / "salutary").rglob("*.py")}
    assert {name for name in dists.wheel_names() if name.endswith(".py")} == modules


def test_wheel_declares_the_salutary_command(dists):
    entry_points = configparser.ConfigParser()
    entry_points.read_string(dists.wheel_read(f"{dists.dist_info}/entry_points.txt").decode())
    assert dict(entry_points["console_scripts"]) == {"salutary": "salutary.cli:main"}
    assert callable(main)


def test_wheel_metadata_names_the_licence_and_carries_its_text(dists):
    meta = dists.metadata()
    assert meta["License-Expression"] == PYPROJECT["project"]["license"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    text = dists.wheel_read(f"{dists.dist_info}/licenses/LICENSE")
    assert text == (ROOT / "LICENSE").read_bytes()
    assert text.startswith(b"MIT License\n\nCopyright (c) 2026 The salutary developers\n")


def test_wheel_metadata_version_and_urls(dists):
    meta = dists.metadata()
    assert meta["Version"] == salutary.__version__
    assert meta.get_all("Project-URL") == [f"Paper, {PAPER}"]
    assert "influence functions" in meta["Keywords"].split(",")


def test_wheel_classifiers_cover_the_supported_pythons(dists):
    classifiers = dists.metadata().get_all("Classifier")
    assert classifiers == PYPROJECT["project"]["classifiers"]
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert "Intended Audience :: Science/Research" in classifiers
    assert any(c.startswith("Topic :: Scientific/Engineering") for c in classifiers)
    assert "Typing :: Typed" in classifiers
    # One classifier per minor version, from the floor of Requires-Python up, no gaps.
    requires = SpecifierSet(dists.metadata()["Requires-Python"])
    minors = sorted(
        Version(m.group(1))
        for c in classifiers
        if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))
    )
    assert minors, "no Python version classifier"
    assert all(requires.contains(v) for v in minors), (minors, requires)
    assert not requires.contains(f"3.{minors[0].minor - 1}"), "the floor is not listed"
    assert [v.minor for v in minors] == list(range(minors[0].minor, minors[-1].minor + 1))


def test_citation_file_is_cff_with_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    for key in ("cff-version", "message", "title", "authors"):
        assert cff.get(key), key
    assert cff["cff-version"] == "1.2.0"
    assert cff["type"] == "software"
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    assert cff["version"] == salutary.__version__
    assert cff["license"] == PYPROJECT["project"]["license"]
    papers = [r for r in cff.get("references", []) if r.get("url") == PAPER]
    assert len(papers) == 1, "the paper is not among the references"
    (paper,) = papers
    assert paper["title"] == "Salutary Labeling with Zero Human Annotation"
    assert [(a["given-names"], a["family-names"]) for a in paper["authors"]] == [
        ("Wenxiao", "Xiao"),
        ("Hongfu", "Liu"),
    ]
    assert paper["year"] == 2024
    assert ("doi", "10.48550/arXiv.2405.17627") in [
        (i["type"], i["value"]) for i in paper["identifiers"]
    ]


def test_changelog_has_an_entry_for_this_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/" in text
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert versions, "no version section"
    assert salutary.__version__ in versions
    assert versions[0] in {"Unreleased", salutary.__version__}
