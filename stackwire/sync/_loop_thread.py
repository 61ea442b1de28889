"""`LoopThread`: a private event loop in a daemon thread, for the blocking `Client`.

A `Client` keeps an `AsyncClient` whose aiohttp session lives on this loop; every
blocking call hands a coroutine to the loop and waits for its outcome in the
caller's thread. Obligations:

- the loop and its thread start on the first call, never at construction;
- an interrupt of the waiting caller (``KeyboardInterrupt``, ``SystemExit``) cancels
  the task on the loop and waits for it to finish unwinding, so the request is
  cancelled and its connection closed before the interrupt propagates;
- a blocking call from a thread that runs another event loop (a notebook cell, a
  sync function called from ``asyncio.run(main())``) works: the call runs on this
  loop and the caller's loop stalls until it is done, as the caller asked. Only a
  blocking call made on this loop's own thread (from a middleware) raises
  `BlockingCallInEventLoopError`: it would wait for itself forever;
- `LoopThread.shutdown` closes the streams still open (`LoopThread.track`) and the
  registered clients on the loop, cancels what is
  left, shuts down async generators and the default executor, stops the loop and
  joins the thread. A loop thread nobody refers to any more is shut down on its
  own loop (never from another one), without waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import threading
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar

from ..errors import BlockingCallInEventLoopError, ClientClosedError

__all__ = [
    "BlockingCallInEventLoopError",
    "LoopThread",
    "in_running_loop",
]

_T = TypeVar("_T")

_thread_ids = itertools.count(1)


class _Closeable(Protocol):
    def close(self) -> Coroutine[Any, Any, None]: ...


class _OpenBody(Protocol):
    """A blocking stream or streamed response: its connection is closed on the loop."""

    def close_on_loop(self) -> Coroutine[Any, Any, None]: ...


class _Outcome:
    """What a task on the loop ended with, read by the waiting thread."""

    __slots__ = ("cancelled", "error", "finished", "task", "value")

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.task: asyncio.Task[Any] | None = None
        self.value: Any = None
        self.error: BaseException | None = None
        self.cancelled = False


def in_running_loop() -> bool:
    """Whether the calling thread is running an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    """The thread's body; it refers to the loop only, so the `LoopThread` can be freed."""
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def _close_all(
    clients: list[_Closeable], loop: asyncio.AbstractEventLoop, bodies: Sequence[_OpenBody] = ()
) -> None:
    try:
        # Bodies first: once the loop stops, nothing could close their connections.
        for body in bodies:
            with contextlib.suppress(Exception):
                await body.close_on_loop()
        for client in clients:
            with contextlib.suppress(Exception):  # one failing close must not stop the rest
                await client.close()
    finally:
        loop.stop()


