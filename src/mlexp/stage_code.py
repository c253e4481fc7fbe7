"""Which source files a stage's results depend on, read from the code itself (never listed by hand).

A stage is a function in its task's stages module. Its code is that function, the module-level
helpers it calls, and every project module those name (imports at the top of the stages module,
or inside the function), with each such module's own imports followed transitively. Within the
stages module the analysis is per function, so `prepare` does not depend on the network module,
which only `train` and `evaluate` call; beyond it, per module (anything a module imports may run).

The boundary: modules of the project (under `<root>/src`, or a task package inside the root),
except the framework, which dispatches, validates, records or reports but computes no stage's
outputs. Including it would re-run every pipeline (hours of training) on a change to, say, the
tracking code; a change there that does alter results needs `dvc repro --force`.
Third-party packages are pinned by requirements.lock, not followed.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# mlexp's framework: the CLI, runner, config schemas, tracking, sweeps, comparison, the task registry
FRAMEWORK = (
    "mlexp",
    "mlexp.cli",
    "mlexp.commands",
    "mlexp.compare",
    "mlexp.console",
    "mlexp.config",
    "mlexp.dvc_lock",
    "mlexp.dvc_stages",
    "mlexp.errors",
    "mlexp.mxnet_import",
    "mlexp.mxnet_operators",
    "mlexp.next_steps",
    "mlexp.paths",
    "mlexp.runner",
    "mlexp.seeding",
    "mlexp.shared_component",
    "mlexp.stage_code",
    "mlexp.summary",
    "mlexp.sweeps",
    "mlexp.tasks",
    "mlexp.tracking",
    "mlexp.trial_continuation",
    "mlexp.usage",
)


def is_framework(module: str) -> bool:
    # a package entry covers its submodules, except mlexp.tasks: its task packages are not framework
    return any(
        module == name or (module.startswith(name + ".") and name not in ("mlexp", "mlexp.tasks")) for name in FRAMEWORK
    )


@dataclass(frozen=True)
class SourceTree:
    """Finds the project's own modules: a module is project code when its file is inside the root."""

    root: Path

    def file(self, module: str) -> Path | None:
        """The module's source file inside the project, or None (third-party, built-in, or outside)."""
        parts = module.split(".")
        for base in (*self._bases(parts[0]), self.root / "src", self.root):
            for candidate in ((base / Path(*parts)).with_suffix(".py"), base / Path(*parts) / "__init__.py"):
                if candidate.is_file():
                    return candidate
        return None

    def _bases(self, top: str) -> list[Path]:
        # where Python finds the top-level package (found without importing it), if inside the project
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return []
        locations = list(spec.submodule_search_locations or []) if spec else []
        inside = [Path(p) for p in locations if Path(p).is_relative_to(self.root)]
        # a virtual environment inside the project holds third-party packages, not project code
        return [p.parent for p in inside if "site-packages" not in p.parts]


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _absolute(node: ast.ImportFrom, module: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(module, path).split(".")
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join([*base, node.module] if node.module else base)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, skipping `if TYPE_CHECKING:` blocks (imports there never run)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child):
            yield from (n for orelse in child.orelse for n in (orelse, *_runtime_nodes(orelse)))
            continue
        yield child
        yield from _runtime_nodes(child)


def _imports(node: ast.Import | ast.ImportFrom, module: str, path: Path, tree: SourceTree) -> dict[str, str]:
    """Name bound by the import statement → the module it makes the code depend on."""
    bound: dict[str, str] = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            # `import a.b` binds `a` but runs a.b; `import a.b as c` binds c to a.b
            bound[alias.asname or alias.name.split(".")[0]] = alias.name
        return bound
    source = _absolute(node, module, path)
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        bound[alias.asname or alias.name] = submodule if tree.file(submodule) else source
    return bound


def module_imports(module: str, tree: SourceTree) -> set[str]:
    """Every module `module`'s file imports at run time (at the top or inside functions)."""
    path = tree.file(module)
    if path is None:
        return set()
    found: set[str] = set()
    for node in _runtime_nodes(_parse(path)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_imports(node, module, path, tree).values())
    return found


