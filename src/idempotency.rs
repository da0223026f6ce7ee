//! request_id idempotency (SPEC §3), shared by every call that clients retry.
//!
//! Inside the write job of such a call, [`once`] looks the key up first and,
//! if a result is stored, returns it without changing anything; otherwise it
//! does the work and remembers its result in the same transaction. Both run on the single
//! writer, so two concurrent calls with one request_id cannot both do the
//! work. A request_id reused for a different request (another fingerprint)
//! is refused. Records older than [`RETENTION`] are pruned.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{FieldViolation, Violations};
use crate::pagination::fingerprint;
use crate::storage::StoreError;
use crate::storage::sql::{Conn, JsonOwned, JsonText, query};
use crate::time::UnixMicros;

/// How long a request_id is remembered.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// One call's idempotency key: the RPC, the client's id and a digest of the
/// request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    scope: &'static str,
    request_id: String,
    fingerprint: String,
}

impl IdempotencyKey {
    /// `None` when the caller sent no request_id.
    pub fn new(
        scope: &'static str,
        request_id: Option<String>,
        request: &impl Serialize,
    ) -> Option<Self> {
        request_id.map(|request_id| Self {
            scope,
            request_id,
            fingerprint: fingerprint(request),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error("{0}")]
    Reused(ReusedRequestId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The stored result for `key`, if this request was already served.
pub async fn lookup<T: DeserializeOwned>(
    conn: &mut Conn<'_>,
    key: &IdempotencyKey,
) -> Result<Option<T>, IdempotencyError> {
    let row: Option<(String, JsonText)> = query(
        "SELECT fingerprint, result FROM idempotency_keys WHERE scope = $1 AND request_id = $2",
    )
    .bind(key.scope)
    .bind(&key.request_id)
    .fetch_optional(conn)
    .await?;
    let Some((fingerprint, result)) = row else {
        return Ok(None);
    };
    if fingerprint != key.fingerprint {
        return Err(IdempotencyError::Reused(ReusedRequestId::new(
            &key.request_id,
        )));
    }
    let result = serde_json::from_str(&result.0)
        .map_err(|err| StoreError::Malformed(format!("idempotency record {}: {err}", key.scope)))?;
    Ok(Some(result))
}

/// Stores `result` as the answer to `key`.
pub async fn remember<T: Serialize>(
    conn: &mut Conn<'_>,
    key: &IdempotencyKey,
    result: &T,
) -> Result<(), StoreError> {
    let result = serde_json::to_string(result)
        .map_err(|err| StoreError::Malformed(format!("idempotency result {}: {err}", key.scope)))?;
    query(
        "INSERT INTO idempotency_keys (scope, request_id, fingerprint, result, create_time) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key.scope)
    .bind(&key.request_id)
    .bind(&key.fingerprint)
    .bind(JsonOwned(result))
    .bind(UnixMicros::now().0)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `work` once per `key` inside the caller's write job: a repeat returns
/// the stored result and runs nothing; a first call stores its result in the
/// same transaction. With no key, `work` simply runs.
pub async fn once<T, E, F>(
    conn: &mut Conn<'_>,
    key: Option<&IdempotencyKey>,
    work: F,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
    E: From<IdempotencyError> + From<StoreError>,
    F: for<'c> FnOnce(&'c mut Conn<'_>) -> BoxFuture<'c, Result<T, E>>,
{
    if let Some(key) = key
        && let Some(stored) = lookup(&mut *conn, key).await?
    {
        return Ok(stored);
    }
    let result = work(&mut *conn).await?;
    if let Some(key) = key {
        remember(conn, key, &result).await?;
    }
    Ok(result)
}

/// Forgets records older than [`RETENTION`]; returns how many.
pub async fn prune(conn: &mut Conn<'_>) -> Result<u64, StoreError> {
    let cutoff = UnixMicros::now().minus(RETENTION);
    query("DELETE FROM idempotency_keys WHERE create_time < $1")
        .bind(cutoff.0)
        .execute(conn)
        .await
}

/// A request_id sent again with a different request: bad input on the
/// `request_id` field (reason `REQUEST_ID_REUSED`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReusedRequestId {
    request_id: String,
    violations: Violations,
}

impl ReusedRequestId {
    pub fn new(request_id: &str) -> Self {
        Self {
            request_id: request_id.to_string(),
            violations: Violations::one("request_id", "was already used for a different request"),
        }
    }

    /// The violation naming `request_id`, for the BadRequest detail.
    pub fn violations(&self) -> &[FieldViolation] {
        self.violations.as_slice()
    }
}

impl std::fmt::Display for ReusedRequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request_id {:?} was already used for a different request",
            self.request_id
        )
    }
}
