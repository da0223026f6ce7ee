//! Assertions on the errors bosun answers: the status code, the
//! ErrorInfo reason and metadata, and the fields a BadRequest names.

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Asserts the status code and the ErrorInfo reason (domain bosun).
pub fn assert_error(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = status
        .get_error_details()
        .error_info()
        .cloned()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
    assert_eq!(info.domain, "bosun");
}

/// The fields named by the BadRequest detail.
pub fn bad_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// ErrorInfo metadata value.
pub fn error_metadata(status: &Status, key: &str) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .and_then(|info| info.metadata.get(key).cloned())
}
