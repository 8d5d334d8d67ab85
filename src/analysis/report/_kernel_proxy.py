"""The process started in place of a kernel or a batch worker when a kernel zygote serves the
batch (stdlib only).

Run as ``python -I -S _kernel_proxy.py SOCKET CONNECTION_FILE`` (by a kernel manager) or
``python -I -S _kernel_proxy.py SOCKET --run MODULE:FUNCTION MODULE:ABANDON ARG...`` (by a
batch, for the worker of a report): it asks the zygote at ``SOCKET``
(:mod:`analysis.report.zygote`) for a kernel on ``CONNECTION_FILE``, or a process that runs
``FUNCTION(*ARG)`` (and for which the zygote calls ``ABANDON(pid, *ARG)`` should it stop first),
with this process's environment and working folder, and then stands for that process towards
whoever started it: signals it receives go to the process, and it exits as the process did
(with the same signal when it was killed by one). If this process is killed outright, the
forked process notices (the pipe it holds closes) and stops its process group.

It imports nothing beyond the standard library, so it starts in a few milliseconds.
"""

import json
import os
import signal
import socket
import sys


def main(socket_path: str, *what: str) -> None:
    alive_read, alive_write = os.pipe()           # the kernel watches the read end: EOF = this process is gone
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(socket_path)
    request = {"env": dict(os.environ), "cwd": os.getcwd()}
    if what[0] == "--run":
        request.update(run=what[1], abandon=what[2], args=list(what[3:]))
    else:
        request["connection_file"] = what[0]
    # the kernel gets the pipe and this process's standard input, output and error
    socket.send_fds(client, [json.dumps(request).encode() + b"\n"], [alive_read, 0, 1, 2])
    os.close(alive_read)
    stream = client.makefile("rb")
    reply = json.loads(stream.readline() or b"{}")
    if "pid" not in reply:
        sys.stderr.write(f"kernel zygote: {reply.get('error', 'no kernel started')}\n")
        sys.exit(1)
    kernel = int(reply["pid"])

    def forward(signum, frame):
        try:
            os.kill(kernel, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    line = stream.readline()                      # how the kernel ended, once it has
    if not line:                                  # the zygote is gone: take the kernel with us
        try:
            os.killpg(kernel, signal.SIGKILL)
        except ProcessLookupError:
            pass
        sys.exit(1)
    ended = json.loads(line)
    if ended.get("signal"):
        if ended["signal"] not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(ended["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), ended["signal"])     # so the kernel manager sees the same end
    sys.exit(int(ended.get("code", 1)))


if __name__ == "__main__":
    main(*sys.argv[1:])
