"""The shape of the code, read from its syntax (`ast`): layers the imports obey, no import cycle between files, thin
Dagster bodies, small files, heavy libraries imported lazily, and one place that reads the environment. Each test
lists every violation it finds.

Layers of `deepimagine_core`, lowest first (a module imports only from its own subpackage or a lower layer, at module
level, inside functions and through `importlib` alike):

    0  store.py, questions.py, tables.py      (top-level modules)
    1  ctgov/
    2  pairs/
    3  evaluation/
    4  llm/
    5  training/
    6  predict/                               (the user-facing "ask about a planned trial", above everything)

`deepimagine_core` never imports dagster; `deepimagine_dagster` may import any layer.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
CORE, DAGSTER = "deepimagine_core", "deepimagine_dagster"
LAYERS = {"": 0, "ctgov": 1, "pairs": 2, "evaluation": 3, "llm": 4, "training": 5, "predict": 6}
MAX_FILE_LINES = 400
MAX_BODY_LINES = 30
ENV_PREFIX = "DEEPIMAGINE_"
ENV_READERS = {f"{DAGSTER}/resources.py", f"{DAGSTER}/executors.py"}
DAGSTER_BODY_DECORATORS = {"asset", "multi_asset", "asset_check", "multi_asset_check", "graph_asset", "op"}


def report(title: str, problems: list[str]) -> None:
    """Fail listing every problem once (without pytest's assertion rewriting of the long list)."""
    problems = list(dict.fromkeys(problems))
    if problems:
        pytest.fail(f"{title} ({len(problems)}):\n  " + "\n  ".join(problems), pytrace=False)


def package_files(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in package_files(CORE, DAGSTER)}
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for name, path in MODULES.items()}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def imported_modules(name: str) -> list[tuple[str, int, str]]:
    """(imported module, line, how) for every import in module `name`: `import x`, `from x import y` (y as a module
    when it is one), relative imports, and `importlib.import_module("x")` / `__import__("x")` with a literal name."""
    found = []
    package = name if is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, "import") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in MODULES else base, node.lineno, "from-import"))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            callee = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if callee in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.args[0].value, node.lineno, "importlib"))
    return found


def layer_of(module: str) -> tuple[str, int] | None:
    """(subpackage, layer) of a deepimagine_core module; None outside the package."""
    parts = module.split(".")
    if parts[0] != CORE:
        return None
    if len(parts) == 1:
        return "", 0
    sub = parts[1] if len(parts) > 2 or (len(parts) == 2 and f"{CORE}.{parts[1]}" in MODULES
                                         and is_package(f"{CORE}.{parts[1]}")) else ""
    return sub, LAYERS.get(sub, -1)


def test_core_layers_import_only_downward():
    problems = []
    for name in MODULES:
        if not name.startswith(CORE):
            continue
        sub, layer = layer_of(name)
        if layer < 0:
            problems.append(f"{rel(MODULES[name])}: subpackage {sub!r} has no layer (add it to LAYERS)")
            continue
        for target, line, how in imported_modules(name):
            if target.split(".")[0] == "dagster":
                problems.append(f"{rel(MODULES[name])}:{line}: deepimagine_core imports dagster ({how} {target})")
            if target.split(".")[0] == DAGSTER:
                problems.append(f"{rel(MODULES[name])}:{line}: deepimagine_core imports {target} ({how})")
            where = layer_of(target)
            if where is None or where[0] == sub:
                continue
            if where[1] >= layer:
                problems.append(f"{rel(MODULES[name])}:{line}: layer {sub or 'top-level'} ({layer}) imports "
                                f"{target} (layer {where[0] or 'top-level'} ({where[1]})) [{how}]")
    report("imports against the layers", problems)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(root: str) -> None:
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_no_import_cycle_between_files():
    graph: dict[str, set[str]] = defaultdict(set)
    for name in MODULES:
        for target, _, _ in imported_modules(name):
            if target in MODULES and target != name:
                graph[name].add(target)
    cycles = _cycles(graph)
    lines = []
    for component in cycles:
        members = set(component)
        edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
        lines.append(" <-> ".join(component) + "\n      " + "\n      ".join(edges))
    report("import cycles between files", lines)


