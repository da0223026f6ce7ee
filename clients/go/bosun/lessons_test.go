package bosun_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bosun-dev/bosun/clients/go/bosun"
	bosunv1 "github.com/bosun-dev/bosun/clients/go/gen/bosun/v1"
	"github.com/bosun-dev/bosun/clients/go/internal/testserver"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func connect(t *testing.T, addr string, opts ...bosun.Option) *bosun.Client {
	t.Helper()
	client, err := bosun.Connect(addr, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func TestRecordAndListLessons(t *testing.T) {
	server := testserver.Start(t, testserver.Options{})
	client := connect(t, server.Addr)
	ctx := context.Background()

	for _, lesson := range []*bosunv1.Lesson{
		{LessonType: "gate_failure", Repo: "orchestrator", WorkItemId: "ORCH-1", Stage: "testing"},
		{LessonType: "merge_hold", Repo: "orchestrator", WorkItemId: "ORCH-2"},
		{LessonType: "gate_failure", Repo: "website", WorkItemId: "WEB-1"},
	} {
		response, err := client.Lessons.RecordLesson(ctx, &bosunv1.RecordLessonRequest{Lesson: lesson})
		if err != nil {
			t.Fatalf("record %v: %v", lesson, err)
		}
		if response.GetOutcome() != bosunv1.RecordOutcome_RECORD_OUTCOME_RECORDED || response.GetLesson().GetId() == 0 {
			t.Fatalf("record answered %v", response)
		}
	}

	listed, err := client.Lessons.ListLessons(ctx, &bosunv1.ListLessonsRequest{Repo: "orchestrator"})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var types []string
	for _, lesson := range listed.GetLessons() {
		types = append(types, lesson.GetLessonType()+"/"+lesson.GetWorkItemId())
	}
	// Newest first, only the orchestrator's.
	if got, want := strings.Join(types, ","), "merge_hold/ORCH-2,gate_failure/ORCH-1"; got != want {
		t.Fatalf("listed %s, want %s", got, want)
	}
	if !listed.GetEnabled() || listed.GetNextPageToken() != "" {
		t.Fatalf("list enabled=%v next_page_token=%q", listed.GetEnabled(), listed.GetNextPageToken())
	}
}

func TestErrorsCarryTheirReason(t *testing.T) {
	server := testserver.Start(t, testserver.Options{})
	client := connect(t, server.Addr)

	_, err := client.Lessons.GetLesson(context.Background(), &bosunv1.GetLessonRequest{Id: 4242})
	if status.Code(err) != codes.NotFound || bosun.Reason(err) != "LESSON_NOT_FOUND" {
		t.Fatalf("get of a missing lesson: code %v reason %q (%v)", status.Code(err), bosun.Reason(err), err)
	}
}

func TestTokenIsSentOnEveryCall(t *testing.T) {
	server := testserver.Start(t, testserver.Options{Config: `
[[auth.tokens]]
name = "runner"
role = "agent"
token = "agent-token-0123456789"
`})
	ctx := context.Background()
	lesson := &bosunv1.RecordLessonRequest{Lesson: &bosunv1.Lesson{LessonType: "gate_failure"}}

	_, err := connect(t, server.Addr).Lessons.RecordLesson(ctx, lesson)
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("without a token: %v, want UNAUTHENTICATED", err)
	}
	_, err = connect(t, server.Addr, bosun.WithToken("agent-token-0123456789")).Lessons.RecordLesson(ctx, lesson)
	if err != nil {
		t.Fatalf("with the agent token: %v", err)
	}
}

func TestQuietRecordAnswersWhenBosunDoes(t *testing.T) {
	server := testserver.Start(t, testserver.Options{})
	var logs bytes.Buffer
	client := connect(t, server.Addr, bosun.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	response := client.RecordLessonQuietly(context.Background(), &bosunv1.Lesson{LessonType: "transient_retry", WorkItemId: "ORCH-7"})
	if response.GetOutcome() != bosunv1.RecordOutcome_RECORD_OUTCOME_RECORDED || response.GetLesson().GetWorkItemId() != "ORCH-7" {
		t.Fatalf("quiet record answered %v", response)
	}

	// A refusal (no lesson_type) is logged, not returned.
	if response := client.RecordLessonQuietly(context.Background(), &bosunv1.Lesson{}); response != nil {
		t.Fatalf("an invalid lesson was answered %v", response)
	}
	if !strings.Contains(logs.String(), "lesson not recorded") || !strings.Contains(logs.String(), "InvalidArgument") {
		t.Fatalf("the refusal was not logged: %q", logs.String())
	}
}

func TestQuietRecordAgainstAStoppedServerReturnsQuickly(t *testing.T) {
	server := testserver.Start(t, testserver.Options{})
	var logs bytes.Buffer
	client := connect(t, server.Addr,
		bosun.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		bosun.WithQuietTimeout(time.Second))
	server.Stop()

	started := time.Now()
	response := client.RecordLessonQuietly(context.Background(), &bosunv1.Lesson{LessonType: "gate_failure"})
	elapsed := time.Since(started)

	if response != nil {
		t.Fatalf("a stopped server answered %v", response)
	}
	if elapsed > 3*time.Second {
		t.Fatalf("the quiet record took %v, past its 1s deadline", elapsed)
	}
	if !strings.Contains(logs.String(), "lesson not recorded") || !strings.Contains(logs.String(), "lesson_type=gate_failure") {
		t.Fatalf("the failure was not logged: %q", logs.String())
	}
}
