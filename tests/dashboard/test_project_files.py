"""The project as Reflex sees it: starting the app in a fresh checkout must not change it."""

from __future__ import annotations

from pathlib import Path

from reflex.utils.frontend_skeleton import initialize_gitignore

ROOT = Path(__file__).resolve().parents[2]


def test_reflex_finds_nothing_to_add_to_the_gitignore(tmp_path: Path) -> None:
    """``reflex run`` in a checkout without ``.web`` initialises the project, which adds the
    lines Reflex wants to ``.gitignore``: they are all there already, so the tracked file stays
    as committed (``git status`` clean after a start)."""
    committed = (ROOT / ".gitignore").read_bytes()
    copy = tmp_path / ".gitignore"
    copy.write_bytes(committed)
    initialize_gitignore(copy)
    assert copy.read_bytes() == committed
