"""The shape of archspec's own code: no import cycles, short functions, shallow nesting.

Read from the source with `ast`, so these run in milliseconds and name the offender."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "archspec"
MAX_LINES = 60
MAX_DEPTH = 4
#: Functions that break a rule today, by "path function". This list only shrinks: a new
#: offender fails, and so does one listed here that has been fixed (remove it).
KNOWN_LONG: frozenset[str] = frozenset()
KNOWN_DEEP: frozenset[str] = frozenset()
_NESTING = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
            ast.Match) + ((ast.TryStar,) if hasattr(ast, "TryStar") else ())


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, tree: ast.AST) -> set[str]:
    """Modules of the package that `name` imports when it is imported: module-level imports,
    class bodies included, `if TYPE_CHECKING:` blocks (which never run) and imports inside
    functions (which run once the package is loaded, e.g. a family's torch container) left out."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from . import x` imports the module x, if it is one
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in MODULES and m != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = walk(target)
                if found:
                    return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = walk(module)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    graph = {name: _imports(name, ast.parse(path.read_text())) for name, path in MODULES.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_nesting_is_measured_as_written():
    code = ("def f(x):\n    for a in x:\n        if a:\n            pass\n        elif x:\n"
            "            with a:\n                while a:\n                    pass\n")
    assert _depth(ast.parse(code).body[0]) == 4


def _depth(node: ast.AST, level: int = 0) -> int:
    """Deepest nesting of compound statements inside `node`; an `elif` sits at the level of
    its `if` (the AST nests it in `orelse`), nested functions count on."""
    deepest = level
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If):
            deepest = max(deepest, _if_depth(child, level))
        elif isinstance(child, _NESTING):
            deepest = max(deepest, _depth(child, level + 1))
        else:
            deepest = max(deepest, _depth(child, level))
    return deepest


def _if_depth(node: ast.If, level: int) -> int:
    deepest = max([level + 1, _depth(node.test, level + 1)]
                  + [_depth(stmt, level + 1) if not isinstance(stmt, _NESTING)
                     else _depth(ast.Module([stmt], []), level + 1) for stmt in node.body])
    if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If):  # elif
        return max(deepest, _if_depth(node.orelse[0], level))
    for stmt in node.orelse:
        deepest = max(deepest, _depth(ast.Module([stmt], []), level + 1))
    return deepest


def _functions():
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{path.relative_to(PACKAGE.parent)} {node.name}", node


def _argparse_setup(node: ast.FunctionDef) -> bool:
    """A function that only declares command-line arguments (`add_argument` calls)."""
    calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute)]
    return bool(calls) and sum(c.func.attr == "add_argument" for c in calls) * 2 >= len(calls)


def _lines(node: ast.AST) -> int:
    return node.end_lineno - node.lineno + 1


def test_functions_are_short():
    long = {where: _lines(node) for where, node in _functions()
            if _lines(node) > MAX_LINES and not _argparse_setup(node)}
    new = [f"{where} ({n} lines)" for where, n in long.items() if where not in KNOWN_LONG]
    assert not new, f"functions over {MAX_LINES} lines:\n" + "\n".join(new)
    fixed = KNOWN_LONG - set(long)
    assert not fixed, f"now short enough: remove from KNOWN_LONG: {sorted(fixed)}"


def test_functions_nest_at_most_four_deep():
    deep = {where: _depth(node) for where, node in _functions() if _depth(node) > MAX_DEPTH}
    new = [f"{where} (depth {d})" for where, d in deep.items() if where not in KNOWN_DEEP]
    assert not new, f"functions nested deeper than {MAX_DEPTH}:\n" + "\n".join(new)
    fixed = KNOWN_DEEP - set(deep)
    assert not fixed, f"now shallow enough: remove from KNOWN_DEEP: {sorted(fixed)}"
