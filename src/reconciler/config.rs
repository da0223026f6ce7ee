//! The `[reconciler]` configuration section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tasks::Stage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcilerConfig {
    /// The gate side's kill-switch.
    pub gate_side_enabled: bool,
    /// The tracker side's kill-switch.
    pub tracker_side_enabled: bool,
    /// How often the background loop starts a pass.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The gate side leaves a task alone until it has not been updated for
    /// its stage's grace period.
    pub grace: StageGraceConfig,
    /// The tracker side skips issues updated more recently than this.
    #[serde(with = "humantime_serde")]
    pub tracker_grace: Duration,
    pub plane: PlaneConfig,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            gate_side_enabled: true,
            tracker_side_enabled: true,
            interval: Duration::from_secs(60),
            grace: StageGraceConfig::default(),
            tracker_grace: Duration::from_secs(120),
            plane: PlaneConfig::default(),
        }
    }
}

impl ReconcilerConfig {
    /// One line naming the first bad setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval < Duration::from_secs(1) {
            return Err("reconciler.interval must be at least 1s".into());
        }
        let plane = &self.plane;
        let http = ["http://", "https://"]
            .iter()
            .any(|scheme| plane.base_url.starts_with(scheme));
        if !plane.base_url.is_empty() && !http {
            return Err("reconciler.plane.base_url must start with http:// or https://".into());
        }
        if !plane.base_url.is_empty() && plane.api_key.is_empty() {
            return Err("reconciler.plane.api_key is required when base_url is set".into());
        }
        if plane.timeout.is_zero() {
            return Err("reconciler.plane.timeout must be more than 0s".into());
        }
        if !(1..=1000).contains(&plane.page_size) {
            return Err("reconciler.plane.page_size must be 1..1000".into());
        }
        Ok(())
    }
}

/// The gate side's grace period per stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageGraceConfig {
    #[serde(with = "humantime_serde")]
    pub development: Duration,
    #[serde(with = "humantime_serde")]
    pub review: Duration,
    #[serde(with = "humantime_serde")]
    pub testing: Duration,
    #[serde(with = "humantime_serde")]
    pub deploy: Duration,
}

impl Default for StageGraceConfig {
    fn default() -> Self {
        Self {
            development: Duration::from_secs(600),
            review: Duration::from_secs(600),
            testing: Duration::from_secs(600),
            deploy: Duration::from_secs(900),
        }
    }
}

impl StageGraceConfig {
    /// The grace of each stage the gate side looks at, in stage order.
    pub fn per_stage(&self) -> Vec<(Stage, Duration)> {
        vec![
            (Stage::Development, self.development),
            (Stage::Review, self.review),
            (Stage::Testing, self.testing),
            (Stage::Deploy, self.deploy),
        ]
    }

    /// The grace of `stage`; `None` for stages the gate side never reads.
    pub fn of(&self, stage: Stage) -> Option<Duration> {
        self.per_stage()
            .into_iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, grace)| grace)
    }
}

/// The Plane instance the tracker side polls. Projects bind to Plane
/// projects through Project.plane; the URL and key are configuration only.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaneConfig {
    /// e.g. "https://plane.example.com"; empty: no tracker is polled.
    pub base_url: String,
    /// Sent as the X-API-Key header.
    pub api_key: String,
    /// Per request.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Issues per page.
    pub page_size: u32,
}

impl Default for PlaneConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            api_key: String::new(),
            timeout: Duration::from_secs(10),
            page_size: 100,
        }
    }
}

impl std::fmt::Debug for PlaneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaneConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("page_size", &self.page_size)
            .finish()
    }
}
