//! What one delivery's calls did, and what their answers mean for it (via
//! [`classify`]): applied (now, or by an earlier attempt of the delivery),
//! skipped because what they name is not there, or a failure of the whole
//! delivery.

use tonic::Status;

use super::WebhookError;
use super::service::Answer;
use super::upstream::{CallError, classify};

/// What a delivery's calls did.
#[derive(Default)]
pub(super) struct Steps {
    applied: usize,
    skipped: Vec<String>,
}

impl Steps {
    /// A read about `what`: `None` when what it names is not there.
    pub(super) fn read<T>(
        &mut self,
        what: &str,
        result: Result<T, Status>,
    ) -> Result<Option<T>, WebhookError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(status) => self.failed(what, &status).map(|()| None),
        }
    }

    /// A write about `what`: applied now, or by an earlier attempt of the
    /// delivery.
    pub(super) fn call<T>(
        &mut self,
        what: &str,
        result: Result<T, Status>,
    ) -> Result<(), WebhookError> {
        match result {
            Ok(_) => {
                self.applied += 1;
                Ok(())
            }
            Err(status) => self.failed(what, &status),
        }
    }

    fn failed(&mut self, what: &str, status: &Status) -> Result<(), WebhookError> {
        match classify(status) {
            CallError::AlreadyApplied => {
                self.applied += 1;
                Ok(())
            }
            CallError::NotApplicable(reason) => {
                self.skip(format!("{what}: {reason}"));
                Ok(())
            }
            CallError::Unavailable(reason) => Err(WebhookError::Unavailable(reason)),
            CallError::Unauthorized(reason) => Err(WebhookError::Unauthorized(reason)),
            CallError::Rejected(reason) => Err(WebhookError::Rejected(reason)),
        }
    }

    pub(super) fn skip(&mut self, why: String) {
        if !self.skipped.contains(&why) {
            self.skipped.push(why);
        }
    }

    pub(super) fn answer(self) -> Answer {
        let skipped = self.skipped.join("; ");
        match (self.applied, skipped.is_empty()) {
            (0, true) => Answer::Ignored("nothing to do".into()),
            (0, false) => Answer::Ignored(skipped),
            (n, true) => Answer::Processed(format!("{n} call(s) applied")),
            (n, false) => Answer::Processed(format!("{n} call(s) applied; skipped: {skipped}")),
        }
    }
}