def _decorator_name(node: ast.expr) -> str:
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def body_lines(func: ast.FunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = func.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return 0 if not body else func.end_lineno - body[0].lineno + 1


def test_dagster_asset_and_check_bodies_are_thin():
    problems = []
    for path in package_files(DAGSTER):
        for node in ast.walk(TREES[module_name(path)]):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                kinds = {_decorator_name(d) for d in node.decorator_list} & DAGSTER_BODY_DECORATORS
                n = body_lines(node)
                if kinds and n > MAX_BODY_LINES:
                    problems.append(f"{rel(path)}:{node.lineno}: {'/'.join(sorted(kinds))} `{node.name}` body has "
                                    f"{n} lines (max {MAX_BODY_LINES}): move the work into deepimagine_core")
    report("fat Dagster bodies", problems)


def test_no_package_file_over_the_limit():
    problems = []
    for path in package_files(CORE, DAGSTER):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_FILE_LINES:
            problems.append(f"{rel(path)}: {n} lines (max {MAX_FILE_LINES})")
    report("files to split along their seams", problems)


DECISION_PARSER = f"{CORE}/evaluation/scoring.py"


def test_one_decision_parser():
    """`DECISION: (...)` is read in one place (`evaluation.scoring.parse_decision`); everyone else imports it."""
    problems = []
    for name, path in MODULES.items():
        if rel(path) == DECISION_PARSER:
            continue
        for node in ast.walk(TREES[name]):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "parse_decision":
                problems.append(f"{rel(path)}:{node.lineno}: defines parse_decision (import it from {DECISION_PARSER})")
            elif isinstance(node, ast.Call) and _decorator_name(node) in ("compile", "search", "findall", "match") \
                    and node.args and "decision" in ast.unparse(node.args[0]).lower():
                problems.append(f"{rel(path)}:{node.lineno}: a DECISION regex besides {DECISION_PARSER}")
    report("DECISION parsers besides the one", problems)


HEAVY = {"torch", "transformers", "trl", "peft", "vllm", "datasets"}


def import_time_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of imports that run when the module is imported: not inside a function, not under
    `if TYPE_CHECKING:`."""
    found, todo = [], list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
        todo += ast.iter_child_nodes(node)
    return found


def test_heavy_libraries_are_imported_inside_functions():
    problems = [f"{rel(path)}:{line}: imports {module} when the module loads (import it inside the function that "
                "needs it, so the code location loads without a GPU stack)"
                for name, path in MODULES.items() for line, module in import_time_imports(TREES[name])
                if module.split(".")[0] in HEAVY]
    report("heavy imports at module level", problems)


def _string_constants() -> dict[str, str]:
    """Module-level NAME = "literal" assignments of both packages (to resolve env var names given by constant)."""
    out = {}
    for tree in TREES.values():
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                    and isinstance(node.value.value, str):
                out.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return out


def _is_environ(node: ast.expr) -> bool:
    """`os.environ`, or a bare `environ` (from os import environ)."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def env_reads(tree: ast.AST, constants: dict[str, str]) -> list[tuple[int, str]]:
    """(line, variable) for every read of a DEEPIMAGINE_* variable: os.environ.get / [] / `in`, os.getenv, and any
    `.get(...)` or `[...]` read of such a name (an environment copied into a dict is still the environment)."""

    def name_of(expr: ast.expr | None) -> str | None:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            value = expr.value
        elif isinstance(expr, ast.Name):
            value = constants.get(expr.id, "")
        elif isinstance(expr, ast.Attribute):
            value = constants.get(expr.attr, "")
        else:
            return None
        return value if value.startswith(ENV_PREFIX) else None

    reads = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault"):
                key = node.args[0]
            elif (isinstance(func, ast.Attribute) and func.attr == "getenv") or (
                    isinstance(func, ast.Name) and func.id == "getenv"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = node.slice
        elif isinstance(node, ast.Compare) and any(_is_environ(c) for c in node.comparators):
            key = node.left
        variable = name_of(key)
        if variable:
            reads.append((node.lineno, variable))
    return reads


def test_only_the_resources_read_deepimagine_variables():
    constants = _string_constants()
    problems = []
    for name, path in MODULES.items():
        if rel(path) in ENV_READERS:
            continue
        problems += [f"{rel(path)}:{line}: reads ${variable}: take it from the Dagster resource (resources.py) and "
                     "pass it in" for line, variable in env_reads(TREES[name], constants)]
    report("environment read outside resources.py/executors.py", problems)


def test_the_checks_see_what_they_should():
    """The readers above find what they look for (so a passing run means something)."""
    sample = ast.parse(
        "import os, importlib\nfrom os import environ\nE = 'DEEPIMAGINE_X'\n"
        "def f():\n"
        "    from deepimagine_core.llm import backends\n"
        "    importlib.import_module('deepimagine_core.training.sft')\n"
        "    env = dict(os.environ)\n"
        "    env['DEEPIMAGINE_V'] = 'written, not read'\n"
        "    return (os.environ.get(E), os.getenv('DEEPIMAGINE_Y'), environ['DEEPIMAGINE_Z'],\n"
        "            'DEEPIMAGINE_W' in os.environ, env.get('DEEPIMAGINE_U'), os.environ.get('HOME'))\n"
    )
    assert sorted(v for _, v in env_reads(sample, {"E": "DEEPIMAGINE_X"})) == [
        "DEEPIMAGINE_U", "DEEPIMAGINE_W", "DEEPIMAGINE_X", "DEEPIMAGINE_Y", "DEEPIMAGINE_Z"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("deepimagine_core.store") == ("", 0) and layer_of("deepimagine_core.llm.backends") == ("llm", 4)
    assert layer_of("deepimagine_core.training") == ("training", 5) and layer_of("dagster") is None
    TREES["__sample__"], MODULES["__sample__"] = sample, ROOT / "__sample__.py"
    try:
        targets = {t for t, _, _ in imported_modules("__sample__")}
    finally:
        del TREES["__sample__"], MODULES["__sample__"]
    assert {"deepimagine_core.llm.backends", "deepimagine_core.training.sft"} <= targets
    lazy = ast.parse("import json\nif TYPE_CHECKING:\n    import torch\ntry:\n    import vllm\nexcept ImportError:\n"
                     "    pass\ndef f():\n    import transformers\n")
    assert sorted(m for _, m in import_time_imports(lazy)) == ["json", "vllm"]
