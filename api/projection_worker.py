"""The projection follower as a process of its own, started and stopped by `ft-cli serve`.

In a thread of the server, the follower shares the server's interpreter (and its GIL)
with ingestion; as a child process it takes another CPU. It is an ordinary
`ft-cli projections run` worker: the tracking rows keep it and the server (which still
applies its own commands' events for read-your-writes) from applying a batch twice.
It ends with the server: on Linux the kernel sends it SIGTERM when the server dies,
even by kill -9, and everywhere it checks that its parent is still there.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the worker's parent check covers it
        pass


def start(database_url: str, interval: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "api.cli", "projections", "run", "--interval", str(interval),
           "--parent-pid", str(os.getpid())]  # fmt: skip
    env = os.environ | {"FT_DATABASE_URL": database_url}  # not on the command line: `ps` shows that to everyone
    return subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent if sys.platform == "linux" else None)


def stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def stop_when_orphaned(parent_pid: int, stop_event: threading.Event, *, every: float = 1.0) -> threading.Thread:
    """Sets `stop_event` once the process that started this worker is gone."""

    def watch() -> None:
        while not stop_event.wait(every):
            if os.getppid() != parent_pid:
                stop_event.set()

    thread = threading.Thread(target=watch, name="parent-watch", daemon=True)
    thread.start()
    return thread
