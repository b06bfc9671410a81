"""Griffe extension: the docstrings' Sphinx roles as links of the API reference.

The numpydoc docstrings use Sphinx roles (``:func:`load_frame```,
``:class:`~salutary.pool.ArrayPool```) and ``::`` before literal blocks, which
mkdocstrings would show as written. A role whose target is a public object of
``salutary`` becomes a cross-reference to its page (relative names are looked up from
the documented object outwards, as Sphinx does); any other target (NumPy, private
helpers) becomes inline code. Instance attributes without a docstring (``self.x = x``
of an estimator) are left out: the class's Parameters section documents them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj):`(~?)([^`]+)`")
LITERAL = re.compile(r"(\S)::[ \t]*$", re.M)


def _public_paths(pkg: griffe.Module, modules: list[str]) -> dict[str, str]:
    """Canonical path -> the path a reference page shows, for every object shown."""
    shown: dict[str, str] = {}

    def visit(obj: griffe.Object | griffe.Alias, path: str) -> None:
        try:
            target = obj.final_target if obj.is_alias else obj
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return
        if not target.path.startswith("salutary"):
            return
        # the deepest public module wins: salutary.labeler.SalutaryLabeler over salutary.*
        if path.count(".") >= shown.get(target.path, "").count("."):
            shown[target.path] = path
        if target.is_class:
            for name, member in target.members.items():
                if not name.startswith("_"):
                    visit(member, f"{path}.{name}")

    for module_path in modules:
        module = pkg if module_path == pkg.path else pkg.get_member(module_path[len("salutary.") :])
        exports = module.exports
        names = (
            [str(n) for n in exports]
            if exports
            else [n for n in module.members if not n.startswith("_")]
        )
        shown[module.path] = module.path
        for name in names:
            if name in module.members and not module.members[name].is_module:
                visit(module.members[name], f"{module.path}.{name}")
    return shown


def _resolve(obj: griffe.Object, name: str, collection: Any) -> griffe.Object | None:
    """The object ``name`` names in ``obj``'s docstring: absolute, or from its scopes."""
    scopes: list[Any] = []
    scope: Any = obj
    while scope is not None:
        scopes.append(scope)
        scope = scope.parent
    head, _, rest = name.partition(".")
    for scope in scopes:
        if head in scope.members:
            found = scope.members[head]
            try:
                for part in filter(None, rest.split(".")):
                    found = found.members[part]
                return found.final_target if found.is_alias else found
            except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                return None
    try:
        found = collection.get_member(name)
    except (KeyError, ValueError):
        return None
    return found.final_target if found.is_alias else found


def _drop_bare_instance_attributes(obj: griffe.Object) -> None:
    """Remove ``self.x = x`` attributes without a docstring: the Parameters list them."""
    for name, member in list(obj.members.items()):
        if member.is_alias:
            continue
        if member.is_attribute and "instance-attribute" in member.labels and not member.docstring:
            del obj.members[name]
        else:
            _drop_bare_instance_attributes(member)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles and ``::`` in every docstring of a loaded package."""

    def __init__(self, pages: str = "docs/reference") -> None:
        super().__init__()
        # the modules that have a reference page, one page per module
        self.modules = sorted(p.stem for p in Path(pages).glob("salutary*.md"))

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        _drop_bare_instance_attributes(pkg)
        shown = _public_paths(pkg, self.modules)

        def link(obj: griffe.Object, match: re.Match) -> str:
            short, name = match.group(1), match.group(2).strip()
            text = name.rsplit(".", 1)[-1] if short else name
            target = _resolve(obj, name, loader.modules_collection)
            path = shown.get(target.path) if target is not None else None
            return f"[`{text}`][{path}]" if path else f"`{text}`"

        def walk(obj: griffe.Object) -> None:
            if obj.docstring is not None:
                value = ROLE.sub(lambda m: link(obj, m), obj.docstring.value)
                obj.docstring.value = LITERAL.sub(r"\1:", value)
            for member in obj.members.values():
                if not member.is_alias:
                    walk(member)

        walk(pkg)
