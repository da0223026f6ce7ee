//! Proto <-> domain conversion for Tasks: requests are validated here, once,
//! naming each bad field by its request path; answers and event payloads are
//! built here.

use super::advance::{ReleaseAction, SessionOutcome, StageReport};
use super::flow::{AdvanceOutcome, AdvanceResult};
use super::record::{NewCiStatus, NewTestReport, NewVerdict, Resolution, TaskRef};
use super::service::NewTask;
use super::store::{TaskFilter, TaskOrder};
use super::{
    CiState, CiStatus, Decision, DeployFreeze, DeployHealth, DeployStatus, GateCheck, GateResult,
    GateStatus, HoldReason, Stage, Task, TestReport, Verdict, VerdictSource, pipeline,
};
use crate::error::Violations;
use crate::pb;
use crate::pb::record_verdict_request::TaskRef as PbTaskRef;
use crate::proto_enum::{
    ProtoEnum, optional_from_pb, optional_to_pb, proto_enum, required_from_pb,
};
use crate::repo_id::RepoId;
use crate::validate::{self, long_text, positive_id, required_text, short_text, text};

proto_enum!(TaskOrder => pb::TaskOrder { CreateTime, UpdateTime });
proto_enum!(Stage => pb::Stage { Analysis, Development, Review, Testing, Deploy, Done });
proto_enum!(HoldReason => pb::HoldReason { RollbackLimit, RetryBudgetExhausted, MergeUnverified, DeployDegraded });
proto_enum!(CiState => pb::CiStatusState { Pending, Success, Failure, Error });
proto_enum!(Decision => pb::VerdictDecision { Approved, Rejected });
proto_enum!(VerdictSource => pb::VerdictSource { Tracker, PrReview });
proto_enum!(DeployHealth => pb::DeployHealth { Healthy, Degraded });
proto_enum!(GateStatus => pb::GateStatus { Passed, Failed, Pending });
proto_enum!(AdvanceOutcome => pb::AdvanceOutcome { Advanced, RolledBack, Held, Retried, Waiting });
proto_enum!(SessionOutcome => pb::StageSessionOutcome { Completed, FailedTransient });
proto_enum!(ReleaseAction => pb::ReleaseAction { EvaluateGate, RerunStage, RollBack });

/// Longest AdvanceTask detail or ReleaseTask note, in characters.
const MAX_NOTE: usize = 1024;

/// A commit id: 40 or 64 hex digits, stored lowercase.
fn sha(v: &mut Violations, field: &str, value: String, required: bool) -> Option<String> {
    if value.is_empty() {
        if required {
            v.add(field, "is required");
        }
        return None;
    }
    if !matches!(value.len(), 40 | 64) || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        v.add(field, "must be 40 or 64 hex digits");
        return None;
    }
    Some(value.to_ascii_lowercase())
}

// Requests.

pub fn new_task(request: pb::StartTaskRequest) -> Result<(Option<String>, NewTask), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let new = NewTask {
        project_id: required_text(&mut v, "project_id", request.project_id),
        tracker_issue_id: required_text(&mut v, "tracker_issue_id", request.tracker_issue_id),
        work_item_id: required_text(&mut v, "work_item_id", request.work_item_id),
        title: short_text(&mut v, "title", request.title).unwrap_or_default(),
        repo: short_text(&mut v, "repo", request.repo).map(|repo| RepoId::canonical(&repo)),
        branch: short_text(&mut v, "branch", request.branch),
    };
    v.finish((request_id, new))
}

pub fn task_filter(request: &pb::ListTasksRequest) -> Result<TaskFilter, Violations> {
    let mut v = Violations::new();
    let filter = TaskFilter {
        project_id: short_text(&mut v, "project_id", request.project_id.clone()),
        stage: optional_from_pb(&mut v, "stage", request.stage),
        repo: short_text(&mut v, "repo", request.repo.clone()).map(|repo| RepoId::canonical(&repo)),
        held: request.held,
        work_item_id: short_text(&mut v, "work_item_id", request.work_item_id.clone()),
        tracker_issue_id: short_text(&mut v, "tracker_issue_id", request.tracker_issue_id.clone()),
        order: optional_from_pb::<TaskOrder>(&mut v, "order_by", request.order_by)
            .unwrap_or_default(),
    };
    v.finish(filter)
}