class LoopThread:
    """One event loop in one daemon thread, started lazily; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Clients whose sessions live on this loop and are closed at shutdown.
        self._clients: list[_Closeable] = []
        # Streams and streamed responses handed out and maybe still open: closed at
        # shutdown, before the clients (held weakly: a dropped one closes itself).
        self._bodies: weakref.WeakSet[Any] = weakref.WeakSet()

    @property
    def started(self) -> bool:
        return self._loop is not None

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def register(self, client: _Closeable) -> None:
        """Close ``client`` on the loop at shutdown (unless it was closed before)."""
        with self._lock:
            self._clients.append(client)

    def track(self, body: _OpenBody) -> None:
        """Close ``body`` (a stream, a streamed response) at shutdown if still open."""
        with self._lock:
            self._bodies.add(body)

    def unregister(self, client: _Closeable) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def _get_loop(self, hand_over: Callable[[], None] | None = None) -> asyncio.AbstractEventLoop:
        """The loop (started on first use); ``hand_over`` is queued on it, under the
        lock `shutdown` takes to stop the loop: a call queued by then runs before the
        loop stops (and is cancelled by it). Queued any later, in the moment between
        the loop's last run and its close, it was dropped by ``loop.close()``, and its
        caller waited forever."""
        with self._lock:
            if self._stopped:
                raise ClientClosedError("this client is closed; create a new one")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=_run_loop,
                    args=(loop, ready),
                    name=f"stackwire-loop-{next(_thread_ids)}",
                    daemon=True,
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            if hand_over is not None:
                try:
                    self._loop.call_soon_threadsafe(hand_over)
                except RuntimeError as exc:  # the loop ended on its own
                    raise ClientClosedError("this client is closed; create a new one") from exc
            return self._loop

    def run(self, factory: Callable[[], Coroutine[Any, Any, _T]], *, what: str) -> _T:
        """Run ``factory()`` on the loop and block until it is done; return its value.

        Its exception is raised here. If the waiting is interrupted, the task is
        cancelled and waited for before the interrupt propagates. The calling thread
        may run an event loop of its own: it blocks all the same (that loop stalls
        meanwhile); only this loop's own thread is refused, as it would deadlock.
        """
        if self.in_loop_thread():
            raise BlockingCallInEventLoopError(
                f"{what} was called on the client's own event loop (from a middleware or "
                "callback?); it would wait for itself forever. Middlewares get the "
                "response from `call_next`; do not call the blocking client there"
            )
        outcome = _Outcome()
        # The call runs in the caller's context (a copy): context variables set by the
        # application, such as OpenTelemetry's current span, reach the middlewares.
        caller = contextvars.copy_context()

        def settle(task: asyncio.Task[Any]) -> None:
            if task.cancelled():
                outcome.cancelled = True
            elif (error := task.exception()) is not None:
                outcome.error = error
            else:
                outcome.value = task.result()
            outcome.finished.set()

        def start() -> None:
            try:
                task = asyncio.get_running_loop().create_task(factory(), context=caller)
            except BaseException as exc:
                outcome.error = exc
                outcome.finished.set()
                return
            outcome.task = task
            task.add_done_callback(settle)

        def cancel() -> None:
            # Runs after `start` if that was queued at all (the loop runs its callbacks
            # in order): the task is cancelled, or there is none to wait for.
            if outcome.task is not None:
                outcome.task.cancel()
            else:
                outcome.finished.set()

        loop: asyncio.AbstractEventLoop | None = None
        try:
            loop = self._get_loop(start)
            # (An interrupt can also land inside call_soon_threadsafe, after `start` was
            # queued and while the loop already sends the request: handled below too.)
            outcome.finished.wait()
        except ClientClosedError:
            raise
        except BaseException:
            if loop is None:
                loop = self._loop
            if loop is None:  # interrupted before the loop even started
                raise
            # Interrupted (Ctrl-C) while waiting: cancel the call and let it unwind
            # (closing its connection) before the interrupt goes on.
            try:
                loop.call_soon_threadsafe(cancel)
            except RuntimeError:  # the loop is gone, and the task with it
                pass
            else:
                outcome.finished.wait()
            raise
        if outcome.error is not None:
            error = outcome.error
            outcome.error = None  # no reference cycle through the traceback
            raise error
        if outcome.cancelled:
            raise ClientClosedError(f"{what} was cancelled: the client was closed while it ran")
        return outcome.value  # type: ignore[no-any-return]

    async def run_async(self, factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        """Await ``factory()`` on this loop, from a coroutine on any loop.

        On this loop it is awaited directly; from another loop (a page of a blocking
        client awaited in a notebook cell or in ``asyncio.run``) it runs here and the
        caller's loop waits for it without blocking: the client's session belongs to
        this loop, and using it from another one breaks its connections. Cancelling
        the caller cancels it here.
        """
        loop = self._get_loop()
        if asyncio.get_running_loop() is loop:
            return await factory()
        coroutine = factory()
        with self._lock:  # queued before `shutdown` can stop the loop (see `_get_loop`)
            future = (
                None
                if self._stopped or loop.is_closed()
                else asyncio.run_coroutine_threadsafe(coroutine, loop)
            )
        if future is None:
            coroutine.close()
            raise ClientClosedError("this client is closed; create a new one")
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                # Cancelled there by the client's close, not here by the caller.
                raise ClientClosedError(
                    "the call was cancelled: the client was closed while it ran"
                ) from None
            raise

    def schedule_close(self, client: _Closeable) -> None:
        """Close ``client`` on the loop soon, without waiting (for finalizers)."""
        loop = self._loop
        if loop is None or self._stopped:
            return

        def start() -> None:
            task = loop.create_task(client.close())
            task.add_done_callback(_consume_error)

        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(start)

    def shutdown(self) -> None:
        """Close the registered clients on the loop, stop it and join its thread (or,
        once that is under way, only join it: every caller returns when it is over)."""
        with self._lock:
            under_way = self._stopped
            loop, thread = self._loop, self._thread
            if not under_way:
                if self.in_loop_thread():
                    raise BlockingCallInEventLoopError(
                        "close() was called on the client's own event loop (from a "
                        "middleware?); it would wait for itself forever"
                    )
                self._stopped = True
                clients, self._clients = self._clients, []
                bodies = list(self._bodies)
                self._bodies = weakref.WeakSet()
        if loop is None or thread is None or thread is threading.current_thread():
            return
        if not under_way:
            loop.call_soon_threadsafe(lambda: loop.create_task(_close_all(clients, loop, bodies)))
        thread.join()

    def __del__(self) -> None:
        # Nothing refers to this loop any more: let it close its clients and stop,
        # on its own thread. Whoever dropped the owning client was warned already.
        loop = getattr(self, "_loop", None)
        if loop is None or getattr(self, "_stopped", True):
            return
        self._stopped = True
        clients = self._clients
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(lambda: loop.create_task(_close_all(clients, loop)))


def _consume_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
