"""Items made on a background thread while the caller works on the previous ones (decoding video while a backbone
runs, reading training windows while a network trains), in bounded memory.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")


def prefetched(make: Callable[[], Iterator[T]], prefetch: int = 2, name: str | None = None) -> Iterator[T]:
    """Yield the items of ``make()``, produced on a background thread at most ``prefetch`` items ahead.

    The worker checks before each item whether the consumer has stopped (the generator closed, or an error raised
    in the caller's loop) and then ends; the consumer drains the queue until the worker has ended, so no thread is
    left blocked on a full queue.

    Parameters
    ----------
    make : callable
        ``make()`` -> an iterable of the items (not None), e.g. a generator; called and iterated on the worker
        thread only.
    prefetch : int
        Items made ahead of the consumer (at least 1); memory stays bounded by ``prefetch + 1`` items in flight.
    name : str or None
        Name of the worker thread (None: Python's default).

    Yields
    ------
    Any
        The items of ``make()`` in order.

    Raises
    ------
    BaseException
        Whatever ``make()`` raised on the worker thread, re-raised here when the consumer reaches it.
    """
    slots: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()

    def worker():
        try:
            items = iter(make())
            while not stop.is_set():
                try:
                    item = next(items)
                except StopIteration:
                    slots.put(None)
                    return
                slots.put(item)
        except BaseException as exc:  # handed to the consumer
            slots.put(exc)

    thread = threading.Thread(target=worker, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a worker waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
