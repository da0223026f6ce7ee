"""A Python client for bosun, the control plane for fleets of AI coding agents.

``bosun.connect(address, token)`` gives a :class:`Client` with a stub for
every service; messages are in the generated ``bosun.v1.*_pb2`` modules::

    import bosun
    from bosun.v1 import lessons_pb2

    with bosun.connect("127.0.0.1:7070") as client:
        client.record_lesson_quietly(lessons_pb2.Lesson(lesson_type="gate_failure"))
"""

from bosun.client import DEFAULT_QUIET_TIMEOUT, Client, connect
from bosun.errors import ERROR_DOMAIN, CursorCompacted, error_info, error_reason
from bosun.watch import Watch

__all__ = [
    "DEFAULT_QUIET_TIMEOUT",
    "ERROR_DOMAIN",
    "Client",
    "CursorCompacted",
    "Watch",
    "connect",
    "error_info",
    "error_reason",
]
