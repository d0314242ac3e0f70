"""Run AsyncSharedStore behind SharedStore's synchronous interface, so the contract tests
hold both clients to the same behaviour. The coroutines run on a loop in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from sharedstate import AsyncSharedStore, Change

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T]) -> T:
        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout=60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class SyncFacade:
    """SharedStore's methods, each running the AsyncSharedStore coroutine to completion."""

    def __init__(self, store: AsyncSharedStore, loop: LoopThread) -> None:
        self.astore = store
        self.loop = loop

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.astore, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.loop.run(method(*args, **kwargs))

        return call

    @property
    def namespace(self) -> str:
        return self.astore.namespace

    @property
    def keys(self) -> Any:
        return self.astore.keys

    @property
    def _core(self) -> Any:
        return self.astore._core

    def watch(self, *args: Any, **kwargs: Any) -> Iterator[Change]:
        changes = self.astore.watch(*args, **kwargs)  # now, not at the first next()

        def iterate() -> Iterator[Change]:
            while True:
                try:
                    yield self.loop.run(changes.__anext__())
                except StopAsyncIteration:
                    return

        return iterate()

    def mapping(self, name: str) -> Any:
        raise NotImplementedError("the async mapping has its own tests")
