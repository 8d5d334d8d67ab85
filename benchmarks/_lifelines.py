"""Run a benchmark stage with lifelines, in the lifelines environment of its own.

lifelines 0.30 needs pandas < 3 while the package and its tests run on pandas 3, so the
benchmarks run in the test environment (``.venv``) and only the lifelines comparison rows
run in ``.venv-lifelines`` (pandas < 3, lifelines, pyarrow; ``make benchmark`` creates
it). A stage reads its data from a file the benchmark wrote (Parquet), fits, and reports
like every other stage (:func:`_measure.run_stage`: seconds and peak MiB of a fresh
process). The package itself is not installed there: a stage's code uses lifelines,
pandas and numpy only.

Any benchmark can use it::

    from _lifelines import lifelines_python, run_lifelines_stage
    if lifelines_python() is not None:
        result = run_lifelines_stage("lifelines: CoxPHFitter", code)

The interpreter is ``$KO_LIFELINES_PYTHON`` if set, else ``<repository>/.venv-lifelines/bin/python``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from _measure import run_stage

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_PYTHON = REPOSITORY / ".venv-lifelines" / "bin" / "python"


def lifelines_python() -> str | None:
    """The lifelines environment's interpreter, or None (with why on stdout) when there is none
    or lifelines cannot be imported there."""
    python = os.environ.get("KO_LIFELINES_PYTHON") or str(DEFAULT_PYTHON)
    if not Path(python).exists():
        print(f"lifelines rows skipped: no interpreter at {python} (make benchmark creates .venv-lifelines; "
              "or set KO_LIFELINES_PYTHON)")
        return None
    proc = subprocess.run([python, "-c", "import lifelines, pandas; print(lifelines.__version__, pandas.__version__)"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"lifelines rows skipped: {python} cannot import lifelines: {proc.stderr.strip().splitlines()[-1]}")
        return None
    return python


def run_lifelines_stage(name: str, code: str) -> dict:
    """:func:`_measure.run_stage` in the lifelines environment (raises RuntimeError when none)."""
    python = lifelines_python()
    if python is None:
        raise RuntimeError("no lifelines environment (make benchmark creates .venv-lifelines)")
    return run_stage(name, code, python=python)
