"""The package's architecture rules, checked on the source (issue 18).

* No import cycle between modules of ``salutary``, counting imports inside functions and
  the ``__init__`` of a subpackage that an import from outside it runs.
* No ``import`` statement inside a function or class: optional dependencies go through
  :func:`salutary._optional.import_optional`, and the package's own modules that are
  imported late (the public names of ``salutary``, the command line's commands) through
  :mod:`salutary._lazy`, always by a literal module name; these two are the only places
  that call importlib. Late imports count as imports for the cycle check.
* No cross-module import of a private name, and no import of a subpackage's private
  module from outside that subpackage (top-level private modules such as
  ``salutary._io`` are the package's shared internals and may be imported anywhere).
* No module over 800 lines; a ``py.typed`` marker.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import salutary

SRC = Path(salutary.__file__).parent
MAX_LINES = 800


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}
PACKAGES = {_module_name(p) for p in SRC.rglob("__init__.py")}


def _package_of(module: str) -> str:
    return module if module in PACKAGES else module.rpartition(".")[0]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every import of a module: (line, imported module, names, where it stands)."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.package = _package_of(module)
        self.found: list[tuple[int, str, list[str], str]] = []
        self._where = ["module"]

    def _scoped(self, node: ast.AST, where: str) -> None:
        self._where.append(where)
        self.generic_visit(node)
        self._where.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node, "function")

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]  # same handling

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node, "class")

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node):
            self._where.append("type-checking")
            for child in node.body:
                self.visit(child)
            self._where.pop()
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((node.lineno, alias.name, [], self._where[-1]))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        names = [a.name for a in node.names]
        self.found.append((node.lineno, target, names, self._where[-1]))


def _imports(module: str) -> list[tuple[int, str, list[str], str]]:
    visitor = _Imports(module)
    visitor.visit(ast.parse(MODULES[module].read_text(encoding="utf-8")))
    return visitor.found


IMPORTS = {m: _imports(m) for m in MODULES}


def _deferred_in(tree: ast.AST) -> list[tuple[int, str | None]]:
    """The late imports of a module: (line, module name) of each ``import_deferred(NAME)``
    call and each value of the table given to ``lazy_attributes``; None for a name that is
    not a literal string (which the checks refuse: they could not see the import)."""
    tables = {
        t.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    found: list[tuple[int, str | None]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name == "import_deferred":
            arg = node.args[0] if node.args else None
            literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            found.append((node.lineno, arg.value if literal else None))  # type: ignore[union-attr]
        elif name == "lazy_attributes":
            arg = node.args[1] if len(node.args) > 1 else None
            table = tables.get(arg.id) if isinstance(arg, ast.Name) else arg
            if not isinstance(table, ast.Dict):
                found.append((node.lineno, None))
                continue
            for value in table.values:
                literal = isinstance(value, ast.Constant) and isinstance(value.value, str)
                found.append((node.lineno, value.value if literal else None))  # type: ignore[union-attr]
    return found


DEFERRED = {
    m: _deferred_in(ast.parse(p.read_text(encoding="utf-8")))
    for m, p in MODULES.items()
    if m != "salutary._lazy"  # defines the functions, with a name given to it
}


def _targets(module: str, target: str, names: list[str]) -> set[str]:
    """The salutary modules an import runs: the module, the modules among the names
    imported from a package, and the ``__init__`` of every subpackage entered from
    outside it."""
    if target != "salutary" and not target.startswith("salutary."):
        return set()
    out = {target} if target in MODULES else set()
    out |= {f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES}
    parts = target.split(".")
    for i in range(2, len(parts)):
        pkg = ".".join(parts[:i])
        if pkg in PACKAGES and not (module == pkg or module.startswith(pkg + ".")):
            out.add(pkg)
    out.discard(module)
    return out


def _graph() -> dict[str, set[str]]:
    graph = {
        m: set().union(*(_targets(m, t, n) for _, t, n, _ in found)) if found else set()
        for m, found in IMPORTS.items()
    }
    for m, late in DEFERRED.items():
        for _, target in late:
            graph[m] |= _targets(m, target, []) if target else set()
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_cycle_and_a_subpackage_init() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    # Entering a subpackage from outside runs its __init__; from inside it does not.
    pkg = next(iter(sorted(PACKAGES - {"salutary"})))
    inner = next(m for m in MODULES if m.startswith(pkg + "."))
    assert pkg in _targets("salutary.somewhere", inner, [])
    assert pkg not in _targets(f"{pkg}.other", inner, [])


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_no_import_inside_functions() -> None:
    bad = [
        f"{MODULES[m].relative_to(SRC.parent)}:{line} imports {target or names} in a {where}"
        for m, found in IMPORTS.items()
        for line, target, names, where in found
        if where in ("function", "class")
    ]
    assert bad == []


def test_only_the_optional_and_lazy_helpers_import_dynamically() -> None:
    bad = []
    for m, path in MODULES.items():
        if m in ("salutary._optional", "salutary._lazy"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("import_module", "__import__"):
                bad.append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
            if isinstance(node, ast.Name) and node.id == "__import__":
                bad.append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
    assert bad == []


def test_late_imports_name_their_module_literally() -> None:
    bad = [
        f"{MODULES[m].relative_to(SRC.parent)}:{line}: {target!r}"
        for m, late in DEFERRED.items()
        for line, target in late
        if target is None or target not in MODULES
    ]
    assert bad == []
    # the package's public names and the commands are imported late: the check sees them
    assert {t for _, t in DEFERRED["salutary"]} >= {"salutary.labeler", "salutary.influence"}
    assert "salutary.cli._label" in {t for _, t in DEFERRED["salutary.cli"]}
    assert ("salutary.cli._label", "salutary.cli._label_work") in {
        (m, t) for m, late in DEFERRED.items() for _, t in late
    }


def test_the_checker_sees_late_imports_and_refuses_computed_names() -> None:
    code = (
        "T = {'A': 'salutary.model'}\n"
        "f, d = lazy_attributes(globals(), T)\n"
        "def g(name):\n"
        "    import_deferred('salutary.loop')\n"
        "    return import_deferred(name)\n"
    )
    assert sorted(_deferred_in(ast.parse(code)), key=str) == sorted(
        [(2, "salutary.model"), (4, "salutary.loop"), (5, None)], key=str
    )
    # a late import closing a cycle is a cycle
    assert "salutary.model" in _targets("salutary", "salutary.model", [])


def test_public_names_are_imported_on_first_use() -> None:
    for name in salutary.__all__:
        assert name in dir(salutary)
        obj = getattr(salutary, name)
        assert getattr(obj, "__module__", "salutary.strategies").startswith("salutary."), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        salutary.nope  # noqa: B018


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_name_crosses_a_module() -> None:
    bad = []
    for m, found in IMPORTS.items():
        here = _package_of(m)
        for line, target, names, _ in found:
            if not target.startswith("salutary"):
                continue
            where = f"{MODULES[m].relative_to(SRC.parent)}:{line}"
            for n in names:
                if not _private(n):
                    continue
                inside = here == target or here.startswith(target + ".")
                if not (f"{target}.{n}" in MODULES and inside):  # a private sibling module
                    bad.append(f"{where}: {target}.{n}")
            parts = target.split(".")
            # A private module of a subpackage is for that subpackage only.
            for i, part in enumerate(parts[2:], start=2):
                owner = ".".join(parts[:i])
                if _private(part) and not (here == owner or here.startswith(owner + ".")):
                    bad.append(f"{where}: {target} (private to {owner})")
    assert bad == []


def test_no_private_attribute_of_another_module() -> None:
    """``import salutary.x as m; m._name`` is a private name crossing modules too."""
    bad = []
    for path in MODULES.values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {
            (a.asname or a.name).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for a in node.names
            if a.name.startswith("salutary")
        }
        aliases |= {
            a.asname or a.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("salutary")
            for a in node.names
            if f"{node.module}.{a.name}" in MODULES
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                bad.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: {node.attr}")
    assert bad == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module: str) -> None:
    n = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{MODULES[module].relative_to(SRC.parent)} has {n} lines"


def test_typed_marker() -> None:
    assert (SRC / "py.typed").is_file()
