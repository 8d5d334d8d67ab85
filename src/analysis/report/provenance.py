"""What produced a report: package version, git commit, input hashes, parameters, versions, timings."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["file_sha256", "data_hashes", "git_state", "dependency_versions", "build_provenance", "cache_key"]

KEY_DEPENDENCIES = ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "pyarrow", "pandera", "papermill",
                    "nbconvert", "nbclient", "ipykernel", "pydantic")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_hashes(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every file in a dataset folder, by file name (sorted)."""
    folder = Path(folder)
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def git_state(path: str | Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the git work tree holding ``path``.

    By default the source tree the package is imported from (an editable install); a package
    installed from a wheel has none, and then, as outside a git work tree or without git,
    the result is ``{"commit": None, "dirty": None}`` (not the commit of whatever repository
    the environment happens to sit in).
    """
    from ..resources import source_tree

    where = Path(path) if path else source_tree()
    if where is None:
        return {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def dependency_versions() -> dict[str, str | None]:
    """Installed versions of the key dependencies (None if absent)."""
    out: dict[str, str | None] = {}
    for name in KEY_DEPENDENCIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def package_version() -> str:
    from .. import __version__

    return __version__


def build_provenance(*, parameters: Mapping[str, Any], data_folder: str | Path, notebook: str | Path,
                     timings: Mapping[str, float], status: str = "ok") -> dict[str, Any]:
    """The provenance record written next to every report as ``provenance.json``."""
    return {
        "package": "ketamine-outcomes",
        "package_version": package_version(),
        "git": git_state(),
        "notebook": {"path": str(notebook), "sha256": file_sha256(notebook)},
        "data": {"folder": str(data_folder), "sha256": data_hashes(data_folder)},
        "parameters": dict(parameters),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dependencies": dependency_versions(),
        "timings_seconds": {k: round(float(v), 3) for k, v in timings.items()},
        "status": status,
    }


def cache_key(*, notebook: str | Path, parameters: Mapping[str, Any], data_folder: str | Path) -> str:
    """Hash of what determines a report: notebook, parameters, data and package version."""
    payload = json.dumps(
        {"notebook": file_sha256(notebook), "parameters": dict(parameters), "data": data_hashes(data_folder),
         "package_version": package_version()},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()
