"""The package map holds: no upward import, no import of another package's private module, no huge file.

The layer order is DESIGN.md's: cli -> bench -> runs -> report -> search/compress ->
supernet/estimators/hardware/training -> spaces -> zoo -> nn -> data/io; a package may import only
packages below it (or at its own level), and only their public names. ``testing`` may import anything.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import slimforge

ROOT = Path(slimforge.__file__).resolve().parent
RANK = {
    "cli": 11, "bench": 10, "runs": 9, "report": 8, "search": 7, "compress": 7,
    "supernet": 6, "estimators": 6, "hardware": 6, "training": 6,
    "spaces": 5, "zoo": 4, "nn": 3, "data": 2, "io": 2, "errors": 1, "registry": 1,
}  # fmt: skip
EXEMPT = {"testing", "__init__", "__main__"}
MAX_LINES = 500


def _package(parts: tuple[str, ...]) -> str:
    if len(parts) == 1:
        return parts[0].removesuffix(".py")
    if parts[0] == "runs" and parts[1] == "bench":
        return "bench"
    return parts[0]


def _absolute(node: ast.ImportFrom, parts: tuple[str, ...]) -> str:
    if node.level == 0:
        return node.module or ""
    base = ["slimforge", *parts[:-1]]  # the importing file's package
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


@functools.cache
def _imports() -> tuple[tuple[str, str, str, list[str]], ...]:
    return tuple(_scan())


def _scan():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        pkg = _package(parts)
        if pkg in EXEMPT:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = []
            if isinstance(node, ast.ImportFrom):
                # ``from slimforge.x import _helper`` reaches into x as much as ``slimforge.x._helper`` does
                modules = [(_absolute(node, parts), [a.name for a in node.names])]
            elif isinstance(node, ast.Import):
                modules = [(a.name, []) for a in node.names]
            for module, names in modules:
                p = module.split(".")
                if p[0] != "slimforge" or len(p) < 2:
                    continue
                target = "bench" if p[1:3] == ["runs", "bench"] else p[1]
                if target != pkg and target not in EXEMPT:
                    yield f"{'/'.join(parts)}:{node.lineno}", pkg, target, p + names


def test_every_package_has_a_layer():
    unranked = {pkg for _, pkg, target, _ in _imports() for pkg in (pkg, target) if pkg not in RANK}
    assert not unranked, f"packages without a layer in DESIGN.md's order: {sorted(unranked)}"


def test_no_package_imports_one_above_it():
    upward = [f"{where} {pkg} -> {target}" for where, pkg, target, _ in _imports()
              if RANK[target] > RANK[pkg]]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_package_imports_another_packages_private_module():
    private = [
        f"{where} {'.'.join(p)}" for where, _, _, p in _imports()
        if any(x.startswith("_") and not x.startswith("__") for x in p[2:])
    ]
    assert not private, "private cross-package imports:\n" + "\n".join(private)


def test_no_source_file_is_over_500_lines():
    big = [f"{p.relative_to(ROOT)} {n}" for p in ROOT.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not big, "files over 500 lines:\n" + "\n".join(big)
