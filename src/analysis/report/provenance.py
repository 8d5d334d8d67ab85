"""What produced a report: package version, git commit, input hashes, parameters, versions, timings.

Nothing of the rendering machine goes into a report's provenance: the dataset is named by its
folder's name only and its inputs by their names inside it (the tables the loader reads and
``instruments.toml``, never the rest of the folder), each identified by SHA-256; the
notebook is named by its file name.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["file_sha256", "data_hashes", "input_hashes", "git_state", "dependency_versions", "build_provenance",
           "cache_key"]

#: the tables a dataset folder may hold (docs/data-format.md) and the dataset's instrument file
INPUT_TABLES = ("patients", "sessions", "assessments", "medications")
INPUT_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")

KEY_DEPENDENCIES = ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "pyarrow", "pandera", "papermill",
                    "nbconvert", "nbclient", "ipykernel", "pydantic")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks.

    Remembered for the process while the file's device, inode, size and modification time
    stay the same: a batch names hundreds of cohorts of one dataset, each keyed by its files."""
    info = os.stat(path)
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    known = _DIGESTS.get(str(path))
    if known is not None and known[0] == key:
        return known[1]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    _DIGESTS[str(path)] = (key, digest.hexdigest())
    return _DIGESTS[str(path)][1]


#: file path: ((device, inode, size, mtime), SHA-256) of the files hashed by this process
_DIGESTS: dict[str, tuple[tuple, str]] = {}


def data_hashes(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every file in a dataset folder, by file name (sorted)."""
    folder = Path(folder)
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def input_hashes(folder: str | Path) -> dict[str, str]:
    """SHA-256 of the dataset's inputs only, by their names inside the folder (sorted): the
    tables the loader reads and ``instruments.toml``; other files of the folder are not listed.

    Examples
    --------
    >>> import analysis
    >>> from analysis.report.provenance import input_hashes
    >>> sorted(input_hashes(analysis.sample_path()))
    ['assessments.csv', 'medications.csv', 'patients.csv', 'sessions.csv']
    """
    folder = Path(folder)
    names = {f"{t}{s}" for t in INPUT_TABLES for s in INPUT_SUFFIXES} | {"instruments.toml"}
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name in names}


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
    """The provenance record written next to every report as ``provenance.json``: no path of
    this machine (``data`` and the notebook by name, plumbing parameters left out) and the
    dataset's inputs by name and SHA-256."""
    shown = dict(parameters)
    for plumbing in ("output_dir", "html_path"):
        shown.pop(plumbing, None)
    if shown.get("data"):
        shown["data"] = Path(str(shown["data"])).name
    return {
        "package": "ketamine-outcomes",
        "package_version": package_version(),
        "git": git_state(),
        "notebook": {"path": Path(notebook).name, "sha256": file_sha256(notebook)},
        "data": {"dataset": Path(data_folder).resolve().name, "sha256": input_hashes(data_folder)},
        "parameters": shown,
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
