//! The stage table: the one place that says, for each stage, which role
//! works it, which gate leaves it and where the task goes next.

use super::Stage;
use crate::sessions::Role;

/// One row of the stage table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageRow {
    pub stage: Stage,
    /// The role whose session works the stage; `None` for done.
    pub role: Option<Role>,
    /// The stage a green gate moves the task to; `None` for done.
    pub next: Option<Stage>,
}

/// The pipeline, in order.
pub const STAGES: &[StageRow] = &[
    StageRow {
        stage: Stage::Analysis,
        role: Some(Role::Analyst),
        next: Some(Stage::Development),
    },
    StageRow {
        stage: Stage::Development,
        role: Some(Role::Developer),
        next: Some(Stage::Review),
    },
    StageRow {
        stage: Stage::Review,
        role: Some(Role::Reviewer),
        next: Some(Stage::Testing),
    },
    StageRow {
        stage: Stage::Testing,
        role: Some(Role::Tester),
        next: Some(Stage::Deploy),
    },
    StageRow {
        stage: Stage::Deploy,
        role: Some(Role::Deployer),
        next: Some(Stage::Done),
    },
    StageRow {
        stage: Stage::Done,
        role: None,
        next: None,
    },
];

/// The first stage of every task.
pub const FIRST: Stage = Stage::Analysis;

/// Where a red gate sends a task back to.
pub const ROLLBACK_TO: Stage = Stage::Development;

/// The stage's row (STAGES is in declaration order; a test holds it there).
pub fn row(stage: Stage) -> &'static StageRow {
    &STAGES[stage as usize]
}

pub fn role(stage: Stage) -> Option<Role> {
    row(stage).role
}

pub fn next(stage: Stage) -> Option<Stage> {
    row(stage).next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_stage_once_in_order() {
        let stages: Vec<Stage> = STAGES.iter().map(|row| row.stage).collect();
        assert_eq!(stages, Stage::ALL);
    }

    #[test]
    fn each_stage_leads_to_the_following_one_and_done_ends_it() {
        for pair in STAGES.windows(2) {
            assert_eq!(pair[0].next, Some(pair[1].stage));
        }
        assert_eq!(next(Stage::Done), None);
        assert_eq!(role(Stage::Done), None);
    }

    #[test]
    fn every_working_stage_has_its_own_role() {
        let roles: Vec<Role> = STAGES.iter().filter_map(|row| row.role).collect();
        assert_eq!(roles, Role::ALL);
    }
}
