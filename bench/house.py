"""The house's shape, read from the source: function sizes, long lines, lazy imports and process-wide singletons.

Measures a source tree (the repository by default; `--root` measures another checkout, e.g. a `git worktree` of an
older commit, to compare before and after) with `ast` only, by the method of the house review (§0):

- Groups: the app (`function_app.py`, `blueprints/`, `core/`), `devhost/`, and `simulator/wrapper.py`, each on its own.
- A function is each `def` and method (nested ones too), counted from its `def` line to its last line, docstring
  included and decorators left out. Median, p90 (`statistics.quantiles(..., method="inclusive")`) and max are
  taken over those counts.
- "Lines" are physical lines. The share of long lines (more than 100 characters) and the mean line length are
  taken over the non-blank lines, as the review's are.
- An import inside a function is an `import`/`from … import` anywhere in a function's body; "modules" is the number
  of files holding one.

A process-wide singleton (app only) is state one worker process shares between calls:

- a function decorated with `functools.cache`, `functools.lru_cache` (with or without arguments), or those names
  imported bare, that takes no parameters and does not return an immutable builtin (`str`, `bytes`, `int`, `float`,
  `bool`, `tuple`, `frozenset`): it hands every caller the same object (settings, a client, a catalog). A cached
  function with parameters is a memo keyed on them, and a cached `str` is a computed constant: both are listed
  apart, not counted;
- a module-level name bound to a mutable cache: an instance of a class defined in the same module (unless a frozen
  dataclass, `NamedTuple` or `Enum`), a `weakref.WeakKeyDictionary`/`WeakValueDictionary`/`WeakSet`,
  `defaultdict`, `OrderedDict`, `Counter` or `deque`; or a dict/list/set (literal, comprehension or constructor)
  that the module mutates (item assignment or deletion, `append`, `update`, `setdefault`, …); or any name that a
  function rebinds through `global`.

Where a thing is named (to see what a new route or scheduler must touch): the files of the app and of `tests/`
that name an existing route's handler (default `show_case`, route `case/{case_id}`) or an existing scheduler
(default `pbs`) as a string constant, define it (`def show_case`), or import it (`from core.schedulers import pbs`,
`core.schedulers.pbs`). Every file listed besides the thing's own module and its behaviour tests is a place a new one
has to be registered by hand.

Resets in tests: calls of `.cache_clear()`, and other resets of a singleton found above (`X.clear()`, assigning
`module.X`, or `setattr`/`monkeypatch.setattr` naming it), in `tests/`; `cache_clear()` calls elsewhere outside the
app (bench/, devhost/) are counted apart.

    .venv/bin/python -m bench.house [--root DIR] [--json] [--route show_case case/{case_id}] [--scheduler pbs]
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GROUPS: dict[str, tuple[str, ...]] = {
    "app": ("function_app.py", "blueprints", "core"),
    "devhost": ("devhost",),
    "wrapper": ("simulator/wrapper.py",),
}
LONG = 100
CACHES = {"cache", "lru_cache"}
IMMUTABLE = {"str", "bytes", "int", "float", "bool", "complex", "tuple", "frozenset"}
ALWAYS_MUTABLE = {
    "WeakKeyDictionary",
    "WeakValueDictionary",
    "WeakSet",
    "defaultdict",
    "OrderedDict",
    "Counter",
    "deque",
}
CONTAINERS = {"dict", "list", "set"}
MUTATORS = {
    "append",
    "extend",
    "insert",
    "update",
    "setdefault",
    "pop",
    "popitem",
    "clear",
    "add",
    "discard",
    "remove",
    "__setitem__",
    "__delitem__",
}
FROZEN_BASES = {"NamedTuple", "Enum", "IntEnum", "StrEnum", "Flag", "IntFlag"}


@dataclass(frozen=True)
class Function:
    """One `def`: where it starts and how many lines it spans."""

    name: str
    path: str
    line: int
    lines: int


@dataclass(frozen=True)
class Named:
    """A named thing at a place in the source (a singleton, a memo)."""

    name: str
    path: str
    line: int
    kind: str


@dataclass
class FileFigures:
    """What one source file holds."""

    path: str
    lines: int = 0
    filled_lines: int = 0
    filled_chars: int = 0
    long_lines: int = 0
    functions: list[Function] = field(default_factory=list)
    lazy_imports: int = 0
    singletons: list[Named] = field(default_factory=list)
    memos: list[Named] = field(default_factory=list)


class _Walker(ast.NodeVisitor):
    """Collects functions (with qualified names) and the imports found inside them."""

    def __init__(self, path: str) -> None:
        self.path, self.depth = path, 0
        self.scope: list[str] = []
        self.functions: list[Function] = []
        self.lazy_imports = 0

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        name = ".".join([*self.scope, node.name])
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        self.functions.append(Function(name, self.path, node.lineno, lines))
        self.scope.append(node.name)
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.lazy_imports += self.depth > 0

    visit_ImportFrom = visit_Import  # noqa: N815


def _last_name(node: ast.expr) -> str | None:
    """`b` for `a.b`, `b(...)` and `a.b(...)`; None for anything else."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _has_parameters(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    a = node.args
    return bool(a.posonlyargs or a.args or a.kwonlyargs or a.vararg or a.kwarg)


