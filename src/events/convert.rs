//! Proto <-> domain conversion for events, including the typed payloads: each
//! entity kind's JSON payload becomes its proto message.

use super::{EventFilter, StoredEvent};
use crate::error::Violations;
use crate::pb::event::Payload;
use crate::validate::short_text;
use crate::{pb, processors, sessions, tasks};

/// The most event-type prefixes one filter may carry.
const MAX_PREFIXES: usize = 32;

pub fn filter(filter: Option<pb::EventFilter>) -> Result<EventFilter, Violations> {
    let filter = filter.unwrap_or_default();
    let mut v = Violations::new();
    if filter.event_type_prefixes.len() > MAX_PREFIXES {
        v.add(
            "filter.event_type_prefixes",
            format!("at most {MAX_PREFIXES} prefixes"),
        );
    }
    for prefix in &filter.event_type_prefixes {
        let valid = !prefix.is_empty()
            && prefix.len() <= 128
            && prefix.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !valid {
            v.add(
                "filter.event_type_prefixes",
                format!("{prefix:?} is not an event-type prefix (lowercase letters, digits, '.', '_', '-')"),
            );
        }
    }
    if filter.task_id < 0 {
        v.add("filter.task_id", "must not be negative");
    }
    let domain = EventFilter {
        event_type_prefixes: filter.event_type_prefixes,
        project_id: short_text(&mut v, "filter.project_id", filter.project_id),
        session_id: short_text(&mut v, "filter.session_id", filter.session_id),
        task_id: (filter.task_id > 0).then_some(filter.task_id),
    };
    v.finish(domain)
}

pub fn event_to_pb(event: StoredEvent) -> pb::Event {
    let payload = payload(&event.entity_kind, &event.payload).unwrap_or_else(|err| {
        tracing::error!(seq = event.seq, kind = %event.entity_kind, error = %err, "undecodable event payload");
        None
    });
    pb::Event {
        seq: event.seq,
        event_type: event.event_type,
        entity_kind: event.entity_kind,
        entity_id: event.entity_id,
        project_id: event.project_id.unwrap_or_default(),
        session_id: event.session_id.unwrap_or_default(),
        task_id: event.task_id.unwrap_or_default(),
        create_time: Some(event.create_time.to_timestamp()),
        payload,
    }
}

/// The typed payload of an entity kind; `None` for kinds without one.
fn payload(kind: &str, json: &str) -> Result<Option<Payload>, serde_json::Error> {
    Ok(match kind {
        "lesson" => Some(Payload::Lesson(crate::lessons::lesson_from_payload(json)?)),
        "project" => Some(Payload::Project(sessions::project_from_payload(json)?)),
        "session" => Some(Payload::Session(sessions::session_from_payload(json)?)),
        "pull_request" => Some(Payload::PullRequest(sessions::pull_request_from_payload(
            json,
        )?)),
        "check" => Some(Payload::Check(sessions::check_from_payload(json)?)),
        "reaction" => Some(Payload::Reaction(sessions::reaction_from_payload(json)?)),
        "task" => Some(Payload::Task(tasks::task_from_payload(json)?)),
        "ci_status" => Some(Payload::CiStatus(tasks::ci_status_from_payload(json)?)),
        "verdict" => Some(Payload::Verdict(tasks::verdict_from_payload(json)?)),
        "test_report" => Some(Payload::TestReport(tasks::test_report_from_payload(json)?)),
        "deploy_status" => Some(Payload::DeployStatus(tasks::deploy_status_from_payload(
            json,
        )?)),
        "deploy_freeze" => Some(Payload::DeployFreeze(tasks::deploy_freeze_from_payload(
            json,
        )?)),
        "reconciler_run" => Some(Payload::ReconcilerRun(crate::reconciler::run_from_payload(
            json,
        )?)),
        "processor_run" => Some(Payload::ProcessorRun(processors::run_from_payload(json)?)),
        "processor_state" => Some(Payload::ProcessorState(processors::state_from_payload(
            json,
        )?)),
        "transcript_usage" => Some(Payload::TranscriptUsage(
            processors::transcript_usage_from_payload(json)?,
        )),
        "transcript_tool_errors" => Some(Payload::TranscriptToolErrors(
            processors::tool_errors_from_payload(json)?,
        )),
        _ => None,
    })
}
