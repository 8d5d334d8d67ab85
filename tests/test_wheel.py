"""The package installs and runs from a wheel, away from the repository.

The wheel carries the bundled sample (``data/sample``) and the notebooks (``notebooks/*.ipynb``)
as package data (``analysis/_bundled/``, see ``pyproject.toml``), found through
:mod:`analysis.resources`. The slow test builds the wheel from a copy of the work tree,
installs it into a new virtual environment and renders the sample report from another folder.

To keep that test fast and offline, the new environment borrows the test environment's
installed dependencies (a ``.pth`` file listing its ``site-packages`` folders, whose own
``.pth`` files, such as an editable install's, are not read, and ``JUPYTER_PATH`` for the
nbconvert templates installed beside them), while ``analysis`` itself is imported from the
wheel: the test checks it. With ``KO_WHEEL_FRESH=1`` the environment gets its own
dependencies from the package index instead (``pip install <wheel>``, a few minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
BUNDLED = "analysis._bundled"
#: left out of the copy of the work tree the wheel is built from (generated and private folders)
IGNORE = shutil.ignore_patterns(".git", ".venv*", "reports", "build", "dist", "*.egg-info", "__pycache__",
                                ".pytest_cache", ".hypothesis", ".ipynb_checkpoints")


def _bundled_files() -> set[str]:
    """Files of the work tree the package-data patterns of ``analysis._bundled`` select."""
    patterns = SETUPTOOLS["package-data"][BUNDLED]
    root = ROOT / SETUPTOOLS["package-dir"][BUNDLED]
    out = set()
    for pattern in patterns:
        out |= {p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file()}
    return out


def _tracked(folder: str) -> set[str]:
    """Files git tracks under ``folder`` (all files there when git is not available)."""
    try:
        run = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except OSError:
        run = None
    if run is None or run.returncode != 0 or not run.stdout.strip():
        return {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file()}
    return set(run.stdout.split())


# --- the configuration, without building -----------------------------------------------------------


def test_packages_list_every_package_of_the_source():
    src = ROOT / SETUPTOOLS["package-dir"][""]
    found = {".".join(p.parent.relative_to(src).parts) for p in src.rglob("__init__.py")}
    assert set(SETUPTOOLS["packages"]) == found | {BUNDLED}, "pyproject.toml [tool.setuptools] packages is out of date"


def test_package_data_lists_only_files_that_exist():
    data = SETUPTOOLS["package-data"]
    for package, patterns in data.items():
        root = ROOT / SETUPTOOLS["package-dir"].get(package, Path(SETUPTOOLS["package-dir"][""], *package.split(".")))
        for pattern in patterns:
            assert any(p.is_file() for p in root.glob(pattern)), f"package-data {package}: {pattern} matches nothing"


def test_every_file_of_the_sample_and_every_notebook_is_bundled():
    wanted = {f for f in _tracked("data/sample")} | {f for f in _tracked("notebooks") if f.endswith(".ipynb")}
    assert wanted <= _bundled_files()
    assert not {f for f in _bundled_files() if f.endswith(".py")}, "the jupytext pairs are not shipped"


def test_the_editable_install_finds_the_bundled_files_in_the_repository():
    import analysis
    from analysis.resources import notebook_path, source_tree

    assert analysis.sample_path() == ROOT / "data" / "sample"
    assert notebook_path("cohort_report") == ROOT / "notebooks" / "cohort_report.ipynb"
    assert source_tree() == ROOT


# --- the wheel ------------------------------------------------------------------------------------


def _pip(*args: str, python: str = sys.executable, **kw) -> subprocess.CompletedProcess:
    run = subprocess.run([python, "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True,
                         timeout=900, **kw)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def _can_build_without_isolation() -> bool:
    """Whether this environment has the setuptools the build needs (then nothing is downloaded)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = int(version("setuptools").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return False
    return major >= 77


def _build_wheel(tree: Path, dist: Path) -> Path:
    shutil.copytree(ROOT, tree, ignore=IGNORE)
    isolation = [] if not _can_build_without_isolation() else ["--no-build-isolation"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    _pip("wheel", "--no-deps", *isolation, "--wheel-dir", str(dist), str(tree), env=env)
    (found,) = dist.glob("ketamine_outcomes-*.whl")
    return found


def _check_contents(wheel: Path) -> None:
    """The wheel carries the sample and the notebooks, every module, and nothing else of the root."""
    names = set(zipfile.ZipFile(wheel).namelist())
    bundled = {n.removeprefix("analysis/_bundled/") for n in names if n.startswith("analysis/_bundled/")}
    assert bundled == _bundled_files()
    src = ROOT / "src"
    modules = {p.relative_to(src).as_posix() for p in (src / "analysis").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert "analysis/py.typed" in names
    outside = {n.split("/")[0] for n in names} - {"analysis"}
    assert all(n.endswith(".dist-info") for n in outside), outside


def _install(wheel: Path, venv: Path) -> dict[str, str]:
    """A new virtual environment with the wheel installed; returns the environment variables to run it with."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_PATH")}
    env["MPLBACKEND"] = "Agg"
    if os.environ.get("KO_WHEEL_FRESH") == "1":
        _pip("install", "--quiet", str(wheel), python=python, env=env)
        return env
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, env=env).stdout.strip()
    borrowed = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    Path(site, "_test_environment.pth").write_text("\n".join(borrowed) + "\n")
    env["JUPYTER_PATH"] = str(Path(sys.prefix, "share", "jupyter"))
    # --ignore-installed: the borrowed folders hold this environment's (editable) install of the
    # package, which pip would otherwise take as already there, or uninstall
    _pip("install", "--quiet", "--no-deps", "--no-index", "--ignore-installed", str(wheel), python=python, env=env)
    return env


@pytest.mark.slow
def test_wheel_installs_and_renders_the_sample_report_from_another_folder(tmp_path):
    """One test (one build) for the whole path: build, check, install, import, render."""
    wheel = _build_wheel(tmp_path / "tree", tmp_path / "dist")
    _check_contents(wheel)

    venv = tmp_path / "env"
    env = _install(wheel, venv)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    code = ("import analysis, analysis.resources as r, json; "
            "print(json.dumps({'file': analysis.__file__, 'sample': str(analysis.sample_path()), "
            "'notebook': str(r.notebook_path('cohort_report')), 'tree': str(r.source_tree()), "
            "'n': len(analysis.load_dataset(analysis.sample_path()).patients)}))")
    run = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout)
    for key in ("file", "sample", "notebook"):       # the package and its files come from the wheel
        assert Path(found[key]).is_relative_to(venv), (key, found[key])
    assert found["tree"] == "None" and found["n"] == 500

    run = subprocess.run([str(venv / "bin" / "ketamine-outcomes"), "report", "--out", "r"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = elsewhere / "r"
    assert (out / "report.html").is_file()
    provenance = json.loads((out / "provenance.json").read_text())
    # the bundled sample and notebook, named without machine paths and identified by SHA-256
    import hashlib

    assert provenance["data"]["dataset"] == "sample"
    for table, digest in provenance["data"]["sha256"].items():
        assert hashlib.sha256((Path(found["sample"]) / table).read_bytes()).hexdigest() == digest, table
    bundled_notebook = Path(found["notebook"])
    assert provenance["notebook"]["path"] == bundled_notebook.name
    assert provenance["notebook"]["sha256"] == hashlib.sha256(bundled_notebook.read_bytes()).hexdigest()
    assert provenance["git"] == {"commit": None, "dirty": None}            # no source tree: no commit claimed
    assert json.loads((out / "key_figures.json").read_text())["patients"] == "494"  # analysed: with an endpoint
