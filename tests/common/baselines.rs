//! One well-formed request per RPC: every required field set, every value
//! valid. Bad-input tests spoil one field of it at a time, so the spoiled
//! field is the only thing wrong. A baseline passes validation; against a
//! fresh server it may still answer NOT_FOUND or FAILED_PRECONDITION (the
//! session or task it names does not exist), never INVALID_ARGUMENT.

use bosun::pb;
use prost::Message;
use prost_types::{Duration, FieldMask};

const SESSION: &str = "mer-1";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|path| path.to_string()).collect(),
    })
}

fn project() -> pb::Project {
    pb::Project {
        id: "mer".into(),
        repo_path: "/srv/repos/mer".into(),
        display_name: "Mer".into(),
        ..Default::default()
    }
}

/// What an empty request (every field unset, every sub-message missing)
/// gets from each RPC: accepted, or INVALID_ARGUMENT naming exactly the
/// required fields.
pub const EMPTY_REQUEST: &[(&str, &[&str])] = &[
    ("Lessons/RecordLesson", &["lesson"]),
    ("Lessons/GetLesson", &["id"]),
    ("Lessons/ListLessons", OK),
    ("Lessons/UpdateLesson", &["lesson"]),
    ("Lessons/GetLessonStats", OK),
    ("Lessons/GetLessonSettings", OK),
    ("Lessons/UpdateLessonSettings", &["update_mask"]),
    ("Processors/ListProcessors", OK),
    ("Processors/RunProcessor", &["name"]),
    ("Processors/ListProcessorState", OK),
    ("Processors/ResetProcessorState", &["processor"]),
    ("Processors/GetUsage", OK),
    ("Processors/GetToolErrors", OK),
    ("Reconciler/RunOnce", OK),
    ("Reconciler/GetStatus", OK),
    ("Reconciler/ListReconcilerRuns", OK),
    ("Reconciler/GetReconcilerSettings", OK),
    ("Reconciler/UpdateReconcilerSettings", &["update_mask"]),
    ("Sessions/RegisterProject", &["project.id"]),
    ("Sessions/GetProject", &["project_id"]),
    ("Sessions/ListProjects", OK),
    ("Sessions/UpdateProject", &["project.id", "update_mask"]),
    ("Sessions/ArchiveProject", &["project_id"]),
    ("Sessions/SpawnSession", &["project_id", "harness"]),
    (
        "Sessions/CompleteSpawn",
        &["session_id", "runtime_handle_id"],
    ),
    ("Sessions/FailSpawn", &["session_id"]),
    ("Sessions/FinishSession", &["session_id"]),
    ("Sessions/KillSession", &["session_id"]),
    ("Sessions/RestoreSession", &["session_id"]),
    ("Sessions/ReportActivity", &["session_id", "state"]),
    (
        "Sessions/ReportRuntimeProbe",
        &["session_id", "runtime", "process"],
    ),
    ("Sessions/ReportPullRequest", &["session_id"]),
    ("Sessions/GetSession", &["session_id"]),
    ("Sessions/ListSessions", OK),
    ("Sessions/ListReactions", OK),
    ("Sessions/ListAttention", OK),
    (
        "Tasks/StartTask",
        &["project_id", "tracker_issue_id", "work_item_id"],
    ),
    ("Tasks/GetTask", &["id"]),
    ("Tasks/ListTasks", OK),
    ("Tasks/GetTaskFacts", &["task_id"]),
    ("Tasks/RecordCiStatus", &["repo", "sha", "context", "state"]),
    ("Tasks/RecordVerdict", &["task_id", "decision"]),
    ("Tasks/RecordTestReport", &["task_id"]),
    ("Tasks/RecordDeployStatus", &["task_id", "health"]),
    ("Tasks/AdvanceTask", &["task_id", "session_id", "outcome"]),
    ("Tasks/ReleaseTask", &["task_id", "action"]),
    ("Events/Watch", OK),
    ("Events/GetHead", OK),
    ("Events/ListEvents", OK),
];
/// Accepted.
const OK: &[&str] = &[];

/// Request fields bosun ignores besides the output-only ones (the proto says
/// so): an update sets only the fields its mask may name.
pub fn ignored(rpc: &str, path: &str) -> bool {
    const LESSON_IMMUTABLE: &[&str] = &[
        "lesson.lesson_type",
        "lesson.work_item_id",
        "lesson.task_id",
        "lesson.session_id",
        "lesson.stage",
        "lesson.agent",
        "lesson.repo",
        "lesson.detail",
        "lesson.source",
    ];
    rpc == "Lessons/UpdateLesson" && LESSON_IMMUTABLE.contains(&path)
}

