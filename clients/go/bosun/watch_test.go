package bosun_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bosun-dev/bosun/clients/go/bosun"
	bosunv1 "github.com/bosun-dev/bosun/clients/go/gen/bosun/v1"
	"github.com/bosun-dev/bosun/clients/go/internal/testserver"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func record(t *testing.T, client *bosun.Client, workItem string) {
	t.Helper()
	_, err := client.Lessons.RecordLesson(context.Background(), &bosunv1.RecordLessonRequest{
		Lesson: &bosunv1.Lesson{LessonType: "gate_failure", WorkItemId: workItem},
	})
	if err != nil {
		t.Fatalf("record %s: %v", workItem, err)
	}
}

// collect runs watcher.Next in its own goroutine, so the watch keeps
// running (and reconnecting) while the test restarts bosun. The channel
// closes when the watcher ends.
func collect(watcher *bosun.Watcher) <-chan *bosunv1.Event {
	events := make(chan *bosunv1.Event)
	go func() {
		defer close(events)
		for watcher.Next() {
			events <- watcher.Event()
		}
	}()
	return events
}

func receive(t *testing.T, events <-chan *bosunv1.Event, n int) []*bosunv1.Event {
	t.Helper()
	var got []*bosunv1.Event
	for len(got) < n {
		select {
		case event, ok := <-events:
			if !ok {
				t.Fatalf("the watch ended after %d of %d events", len(got), n)
			}
			got = append(got, event)
		case <-time.After(30 * time.Second):
			t.Fatalf("no event after %d of %d", len(got), n)
		}
	}
	return got
}

func TestWatchResumesAcrossAServerRestart(t *testing.T) {
	server := testserver.Start(t, testserver.Options{})
	client := connect(t, server.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lessons := &bosunv1.EventFilter{EventTypePrefixes: []string{"lesson."}}

	record(t, client, "before-1")
	record(t, client, "before-2")
	watcher := client.Watch(ctx, 0, lessons)
	events := collect(watcher)
	delivered := receive(t, events, 2)

	// The stream breaks (SHUTTING_DOWN, then connections refused while bosun
	// is down) and the watcher retries until bosun is back on its address.
	server.Restart()
	record(t, client, "after-1")
	record(t, client, "after-2")
	delivered = append(delivered, receive(t, events, 2)...)

	history, err := client.Events.ListEvents(ctx, &bosunv1.ListEventsRequest{Filter: lessons})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	if got, want := describe(delivered), describe(history.GetEvents()); got != want {
		t.Fatalf("delivered %s\nwant      %s", got, want)
	}
	if got := delivered[3].GetLesson().GetWorkItemId(); got != "after-2" {
		t.Fatalf("the last event is about %q", got)
	}

	// Nothing more arrives: a fifth event would be a repeat.
	select {
	case event := <-events:
		t.Fatalf("an extra event arrived: %v", event)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	for range events {
	}
	if !errors.Is(watcher.Err(), context.Canceled) || watcher.Cursor() != delivered[3].GetSeq() {
		t.Fatalf("ended with %v at cursor %d, want canceled at %d", watcher.Err(), watcher.Cursor(), delivered[3].GetSeq())
	}
}

func TestWatchSurfacesACompactedCursor(t *testing.T) {
	// Retention 0s and a pass every second: everything but the newest 10,000
	// events goes.
	server := testserver.Start(t, testserver.Options{Env: []string{
		"BOSUN_EVENTS__RETENTION=0s", "BOSUN_EVENTS__COMPACTION_INTERVAL=1s",
	}})
	client := connect(t, server.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fillChangeLog(t, client, 10_100)

	var oldest int64
	for oldest <= 1 {
		head, err := client.Events.GetHead(ctx, &bosunv1.GetHeadRequest{})
		if err != nil {
			t.Fatalf("get head: %v", err)
		}
		oldest = head.GetOldestSeq()
		time.Sleep(100 * time.Millisecond) // waiting for the background pass
	}

	watcher := client.Watch(ctx, 1, nil)
	defer watcher.Close()
	if watcher.Next() {
		t.Fatalf("a compacted cursor delivered seq %d", watcher.Event().GetSeq())
	}
	var compacted *bosun.CursorCompactedError
	if !errors.As(watcher.Err(), &compacted) {
		t.Fatalf("ended with %v, want a *CursorCompactedError", watcher.Err())
	}
	if compacted.AfterSeq != 1 || compacted.OldestSeq < oldest || status.Code(watcher.Err()) != codes.OutOfRange {
		t.Fatalf("compacted error %+v (code %v), oldest kept %d", compacted, status.Code(watcher.Err()), oldest)
	}
}

// fillChangeLog writes at least n events cheaply: each pull request report
// with 500 checks is one transaction of some 500 events.
func fillChangeLog(t *testing.T, client *bosun.Client, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.Sessions.RegisterProject(ctx, &bosunv1.RegisterProjectRequest{
		Project: &bosunv1.Project{Id: "fill", RepoPath: "/src/fill"},
	}); err != nil {
		t.Fatalf("register: %v", err)
	}
	session, err := client.Sessions.SpawnSession(ctx, &bosunv1.SpawnSessionRequest{ProjectId: "fill", Harness: bosunv1.Harness_HARNESS_OTHER})
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	for round := 0; ; round++ {
		head, err := client.Events.GetHead(ctx, &bosunv1.GetHeadRequest{})
		if err != nil {
			t.Fatalf("get head: %v", err)
		}
		if head.GetHeadSeq() >= int64(n) {
			return
		}
		checks := make([]*bosunv1.Check, 500)
		for i := range checks {
			checks[i] = &bosunv1.Check{Name: fmt.Sprintf("check-%d", i), CommitSha: fmt.Sprintf("sha-%d", round), Status: bosunv1.CheckStatus_CHECK_STATUS_PASSED}
		}
		_, err = client.Sessions.ReportPullRequest(ctx, &bosunv1.ReportPullRequestRequest{
			SessionId: session.GetId(), Fetched: true,
			PullRequest: &bosunv1.PullRequest{
				Number: 1, Url: "https://forge/pr/1", State: bosunv1.PullRequestState_PULL_REQUEST_STATE_OPEN,
				HeadSha: fmt.Sprintf("sha-%d", round), Branch: "fill", Checks: checks,
			},
		})
		if err != nil {
			t.Fatalf("report pull request: %v", err)
		}
	}
}

func describe(events []*bosunv1.Event) string {
	var out []string
	for _, event := range events {
		out = append(out, fmt.Sprintf("%d:%s:%s", event.GetSeq(), event.GetEventType(), event.GetLesson().GetWorkItemId()))
	}
	return fmt.Sprint(out)
}
