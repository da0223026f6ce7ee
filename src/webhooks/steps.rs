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

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;

    fn refused(code: Code, reason: &str) -> Result<(), Status> {
        Err(Status::with_error_details(
            code,
            "message",
            ErrorDetails::with_error_info(reason, "bosun", []),
        ))
    }

    #[test]
    fn what_a_deliverys_calls_add_up_to() {
        let ok = || Ok::<(), Status>(());
        let cases: Vec<(Vec<Result<(), Status>>, &str)> = vec![
            (vec![ok(), ok()], "processed: 2 call(s) applied"),
            (
                vec![refused(Code::InvalidArgument, "REQUEST_ID_REUSED"), ok()],
                "processed: 2 call(s) applied",
            ),
            (
                vec![refused(Code::NotFound, "SESSION_NOT_FOUND"), ok()],
                "processed: 1 call(s) applied; skipped: x: SESSION_NOT_FOUND",
            ),
            (
                vec![refused(Code::NotFound, "SESSION_NOT_FOUND")],
                "ignored: x: SESSION_NOT_FOUND",
            ),
            (vec![], "ignored: nothing to do"),
        ];
        for (results, expected) in cases {
            let mut steps = Steps::default();
            for result in results {
                steps.call("x", result).unwrap();
            }
            let got = match steps.answer() {
                Answer::Processed(detail) => format!("processed: {detail}"),
                Answer::Ignored(detail) => format!("ignored: {detail}"),
                other => format!("{other:?}"),
            };
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn failures_fail_the_delivery_and_reads_are_not_applied_calls() {
        let mut steps = Steps::default();
        let unavailable = steps.call("x", refused(Code::Unavailable, "SHUTTING_DOWN"));
        assert!(matches!(unavailable, Err(WebhookError::Unavailable(_))));
        let denied = steps.call("x", refused(Code::PermissionDenied, "PERMISSION_DENIED"));
        assert!(matches!(denied, Err(WebhookError::Unauthorized(_))));
        let bad = steps.call("x", refused(Code::InvalidArgument, "INVALID_ARGUMENT"));
        assert!(matches!(bad, Err(WebhookError::Rejected(_))));
        assert_eq!(steps.read("x", Ok::<_, Status>(7)).unwrap(), Some(7));
        assert!(
            matches!(steps.answer(), Answer::Ignored(_)),
            "a read applies nothing"
        );
    }
}
