"""A private PostgreSQL server for the tests: its own data folder, socket folder and port.

Started with Debian's binaries (``/usr/lib/postgresql/<version>/bin``; installed by
``scripts/install-test-services.sh``); as root they run as the ``postgres`` user through
``runuser`` (PostgreSQL refuses to run as root). The server listens only on a Unix socket in
its own temporary folder, so it meets no other server on the machine, and it is stopped and
its folder removed when the context ends.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

INSTALL_SCRIPT = "scripts/install-test-services.sh"


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` that has initdb and pg_ctl, or None."""
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")
             if (Path(p) / "initdb").exists() and (Path(p) / "pg_ctl").exists()]
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0) if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runner() -> tuple[list[str], str]:
    """Command prefix and user name the server runs as."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"], "postgres"
    return [], pwd.getpwuid(os.geteuid()).pw_name


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield a SQLAlchemy URL to its ``postgres`` database; stop it."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError(f"PostgreSQL server binaries not found under /usr/lib/postgresql; run {INSTALL_SCRIPT}")
    prefix, user = _runner()
    root = Path(tempfile.mkdtemp(prefix="ko-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if prefix:
        shutil.chown(root, user=user)
        shutil.chown(sockets, user=user)
        os.chmod(root, 0o700)
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            extra = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}{extra}")

    started = False
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--no-instructions")
        options = f"-k {sockets} -p {port} -c listen_addresses='' -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start")
        started = True
        yield f"postgresql://{user}@/postgres?host={sockets}&port={port}"
    finally:
        if started:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
