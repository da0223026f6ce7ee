"""Follows bosun's change log across disconnects and server restarts."""

from __future__ import annotations

import collections
import logging
import threading
from typing import TYPE_CHECKING, Deque, Iterator, Optional

import grpc

from bosun.errors import cursor_compacted
from bosun.v1 import events_pb2, events_pb2_grpc

if TYPE_CHECKING:
    from grpc import _CallIterator

_log = logging.getLogger("bosun")

RECONNECT_FIRST_DELAY = 0.1
RECONNECT_MAX_DELAY = 5.0


class Watch(Iterator[events_pb2.Event]):
    """An iterator over the events with seq > ``after_seq`` that match
    ``filter``, first the history, then live, forever::

        with client.watch(after_seq=cursor, filter=EventFilter(...)) as events:
            for event in events:
                handle(event)
                cursor = events.cursor  # persist it to resume later

    When the stream breaks (UNAVAILABLE: bosun restarting or unreachable, or
    the stream ending), it reconnects with backoff (0.1 s doubling to 5 s)
    and resumes after the last seq it delivered, so no event is lost or
    repeated, across server restarts too. A compacted cursor raises
    :class:`bosun.CursorCompacted`; any other error raises the
    ``grpc.RpcError``. :meth:`cancel` (from any thread) ends the iteration.
    """

    def __init__(
        self,
        stub: events_pb2_grpc.EventsStub,
        after_seq: int = 0,
        filter: Optional[events_pb2.EventFilter] = None,
    ) -> None:
        self._stub = stub
        self._filter = filter
        self._pending: Deque[events_pb2.Event] = collections.deque()
        self._batch_resume = 0
        self._call: Optional[_CallIterator[events_pb2.WatchResponse]] = None
        self._delay = RECONNECT_FIRST_DELAY
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self.cursor = after_seq
        """Every matching event with seq <= cursor has been delivered; resume
        from here. Progress messages advance it while nothing matches."""

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> events_pb2.Event:
        while True:
            if self._pending:
                event = self._pending.popleft()
                self.cursor = event.seq
                if not self._pending:
                    self.cursor = max(self.cursor, self._batch_resume)
                return event
            call = self._open()
            if call is None:
                raise StopIteration
            try:
                response = next(call)
            except StopIteration:
                self._reconnect_after("the stream ended")
                continue
            except grpc.RpcError as error:
                self._close_call()
                if self._cancelled.is_set():
                    raise StopIteration from None
                compacted = cursor_compacted(error, self.cursor)
                if compacted is not None:
                    raise compacted from error
                if isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.UNAVAILABLE:
                    self._reconnect_after(error.details() or "unavailable")
                    continue
                raise
            self._delay = RECONNECT_FIRST_DELAY
            if not response.events:
                # A progress message: nothing matched up to resume_seq.
                self.cursor = max(self.cursor, response.resume_seq)
                continue
            self._pending.extend(response.events)
            self._batch_resume = response.resume_seq

    def cancel(self) -> None:
        """Ends the iteration; safe to call from another thread."""
        self._cancelled.set()
        self._close_call()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_: object) -> None:
        self.cancel()

    def _open(self) -> Optional[_CallIterator[events_pb2.WatchResponse]]:
        """The open call, opening one if needed; None once cancelled."""
        with self._lock:
            if self._cancelled.is_set():
                return None
            if self._call is None:
                request = events_pb2.WatchRequest(after_seq=self.cursor, filter=self._filter)
                self._call = self._stub.Watch(request)
            return self._call

    def _close_call(self) -> None:
        with self._lock:
            if self._call is not None:
                self._call.cancel()
            self._call = None

    def _reconnect_after(self, why: str) -> None:
        self._close_call()
        _log.info(
            "bosun: watch disconnected (%s); resuming after seq %d in %.1fs",
            why,
            self.cursor,
            self._delay,
        )
        self._cancelled.wait(self._delay)
        self._delay = min(2 * self._delay, RECONNECT_MAX_DELAY)
