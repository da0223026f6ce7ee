"""Connecting to bosun: one channel, a stub for every service, the token on
every call, and the quiet lesson recorder."""

from __future__ import annotations

import collections
import logging
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import grpc
from grpc_health.v1 import health_pb2_grpc

from bosun.v1 import (
    events_pb2,
    events_pb2_grpc,
    lessons_pb2,
    lessons_pb2_grpc,
    processors_pb2_grpc,
    reconciler_pb2_grpc,
    sessions_pb2_grpc,
    tasks_pb2_grpc,
)
from bosun.watch import Watch

_log = logging.getLogger("bosun")

DEFAULT_QUIET_TIMEOUT = 2.0
"""Seconds :meth:`Client.record_lesson_quietly` waits for bosun."""


def connect(
    address: str,
    token: Optional[str] = None,
    *,
    tls: Union[bool, grpc.ChannelCredentials] = False,
    quiet_timeout: float = DEFAULT_QUIET_TIMEOUT,
    options: Sequence[Tuple[str, Any]] = (),
) -> Client:
    """Connects to bosun at ``address`` ("host:port").

    ``token`` is sent as ``authorization: Bearer <token>`` on every call
    (bosun's ``[[auth.tokens]]``; none is needed when bosun has no tokens).
    ``tls``: False for plaintext (bosun itself serves plaintext), True for TLS
    with the system's roots, or your own ``grpc.ssl_channel_credentials(...)``
    (behind a TLS-terminating proxy). ``options`` are gRPC channel options.
    Like any gRPC channel it connects lazily: calls fail with UNAVAILABLE
    while bosun is unreachable.
    """
    if tls is False:
        channel = grpc.insecure_channel(address, options=options)
    else:
        credentials = grpc.ssl_channel_credentials() if tls is True else tls
        channel = grpc.secure_channel(address, credentials, options=options)
    return Client(channel, token=token, quiet_timeout=quiet_timeout)


class Client:
    """A connection to bosun with a stub for every service: ``lessons``,
    ``sessions``, ``tasks``, ``reconciler``, ``processors``, ``events`` and
    ``health``. Use it as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        token: Optional[str] = None,
        quiet_timeout: float = DEFAULT_QUIET_TIMEOUT,
    ) -> None:
        self._raw_channel = channel
        if token:
            channel = grpc.intercept_channel(channel, _BearerToken(token))
        self.channel = channel
        self.quiet_timeout = quiet_timeout
        self.lessons = lessons_pb2_grpc.LessonsStub(channel)
        self.sessions = sessions_pb2_grpc.SessionsStub(channel)
        self.tasks = tasks_pb2_grpc.TasksStub(channel)
        self.reconciler = reconciler_pb2_grpc.ReconcilerStub(channel)
        self.processors = processors_pb2_grpc.ProcessorsStub(channel)
        self.events = events_pb2_grpc.EventsStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]

    def record_lesson_quietly(
        self, lesson: lessons_pb2.Lesson
    ) -> Optional[lessons_pb2.RecordLessonResponse]:
        """Records ``lesson`` and never raises: within ``quiet_timeout``
        seconds it returns bosun's answer, or None after logging a warning
        (logger "bosun") when anything went wrong (bosun unreachable, a
        refusal, the deadline). For callers on their own hot paths, whose
        work must not depend on the journal."""
        try:
            return self.lessons.RecordLesson(
                lessons_pb2.RecordLessonRequest(lesson=lesson),
                timeout=self.quiet_timeout,
            )
        except Exception as error:  # noqa: BLE001 - quiet by contract
            if isinstance(error, grpc.Call):
                why = f"{error.code().name}: {error.details()}"
            else:
                why = repr(error)
            _log.warning(
                "bosun: lesson not recorded (lesson_type=%r work_item_id=%r): %s",
                getattr(lesson, "lesson_type", None),
                getattr(lesson, "work_item_id", None),
                why,
            )
            return None

    def watch(
        self, after_seq: int = 0, filter: Optional[events_pb2.EventFilter] = None
    ) -> Watch:
        """Follows the change log from ``after_seq`` (0: the oldest kept),
        resuming after disconnects; see :class:`bosun.Watch`."""
        return Watch(self.events, after_seq, filter)

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _CallDetails(
    collections.namedtuple(
        "_CallDetails",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """One call's details, as grpc's interceptors pass them on."""


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call, over plaintext
    or TLS alike."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._header],
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._with_token(client_call_details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._with_token(client_call_details), request)
