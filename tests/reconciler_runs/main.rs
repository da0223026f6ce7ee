//! The Reconciler's passes as a whole (SPEC §8) through the real server and
//! generated client: the settings and kill-switches, one pass at a time (a
//! fake Plane listing held open keeps a pass running), the history
//! (GetStatus, ListReconcilerRuns, the change log), the background loop, a
//! pass left running by a crash, and the roles.
//! - settings: the settings, the kill-switches, and who may change them;
//! - exclusive: one pass at a time, and what a second request gets;
//! - history: GetStatus, ListReconcilerRuns, the change log, the background
//!   loop, a pass left running by a crash.
//!
//! The helpers below are shared by those files.

#[path = "../common/mod.rs"]
mod common;

mod exclusive;
mod history;
mod settings;

use bosun::storage::sql::query;
use std::time::Duration;

use bosun::pb::{
    self, CiStatusState, EventFilter, ListReconcilerRunsRequest, ReconcilerRunState,
    ReconcilerSide, ReconcilerTrigger, Stage, event::Payload,
};
use common::fake_plane::{
    FakePlane, Fault, IN_PROGRESS, LONG_AGO, PLANE_DOWN, PLANE_SHOP, bound_project, issue,
    start_with_plane,
};
use common::pipeline::{SHA_A, all_tasks, events, head_seq};
use common::reconciler::{counts, list_runs, run_ids, run_once, status, stuck_in_development};
use common::{
    ADMIN_TOKEN, AGENT_TOKEN, READ_TOKEN, TestServer, WEBHOOK_TOKEN, assert_error, bad_fields,
    error_metadata, with_token,
};
use prost_types::FieldMask;
use tonic::Code;
use tonic::Streaming;

/// How long a test waits for something that happens at once.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Calls.

async fn run_error(server: &TestServer, side: ReconcilerSide) -> tonic::Status {
    server
        .reconciler_client()
        .run_once(pb::RunOnceRequest { side: side.into() })
        .await
        .expect_err("run once should fail")
}

async fn switch(
    server: &TestServer,
    settings: pb::ReconcilerSettings,
    paths: &[&str],
) -> Result<pb::ReconcilerSettings, tonic::Status> {
    server
        .reconciler_client()
        .update_reconciler_settings(pb::UpdateReconcilerSettingsRequest {
            settings: Some(settings),
            update_mask: Some(FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        })
        .await
        .map(|r| r.into_inner())
}

async fn settings(server: &TestServer) -> pb::ReconcilerSettings {
    server
        .reconciler_client()
        .get_reconciler_settings(pb::GetReconcilerSettingsRequest {})
        .await
        .expect("get settings")
        .into_inner()
}

/// A Watch of the reconciler_run.finished events after `after_seq`.
async fn watch_finished(server: &TestServer, after_seq: i64) -> Streaming<pb::WatchResponse> {
    server
        .events()
        .watch(pb::WatchRequest {
            after_seq,
            filter: Some(EventFilter {
                event_type_prefixes: vec!["reconciler_run.finished".into()],
                ..Default::default()
            }),
        })
        .await
        .expect("watch")
        .into_inner()
}

/// The next pass that ends on `stream` (`what`: what the wait is for).
async fn next_finished(stream: &mut Streaming<pb::WatchResponse>, what: &str) -> pb::ReconcilerRun {
    loop {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap_or_else(|_| panic!("waited too long for {what}"))
            .expect("watch")
            .expect("stream open");
        if let Some(event) = message.events.into_iter().next() {
            let Some(Payload::ReconcilerRun(run)) = event.payload else {
                panic!("a run payload: {event:?}");
            };
            return run;
        }
    }
}
