"""matplotlib's font list, shared by the kernels of the renders (each has its own matplotlib folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["copy_font_lists", "font_cache_folder"]


def font_cache_folder() -> Path:
    """Where matplotlib keeps its font list for this user when nothing overrides it
    (``MPLCONFIGDIR``, else ``$XDG_CACHE_HOME/matplotlib``, else ``~/.cache/matplotlib``)."""
    if os.environ.get("MPLCONFIGDIR"):
        return Path(os.environ["MPLCONFIGDIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib"


def copy_font_lists(source: Path, target: Path, *, only_new: bool = False) -> None:
    """Copy matplotlib's font lists (``fontlist-v*.json``) from ``source`` to ``target``.

    A kernel with an empty matplotlib folder first scans every installed font (a second or
    more); seeded with the user's font list it starts at once, and a list a kernel built is
    kept for the next (``only_new``: where ``target`` has none of that name). Each copy is
    atomic, so parallel renders never read half a file.
    """
    if not source.is_dir():
        return
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        return  # a cache only: a kernel without it builds its own font list
    for found in source.glob("fontlist-v*.json"):
        destination = target / found.name
        if only_new and destination.exists():
            continue
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".{found.name}.{os.getpid()}.tmp"
        shutil.copyfile(found, tmp)
        os.replace(tmp, destination)


# --- progress ----------------------------------------------------------------------------------
