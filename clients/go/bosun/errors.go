package bosun

import (
	"fmt"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of bosun's errors.
const ErrorDomain = "bosun"

// ErrorInfo returns the google.rpc.ErrorInfo that bosun attached to err, or
// nil when err carries none (for example a transport error).
func ErrorInfo(err error) *errdetails.ErrorInfo {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info
		}
	}
	return nil
}

// Reason is err's stable reason (ErrorInfo.reason, e.g. "LESSON_NOT_FOUND"),
// or "" when err carries no bosun ErrorInfo.
func Reason(err error) string {
	return ErrorInfo(err).GetReason()
}

// CursorCompactedError ends a Watch whose cursor points into history that
// retention has deleted: the events between AfterSeq and OldestSeq are gone.
// Rebuild state from the Get/List RPCs, then watch from Events.GetHead.
type CursorCompactedError struct {
	// The cursor that was asked for.
	AfterSeq int64
	// The oldest seq bosun still keeps.
	OldestSeq int64
	status    *status.Status
}

func (e *CursorCompactedError) Error() string {
	return fmt.Sprintf("bosun: watch cursor %d was compacted away; the oldest kept event is %d", e.AfterSeq, e.OldestSeq)
}

// GRPCStatus makes status.Code(err) report OUT_OF_RANGE.
func (e *CursorCompactedError) GRPCStatus() *status.Status { return e.status }

// cursorCompacted returns err as a *CursorCompactedError when it is bosun's
// OUT_OF_RANGE / CURSOR_COMPACTED, else nil.
func cursorCompacted(err error, afterSeq int64) *CursorCompactedError {
	info := ErrorInfo(err)
	if status.Code(err) != codes.OutOfRange || info.GetReason() != "CURSOR_COMPACTED" {
		return nil
	}
	oldest, _ := strconv.ParseInt(info.GetMetadata()["oldest_seq"], 10, 64)
	return &CursorCompactedError{AfterSeq: afterSeq, OldestSeq: oldest, status: status.Convert(err)}
}
