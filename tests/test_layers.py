"""The package's parts import one another in one direction only: down the layers, never in a circle.

A part is a subpackage (``engine``) or a root module (``session``). Every import between parts
counts, function-local ones and ``importlib.import_module`` with a literal name included; imports
under ``if TYPE_CHECKING:`` do not, since they never run. The order of the layers lives here, in
:data:`LAYERS`; docs/architecture.md draws it and places every module in it, and is checked against it.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest

import pytest_otel_overhead

PACKAGE = Path(pytest_otel_overhead.__file__).parent
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


class Layer(NamedTuple):
    parts: tuple[str, ...]
    peers: bool = False
    """Peers share one rank: neither may import the other. Otherwise a part may import those listed before it."""


LAYERS: tuple[Layer, ...] = (
    Layer(("formatting", "units", "compat", "wire", "outputs", "warning_types")),
    Layer(("stats",)),
    Layer(("settings",)),
    Layer(("samplers",)),
    Layer(("otel",)),
    Layer(("results",)),
    Layer(("engine",)),
    Layer(("history",)),
    Layer(("reports",)),
    Layer(("session",)),
    Layer(("instructions", "advice", "calibrate"), peers=True),
    Layer(("plugins",)),
    Layer(("cli", "__main__")),
    Layer(("plugin",)),
)
"""Bottom to top: a part may import only parts below it (see ``Layer.peers`` for parts of one layer)."""

# Upward edges still being removed, each by a change of its own: replicas take child-process
# plumbing from instructions/parent.py, and otel/pipeline.py reports its health in a results record.
# Expected to disappear: the test fails once one is gone, so that this list is emptied with it.
KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset()

Edges = Mapping[str, frozenset[str]]


# -- the checker ---------------------------------------------------------------------------------


def rank(part: str, layers: tuple[Layer, ...] = LAYERS) -> tuple[int, int]:
    for number, layer in enumerate(layers):
        if part in layer.parts:
            return number, 0 if layer.peers else layer.parts.index(part)
    raise KeyError(f"{part} is in no layer: add it to LAYERS and to docs/architecture.md")


def module_name(path: Path, package: Path) -> str:
    name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
    return name.removesuffix(".__init__")


def part_of(module: str) -> str | None:
    """``pkg.engine.runner`` → ``engine``; the package root itself is no part."""
    names = module.split(".")
    return names[1] if len(names) > 1 else None


def type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in ast.walk(node))
    return skipped


def imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Every module name an import statement or ``import_module("...")`` call may load."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    if (
        isinstance(node, ast.Call)
        and ast.unparse(node.func).endswith("import_module")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    return []


def import_edges(package: Path) -> dict[str, frozenset[str]]:
    """Part → the other parts it imports, over every module of ``package``."""
    parts = {p.stem for p in package.glob("*.py")} | {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    edges: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        source = part_of(module)
        if source is None:  # the package root's __init__: it loads its names lazily, on first use
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            for name in imported_names(node, module, path.name == "__init__.py"):
                target = part_of(name) if name.startswith(package.name + ".") else None
                if target is not None and target != source and target in parts:
                    edges.setdefault(source, set()).add(target)
    return {source: frozenset(targets) for source, targets in edges.items()}


def upward(edges: Edges, layers: tuple[Layer, ...] = LAYERS) -> set[tuple[str, str]]:
    """Imports of a part that is not below the importing one."""
    return {(a, b) for a, targets in edges.items() for b in targets if not rank(b, layers) < rank(a, layers)}


def cycles(edges: Edges) -> list[list[str]]:
    """Strongly connected groups of two or more parts (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    nodes = set(edges) | {t for targets in edges.values() for t in targets}
    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def without(edges: Edges, removed: frozenset[tuple[str, str]]) -> dict[str, frozenset[str]]:
    return {a: frozenset(b for b in targets if (a, b) not in removed) for a, targets in edges.items()}


# -- the package -----------------------------------------------------------------------------------


def test_every_part_has_a_layer() -> None:
    edges = import_edges(PACKAGE)
    parts = set(edges) | {t for targets in edges.values() for t in targets}
    for part in sorted(parts):
        rank(part)  # raises, naming the part, when it has no layer


def test_no_part_imports_one_above_it() -> None:
    found = upward(import_edges(PACKAGE))
    assert found - KNOWN_UPWARD == set(), "import a lower part only; move what both need down"
    assert KNOWN_UPWARD - found == set(), "an edge expected to disappear is gone: take it out of KNOWN_UPWARD"


def test_no_parts_import_each_other_in_a_circle() -> None:
    assert cycles(without(import_edges(PACKAGE), KNOWN_UPWARD)) == []


# -- the checker on a package of its own ---------------------------------------------------------


def write_package(root: Path, files: Mapping[str, str]) -> Path:
    package = root / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return package


TOY_LAYERS = (Layer(("low",)), Layer(("left", "right"), peers=True), Layer(("mid",)), Layer(("top",)))


def test_the_checker_counts_every_kind_of_import_but_type_checking_ones(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "low.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg import top  # never runs: not counted
                """,
            "mid/__init__.py": "from . import helpers\n",
            "mid/helpers.py": """
                from ..low import thing
                def later():
                    import pkg.top
                """,
            "left.py": "import importlib\nimportlib.import_module('pkg.right')\n",
            "right.py": "",
            "top.py": "from pkg.mid import helpers\nfrom pkg import low\n",
        },
    )
    edges = import_edges(package)
    assert edges == {
        "mid": frozenset({"low", "top"}),
        "left": frozenset({"right"}),
        "top": frozenset({"mid", "low"}),
    }
    assert upward(edges, TOY_LAYERS) == {("mid", "top"), ("left", "right")}  # a function-local one; peers
    assert cycles(edges) == [["mid", "top"]]
    assert cycles(without(edges, frozenset({("mid", "top")}))) == []


def test_a_part_in_no_layer_is_an_error() -> None:
    with pytest.raises(KeyError, match="extra is in no layer"):
        upward({"extra": frozenset({"low"})}, TOY_LAYERS)


# -- docs/architecture.md, checked against LAYERS -------------------------------------------------


def diagram_layers(text: str) -> list[tuple[int, list[str]]]:
    """``NN  part, part  description`` lines of the code block under "## The layers"."""
    section = text.split("## The layers", 1)[1]
    block = section.split("```", 2)[1]
    rows = []
    for line in block.splitlines():
        match = re.match(r"\s*(\d+)\s+(.+?)(?:\s{2,}|$)", line)
        if match:
            rows.append((int(match.group(1)), re.findall(r"[A-Za-z_]+", match.group(2))))
    return rows


def module_rows(text: str) -> Iterator[tuple[int, str]]:
    """(layer, module path) of each row of the table under "## Every module in its place"."""
    section = text.split("## Every module in its place", 1)[1]
    for line in section.splitlines():
        match = re.match(r"\|\s*(\d+)\s*\|\s*`([^`]+\.py)`", line)
        if match:
            yield int(match.group(1)), match.group(2)


def page_problems(text: str, modules: set[str]) -> list[str]:
    """Where the page's drawing or table of modules disagrees with LAYERS and the package's modules."""
    problems = []
    expected = [(number, list(layer.parts)) for number, layer in enumerate(LAYERS, 1)]
    if sorted(diagram_layers(text)) != expected:
        problems.append(f"the drawing of the layers is not {expected}")
    rows = list(module_rows(text))
    placed = {path for _, path in rows}
    problems += [f"{path} is not in the table" for path in sorted(modules - placed)]
    problems += [f"{path} is no module" for path in sorted(placed - modules)]
    for number, path in (row for row in rows if row[1] in modules):
        layer = rank(Path(path).parts[0].removesuffix(".py"))[0] + 1
        if layer != number:
            problems.append(f"{path} is in layer {layer}, not {number}")
    return problems


def package_modules() -> set[str]:
    return {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py") if path.name != "__init__.py"}


def test_the_architecture_page_draws_the_layers_and_places_every_module() -> None:
    assert page_problems(ARCHITECTURE.read_text(encoding="utf-8"), package_modules()) == []


def test_the_page_check_sees_a_stale_page() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    stale = text.replace(" 9  reports/", " 9  reportz/").replace("| 7 | `engine/timed.py`", "| 6 | `engine/timed.py`")
    stale = stale.replace("| 1 | `wire/transport.py`", "| 1 | `wired.py`")
    assert page_problems(stale, package_modules()) == [
        f"the drawing of the layers is not {[(n, list(layer.parts)) for n, layer in enumerate(LAYERS, 1)]}",
        "wire/transport.py is not in the table",
        "wired.py is no module",
        "engine/timed.py is in layer 7, not 6",
    ]
