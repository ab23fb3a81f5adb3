"""Start a coroutine in place and finish it in a task only if it has to wait.

Fan-out sends one message per subscriber. Through ASGI each send is a coroutine, but uvicorn's completes without
suspending while the socket's buffer has room; running it in place costs no task and no event-loop turn per
subscriber, as ``websockets.broadcast`` writes without one. Python 3.12's eager tasks do the same; this is the
3.11 form, used by the hub's connections and the notes' peers.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any


def start_eagerly(awaitable: Awaitable[None]) -> Awaitable[None] | None:
    """Run ``awaitable`` (typically a coroutine, such as an ASGI ``send(...)``) up to its first suspension.

    Returns:
        None when it finished without suspending; otherwise an awaitable that finishes it. Await it (in a task)
        before starting anything that must come after ``coro``.

    Raises:
        Exception: whatever it raised before suspending.
    """
    coro = awaitable if isinstance(awaitable, Coroutine) else _as_coroutine(awaitable)
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    except BaseException:
        coro.close()
        raise
    return _resume(coro, yielded)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], yielded: Any) -> Generator[Any, Any, None]:
    # What `await coro` would have done had it not been started: hand each suspension to the driving task and
    # pass its outcome (a value, or an exception such as a cancellation) back in.
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # forwarded into the coroutine, not handled here
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration:
                return
