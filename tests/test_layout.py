"""The house's layout rules: where the contract ends, what a plugin may import, no import loops.

Read from the source (every ``import`` statement, at module level or inside a function), so a
lazy import that closes a loop counts as much as a top-level one.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("hostsim", "idhub_aws_plugin")
#: What the contract may import besides itself: the standard library and these.
CONTRACT_DEPENDENCIES = {"pluggy", "attrs", "cattrs"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every module ``name`` imports (a ``from pkg import sub`` counts as ``pkg.sub`` when
    ``sub`` is a module of ours)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in MODULES else base


def _graph() -> dict[str, set[str]]:
    return {
        name: {target for target in _imports(name, path) if target in MODULES} - {name}
        for name, path in MODULES.items()
    }


def test_the_contract_imports_nothing_else_of_hostsim() -> None:
    contract = {name: path for name, path in MODULES.items() if name.startswith("hostsim.contract")}
    assert "hostsim.contract" in contract and len(contract) >= 7
    for name, path in contract.items():
        for target in _imports(name, path):
            top = target.split(".")[0]
            if top == "hostsim":
                assert target.startswith("hostsim.contract"), f"{name} imports {target}"
            else:
                allowed = top in CONTRACT_DEPENDENCIES or top in sys.stdlib_module_names
                assert allowed or top == "__future__", f"{name} imports {target}"


def test_the_plugin_imports_only_the_contract_of_hostsim() -> None:
    plugin = {name: path for name, path in MODULES.items() if name.startswith("idhub_aws_plugin")}
    assert plugin
    for name, path in plugin.items():
        for target in _imports(name, path):
            if target.split(".")[0] == "hostsim":
                assert target.startswith("hostsim.contract"), f"{name} imports {target}"


@pytest.mark.parametrize(
    "name",
    [
        "hookimpl",
        "ConnectorType",
        "Connector",
        "Capability",
        "CreateRequest",
        "OperationResult",
        "StepLog",
        "InvalidInput",
        "structure",
    ],
)
def test_the_contract_face_exports_what_a_plugin_uses(name: str) -> None:
    import hostsim.contract

    assert name in hostsim.contract.__all__
    assert getattr(hostsim.contract, name) is not None


def test_no_two_modules_import_each_other_even_through_others() -> None:
    graph = _graph()
    loops: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            loops.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for target in sorted(graph[node]):
            visit(target, [*path, node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    assert not loops, "import loops: " + "; ".join(" -> ".join(loop) for loop in loops)
