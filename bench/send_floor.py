"""The kernel's floor for fanning one small message out to N loopback TCP sockets, with no server around it.

    .venv/bin/python -m bench.send_floor            # 1,000 sockets, 5 rounds

One process on the server core calls ``send`` on N accepted sockets in a loop; another on the client core holds
the other ends and reads them. What one ``send`` costs here is what any server on this machine pays per socket
for each message, whatever it is written in: over loopback the sender's core also runs the receiving side's TCP
processing. ``bench/notes.py``'s one-note ``spread`` (first socket to last, per update) compares against it.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import select
import socket
import statistics
import time
from multiprocessing.synchronize import Event

from bench.wsload import CLIENT_CORE, SERVER_CORE, raise_fd_limit

MESSAGE = b"\x82\x30" + b"x" * 48  # a 50-byte binary WebSocket frame, the size of a typed update


def _reader(port: int, count: int, ready: Event, stop: Event) -> None:
    os.sched_setaffinity(0, {CLIENT_CORE})
    raise_fd_limit()
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    poll = select.epoll()
    by_fd = {}
    for sock in sockets:
        sock.setblocking(False)
        poll.register(sock.fileno(), select.EPOLLIN)
        by_fd[sock.fileno()] = sock
    ready.set()
    scratch = bytearray(1 << 16)
    while not stop.is_set():
        for fd, _ in poll.poll(0.1):
            with contextlib.suppress(BlockingIOError):
                by_fd[fd].recv_into(scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    raise_fd_limit()
    os.sched_setaffinity(0, {SERVER_CORE})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    reader = ctx.Process(target=_reader, args=(listener.getsockname()[1], args.sockets, ready, stop), daemon=True)
    reader.start()
    accepted = [listener.accept()[0] for _ in range(args.sockets)]
    if not ready.wait(60):
        raise SystemExit("the reader did not connect within 60 s")
    per_socket = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for sock in accepted:
            sock.send(MESSAGE)
        per_socket.append((time.perf_counter() - started) / args.sockets)
        time.sleep(0.2)  # the reader drains
    stop.set()
    reader.join(5)
    shown = ", ".join(f"{1e6 * v:.1f}" for v in per_socket)
    median = statistics.median(per_socket)
    print(
        f"{args.sockets} sockets: one send each, µs per socket by round: {shown}; median {1e6 * median:.1f}, "
        f"so {1e3 * median * args.sockets:.1f} ms from the first socket to the last"
    )


if __name__ == "__main__":
    main()
