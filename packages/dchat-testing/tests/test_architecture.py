"""The workspace's shape: the package DAG, no import cycles, declared = imported.

Reads the source of every package (no imports), so it runs anywhere. The
layers are those of the design (``DESIGN.md``, "Packages"): a package may
import only packages of a lower layer; dchat-testing may import anything and
nothing imports it. Runtime imports count, including those inside functions
(they hide cycles); imports under ``if TYPE_CHECKING:`` do not (they never run).
One upward import is allowed by name (``OPTIONAL_UPWARD``): it must be an optional
extra of its package.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[2]
LAYERS = {
    "dchat_core": 0,
    "dchat_crypto": 1,
    "dchat_identity": 2,
    "dchat_storage": 2,
    "dchat_privacy": 2,
    "dchat_network": 3,
    "dchat_messaging": 3,
    "dchat_chain": 3,
    "dchat_sdk": 4,
    "dchat_bots": 5,
    "dchat_node": 5,
    "dchat_testing": 6,
}
# Import names that differ from their distribution's name.
DISTRIBUTIONS = {
    "nacl": "pynacl",
    "PIL": "pillow",
    "shamir_mnemonic": "shamir-mnemonic",
    "opentelemetry": "opentelemetry-sdk",  # the SDK brings the API (one namespace, two dists)
}
# Upward imports allowed by design, module -> packages. ``Client.embedded`` runs
# dchat-node's own runtime in-process (never a copy of its steps): only this module
# imports it, inside functions, and only as the extra ``dchat-sdk[embedded]``.
OPTIONAL_UPWARD = {"dchat_sdk._embedded": {"dchat_node"}}


@dataclass
class Package:
    dist: str
    module: str
    src: Path
    tests: Path
    declared: set[str]
    optional: set[str]  # the dependencies of its extras
    graph: dict[str, set[str]] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)  # top-level names, from src
    test_imports: set[str] = field(default_factory=set)


def _runtime_imports(path: Path, name: str, is_package: bool) -> set[str]:
    """Modules ``path`` imports when it runs: ``M`` and ``M.name`` for ``from M import name``.

    ``M.name`` is kept only as a candidate: whether it is a module is decided
    against the package's module list (:func:`_edges`).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = name.split(".") if is_package else name.split(".")[:-1]
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found |= {f"{module}:{alias.name}" for alias in node.names}
    return found


