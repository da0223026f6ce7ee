//! The Reconciler's tracker side (SPEC §8) against a fake Plane API served
//! on loopback (`common::fake_plane`): in-progress issues replayed as
//! StartTask, approved and rejected ones as tracker verdicts, paging and a
//! binding's own state names, what is left alone, and a tracker that fails,
//! is unmapped, is slow or refuses the key costing only its own project.
//!
//! - replays: issues replayed as StartTask and as tracker verdicts, every page read;
//! - passes: what a pass lists and counts, what it leaves alone, a second pass;
//! - failures: a tracker that fails, is unmapped, slow, or refuses the key.

#[path = "../common/mod.rs"]
mod common;

mod failures;
mod passes;
mod replays;

use std::time::Duration;

use bosun::pb::{
    self, AdvanceOutcome, ReconcilerActionKind, ReconcilerRunState, ReconcilerSide, Stage,
    VerdictDecision, VerdictSource,
};
use common::TestServer;
use common::fake_plane::{
    APPROVED, BACKLOG, DONE, FakePlane, Fault, IN_PROGRESS, LONG_AGO, PLANE_DOWN, PLANE_OTHER,
    PLANE_SHOP, PlaneProject, REJECTED, ago, binding, bound_project, issue, standard_states,
    start_with_plane, state,
};
use common::pipeline::{REPO, all_tasks, facts, session};
use common::reconciler::{counts, list_runs, run_once};
use serde_json::{Value, json};
