"""Files that ship with the package: the bundled sample dataset and the notebooks.

In the repository they stay at the top level (``data/sample/`` and ``notebooks/``, DESIGN.md
section 1). A wheel carries them inside the package, as ``analysis/_bundled/data/sample/``
and ``analysis/_bundled/notebooks/``: ``pyproject.toml`` maps the package
``analysis._bundled`` to the repository root and lists the files in ``package-data``. This
module finds them through :mod:`importlib.resources` in an installed wheel, and through the
same ``package-dir`` mapping in the source tree when the package is imported from one (an
editable install, ``pip install -e .``), so every caller gets the same folders either way.

Examples
--------
>>> import analysis
>>> sorted(p.name for p in analysis.sample_path().glob("*.csv"))
['assessments.csv', 'medications.csv', 'patients.csv', 'sessions.csv']
>>> notebook_path("cohort_report").name
'cohort_report.ipynb'
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from pathlib import Path

__all__ = ["sample_path", "notebooks_path", "notebook_path", "source_tree"]

PACKAGE = "analysis"
DISTRIBUTION = "ketamine-outcomes"
#: the package that carries the bundled files in a wheel (mapped to the repository root)
BUNDLED = f"{PACKAGE}._bundled"
#: where each bundled folder is, relative to the repository root and to ``analysis/_bundled/``
SAMPLE = ("data", "sample")
NOTEBOOKS = ("notebooks",)


def sample_path() -> Path:
    """The bundled sample dataset (500 simulated patients; ``data/sample`` in the repository).

    Works the same from a wheel and from an editable install; load it with
    ``analysis.load_dataset(analysis.sample_path())``.

    Examples
    --------
    >>> import analysis
    >>> analysis.load_dataset(analysis.sample_path()).patients.shape[0]
    500
    """
    return _bundled(*SAMPLE)


def notebooks_path() -> Path:
    """The folder of the package's notebooks (``notebooks/`` in the repository)."""
    return _bundled(*NOTEBOOKS)


def notebook_path(name: str) -> Path:
    """Path of one of the package's notebooks (``cohort_report``, ``paper_figures``, ``explore``).

    Examples
    --------
    >>> notebook_path("no_such_notebook")
    Traceback (most recent call last):
    ...
    FileNotFoundError: notebook 'no_such_notebook' not found in .../notebooks
    """
    folder = notebooks_path()
    path = folder / f"{name}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"notebook {name!r} not found in {folder}")
    return path


def _package_dir() -> Path:
    root = files(PACKAGE)
    if not isinstance(root, Path):  # a zip import: nothing here can be handed out as a folder
        raise FileNotFoundError(f"{PACKAGE} is imported from {root}, not from a folder; install the wheel unpacked")
    return root


@cache
def source_tree() -> Path | None:
    """The repository the package is imported from (editable install or checkout), else None.

    It is the folder above the package whose ``pyproject.toml`` names this distribution and
    maps the package to where it was imported from; in a wheel install there is none.
    """
    package = _package_dir().resolve()
    for root in list(package.parents)[:3]:
        mapping = _package_dirs(root)
        if mapping is not None and (root / mapping.get("", ".") / PACKAGE).resolve() == package:
            return root
    return None


def _package_dirs(root: Path) -> dict[str, str] | None:
    """``[tool.setuptools.package-dir]`` of ``root/pyproject.toml`` if it is this distribution's."""
    try:
        config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    if config.get("project", {}).get("name") != DISTRIBUTION:
        return None
    return dict(config.get("tool", {}).get("setuptools", {}).get("package-dir", {}))


def _bundled(*parts: str) -> Path:
    """A bundled folder: inside the installed package, else where the source tree maps it."""
    installed = _package_dir().joinpath("_bundled", *parts)
    if installed.is_dir():
        return installed
    tree = source_tree()
    if tree is not None:
        mapped = tree / _package_dirs(tree).get(BUNDLED, ".")
        if mapped.joinpath(*parts).is_dir():
            return mapped.joinpath(*parts)
    raise FileNotFoundError(
        f"{'/'.join(parts)} is not bundled with this installation of {DISTRIBUTION} "
        f"(looked in {installed}{' and ' + str(tree) if tree else ''}); reinstall the package")