def _edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Module -> modules of the same package it imports (``from M import sub`` is ``M.sub``)."""
    edges: dict[str, set[str]] = {}
    for name, found in graph.items():
        targets = set()
        for item in found:
            module, _, imported = item.partition(":")
            submodule = f"{module}.{imported}"
            targets.add(submodule if imported and submodule in graph else module)
        edges[name] = {t for t in targets if t in graph and t != name}
    return edges


def _top(item: str) -> str:
    return item.partition(":")[0].split(".")[0]


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _load() -> dict[str, Package]:
    packages = {}
    for directory in sorted(p for p in PACKAGES.iterdir() if (p / "pyproject.toml").exists()):
        project = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
        declared = {_dist_name(d) for d in project.get("dependencies", [])}
        extras = project.get("optional-dependencies", {}).values()
        optional = {_dist_name(d) for deps in extras for d in deps}
        (module_dir,) = [p for p in (directory / "src").iterdir() if p.is_dir()]
        package = Package(
            project["name"],
            module_dir.name,
            directory / "src",
            directory / "tests",
            declared,
            optional,
        )
        for path in sorted(package.src.rglob("*.py")):
            name, is_package = _module_name(path, package.src)
            found = _runtime_imports(path, name, is_package)
            package.graph[name] = found
            package.imports |= {_top(m) for m in found}
        for path in sorted(package.tests.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    package.test_imports |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    package.test_imports.add(node.module.split(".")[0])
        packages[package.module] = package
    return packages


def _dist_name(requirement: str) -> str:
    name = requirement
    for stop in "<>=!~[; ":
        name = name.split(stop)[0]
    return name.strip().lower().replace("_", "-")


def _third_party(names: set[str]) -> set[str]:
    skip = set(sys.stdlib_module_names) | {"__future__"} | set(LAYERS)
    return {DISTRIBUTIONS.get(n, n).lower().replace("_", "-") for n in names - skip}


PACKAGE_MAP = _load()


def test_every_package_is_placed_in_a_layer() -> None:
    assert set(PACKAGE_MAP) == set(LAYERS)


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_point_only_down_the_layers(module: str) -> None:
    package = PACKAGE_MAP[module]
    upward = sorted(
        f"{name} -> {other}"
        for name, found in package.graph.items()
        for other in {_top(m) for m in found} & set(LAYERS)
        if other != module
        and LAYERS[other] >= LAYERS[module]
        and other not in OPTIONAL_UPWARD.get(name, set())
    )
    assert upward == [], f"{package.dist} imports {upward} (same layer or above)"


def test_allowed_upward_imports_are_optional_extras() -> None:
    for name, targets in OPTIONAL_UPWARD.items():
        package = PACKAGE_MAP[name.split(".")[0]]
        assert name in package.graph, f"{name} is gone: drop it from OPTIONAL_UPWARD"
        dists = {PACKAGE_MAP[t].dist for t in targets}
        assert dists <= package.optional - package.declared, f"{dists}: extras only"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, path)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return cycles


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_no_import_cycle_between_modules(module: str) -> None:
    cycles = _cycles(_edges(PACKAGE_MAP[module].graph))
    assert cycles == [], " ; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_declared_dependencies_are_the_imported_ones(module: str) -> None:
    package = PACKAGE_MAP[module]
    internal = {PACKAGE_MAP[m].dist for m in package.imports & set(LAYERS) if m != module}
    used = internal | _third_party(package.imports)
    missing = sorted(used - package.declared - package.optional)
    assert missing == [], f"{package.dist} imports undeclared {missing}"
    tested = {PACKAGE_MAP[m].dist for m in package.test_imports & set(LAYERS)}
    unused = sorted(package.declared - used - tested - _third_party(package.test_imports))
    assert unused == [], f"{package.dist} declares {unused} but never imports them"


def test_only_the_client_cli_of_the_node_uses_the_sdk() -> None:
    """The roles never call their own API through a client; only ``dchat`` (cli/) does."""
    users = sorted(
        name
        for name, found in PACKAGE_MAP["dchat_node"].graph.items()
        if any(_top(item) == "dchat_sdk" for item in found)
        and not (name == "dchat_node.cli" or name.startswith("dchat_node.cli."))
    )
    assert users == []


def test_every_role_has_its_own_subpackage() -> None:
    # The wallet has no node folder: its files (the light client's, the channel
    # book's) are dchat-chain's blocking shells, and its commands are the CLI's.
    modules = set(PACKAGE_MAP["dchat_node"].graph)
    assert {f"dchat_node.{r}" for r in ("user", "relay", "validator", "api", "cli")} <= modules
    assert "dchat_node.wallet" not in modules


NODE_SHELL_LIMIT = 4_000
"""Lines (all of them) of dchat-node outside ``api/`` and ``cli/``: composition only."""


def test_the_node_outside_its_api_and_cli_stays_a_thin_shell() -> None:
    """Logic belongs in the package that owns it; the node only composes (issue 12)."""
    src = PACKAGES / "dchat-node" / "src" / "dchat_node"
    shell = [p for p in src.rglob("*.py") if p.relative_to(src).parts[0] not in {"api", "cli"}]
    assert len(shell) > 20  # the scan sees the node's modules (it cannot pass on an empty set)
    lines = sum(len(p.read_text().splitlines()) for p in shell)
    assert lines < NODE_SHELL_LIMIT, f"{lines} lines: move logic into its package"


def test_the_checks_see_a_planted_upward_import(tmp_path: Path) -> None:
    """The scanner finds a function-local import (so the tests above can fail)."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    import dchat_node\n")
    assert "dchat_node" in {_top(m) for m in _runtime_imports(source, "dchat_core.mod", False)}
    hidden = tmp_path / "hidden.py"
    hidden.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import dchat_node\n"
    )
    assert not _runtime_imports(hidden, "dchat_core.hidden", is_package=False) - {
        "typing:TYPE_CHECKING"
    }
    cycle = {"pkg": {"pkg:_a"}, "pkg._a": {"pkg._b:x"}, "pkg._b": {"pkg:_a"}}
    assert _edges(cycle) == {"pkg": {"pkg._a"}, "pkg._a": {"pkg._b"}, "pkg._b": {"pkg._a"}}
    assert _cycles(_edges(cycle)) == [["pkg._a", "pkg._b", "pkg._a"]]