def _returns_immutable(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    returns = node.returns
    if isinstance(returns, ast.Constant) and isinstance(returns.value, str):  # a quoted annotation
        returns = ast.parse(returns.value, mode="eval").body
    if isinstance(returns, ast.Subscript):
        returns = returns.value
    return _last_name(returns) in IMMUTABLE if returns is not None else False


def cached_functions(tree: ast.Module, path: str) -> tuple[list[Named], list[Named]]:
    """Singletons and memos among the functions decorated with `functools.cache`/`lru_cache`."""
    singletons: list[Named] = []
    memos: list[Named] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if not any(_last_name(d) in CACHES for d in node.decorator_list):
            continue
        if _has_parameters(node):
            memos.append(Named(node.name, path, node.lineno, "memo (has parameters)"))
        elif _returns_immutable(node):
            memos.append(Named(node.name, path, node.lineno, "cached constant"))
        else:
            singletons.append(Named(node.name, path, node.lineno, "cached function"))
    return singletons, memos


def _frozen_classes(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Classes defined at module level, and those among them whose instances cannot change."""
    classes: set[str] = set()
    frozen: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        classes.add(node.name)
        frozen_dataclass = any(
            isinstance(d, ast.Call)
            and _last_name(d) == "dataclass"
            and any(
                k.arg == "frozen" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in d.keywords
            )
            for d in node.decorator_list
        )
        if frozen_dataclass or any(_last_name(b) in FROZEN_BASES for b in node.bases):
            frozen.add(node.name)
    return classes, frozen


def _mutated_names(tree: ast.Module) -> set[str]:
    """Names the module mutates in place: `x[k] = …`, `del x[k]`, `x.append(…)`, `x += …`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            if isinstance(node.value, ast.Name):
                names.add(node.value.id)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATORS
        ):
            if isinstance(node.func.value, ast.Name):
                names.add(node.func.value.id)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _rebound_globals(tree: ast.Module) -> set[str]:
    """Names that some function declares `global` (and so rebinds for the whole process)."""
    return {name for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names}


def _module_bindings(tree: ast.Module) -> list[tuple[str, int, ast.expr | None]]:
    """Names bound by module-level assignments (also inside top-level `if`/`try`), with line and value."""
    bound: list[tuple[str, int, ast.expr | None]] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Assign):
            bound += [
                (t.id, node.lineno, node.value) for t in node.targets if isinstance(t, ast.Name)
            ]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            bound.append((node.target.id, node.lineno, node.value))
        elif isinstance(node, ast.If | ast.Try):
            pending += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            pending += [stmt for handler in getattr(node, "handlers", []) for stmt in handler.body]
    return bound


def _mutable_kind(
    value: ast.expr | None, classes: set[str], frozen: set[str], mutated: bool
) -> str | None:
    """Why a module-level value is a mutable cache, or None when it is not one."""
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return "module-level container, mutated" if mutated else None
    if not isinstance(value, ast.Call):
        return None
    called = _last_name(value)
    if called in ALWAYS_MUTABLE:
        return f"module-level {called}"
    if called in CONTAINERS:
        return "module-level container, mutated" if mutated else None
    if called in classes and called not in frozen:
        return f"module-level {called} instance"
    return None