/// A valid element of the repeated message field at `path` (as the
/// descriptor walk names it, e.g. `pull_request.checks`).
pub fn element(path: &str) -> Vec<u8> {
    match path {
        "pull_request.checks" => pb::Check {
            name: "ci/test".into(),
            commit_sha: SHA.into(),
            status: 1,
            url: "https://ci.example/1".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        "pull_request.comments" => pb::Comment {
            id: "c-1".into(),
            author: "reviewer".into(),
            body: "nit".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        "settings.stage_grace" => pb::StageGrace {
            stage: 2,
            grace: Some(Duration {
                seconds: 600,
                nanos: 0,
            }),
        }
        .encode_to_vec(),
        _ => panic!("no valid element for {path}"),
    }
}

/// The baseline request of `rpc` (`Service/Method`), encoded; `None` for an
/// RPC nobody wrote one for (a test fails on it).
pub fn baseline(rpc: &str) -> Option<Vec<u8>> {
    let id = || "req-1".to_string();
    let session_id = || SESSION.to_string();
    Some(match rpc {
        "Lessons/RecordLesson" => pb::RecordLessonRequest {
            request_id: id(),
            lesson: Some(pb::Lesson {
                lesson_type: "gate_failure".into(),
                repo: "acme/mer".into(),
                ..Default::default()
            }),
        }
        .encode_to_vec(),
        "Lessons/GetLesson" => pb::GetLessonRequest { id: 1 }.encode_to_vec(),
        "Lessons/ListLessons" => pb::ListLessonsRequest::default().encode_to_vec(),
        "Lessons/UpdateLesson" => pb::UpdateLessonRequest {
            lesson: Some(pb::Lesson {
                id: 1,
                status: 1,
                attribution: 1,
                target_domain: 1,
                target_repo: "acme/mer".into(),
                related_task: "MER-2".into(),
                root_cause: "flaky test".into(),
                suggestion: "retry once".into(),
                ..Default::default()
            }),
            update_mask: mask(&["*"]),
        }
        .encode_to_vec(),
        "Lessons/GetLessonStats" => pb::GetLessonStatsRequest {}.encode_to_vec(),
        "Lessons/GetLessonSettings" => pb::GetLessonSettingsRequest {}.encode_to_vec(),
        "Lessons/UpdateLessonSettings" => pb::UpdateLessonSettingsRequest {
            settings: Some(pb::LessonSettings {
                enabled: true,
                dedup_window: Some(Duration {
                    seconds: 3600,
                    nanos: 0,
                }),
            }),
            update_mask: mask(&["enabled", "dedup_window"]),
        }
        .encode_to_vec(),
        "Processors/ListProcessors" => pb::ListProcessorsRequest::default().encode_to_vec(),
        "Processors/RunProcessor" => pb::RunProcessorRequest {
            name: "usage".into(),
        }
        .encode_to_vec(),
        "Processors/ListProcessorState" => pb::ListProcessorStateRequest {
            processor: "usage".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        "Processors/ResetProcessorState" => pb::ResetProcessorStateRequest {
            processor: "usage".into(),
            transcripts: vec!["owner/name.jsonl".into()],
            quarantined_only: false,
        }
        .encode_to_vec(),
        "Processors/GetUsage" => pb::GetUsageRequest::default().encode_to_vec(),
        "Processors/GetToolErrors" => pb::GetToolErrorsRequest::default().encode_to_vec(),
        "Reconciler/RunOnce" => pb::RunOnceRequest::default().encode_to_vec(),
        "Reconciler/GetStatus" => pb::GetStatusRequest {}.encode_to_vec(),
        "Reconciler/ListReconcilerRuns" => pb::ListReconcilerRunsRequest::default().encode_to_vec(),
        "Reconciler/GetReconcilerSettings" => pb::GetReconcilerSettingsRequest {}.encode_to_vec(),
        "Reconciler/UpdateReconcilerSettings" => pb::UpdateReconcilerSettingsRequest {
            settings: Some(pb::ReconcilerSettings {
                gate_side_enabled: false,
                tracker_side_enabled: false,
                ..Default::default()
            }),
            update_mask: mask(&["*"]),
        }
        .encode_to_vec(),
        "Sessions/RegisterProject" => pb::RegisterProjectRequest {
            request_id: id(),
            project: Some(project()),
        }
        .encode_to_vec(),
        "Sessions/GetProject" => pb::GetProjectRequest {
            project_id: "mer".into(),
        }
        .encode_to_vec(),
        "Sessions/ListProjects" => pb::ListProjectsRequest::default().encode_to_vec(),
        "Sessions/UpdateProject" => pb::UpdateProjectRequest {
            project: Some(project()),
            update_mask: mask(&["*"]),
        }
        .encode_to_vec(),
        "Sessions/ArchiveProject" => pb::ArchiveProjectRequest {
            project_id: "mer".into(),
        }
        .encode_to_vec(),
        "Sessions/SpawnSession" => pb::SpawnSessionRequest {
            request_id: id(),
            project_id: "mer".into(),
            role: 1,
            harness: 1,
            branch: "feat/x".into(),
            prompt: "fix it".into(),
            ..Default::default()
        }
        .encode_to_vec(),
        "Sessions/CompleteSpawn" => pb::CompleteSpawnRequest {
            request_id: id(),
            session_id: session_id(),
            runtime_handle_id: "tmux:1".into(),
            runtime_name: "tmux".into(),
            workspace_path: "/srv/ws/mer-1".into(),
            agent_session_id: "3f2a9c".into(),
            branch: "feat/x".into(),
        }
        .encode_to_vec(),
        "Sessions/FailSpawn" => pb::FailSpawnRequest {
            request_id: id(),
            session_id: session_id(),
            error: "no runtime".into(),
        }
        .encode_to_vec(),
        "Sessions/FinishSession" => pb::FinishSessionRequest {
            request_id: id(),
            session_id: session_id(),
        }
        .encode_to_vec(),
        "Sessions/KillSession" => pb::KillSessionRequest {
            request_id: id(),
            session_id: session_id(),
            reason: 0,
            detail: "operator".into(),
        }
        .encode_to_vec(),
        "Sessions/RestoreSession" => pb::RestoreSessionRequest {
            request_id: id(),
            session_id: session_id(),
        }
        .encode_to_vec(),
        "Sessions/ReportActivity" => pb::ReportActivityRequest {
            request_id: id(),
            session_id: session_id(),
            state: 1,
            source: 1,
        }
        .encode_to_vec(),
        "Sessions/ReportRuntimeProbe" => pb::ReportRuntimeProbeRequest {
            request_id: id(),
            session_id: session_id(),
            runtime: 1,
            process: 1,
            evidence: "pid 42".into(),
        }
        .encode_to_vec(),
        "Sessions/ReportPullRequest" => pb::ReportPullRequestRequest {
            request_id: id(),
            session_id: session_id(),
            repo: "acme/mer".into(),
            fetched: true,
            pull_request: Some(pb::PullRequest {
                url: "https://github.com/acme/mer/pull/7".into(),
                number: 7,
                state: 1,
                head_sha: SHA.into(),
                branch: "feat/x".into(),
                ..Default::default()
            }),
            observed_time: None,
        }
        .encode_to_vec(),
        "Sessions/GetSession" => pb::GetSessionRequest {
            session_id: session_id(),
        }
        .encode_to_vec(),
        "Sessions/ListSessions" => pb::ListSessionsRequest::default().encode_to_vec(),
        "Sessions/ListReactions" => pb::ListReactionsRequest::default().encode_to_vec(),
        "Sessions/ListAttention" => pb::ListAttentionRequest::default().encode_to_vec(),
        "Tasks/StartTask" => pb::StartTaskRequest {
            request_id: id(),
            project_id: "mer".into(),
            tracker_issue_id: "issue-1".into(),
            work_item_id: "MER-1".into(),
            title: "Fix it".into(),
            repo: "acme/mer".into(),
            branch: "feat/x".into(),
        }
        .encode_to_vec(),
        "Tasks/GetTask" => pb::GetTaskRequest { id: 1 }.encode_to_vec(),
        "Tasks/ListTasks" => pb::ListTasksRequest::default().encode_to_vec(),
        "Tasks/GetTaskFacts" => pb::GetTaskFactsRequest { task_id: 1 }.encode_to_vec(),
        "Tasks/RecordCiStatus" => pb::RecordCiStatusRequest {
            request_id: id(),
            repo: "acme/mer".into(),
            sha: SHA.into(),
            branch: "feat/x".into(),
            context: "ci/test".into(),
            state: 1,
            target_url: "https://ci.example/1".into(),
            description: "running".into(),
        }
        .encode_to_vec(),
        "Tasks/RecordVerdict" => pb::RecordVerdictRequest {
            request_id: id(),
            decision: 1,
            source: 1,
            author: "reviewer".into(),
            comment: "looks good".into(),
            task_ref: Some(pb::record_verdict_request::TaskRef::TaskId(1)),
        }
        .encode_to_vec(),
        "Tasks/RecordTestReport" => pb::RecordTestReportRequest {
            request_id: id(),
            task_id: 1,
            passed: true,
            coverage_percent: 87.5,
            sha: SHA.into(),
            summary: "all green".into(),
        }
        .encode_to_vec(),
        "Tasks/RecordDeployStatus" => pb::RecordDeployStatusRequest {
            request_id: id(),
            task_id: 1,
            health: 1,
            detail: "healthy".into(),
        }
        .encode_to_vec(),
        "Tasks/AdvanceTask" => pb::AdvanceTaskRequest {
            request_id: id(),
            task_id: 1,
            session_id: session_id(),
            outcome: 1,
            detail: "done".into(),
        }
        .encode_to_vec(),
        "Tasks/ReleaseTask" => pb::ReleaseTaskRequest {
            request_id: id(),
            task_id: 1,
            action: 1,
            note: "go on".into(),
        }
        .encode_to_vec(),
        "Events/Watch" => pb::WatchRequest::default().encode_to_vec(),
        "Events/GetHead" => pb::GetHeadRequest {}.encode_to_vec(),
        "Events/ListEvents" => pb::ListEventsRequest::default().encode_to_vec(),
        _ => return None,
    })
}
