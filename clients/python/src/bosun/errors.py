"""bosun's errors: every refusal carries a google.rpc.ErrorInfo (domain
"bosun") with a stable reason, in the grpc-status-details-bin trailer."""

from __future__ import annotations

from typing import Optional

import grpc
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "bosun"
_DETAILS_KEY = "grpc-status-details-bin"


def error_info(error: grpc.RpcError) -> Optional[error_details_pb2.ErrorInfo]:
    """The ErrorInfo bosun attached to a failed call, or None (for example
    on a transport error)."""
    if not isinstance(error, grpc.Call):
        return None
    for key, value in error.trailing_metadata() or ():
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
                return info
    return None


def error_reason(error: grpc.RpcError) -> str:
    """A failed call's stable reason (e.g. "LESSON_NOT_FOUND"), or "" when
    it carries no bosun ErrorInfo."""
    info = error_info(error)
    return info.reason if info is not None else ""


class CursorCompacted(Exception):
    """A watch cursor points into history that retention has deleted: the
    events between ``after_seq`` and ``oldest_seq`` are gone. Rebuild state
    from the Get/List RPCs, then watch from Events.GetHead's head_seq.

    The gRPC error (OUT_OF_RANGE, reason CURSOR_COMPACTED) is ``__cause__``.
    """

    def __init__(self, after_seq: int, oldest_seq: int) -> None:
        super().__init__(
            f"watch cursor {after_seq} was compacted away; "
            f"the oldest kept event is {oldest_seq}"
        )
        self.after_seq = after_seq
        self.oldest_seq = oldest_seq


def cursor_compacted(error: grpc.RpcError, after_seq: int) -> Optional[CursorCompacted]:
    """``error`` as a CursorCompacted when it is one, else None."""
    info = error_info(error)
    if (
        not isinstance(error, grpc.Call)
        or error.code() != grpc.StatusCode.OUT_OF_RANGE
        or info is None
        or info.reason != "CURSOR_COMPACTED"
    ):
        return None
    try:
        oldest_seq = int(info.metadata["oldest_seq"])
    except (KeyError, ValueError):
        oldest_seq = 0
    return CursorCompacted(after_seq, oldest_seq)