def module_singletons(tree: ast.Module, path: str) -> list[Named]:
    """Module-level names bound to mutable caches, and names rebound through `global` (see the module docstring)."""
    classes, frozen = _frozen_classes(tree)
    mutated, rebound = _mutated_names(tree), _rebound_globals(tree)
    found: dict[str, Named] = {}
    for name, line, value in _module_bindings(tree):
        if name in found:
            continue
        kind = (
            "rebound through global"
            if name in rebound
            else _mutable_kind(value, classes, frozen, name in mutated)
        )
        if kind:
            found[name] = Named(name, path, line, kind)
    return list(found.values())


def measure_source(path: str, text: str) -> FileFigures:
    """Sizes, lazy imports, singletons and memos of one file's source."""
    tree = ast.parse(text, filename=path)
    walker = _Walker(path)
    walker.visit(tree)
    singletons, memos = cached_functions(tree, path)
    lines = text.splitlines()
    filled = [line for line in lines if line.strip()]
    return FileFigures(
        path=path,
        lines=len(lines),
        filled_lines=len(filled),
        filled_chars=sum(map(len, filled)),
        long_lines=sum(len(line) > LONG for line in filled),
        functions=walker.functions,
        lazy_imports=walker.lazy_imports,
        singletons=singletons + module_singletons(tree, path),
        memos=memos,
    )


def count_resets(text: str, singletons: set[str]) -> tuple[int, int]:
    """`.cache_clear()` calls, and other resets of the named singletons, in one file's source."""
    cache_clears = others = 0
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            cache_clears += attr == "cache_clear"
            others += attr == "clear" and _last_name(node.func.value) in singletons
            others += attr == "setattr" and _names_singleton(node.args, singletons)
        elif (
            isinstance(node, ast.Call)
            and _last_name(node) == "setattr"
            and _names_singleton(node.args, singletons)
        ):
            others += 1
        elif isinstance(node, ast.Assign):
            others += sum(
                isinstance(t, ast.Attribute) and t.attr in singletons for t in node.targets
            )
    return cache_clears, others


def _names_singleton(args: list[ast.expr], singletons: set[str]) -> bool:
    return len(args) > 1 and isinstance(args[1], ast.Constant) and args[1].value in singletons


