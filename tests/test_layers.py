"""The package's layers hold: imports run one way only (core <- scale <- io <- cli), and no imports close a
cycle, counting imports inside functions too. The checker is run on a planted package as well, to show it finds
what it looks for."""

import ast
from pathlib import Path

import purejaxppo

PACKAGE = Path(purejaxppo.__file__).parent
LAYERS = ("core", "scale", "io", "cli")
"""In order: a module may import from its own layer and the ones before it."""
ENTRY_MODULES = {"purejaxppo", "purejaxppo.run", "purejaxppo.evaluate", "purejaxppo.tune"}
"""The package's face and its two commands: they may import any layer, and no layer may import them."""
EXAMPLES = "examples"
"""Envs written as a user's own would be (docs/your-env.md): outside the layers, they import none of the package."""


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module under `root`, by dotted name (a package by its own name, for its __init__)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((package, *parts))] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules `name` imports anywhere in its file (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {t for t in targets if t in known and t != name}


def layer(name: str, package: str) -> int | None:
    """The layer's index of a module, None for an entry module."""
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def violations(root: Path, package: str, entries: set[str]) -> list[str]:
    """Every import against the layers' direction and every import cycle, one line each."""
    found = modules(root, package)
    graph = {name: imports(name, path, set(found)) for name, path in found.items()}
    problems = []
    for name, targets in graph.items():
        if name.split(".")[1:2] == [EXAMPLES]:
            problems += [f"{name}, an example, imports {t}" for t in sorted(targets) if t.split(".")[1:2] != [EXAMPLES]]
            continue
        if name not in entries and layer(name, package) is None:
            problems.append(f"{name} is in no layer ({', '.join(LAYERS)})")
        for target in sorted(targets):
            if name in entries:
                continue
            if target in entries:
                problems.append(f"{name} imports the entry module {target}")
            elif layer(target, package) is not None and layer(target, package) > layer(name, package):
                problems.append(f"{name} ({LAYERS[layer(name, package)]}) imports {target} "
                                f"({LAYERS[layer(target, package)]})")
    return problems + [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules that import each other (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group) + [sorted(group)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_the_package_has_its_layers_and_entry_modules_only():
    top = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert top == sorted(["__init__.py", "run.py", "evaluate.py", "tune.py", EXAMPLES, *LAYERS])


def test_imports_run_one_way_and_close_no_cycle():
    assert violations(PACKAGE, "purejaxppo", ENTRY_MODULES) == []


def test_the_checker_finds_wrong_way_imports_and_cycles_inside_functions(tmp_path):
    root = tmp_path / "pkg"
    for layer_name in LAYERS:
        (root / layer_name).mkdir(parents=True)
        (root / layer_name / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "core" / "a.py").write_text("def f():\n    from pkg.core import b\n")
    (root / "core" / "b.py").write_text("from . import a\n")
    (root / "core" / "c.py").write_text("import pkg.io.d\n")
    (root / "io" / "d.py").write_text("from pkg.scale.e import thing\n")
    (root / "scale" / "e.py").write_text("thing = 1\n")
    (root / "stray.py").write_text("")
    found = violations(root, "pkg", {"pkg"})
    assert "pkg.core.c (core) imports pkg.io.d (io)" in found
    assert "import cycle: pkg.core.a -> pkg.core.b -> pkg.core.a" in found
    assert "pkg.stray is in no layer (core, scale, io, cli)" in found
    assert len(found) == 3  # io importing scale is the right way
