//! Proto <-> domain conversion for Processors: requests are validated here,
//! once, naming each bad field by its request path; answers and event
//! payloads are built here.

use std::time::Duration;

use super::service::ProcessorView;
use super::{
    Forget, ProcessorRun, ProcessorState, RunError, RunState, RunTrigger, StateFilter, TokenUsage,
    ToolErrorFilter, ToolErrorReport, TranscriptKey, TranscriptToolErrors, TranscriptUsage,
    UsageFilter, UsageReport,
};
use crate::error::Violations;
use crate::pb;
use crate::proto_enum::{ProtoEnum, proto_enum};
use crate::time::UnixMicros;
use crate::validate::short_text;

proto_enum!(RunTrigger => pb::ProcessorRunTrigger { Scheduled, Manual });
proto_enum!(RunState => pb::ProcessorRunState { Running, Succeeded, Failed });

/// Most transcript keys one ResetProcessorState may name.
pub const MAX_RESET_KEYS: usize = 1000;

// Requests.

/// A required processor name.
pub fn processor_name(v: &mut Violations, field: &str, name: String) -> String {
    let name = short_text(v, field, name);
    if name.is_none()
        && v.as_slice()
            .iter()
            .all(|violation| violation.field != field)
    {
        v.add(field, "is required");
    }
    name.unwrap_or_default()
}

fn transcript_key(v: &mut Violations, field: &str, key: String) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    match TranscriptKey::parse(&key) {
        Some(key) => Some(key.as_str().to_string()),
        None => {
            v.add(field, "must be a transcript key \"owner/name.jsonl\"");
            None
        }
    }
}

fn owner(v: &mut Violations, field: &str, owner: String) -> Option<String> {
    let owner = short_text(v, field, owner)?;
    if owner.contains('/') {
        v.add(field, "must be one path segment (an owner folder's name)");
        return None;
    }
    Some(owner)
}

pub fn state_filter(request: &pb::ListProcessorStateRequest) -> Result<StateFilter, Violations> {
    let mut v = Violations::new();
    let filter = StateFilter {
        processor: short_text(&mut v, "processor", request.processor.clone()),
        owner: owner(&mut v, "owner", request.owner.clone()),
        transcript: transcript_key(&mut v, "transcript", request.transcript.clone()),
        quarantined_only: request.quarantined_only,
    };
    v.finish(filter)
}

pub fn forget(request: pb::ResetProcessorStateRequest) -> Result<Forget, Violations> {
    let mut v = Violations::new();
    let processor = processor_name(&mut v, "processor", request.processor);
    if request.transcripts.len() > MAX_RESET_KEYS {
        v.add(
            "transcripts",
            format!("at most {MAX_RESET_KEYS} keys; leave it empty to forget every transcript"),
        );
    }
    let mut transcripts = Vec::with_capacity(request.transcripts.len().min(MAX_RESET_KEYS));
    for (index, key) in request
        .transcripts
        .into_iter()
        .take(MAX_RESET_KEYS)
        .enumerate()
    {
        let field = format!("transcripts[{index}]");
        if key.is_empty() {
            v.add(&field, "must be a transcript key \"owner/name.jsonl\"");
        }
        transcripts.extend(transcript_key(&mut v, &field, key));
    }
    v.finish(Forget {
        processor,
        transcripts,
        quarantined_only: request.quarantined_only,
    })
}

pub fn usage_filter(request: &pb::GetUsageRequest) -> Result<UsageFilter, Violations> {
    let mut v = Violations::new();
    let filter = UsageFilter {
        transcript: transcript_key(&mut v, "transcript", request.transcript.clone()),
        owner: owner(&mut v, "owner", request.owner.clone()),
        session_id: short_text(&mut v, "session_id", request.session_id.clone()),
        model: short_text(&mut v, "model", request.model.clone()),
    };
    v.finish(filter)
}

pub fn tool_error_filter(
    request: &pb::GetToolErrorsRequest,
) -> Result<ToolErrorFilter, Violations> {
    let mut v = Violations::new();
    let filter = ToolErrorFilter {
        transcript: transcript_key(&mut v, "transcript", request.transcript.clone()),
        owner: owner(&mut v, "owner", request.owner.clone()),
        session_id: short_text(&mut v, "session_id", request.session_id.clone()),
    };
    v.finish(filter)
}