def closure(modules: Iterable[str], tree: SourceTree) -> set[str]:
    """The project modules reachable from `modules` through imports, framework excluded."""
    seen: set[str] = set()
    pending = list(modules)
    while pending:
        module = pending.pop()
        if module in seen or is_framework(module) or tree.file(module) is None:
            continue
        seen.add(module)
        pending.extend(module_imports(module, tree))
    return seen


SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp)


def _scope_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of one scope, not those of the functions, classes and comprehensions nested in it."""
    for child in ast.iter_child_nodes(scope):
        yield child
        if not isinstance(child, (*SCOPES, ast.GeneratorExp)):
            yield from _scope_nodes(child)


def _free_names(scope: ast.AST) -> set[str]:
    """Names a function (or class, comprehension) reads from the module: read, and not local to it.

    A local variable that shares a module-level function's name (`train = ...` in `prepare`)
    is not a call of that function.
    """
    nodes = list(_scope_nodes(scope))
    local: set[str] = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = scope.args
        local |= {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}
        local |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    declared_global: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            local.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            local |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.Global):
            declared_global |= set(node.names)
    local -= declared_global
    free = {n.id for n in nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - local
    for node in nodes:
        if isinstance(node, (*SCOPES, ast.GeneratorExp)):
            free |= _free_names(node) - local
    return free


def _names_used(node: ast.AST) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        # decorators, defaults and base classes run at module level; the body is its own scope
        outer = [*node.decorator_list, *getattr(node, "bases", []), *getattr(node, "keywords", [])]
        if not isinstance(node, ast.ClassDef):
            outer += [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        return _free_names(node) | {n.id for o in outer for n in ast.walk(o) if isinstance(n, ast.Name)}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def function_modules(module: str, function: str, tree: SourceTree) -> set[str]:
    """The modules `module.function` reaches: through names it (or helpers it calls in `module`) uses."""
    path = tree.file(module)
    if path is None:
        return set()
    parsed = _parse(path)
    imported: dict[str, str] = {}
    defined: dict[str, list[ast.AST]] = {}
    for node in parsed.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported.update(_imports(node, module, path, tree))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.setdefault(node.name, []).append(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in (n.id for n in ast.walk(target) if isinstance(n, ast.Name)):
                    defined.setdefault(name, []).append(node)
        else:  # imports under a module-level try/if (not `if TYPE_CHECKING:`)
            for statement in (node, *_runtime_nodes(node)):
                if isinstance(statement, (ast.Import, ast.ImportFrom)):
                    imported.update(_imports(statement, module, path, tree))
    if function not in defined and function not in imported:
        raise LookupError(f"{module} has no function {function!r}")
    reached: set[str] = set()
    visited: set[str] = set()
    pending = [function]
    while pending:
        name = pending.pop()
        if name in visited:
            continue
        visited.add(name)
        if name in imported:
            reached.add(imported[name])
        for definition in defined.get(name, []):
            _strip_annotations(definition)
            for inner in _runtime_nodes(definition):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    reached.update(_imports(inner, module, path, tree).values())
            pending.extend(_names_used(definition) - visited)
    return reached


def _strip_annotations(node: ast.AST) -> None:
    """Drop annotations: with `from __future__ import annotations` they never run."""
    for inner in ast.walk(node):
        if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner.returns = None
            every = (
                *inner.args.posonlyargs,
                *inner.args.args,
                *inner.args.kwonlyargs,
                inner.args.vararg,
                inner.args.kwarg,
            )
            for argument in every:
                if argument is not None:
                    argument.annotation = None
        elif isinstance(inner, ast.AnnAssign):
            inner.annotation = ast.Constant(None)


def stage_files(stages_module: str, stage: str, extra_modules: Iterable[str], root: Path) -> list[Path]:
    """The source files stage `stage` of `stages_module` depends on, relative to `root`, sorted."""
    tree = SourceTree(root)
    own = tree.file(stages_module)
    modules = closure([*function_modules(stages_module, stage, tree), *extra_modules], tree)
    files = {tree.file(m) for m in modules} | {own}
    return sorted(f.relative_to(root) for f in files if f is not None)


def module_files(modules: Iterable[str], root: Path) -> list[Path]:
    """The source files of `modules` and the project modules they import, relative to `root`, sorted."""
    tree = SourceTree(root)
    files = {tree.file(m) for m in closure(modules, tree)}
    return sorted(f.relative_to(root) for f in files if f is not None)
