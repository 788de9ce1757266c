"""Call user functions the way the Python worker does.

The worker runs every `async def` function on its one event loop, so async SDK clients created once (at import or
on first use) stay bound to a loop that lives as long as the worker. Plain functions run on the worker's thread pool,
sized by the `PYTHON_THREADPOOL_THREAD_COUNT` app setting (unset on Python 3.9+: the executor default,
min(32, cores + 4)). Callers (HTTP threads, queue pumps, timers) block until the invocation ends.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

THREAD_COUNT_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"


def _sync_workers() -> int | None:
    value = os.environ.get(THREAD_COUNT_SETTING, "")
    return int(value) if value.strip().isdigit() and int(value) > 0 else None


class Invoker:
    """One event loop thread for async functions and one thread pool for sync ones, shared by all triggers."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        """Start the loop thread and the pool."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(
            target=self._run_loop, args=(loop, ready), name="devhost-asyncio", daemon=True
        )
        thread.start()
        ready.wait()
        self._loop, self._loop_thread = loop, thread
        self._pool = ThreadPoolExecutor(
            max_workers=_sync_workers(), thread_name_prefix="devhost-sync"
        )

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def call(self, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
        """Run `fn(**kwargs)` where the worker would and return its result (or raise its exception)."""
        if self._loop is None or self._pool is None:
            raise RuntimeError("Invoker is not started")
        if inspect.iscoroutinefunction(fn):
            return asyncio.run_coroutine_threadsafe(fn(**kwargs), self._loop).result()
        return self._pool.submit(fn, **kwargs).result()

    def stop(self) -> None:
        """Wait for running sync calls, cancel leftover tasks and close the loop."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        loop, thread = self._loop, self._loop_thread
        if loop is not None and thread is not None:
            try:
                asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(timeout=10)
            except TimeoutError:
                log.warning(
                    "async work did not finish within 10 s of cancellation; closing the loop anyway"
                )
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
        self._loop = self._loop_thread = self._pool = None


async def _cancel_pending() -> None:
    # Background tasks left by user code would otherwise be destroyed while pending, with a warning.
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()
