"""The layout of the house (ARCHITECTURE.md), checked on the source: what each room of painter/
may import, that it stays host-free, and that no module outgrows a reader."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAINTER = ROOT / "painter"
# Each room may import itself and the rooms listed; tools import the engine and the renderer, the
# renderer the engine, the engine nothing of the pack.
ALLOWED = {"engine": {"engine"}, "render": {"engine", "render"}, "tools": {"engine", "render", "tools"}}
HOST = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "latent_preview", "node_helpers", "nodes"}
MAX_LINES = 400


def modules():
    return sorted(path for path in PAINTER.rglob("*.py"))


def imported_rooms(path: Path) -> set[tuple[str, int]]:
    """(room or top-level module, line) of every import in ``path``, relative ones resolved."""
    room = path.relative_to(PAINTER).parts[0] if len(path.relative_to(PAINTER).parts) > 1 else None
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.add((node.module.split(".")[0], node.lineno))
            elif node.level == 1:
                found.add((room, node.lineno))
            elif node.level == 2:
                target = (node.module or "").split(".")[0]
                names = [alias.name for alias in node.names] if not target else [target]
                found |= {(name, node.lineno) for name in names}
            else:
                found.add(("nodes" if (node.module or "").startswith("nodes") else "..", node.lineno))
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_room_imports_only_what_it_may(path):
    parts = path.relative_to(PAINTER).parts
    if len(parts) == 1:  # painter/__init__.py: the rooms' index
        assert not [name for name, _ in imported_rooms(path) if name in HOST | {"nodes"}]
        return
    room = parts[0]
    for name, line in imported_rooms(path):
        assert name not in HOST, f"{path.relative_to(ROOT)}:{line} imports {name}: the engine rooms stay host-free"
        if name in ALLOWED:
            assert name in ALLOWED[room], f"{path.relative_to(ROOT)}:{line}: {room} may not import {name}"
        assert name != "..", f"{path.relative_to(ROOT)}:{line}: an import out of painter/"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_outgrows_a_reader(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by what it owns"


def test_every_room_says_what_it_owns_and_may_import():
    for room in ALLOWED:
        doc = ast.get_docstring(ast.parse((PAINTER / room / "__init__.py").read_text()))
        assert doc and "import" in doc, room


def test_the_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The rule is not vacuous: an engine module importing the renderer and the host is caught."""
    fake = tmp_path / "engine" / "fake.py"
    fake.parent.mkdir()
    fake.write_text("from ..render.writers import to_uint8\nimport comfy.utils\nfrom .plan import Plan\n")
    monkeypatch.setattr(sys.modules[__name__], "PAINTER", tmp_path)
    rooms = {name for name, _ in imported_rooms(fake)}
    assert rooms == {"render", "comfy", "engine"}
    assert "render" not in ALLOWED["engine"] and "comfy" in HOST