pub fn task_id(field: &str, id: i64) -> Result<i64, Violations> {
    let mut v = Violations::new();
    let id = positive_id(&mut v, field, id);
    v.finish(id)
}

pub fn new_ci_status(
    request: pb::RecordCiStatusRequest,
) -> Result<(Option<String>, NewCiStatus), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let new = NewCiStatus {
        repo: RepoId::canonical(&required_text(&mut v, "repo", request.repo)),
        sha: sha(&mut v, "sha", request.sha, true).unwrap_or_default(),
        branch: short_text(&mut v, "branch", request.branch),
        context: required_text(&mut v, "context", request.context),
        state: required_from_pb(&mut v, "state", request.state).unwrap_or(CiState::Pending),
        target_url: text(&mut v, "target_url", request.target_url, 2048, false),
        description: short_text(&mut v, "description", request.description),
    };
    v.finish((request_id, new))
}

pub fn new_verdict(
    request: pb::RecordVerdictRequest,
) -> Result<(Option<String>, NewVerdict), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let task = match request.task_ref {
        Some(PbTaskRef::TaskId(id)) => TaskRef::Id(positive_id(&mut v, "task_id", id)),
        Some(PbTaskRef::TrackerIssueId(issue)) => {
            TaskRef::TrackerIssue(required_text(&mut v, "tracker_issue_id", issue))
        }
        None => {
            v.add("task_id", "a task is required: task_id or tracker_issue_id");
            TaskRef::Id(0)
        }
    };
    let new = NewVerdict {
        task,
        decision: required_from_pb(&mut v, "decision", request.decision)
            .unwrap_or(Decision::Rejected),
        source: optional_from_pb(&mut v, "source", request.source)
            .unwrap_or(VerdictSource::Tracker),
        author: short_text(&mut v, "author", request.author),
        comment: long_text(&mut v, "comment", request.comment),
    };
    v.finish((request_id, new))
}

pub fn new_test_report(
    request: pb::RecordTestReportRequest,
) -> Result<(Option<String>, NewTestReport), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let coverage = request.coverage_percent;
    if !(0.0..=100.0).contains(&coverage) {
        v.add("coverage_percent", "must be between 0 and 100");
    }
    let new = NewTestReport {
        task_id: positive_id(&mut v, "task_id", request.task_id),
        passed: request.passed,
        coverage_percent: coverage,
        sha: sha(&mut v, "sha", request.sha, false),
        summary: validate::body_text(&mut v, "summary", request.summary),
    };
    v.finish((request_id, new))
}

/// RecordDeployStatus: (request_id, task_id, health, detail).
pub fn new_deploy_status(
    request: pb::RecordDeployStatusRequest,
) -> Result<(Option<String>, i64, DeployHealth, Option<String>), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let task_id = positive_id(&mut v, "task_id", request.task_id);
    let health = required_from_pb(&mut v, "health", request.health);
    let detail = long_text(&mut v, "detail", request.detail);
    v.finish((
        request_id,
        task_id,
        health.unwrap_or(DeployHealth::Healthy),
        detail,
    ))
}

pub fn stage_report(
    request: pb::AdvanceTaskRequest,
) -> Result<(Option<String>, StageReport), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let report = StageReport {
        task_id: positive_id(&mut v, "task_id", request.task_id),
        session_id: required_text(&mut v, "session_id", request.session_id),
        outcome: required_from_pb(&mut v, "outcome", request.outcome)
            .unwrap_or(SessionOutcome::Completed),
        detail: text(&mut v, "detail", request.detail, MAX_NOTE, true),
    };
    v.finish((request_id, report))
}

/// ReleaseTask: (request_id, task_id, action, note).
pub fn release(
    request: pb::ReleaseTaskRequest,
) -> Result<(Option<String>, i64, ReleaseAction, Option<String>), Violations> {
    let mut v = Violations::new();
    let request_id = validate::request_id(&mut v, "request_id", request.request_id);
    let task_id = positive_id(&mut v, "task_id", request.task_id);
    let action = required_from_pb(&mut v, "action", request.action);
    let note = text(&mut v, "note", request.note, MAX_NOTE, true);
    v.finish((
        request_id,
        task_id,
        action.unwrap_or(ReleaseAction::EvaluateGate),
        note,
    ))
}