def names_thing(text: str, words: set[str]) -> bool:
    """Whether a file's source names one of `words`: as a string constant, a `def`, or an imported module."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Constant) and node.value in words:
            return True
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in words:
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").rsplit(".", 1)[-1] in words:
            return True
        if isinstance(node, ast.ImportFrom | ast.Import) and any(
            a.name.rsplit(".", 1)[-1] in words for a in node.names
        ):
            return True
    return False


def sources(root: Path, parts: tuple[str, ...]) -> list[Path]:
    """The `.py` files of a group, sorted."""
    files: list[Path] = []
    for part in parts:
        target = root / part
        files += (
            sorted(target.rglob("*.py"))
            if target.is_dir()
            else [target]
            if target.is_file()
            else []
        )
    return files


def p90(values: list[int]) -> float:
    """The 90th percentile, interpolated between the sizes that occur (the review's method)."""
    return (
        statistics.quantiles(values, n=10, method="inclusive")[-1]
        if len(values) > 1
        else float(values[0])
    )


@dataclass(frozen=True)
class Group:
    """The figures of one group of files (the review's §0 columns)."""

    files: int
    lines: int
    functions: int
    median: float
    p90: float
    max: int
    long_share: float
    mean_line: float
    lazy_imports: int
    lazy_import_modules: int


@dataclass(frozen=True)
class House:
    """Every figure of one tree."""

    root: str
    groups: dict[str, Group]
    longest_app_functions: list[Function]
    lazy_imports_by_module: dict[str, int]
    singletons: list[Named]
    memos: list[Named]
    test_cache_clears: int
    test_other_resets: int
    cache_clears_outside_tests: int
    route_named_in: list[str]
    scheduler_named_in: list[str]


def summarise(files: list[FileFigures]) -> Group:
    """The figures of one group."""
    sizes = [fn.lines for f in files for fn in f.functions] or [0]
    filled = sum(f.filled_lines for f in files) or 1
    return Group(
        files=len(files),
        lines=sum(f.lines for f in files),
        functions=sum(len(f.functions) for f in files),
        median=float(statistics.median(sizes)),
        p90=p90(sizes),
        max=max(sizes),
        long_share=sum(f.long_lines for f in files) / filled,
        mean_line=sum(f.filled_chars for f in files) / filled,
        lazy_imports=sum(f.lazy_imports for f in files),
        lazy_import_modules=sum(f.lazy_imports > 0 for f in files),
    )


def measure(
    root: Path, route: tuple[str, str] = ("show_case", "case/{case_id}"), scheduler: str = "pbs"
) -> House:
    """All the figures of the tree at `root`."""
    groups = {
        name: [
            measure_source(str(p.relative_to(root)), p.read_text()) for p in sources(root, parts)
        ]
        for name, parts in GROUPS.items()
    }
    app = groups["app"]
    singletons = sorted((s for f in app for s in f.singletons), key=lambda s: (s.path, s.line))
    names = {s.name for s in singletons}
    in_tests = [count_resets(p.read_text(), names) for p in sources(root, ("tests",))]
    elsewhere = [count_resets(p.read_text(), names)[0] for p in sources(root, ("bench", "devhost"))]
    code = [
        (str(p.relative_to(root)), p.read_text()) for p in sources(root, (*GROUPS["app"], "tests"))
    ]
    longest = sorted(
        (fn for f in app for fn in f.functions), key=lambda fn: (-fn.lines, fn.path, fn.line)
    )
    return House(
        root=str(root),
        groups={name: summarise(files) for name, files in groups.items()},
        longest_app_functions=longest[:10],
        lazy_imports_by_module={f.path: f.lazy_imports for f in app if f.lazy_imports},
        singletons=singletons,
        memos=[m for f in app for m in f.memos],
        test_cache_clears=sum(c for c, _ in in_tests),
        test_other_resets=sum(o for _, o in in_tests),
        cache_clears_outside_tests=sum(elsewhere),
        route_named_in=[path for path, text in code if names_thing(text, set(route))],
        scheduler_named_in=[path for path, text in code if names_thing(text, {scheduler})],
    )


def report(house: House) -> None:
    """Print the figures as the review's tables do."""
    print(f"tree: {house.root}")
    print(
        f"{'code':<8} {'files':>5} {'lines':>6} {'fns':>4} {'median':>6} {'p90':>5} {'max':>4} {'>100 ch':>8}"
        f" {'mean ch':>7}  imports inside functions"
    )
    for name, g in house.groups.items():
        print(
            f"{name:<8} {g.files:>5} {g.lines:>6} {g.functions:>4} {g.median:>6g} {g.p90:>5.1f} {g.max:>4}"
            f" {g.long_share:>8.1%} {g.mean_line:>7.1f}  {g.lazy_imports}, in {g.lazy_import_modules} modules"
        )
    print("10 longest app functions:")
    for fn in house.longest_app_functions:
        print(f"  {fn.path}:{fn.line} {fn.name} {fn.lines}")
    print("imports inside functions, by app module:")
    for path, count in house.lazy_imports_by_module.items():
        print(f"  {path} {count}")
    print(f"process-wide singletons in the app: {len(house.singletons)}")
    _names(house.singletons)
    print("cached but not counted (memos keyed on arguments, cached constants):")
    _names(house.memos)
    print(
        f"singleton resets in tests/: {house.test_cache_clears} cache_clear(), {house.test_other_resets} other"
    )
    print(f"cache_clear() outside tests/ (bench/, devhost/): {house.cache_clears_outside_tests}")
    print(f"files naming the route ({len(house.route_named_in)}): {' '.join(house.route_named_in)}")
    print(
        f"files naming the scheduler ({len(house.scheduler_named_in)}): {' '.join(house.scheduler_named_in)}"
    )


def _names(found: list[Named]) -> None:
    for n in found:
        print(f"  {n.name:<16} {n.path}:{n.line} ({n.kind})")


def main() -> None:
    """Measure the tree, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the checkout to measure (default: this one)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    parser.add_argument(
        "--route",
        nargs=2,
        default=("show_case", "case/{case_id}"),
        metavar=("HANDLER", "ROUTE"),
        help="an existing route, by its handler's name and its route",
    )
    parser.add_argument("--scheduler", default="pbs", help="an existing scheduler, by its name")
    args = parser.parse_args()
    house = measure(args.root.resolve(), tuple(args.route), args.scheduler)
    if args.json:
        print(json.dumps(asdict(house), indent=2))
    else:
        report(house)


if __name__ == "__main__":
    main()
