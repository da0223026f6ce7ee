package bosun

import (
	"context"
	"errors"
	"io"
	"time"

	bosunv1 "github.com/bosun-dev/bosun/clients/go/gen/bosun/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	reconnectFirstDelay = 100 * time.Millisecond
	reconnectMaxDelay   = 5 * time.Second
)

// Watcher follows bosun's change log like a bufio.Scanner:
//
//	w := client.Watch(ctx, cursor, &bosunv1.EventFilter{EventTypePrefixes: []string{"lesson."}})
//	defer w.Close()
//	for w.Next() {
//		handle(w.Event())
//		cursor = w.Cursor() // persist it to resume later
//	}
//	err := w.Err() // ctx's error, a *CursorCompactedError, or a refusal
//
// When the stream breaks (UNAVAILABLE: bosun restarting or unreachable, or
// the stream ending), the Watcher reconnects with backoff (100 ms doubling to
// 5 s) and resumes after the last seq it delivered, so no event is lost or
// repeated, across server restarts too. Any other error ends it.
type Watcher struct {
	client *Client
	ctx    context.Context
	filter *bosunv1.EventFilter

	cursor      int64
	pending     []*bosunv1.Event
	batchResume int64
	event       *bosunv1.Event

	stream       bosunv1.Events_WatchClient
	cancelStream context.CancelFunc
	delay        time.Duration
	err          error
}

// Watch follows the events with seq > afterSeq (0: from the oldest kept)
// that match filter (nil: all). Nothing is sent until the first Next.
func (c *Client) Watch(ctx context.Context, afterSeq int64, filter *bosunv1.EventFilter) *Watcher {
	return &Watcher{client: c, ctx: ctx, filter: filter, cursor: afterSeq, delay: reconnectFirstDelay}
}

// Next waits for the next event and reports whether there is one; false
// means the Watcher has ended (see Err).
func (w *Watcher) Next() bool {
	for w.err == nil {
		if len(w.pending) > 0 {
			w.event, w.pending = w.pending[0], w.pending[1:]
			w.cursor = w.event.GetSeq()
			if len(w.pending) == 0 && w.batchResume > w.cursor {
				w.cursor = w.batchResume
			}
			return true
		}
		response, err := w.receive()
		if err != nil {
			w.afterFailure(err)
			continue
		}
		w.delay = reconnectFirstDelay
		if len(response.GetEvents()) == 0 {
			// A progress message: nothing matched up to resume_seq.
			w.cursor = max(w.cursor, response.GetResumeSeq())
			continue
		}
		w.pending, w.batchResume = response.GetEvents(), response.GetResumeSeq()
	}
	w.event = nil
	w.closeStream()
	return false
}

// Event is the event the last successful Next delivered.
func (w *Watcher) Event() *bosunv1.Event { return w.event }

// Cursor is where to resume: every matching event with seq <= Cursor has
// been delivered by Next. Progress messages advance it while nothing matches.
func (w *Watcher) Cursor() int64 { return w.cursor }

// Err is why the Watcher ended: nil while it runs, ctx's error when ctx
// ended, *CursorCompactedError, or the gRPC error that ended it.
func (w *Watcher) Err() error { return w.err }

// Close ends the Watcher; Next then reports false and Err context.Canceled.
// Call it from the goroutine that calls Next; to stop a Watcher from
// elsewhere, cancel the ctx given to Watch.
func (w *Watcher) Close() {
	if w.err == nil {
		w.err = context.Canceled
	}
	w.closeStream()
}

func (w *Watcher) receive() (*bosunv1.WatchResponse, error) {
	if w.stream == nil {
		ctx, cancel := context.WithCancel(w.ctx)
		stream, err := w.client.Events.Watch(ctx, &bosunv1.WatchRequest{AfterSeq: w.cursor, Filter: w.filter})
		if err != nil {
			cancel()
			return nil, err
		}
		w.stream, w.cancelStream = stream, cancel
	}
	return w.stream.Recv()
}

// afterFailure decides what a failed receive means: reconnect after a pause, or
// end with w.err set.
func (w *Watcher) afterFailure(err error) {
	w.closeStream()
	if ctxErr := w.ctx.Err(); ctxErr != nil {
		w.err = ctxErr
		return
	}
	if compacted := cursorCompacted(err, w.cursor); compacted != nil {
		w.err = compacted
		return
	}
	if !errors.Is(err, io.EOF) && status.Code(err) != codes.Unavailable {
		w.err = err
		return
	}
	w.client.logger.Info("bosun: watch disconnected; resuming", "after_seq", w.cursor, "in", w.delay, "error", err)
	select {
	case <-w.ctx.Done():
		w.err = w.ctx.Err()
	case <-time.After(w.delay):
		w.delay = min(2*w.delay, reconnectMaxDelay)
	}
}

func (w *Watcher) closeStream() {
	if w.cancelStream != nil {
		w.cancelStream()
	}
	w.stream, w.cancelStream = nil, nil
}