// Answers.

pub fn task_to_pb(task: Task) -> pb::Task {
    pb::Task {
        id: task.id,
        stage_role: optional_to_pb(pipeline::role(task.stage)),
        stage: task.stage.to_pb(),
        project_id: task.project_id,
        tracker_issue_id: task.tracker_issue_id,
        work_item_id: task.work_item_id,
        title: task.title,
        repo: task.repo,
        branch: task.branch,
        head_sha: task.head_sha.unwrap_or_default(),
        rollback_count: task.rollback_count as i32,
        transient_retries: task.transient_retries as i32,
        held: task.hold_reason.is_some(),
        hold_reason: optional_to_pb(task.hold_reason),
        hold_detail: task.hold_detail.unwrap_or_default(),
        hold_time: task.hold_time.map(|t| t.to_timestamp()),
        stage_session_id: task.stage_session_id.unwrap_or_default(),
        stage_session_active: task.stage_session_active,
        last_gate: task.last_gate.map(gate_to_pb),
        create_time: Some(task.create_time.to_timestamp()),
        update_time: Some(task.update_time.to_timestamp()),
        stage_enter_time: Some(task.stage_enter_time.to_timestamp()),
    }
}

pub fn gate_to_pb(gate: GateResult) -> pb::GateResult {
    pb::GateResult {
        stage: gate.stage.to_pb(),
        gate: gate.gate,
        status: gate.status.to_pb(),
        checks: gate.checks.into_iter().map(check_to_pb).collect(),
        head_sha: gate.head_sha.unwrap_or_default(),
        evaluate_time: Some(gate.evaluate_time.to_timestamp()),
    }
}

fn check_to_pb(check: GateCheck) -> pb::GateCheck {
    pb::GateCheck {
        name: check.name,
        status: check.status.to_pb(),
        reason: check.reason,
    }
}

pub fn ci_status_to_pb(status: CiStatus) -> pb::CiStatus {
    pb::CiStatus {
        repo: status.repo,
        sha: status.sha,
        branch: status.branch.unwrap_or_default(),
        context: status.context,
        state: status.state.to_pb(),
        target_url: status.target_url.unwrap_or_default(),
        description: status.description.unwrap_or_default(),
        create_time: Some(status.create_time.to_timestamp()),
        update_time: Some(status.update_time.to_timestamp()),
    }
}

pub fn verdict_to_pb(verdict: Verdict) -> pb::Verdict {
    pb::Verdict {
        id: verdict.id,
        task_id: verdict.task_id,
        decision: verdict.decision.to_pb(),
        source: verdict.source.to_pb(),
        author: verdict.author.unwrap_or_default(),
        comment: verdict.comment.unwrap_or_default(),
        stage: verdict.stage.to_pb(),
        create_time: Some(verdict.create_time.to_timestamp()),
    }
}

pub fn test_report_to_pb(report: TestReport) -> pb::TestReport {
    pb::TestReport {
        id: report.id,
        task_id: report.task_id,
        passed: report.passed,
        coverage_percent: report.coverage_percent,
        sha: report.sha.unwrap_or_default(),
        summary: report.summary.unwrap_or_default(),
        create_time: Some(report.create_time.to_timestamp()),
    }
}

pub fn deploy_status_to_pb(status: DeployStatus) -> pb::DeployStatus {
    pb::DeployStatus {
        id: status.id,
        task_id: status.task_id,
        health: status.health.to_pb(),
        detail: status.detail.unwrap_or_default(),
        create_time: Some(status.create_time.to_timestamp()),
    }
}

pub fn deploy_freeze_to_pb(freeze: DeployFreeze) -> pb::DeployFreeze {
    pb::DeployFreeze {
        repo: freeze.repo,
        task_id: freeze.task_id,
        detail: freeze.detail.unwrap_or_default(),
        create_time: Some(freeze.create_time.to_timestamp()),
    }
}

