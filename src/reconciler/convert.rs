//! Proto <-> domain conversion for the Reconciler.

use super::store::RunFilter;
use super::{
    Action, ActionKind, Run, RunError, RunState, RunTrigger, Settings, Side, SideCounts, Status,
    Totals,
};
use crate::error::Violations;
use crate::pb;
use crate::proto_enum::{ProtoEnum, optional_from_pb, optional_to_pb, proto_enum};
use crate::time::duration_to_pb;
use crate::validate::update_mask_paths;

proto_enum!(Side => pb::ReconcilerSide { Gate, Tracker });
proto_enum!(RunTrigger => pb::ReconcilerTrigger { Scheduled, Manual });
proto_enum!(RunState => pb::ReconcilerRunState { Running, Succeeded, Failed });
proto_enum!(ActionKind => pb::ReconcilerActionKind { Advanced, Started, VerdictReplayed });

/// The kill-switches UpdateReconcilerSettings may change.
const SWITCH_PATHS: &[&str] = &["gate_side_enabled", "tracker_side_enabled"];
/// Read-only here: set in the configuration.
const READ_ONLY_PATHS: &[&str] = &["interval", "stage_grace", "tracker_grace"];

pub fn run_once_side(request: &pb::RunOnceRequest) -> Result<Option<Side>, Violations> {
    let mut v = Violations::new();
    let side = optional_from_pb(&mut v, "side", request.side);
    v.finish(side)
}

pub fn run_filter(request: &pb::ListReconcilerRunsRequest) -> Result<RunFilter, Violations> {
    let mut v = Violations::new();
    let filter = RunFilter {
        trigger: optional_from_pb(&mut v, "trigger", request.trigger),
        state: optional_from_pb(&mut v, "state", request.state),
        with_actions_only: request.with_actions_only,
        with_errors_only: request.with_errors_only,
    };
    v.finish(filter)
}

/// (gate, tracker): the switch values named in the mask.
pub fn switches_update(
    request: pb::UpdateReconcilerSettingsRequest,
) -> Result<(Option<bool>, Option<bool>), Violations> {
    let mut v = Violations::new();
    let mask = request.update_mask;
    if let Some(mask) = &mask {
        for path in &mask.paths {
            if READ_ONLY_PATHS.contains(&path.as_str()) {
                v.add(
                    "update_mask",
                    format!("{path:?} is read-only here: set it in the configuration"),
                );
            }
        }
    }
    let read_only = !v.is_empty();
    let settings = request.settings.unwrap_or_default();
    let mut update = (None, None);
    if !read_only {
        for path in update_mask_paths(&mut v, mask, SWITCH_PATHS) {
            match path {
                "gate_side_enabled" => update.0 = Some(settings.gate_side_enabled),
                _ => update.1 = Some(settings.tracker_side_enabled),
            }
        }
    }
    v.finish(update)
}

pub fn settings_to_pb(settings: Settings) -> pb::ReconcilerSettings {
    pb::ReconcilerSettings {
        gate_side_enabled: settings.gate_side_enabled,
        tracker_side_enabled: settings.tracker_side_enabled,
        interval: Some(duration_to_pb(settings.interval)),
        stage_grace: settings
            .stage_grace
            .into_iter()
            .map(|(stage, grace)| pb::StageGrace {
                stage: stage.to_pb(),
                grace: Some(duration_to_pb(grace)),
            })
            .collect(),
        tracker_grace: Some(duration_to_pb(settings.tracker_grace)),
    }
}

fn counts_to_pb(counts: SideCounts) -> pb::ReconcilerSideCounts {
    pb::ReconcilerSideCounts {
        scanned: counts.scanned,
        advanced: counts.advanced,
        replayed: counts.replayed,
        skipped: counts.skipped,
        errors: counts.errors,
    }
}

pub fn action_to_pb(action: Action) -> pb::ReconcilerAction {
    pb::ReconcilerAction {
        run_id: action.run_id,
        side: action.side.to_pb(),
        kind: action.kind.to_pb(),
        task_id: action.task_id,
        project_id: action.project_id,
        work_item_id: action.work_item_id,
        tracker_issue_id: action.tracker_issue_id.unwrap_or_default(),
        from_stage: optional_to_pb(action.from_stage),
        to_stage: action.to_stage.to_pb(),
        session_id: action.session_id.unwrap_or_default(),
        action_time: Some(action.action_time.to_timestamp()),
    }
}

fn error_to_pb(error: RunError) -> pb::ReconcilerError {
    pb::ReconcilerError {
        side: error.side.to_pb(),
        project_id: error.project_id.unwrap_or_default(),
        task_id: error.task_id.unwrap_or_default(),
        tracker_issue_id: error.tracker_issue_id.unwrap_or_default(),
        reason: error.reason,
        message: error.message,
    }
}

pub fn run_to_pb(run: Run) -> pb::ReconcilerRun {
    pb::ReconcilerRun {
        id: run.id,
        trigger: run.trigger.to_pb(),
        state: run.state.to_pb(),
        start_time: Some(run.start_time.to_timestamp()),
        end_time: run.end_time.map(|t| t.to_timestamp()),
        side: optional_to_pb(run.side),
        gate_side_ran: run.gate_side_ran,
        gate_side: Some(counts_to_pb(run.gate_side)),
        tracker_side_ran: run.tracker_side_ran,
        tracker_side: Some(counts_to_pb(run.tracker_side)),
        projects_polled: run.projects_polled,
        actions: run.actions.into_iter().map(action_to_pb).collect(),
        error_details: run.error_details.into_iter().map(error_to_pb).collect(),
        error: run.error.unwrap_or_default(),
        replica: run.replica.unwrap_or_default(),
    }
}

fn totals_to_pb(totals: Totals) -> pb::ReconcilerTotals {
    pb::ReconcilerTotals {
        passes: totals.passes,
        failed_passes: totals.failed_passes,
        gate_side: Some(counts_to_pb(totals.gate_side)),
        tracker_side: Some(counts_to_pb(totals.tracker_side)),
    }
}

pub fn status_to_pb(status: Status) -> pb::ReconcilerStatus {
    pb::ReconcilerStatus {
        settings: Some(settings_to_pb(status.settings)),
        running: status.running_run_id.is_some(),
        running_run_id: status.running_run_id.unwrap_or_default(),
        last_run: status.last_run.map(run_to_pb),
        next_run_time: status.next_run_time.map(|t| t.to_timestamp()),
        totals: Some(totals_to_pb(status.totals)),
        recent_unblocks: status
            .recent_unblocks
            .into_iter()
            .map(action_to_pb)
            .collect(),
    }
}

pub fn run_from_payload(json: &str) -> Result<pb::ReconcilerRun, serde_json::Error> {
    Ok(run_to_pb(serde_json::from_str(json)?))
}
