"""The rooms meet only through their public surfaces (docs/seams.md): the agent imports
a room's package, never its private modules; docking, hashing, ledger and uploader import
config and nothing of each other; shared primitives are written once, in config.common."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOMS = ("docking", "hashing", "ledger", "uploader")


def _imports(folder: str) -> list[tuple[str, str]]:
    found = []
    for path in sorted((REPO / folder).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path.name, node.module))
            elif isinstance(node, ast.Import):
                found += [(path.name, alias.name) for alias in node.names]
    return found


def test_the_agent_uses_only_the_public_surface_of_the_rooms() -> None:
    private = [
        (name, module)
        for name, module in _imports("agent")
        if module.split(".")[0] in ROOMS
        and module.count(".") > 0
        # each room's schema is handed to the one module that migrates the database
        and not (name == "database.py" and module.endswith(".schema"))
    ]
    assert private == []


def test_the_rooms_do_not_import_each_other_or_the_agent() -> None:
    crossing = [
        (room, name, module)
        for room in ROOMS
        for name, module in _imports(room)
        if module.split(".")[0] in (*ROOMS, "agent") and module.split(".")[0] != room
    ]
    assert crossing == []


def test_the_shared_primitives_are_not_written_again() -> None:
    # One UTC clock, one directory fsync, one transaction helper: in config.common.
    copies = []
    for folder in (*ROOMS, "agent", "config"):
        for path in sorted((REPO / folder).glob("*.py")):
            if path == REPO / "config" / "common.py":
                continue
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") in (
                    "fsync_dir",
                    "utc_now",
                    "transaction",
                    "write_atomic",
                ):
                    copies.append(f"{folder}/{path.name}:{node.name}")
    assert copies == []