pub fn advance_to_pb(result: AdvanceResult) -> pb::AdvanceResult {
    pb::AdvanceResult {
        outcome: result.outcome.to_pb(),
        task: Some(task_to_pb(result.task)),
        from_stage: result.from_stage.to_pb(),
        to_stage: result.to_stage.to_pb(),
        gate: result.gate.map(gate_to_pb),
        session_id: result.session_id.unwrap_or_default(),
        lesson_id: result.lesson_id.unwrap_or_default(),
    }
}

/// (resolution, task_id, candidate_task_ids) of RecordCiStatusResponse.
pub fn resolution_to_pb(resolution: Resolution) -> (pb::ShaResolution, i64, Vec<i64>) {
    match resolution {
        Resolution::HeadSha(id) => (pb::ShaResolution::HeadSha, id, Vec::new()),
        Resolution::Branch(id) => (pb::ShaResolution::Branch, id, Vec::new()),
        Resolution::SingleDevelopmentTask(id) => {
            (pb::ShaResolution::SingleDevelopmentTask, id, Vec::new())
        }
        Resolution::Unresolved => (pb::ShaResolution::Unresolved, 0, Vec::new()),
        Resolution::Ambiguous(ids) => (pb::ShaResolution::Ambiguous, 0, ids),
    }
}

// Event payloads.

pub fn task_from_payload(json: &str) -> Result<pb::Task, serde_json::Error> {
    Ok(task_to_pb(serde_json::from_str(json)?))
}

pub fn ci_status_from_payload(json: &str) -> Result<pb::CiStatus, serde_json::Error> {
    Ok(ci_status_to_pb(serde_json::from_str(json)?))
}

pub fn verdict_from_payload(json: &str) -> Result<pb::Verdict, serde_json::Error> {
    Ok(verdict_to_pb(serde_json::from_str(json)?))
}

pub fn test_report_from_payload(json: &str) -> Result<pb::TestReport, serde_json::Error> {
    Ok(test_report_to_pb(serde_json::from_str(json)?))
}

pub fn deploy_status_from_payload(json: &str) -> Result<pb::DeployStatus, serde_json::Error> {
    Ok(deploy_status_to_pb(serde_json::from_str(json)?))
}

pub fn deploy_freeze_from_payload(json: &str) -> Result<pb::DeployFreeze, serde_json::Error> {
    Ok(deploy_freeze_to_pb(serde_json::from_str(json)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::decode_row;

    #[test]
    fn shas_must_be_40_or_64_hex_digits_and_are_stored_lowercase() {
        let rows: &[(&str, Option<&str>)] = &[
            (
                "ABCDEF0123456789abcdef0123456789ABCDEF01",
                Some("abcdef0123456789abcdef0123456789abcdef01"),
            ),
            (&"a".repeat(64), Some(&"a".repeat(64))),
            (&"a".repeat(39), None),
            (&"a".repeat(41), None),
            (&"g".repeat(40), None),
        ];
        for (input, expected) in rows {
            let mut v = Violations::new();
            let got = sha(&mut v, "sha", input.to_string(), true);
            assert_eq!(got.as_deref(), *expected, "{input}");
            assert_eq!(v.is_empty(), expected.is_some(), "{input}");
        }
    }

    #[test]
    fn a_stored_task_row_decodes() {
        let json = r#"{"id":1,"project_id":"mer","tracker_issue_id":"i","work_item_id":"W-1","title":"",
            "repo":"a/b","branch":"feature/W-1","stage":"review","head_sha":null,"rollback_count":1,
            "transient_retries":0,"hold_reason":null,"hold_detail":null,"hold_time":null,
            "stage_session_id":"mer-2","stage_session_finished":true,"stage_session_active":false,
            "last_gate":null,"create_time":1,"update_time":2,"stage_enter_time":2}"#;
        let task: Task = decode_row("task", json).unwrap();
        let pb = task_to_pb(task);
        assert_eq!(pb.stage, pb::Stage::Review as i32);
        assert_eq!(pb.stage_role, pb::Role::Reviewer as i32);
        assert_eq!(pb.rollback_count, 1);
    }
}
