"""Run one benchmark stage in a fresh Python process and report wall time and peak memory.

Each stage runs in its own process so that its peak resident memory (ru_maxrss) is its
own, not the high-water mark of the stages before it.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap
import time

_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
{code}
elapsed = time.perf_counter() - t0
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("@@RESULT@@" + json.dumps({{"seconds": elapsed, "peak_mib": peak_kib / 1024}}))
"""


def run_stage(name: str, code: str, *, python: str | None = None) -> dict:
    """Run ``code`` in a new interpreter; return name, seconds and peak MiB (timing excludes start-up).

    ``python`` is the interpreter (default this one: the environment the tests use);
    :mod:`_lifelines` passes the lifelines environment's.
    """
    script = _CHILD.format(code=textwrap.dedent(code))
    started = time.perf_counter()
    proc = subprocess.run([python or sys.executable, "-c", script], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {name!r} failed:\n{proc.stderr}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("@@RESULT@@"))
    result = json.loads(line[len("@@RESULT@@"):])
    result["name"] = name
    result["process_seconds"] = time.perf_counter() - started
    return result


def machine() -> str:
    import os

    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {mem}, Python {platform.python_version()}"


def print_table(results: list[dict]) -> None:
    print(f"{'stage':<45} {'seconds':>9} {'peak MiB':>9}")
    for r in results:
        print(f"{r['name']:<45} {r['seconds']:>9.2f} {r['peak_mib']:>9.0f}")


def median_stage(name: str, code: str, repeats: int, *, python: str | None = None) -> dict:
    """:func:`run_stage` ``repeats`` times (each a fresh process); the run of median time,
    with every run's seconds in ``runs``."""
    runs = [run_stage(name, code, python=python) for _ in range(max(1, repeats))]
    runs.sort(key=lambda r: r["seconds"])
    chosen = dict(runs[len(runs) // 2])
    chosen["runs"] = [r["seconds"] for r in runs]
    chosen["peak_mib"] = max(r["peak_mib"] for r in runs)
    return chosen


def versions(python: str | None = None) -> str:
    """pandas, numpy and pyarrow versions of an interpreter (default this one)."""
    code = ("import importlib.metadata as m\n"
            "print(', '.join(f'{p} {m.version(p)}' for p in ('pandas', 'numpy', 'pyarrow', 'statsmodels', 'lifelines') "
            "if __import__('importlib.util').util.find_spec(p)))")
    proc = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True)
    return proc.stdout.strip() or proc.stderr.strip().splitlines()[-1]

