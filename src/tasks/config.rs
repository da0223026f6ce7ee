//! The `[tasks]` configuration section.

use serde::{Deserialize, Serialize};

use super::TaskSettings;
use super::decide::Limits;
use crate::sessions::Harness;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TasksConfig {
    /// Rollbacks to development before a red gate holds the task instead.
    pub rollback_limit: u32,
    /// Transient session failures retried in one stage before the task is
    /// held.
    pub retry_budget: u32,
    /// The harness of the sessions the pipeline requests.
    pub session_harness: Harness,
}

impl Default for TasksConfig {
    fn default() -> Self {
        let settings = TaskSettings::default();
        Self {
            rollback_limit: settings.limits.rollback_limit,
            retry_budget: settings.limits.retry_budget,
            session_harness: settings.harness,
        }
    }
}

impl TasksConfig {
    pub fn settings(&self) -> TaskSettings {
        TaskSettings {
            limits: Limits {
                rollback_limit: self.rollback_limit,
                retry_budget: self.retry_budget,
            },
            harness: self.session_harness,
        }
    }
}
