"""A zygote for test nodes: imports uvicorn and Tandem once, then forks one node per request.

A node started as ``python -m uvicorn --factory server.main:create`` spends about 1.7 of its 2.1 s of CPU importing,
and the suite starts hundreds of nodes. This process (one per pytest worker, `tests.nodes.Node` starts it) pays
the imports once; each node is a fork of it that runs uvicorn's own command line (``uvicorn.main.main``, what
``python -m uvicorn`` runs) with the node's arguments, environment, working directory and log file. Settings are
read from the environment only when the factory runs (``server/settings.py`` is the only reader), so a fork sees
exactly the environment it was given. Nothing runs at import that a fork could inherit half-done: no thread, no
event loop, no connection (checked at start-up).

Protocol, one JSON object per line: the zygote prints ``{"ready": true}`` once imported; then each request on
stdin, ``{"argv": [...], "env": {...}, "cwd": "...", "log": "...", "status": "..."}``, is answered on stdout with
``{"pid": N}``. The zygote dies with its pytest worker and every node with the zygote (``PR_SET_PDEATHSIG``); it
reaps the nodes that exit and writes each one's exit status to its ``status`` file.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import signal
import sys
import threading
import traceback
from types import FrameType

import uvicorn.main

import server.main  # noqa: F401  (the factory's module: imported here, once, not in every node)

# What a node imports only once it runs (the drivers its settings name, uvicorn's protocols and loop): imported here
# too, so a fork starts with them. A module missing from this list costs each node its import, nothing more.
PRELOAD = (
    "channels.backends.redis",
    "channels.backends.redis_cluster",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "uvicorn.lifespan.on",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
)

_PR_SET_PDEATHSIG = 1


# Where to write each node's exit status (as `subprocess.Popen.returncode` would say it: -N for signal N).
_status_paths: dict[int, str] = {}


def _reap(signum: int, frame: FrameType | None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        path = _status_paths.pop(pid, None)
        if path is not None:
            with open(path + ".tmp", "w") as out:
                out.write(str(os.waitstatus_to_exitcode(status)))
            os.replace(path + ".tmp", path)  # whole or absent


def _run_node(argv: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked child: become the node, then exit without running the zygote's exit handlers."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["uvicorn", *argv]
        uvicorn.main.main(args=argv, prog_name="uvicorn")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    assert threading.active_count() == 1, "an import started a thread: forks would inherit it half-alive"
    # The imported modules live as long as every fork: out of the collector's sight, a node's own `gc.collect()`
    # at start-up (server/main.py) walks only what the node made, not the zygote's heap again.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # reaped only once its status path is known
        pid = os.fork()
        if pid == 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            _run_node(request["argv"], request["env"], request["cwd"], request["log"])
        _status_paths[pid] = request["status"]
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        print(json.dumps({"pid": pid}), flush=True)


if __name__ == "__main__":
    main()
