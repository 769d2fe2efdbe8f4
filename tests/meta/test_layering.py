"""The package's import graph points downward only and has no cycles (function-local imports included):
base modules <- metrics <- nets <- data <- models <- hub <- tasks <- evaluation <- fairness <- cli."""
import ast
from pathlib import Path

import pytest

ZOO = Path(__file__).resolve().parents[2] / "zoo"
LAYERS = ["base", "metrics", "nets", "data", "models", "hub", "tasks", "evaluation", "fairness", "cli"]
BASE = {"_version", "errors", "io", "audio", "text", "optim"}


def layer(module: str) -> str | None:
    """'zoo.nets.lstm' -> 'nets'; 'zoo.audio' -> 'base'; 'zoo' itself (the public API) -> None."""
    parts = module.split(".")
    if parts[0] != "zoo" or len(parts) == 1:
        return None
    return "base" if parts[1] in BASE else "cli" if parts[1] == "__main__" else parts[1]


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported zoo module) for every import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names
                                                  if (ZOO.parent / node.module.replace(".", "/") / a.name).is_dir()]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(n, m) for n, m in out if m == "zoo" or m.startswith("zoo.")]


def modules():
    for p in sorted(ZOO.rglob("*.py")):
        rel = p.relative_to(ZOO.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        yield name, p


def test_every_package_has_a_layer():
    for name, _ in modules():
        assert layer(name) in LAYERS + [None], f"{name} is in no layer; add its package to LAYERS"


@pytest.mark.parametrize("name,path", list(modules()), ids=lambda x: x if isinstance(x, str) else "")
def test_imports_point_downward(name, path):
    own = layer(name)
    if own is None:
        return
    for line, mod in imports(path):
        other = layer(mod)
        assert other is not None, f"{path.name}:{line} imports the top-level zoo API; import from its module"
        assert LAYERS.index(other) <= LAYERS.index(own), \
            f"{name} ({own}) imports {mod} ({other}) at line {line}: an upward arrow"


def test_no_import_cycles_between_modules():
    graph = {name: {m for _, m in imports(p)} for name, p in modules()}
    names = set(graph)
    graph = {n: {m for m in deps if m in names and m != n and not n.startswith(m + ".") and m != "zoo"}
             for n, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(n, stack):
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if not state.get(m):
                visit(m, stack + [m])
        state[n] = 2

    for n in sorted(graph):
        if not state.get(n):
            visit(n, [n])
