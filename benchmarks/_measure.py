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


def run_stage(name: str, code: str) -> dict:
    """Run ``code`` in a new interpreter; return name, seconds and peak MiB (timing excludes start-up)."""
    script = _CHILD.format(code=textwrap.dedent(code))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
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