/// A ListProcessorState cursor, (processor, transcript), as page-token text.
pub fn state_cursor(cursor: &(String, String)) -> String {
    serde_json::to_string(cursor).unwrap_or_default()
}

pub fn parse_state_cursor(text: &str) -> Result<(String, String), Violations> {
    serde_json::from_str(text)
        .map_err(|_| Violations::one("page_token", "is not a token this server issued"))
}

// Answers.

fn duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: duration.subsec_nanos() as i32,
    }
}

fn clamp(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub fn view_to_pb(view: ProcessorView) -> pb::Processor {
    let settings = view.settings;
    pb::Processor {
        name: view.name,
        description: view.description,
        cadence: Some(duration(settings.cadence)),
        enabled: settings.enabled,
        max_transcripts_per_pass: clamp(settings.max_transcripts_per_pass),
        time_budget: Some(duration(settings.time_budget)),
        quarantine_after_failures: clamp(settings.quarantine_after_failures),
        running: view.running,
        last_run: view.last_run.map(run_to_pb),
        last_run_time: view.last_run_time.map(UnixMicros::to_timestamp),
        next_run_time: view.next_run_time.map(UnixMicros::to_timestamp),
        newest_transcript_time: view.newest_transcript_time.map(UnixMicros::to_timestamp),
        lag_warning: view.lag.is_some(),
        lag_detail: view.lag.unwrap_or_default(),
        quarantined: view.quarantined,
    }
}

pub fn run_to_pb(run: ProcessorRun) -> pb::ProcessorRun {
    let counts = run.counts;
    pb::ProcessorRun {
        id: run.id,
        processor: run.processor,
        trigger: run.trigger.to_pb(),
        state: run.state.to_pb(),
        start_time: Some(run.start_time.to_timestamp()),
        end_time: run.end_time.map(UnixMicros::to_timestamp),
        scanned: counts.scanned,
        processed: counts.processed,
        skipped: counts.skipped(),
        skipped_unchanged: counts.skipped_unchanged,
        skipped_same_hash: counts.skipped_same_hash,
        skipped_quarantined: counts.skipped_quarantined,
        errors: counts.errors,
        error_details: run.error_details.into_iter().map(run_error_to_pb).collect(),
        items: counts.items,
        malformed_lines: counts.malformed_lines,
        capped: run.capped,
        deferred: counts.deferred,
        quarantined: counts.quarantined,
        forgotten: counts.forgotten,
        error: run.error.unwrap_or_default(),
        replica: run.replica.unwrap_or_default(),
    }
}

fn run_error_to_pb(error: RunError) -> pb::ProcessorRunError {
    pb::ProcessorRunError {
        transcript: error.transcript,
        message: error.message,
        quarantined: error.quarantined,
    }
}

pub fn state_to_pb(state: ProcessorState) -> pb::ProcessorState {
    let time = |t: Option<UnixMicros>| t.map(UnixMicros::to_timestamp);
    pb::ProcessorState {
        processor: state.processor,
        transcript: state.transcript,
        owner: state.owner,
        processed_time: time(state.processed_time),
        items: state.items,
        content_hash: state.content_hash.unwrap_or_default(),
        consecutive_failures: i32::try_from(state.consecutive_failures).unwrap_or(i32::MAX),
        last_error: state.last_error.unwrap_or_default(),
        last_error_time: time(state.last_error_time),
        quarantined: state.quarantine_time.is_some(),
        quarantine_time: time(state.quarantine_time),
    }
}

pub fn usage_to_pb(usage: TokenUsage) -> pb::TokenUsage {
    pb::TokenUsage {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cache_creation_input_tokens: usage.cache_creation_input_tokens,
        cache_read_input_tokens: usage.cache_read_input_tokens,
        messages: usage.messages,
    }
}

fn models_to_pb(models: Vec<(String, TokenUsage)>) -> Vec<pb::ModelUsage> {
    models
        .into_iter()
        .map(|(model, usage)| pb::ModelUsage {
            model,
            usage: Some(usage_to_pb(usage)),
        })
        .collect()
}

fn transcript_usage_to_pb(usage: TranscriptUsage) -> pb::TranscriptUsage {
    pb::TranscriptUsage {
        transcript: usage.transcript,
        owner: usage.owner,
        session_id: usage.session_id,
        usage: Some(usage_to_pb(usage.usage)),
        by_model: models_to_pb(usage.by_model),
        processed_time: Some(usage.processed_time.to_timestamp()),
    }
}

/// The answer of GetUsage, with the page token already made.
pub fn report_to_pb(report: UsageReport, next_page_token: String) -> pb::GetUsageResponse {
    pb::GetUsageResponse {
        transcripts: report
            .transcripts
            .into_iter()
            .map(transcript_usage_to_pb)
            .collect(),
        next_page_token,
        by_model: models_to_pb(report.by_model),
        total: Some(usage_to_pb(report.total)),
    }
}

fn tools_to_pb(by_tool: Vec<(String, i64)>) -> Vec<pb::ToolErrorCount> {
    by_tool
        .into_iter()
        .map(|(tool, errors)| pb::ToolErrorCount { tool, errors })
        .collect()
}

fn transcript_tool_errors_to_pb(errors: TranscriptToolErrors) -> pb::TranscriptToolErrors {
    pb::TranscriptToolErrors {
        transcript: errors.transcript,
        owner: errors.owner,
        session_id: errors.session_id,
        by_tool: tools_to_pb(errors.by_tool),
        errors: errors.errors,
        bursts: errors.bursts,
        processed_time: Some(errors.processed_time.to_timestamp()),
    }
}

/// The answer of GetToolErrors, with the page token already made.
pub fn tool_error_report_to_pb(
    report: ToolErrorReport,
    next_page_token: String,
) -> pb::GetToolErrorsResponse {
    pb::GetToolErrorsResponse {
        transcripts: report
            .transcripts
            .into_iter()
            .map(transcript_tool_errors_to_pb)
            .collect(),
        next_page_token,
        by_tool: tools_to_pb(report.by_tool),
        errors: report.errors,
        bursts: report.bursts,
    }
}

// Event payloads.

/// A transcript_usage row as its change_log payload spells it (0006).
#[derive(serde::Deserialize)]
struct UsagePayload {
    transcript: String,
    owner: String,
    session_id: String,
    by_model: std::collections::BTreeMap<String, TokenUsage>,
    processed_time: i64,
}

pub fn transcript_usage_from_payload(json: &str) -> Result<pb::TranscriptUsage, serde_json::Error> {
    let UsagePayload {
        transcript,
        owner,
        session_id,
        by_model,
        processed_time,
    } = serde_json::from_str(json)?;
    let mut usage = TokenUsage::default();
    by_model.values().for_each(|model| usage.add(model));
    Ok(transcript_usage_to_pb(TranscriptUsage {
        transcript,
        owner,
        session_id,
        usage,
        by_model: by_model.into_iter().collect(),
        processed_time: UnixMicros(processed_time),
    }))
}

/// A transcript_tool_errors row as its change_log payload spells it (0006).
#[derive(serde::Deserialize)]
struct ToolErrorsPayload {
    transcript: String,
    owner: String,
    session_id: String,
    by_tool: std::collections::BTreeMap<String, i64>,
    errors: i64,
    bursts: i64,
    processed_time: i64,
}

pub fn tool_errors_from_payload(json: &str) -> Result<pb::TranscriptToolErrors, serde_json::Error> {
    let ToolErrorsPayload {
        transcript,
        owner,
        session_id,
        by_tool,
        errors,
        bursts,
        processed_time,
    } = serde_json::from_str(json)?;
    Ok(transcript_tool_errors_to_pb(TranscriptToolErrors {
        transcript,
        owner,
        session_id,
        by_tool: by_tool.into_iter().collect(),
        errors,
        bursts,
        processed_time: UnixMicros(processed_time),
    }))
}

pub fn run_from_payload(json: &str) -> Result<pb::ProcessorRun, serde_json::Error> {
    serde_json::from_str(json).map(run_to_pb)
}

pub fn state_from_payload(json: &str) -> Result<pb::ProcessorState, serde_json::Error> {
    serde_json::from_str(json).map(state_to_pb)
}
