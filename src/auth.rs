//! Bearer-token auth (SPEC §3). Tokens come from the configuration, each with
//! a role; [`required_access`] is the one table of what each RPC needs.
//! Presented tokens are compared in constant time (as SHA-256 digests, so
//! length leaks nothing) and never logged.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything.
    Admin,
    /// Session reports, recording lessons, and reading.
    Agent,
    /// What the webhook shim calls, and reading.
    Webhook,
    /// Get, list and watch.
    Read,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Agent => "agent",
            Self::Webhook => "webhook",
            Self::Read => "read",
        }
    }
}

/// What calling one RPC requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (health checks).
    Open,
    /// Any valid token.
    Read,
    /// An agent (or admin) token.
    Agent,
    /// A webhook (or admin) token.
    Webhook,
    /// An agent, webhook (or admin) token.
    AgentOrWebhook,
    /// An admin token.
    Admin,
}

impl Access {
    pub fn allows(self, role: Role) -> bool {
        match self {
            Self::Open | Self::Read => true,
            _ if role == Role::Admin => true,
            Self::Agent => role == Role::Agent,
            Self::Webhook => role == Role::Webhook,
            Self::AgentOrWebhook => matches!(role, Role::Agent | Role::Webhook),
            Self::Admin => false,
        }
    }
}

/// What the RPC at `path` (`/package.Service/Method`) requires. Reads (Get*,
/// List*, Watch) need any token; every other bosun RPC must be listed here,
/// and one that is not is admin-only (fail closed).
pub fn required_access(path: &str) -> Access {
    let path = path.trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    match service {
        "grpc.health.v1.Health" => return Access::Open,
        "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection" => {
            return Access::Read;
        }
        _ => {}
    }
    match (service, method) {
        ("bosun.v1.Lessons", "RecordLesson") => Access::Agent,
        (
            "bosun.v1.Sessions",
            "CompleteSpawn" | "FailSpawn" | "FinishSession" | "KillSession" | "ReportActivity"
            | "ReportRuntimeProbe",
        ) => Access::Agent,
        ("bosun.v1.Sessions", "ReportPullRequest") => Access::AgentOrWebhook,
        ("bosun.v1.Tasks", "StartTask" | "RecordCiStatus" | "RecordVerdict") => Access::Webhook,
        ("bosun.v1.Tasks", "RecordTestReport" | "RecordDeployStatus") => Access::AgentOrWebhook,
        ("bosun.v1.Tasks", "AdvanceTask") => Access::Agent,
        ("bosun.v1.Processors", "RunProcessor" | "ResetProcessorState") => Access::Admin,
        (_, method)
            if method.starts_with("Get") || method.starts_with("List") || method == "Watch" =>
        {
            Access::Read
        }
        _ => Access::Admin,
    }
}

/// One configured token, as the server keeps it: a digest, never the text.
struct Credential {
    name: String,
    role: Role,
    digest: [u8; 32],
}

/// The caller a request was authenticated as; in request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No token, a malformed header, or an unknown token.
    Unauthenticated,
    /// A valid token whose role may not call this RPC.
    PermissionDenied(Role),
}

/// The configured tokens. With none, auth is off (allowed only on loopback,
/// which the configuration checks at start).
pub struct Authenticator {
    credentials: Vec<Credential>,
}

impl Authenticator {
    pub fn new<'a>(tokens: impl IntoIterator<Item = (&'a str, Role, &'a str)>) -> Self {
        let credentials = tokens
            .into_iter()
            .map(|(name, role, token)| Credential {
                name: name.to_string(),
                role,
                digest: Sha256::digest(token.as_bytes()).into(),
            })
            .collect();
        Self { credentials }
    }

    pub fn is_enabled(&self) -> bool {
        !self.credentials.is_empty()
    }

    /// Admits or refuses a call to `path` carrying `authorization` (the
    /// header's value). `Ok(None)` when auth is off or the RPC is open.
    pub fn check(
        &self,
        path: &str,
        authorization: Option<&[u8]>,
    ) -> Result<Option<Caller>, Refusal> {
        let access = required_access(path);
        if !self.is_enabled() || access == Access::Open {
            return Ok(None);
        }
        let token = authorization
            .and_then(|value| value.strip_prefix(b"Bearer "))
            .ok_or(Refusal::Unauthenticated)?;
        let caller = self.identify(token).ok_or(Refusal::Unauthenticated)?;
        if access.allows(caller.role) {
            Ok(Some(caller))
        } else {
            Err(Refusal::PermissionDenied(caller.role))
        }
    }

    /// Compares against every credential, so timing tells nothing.
    fn identify(&self, token: &[u8]) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut found = None;
        for credential in &self.credentials {
            if bool::from(credential.digest.ct_eq(&digest)) {
                found = Some(Caller {
                    name: credential.name.clone(),
                    role: credential.role,
                });
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_by_role() {
        // Columns: admin, agent, webhook, read.
        let table = [
            (Access::Open, [true, true, true, true]),
            (Access::Read, [true, true, true, true]),
            (Access::Agent, [true, true, false, false]),
            (Access::Webhook, [true, false, true, false]),
            (Access::AgentOrWebhook, [true, true, true, false]),
            (Access::Admin, [true, false, false, false]),
        ];
        for (access, expected) in table {
            let got = [Role::Admin, Role::Agent, Role::Webhook, Role::Read]
                .map(|role| access.allows(role));
            assert_eq!(got, expected, "{access:?}");
        }
    }

    #[test]
    fn policy_table() {
        let cases = [
            ("/grpc.health.v1.Health/Check", Access::Open),
            (
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                Access::Read,
            ),
            (
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                Access::Read,
            ),
            ("/bosun.v1.Lessons/RecordLesson", Access::Agent),
            ("/bosun.v1.Lessons/GetLesson", Access::Read),
            ("/bosun.v1.Lessons/ListLessons", Access::Read),
            ("/bosun.v1.Lessons/GetLessonStats", Access::Read),
            ("/bosun.v1.Lessons/UpdateLesson", Access::Admin),
            ("/bosun.v1.Lessons/UpdateLessonSettings", Access::Admin),
            ("/bosun.v1.Events/Watch", Access::Read),
            (
                "/bosun.v1.Sessions/ReportPullRequest",
                Access::AgentOrWebhook,
            ),
            ("/bosun.v1.Tasks/StartTask", Access::Webhook),
            ("/bosun.v1.Reconciler/RunOnce", Access::Admin),
            ("/bosun.v1.Processors/RunProcessor", Access::Admin),
            ("/bosun.v1.Processors/ResetProcessorState", Access::Admin),
            ("/bosun.v1.Processors/GetUsage", Access::Read),
            ("/bosun.v1.Processors/ListProcessorState", Access::Read),
            ("/bosun.v1.Lessons/SomethingNew", Access::Admin),
            ("garbage", Access::Admin),
        ];
        for (path, access) in cases {
            assert_eq!(required_access(path), access, "{path}");
        }
    }

    #[test]
    fn tokens() {
        let auth = Authenticator::new([
            ("ops", Role::Admin, "admin-token-0123456789"),
            ("bot", Role::Read, "read-token-0123456789"),
        ]);
        let read = "/bosun.v1.Lessons/ListLessons";
        let admin = "/bosun.v1.Lessons/UpdateLesson";
        assert_eq!(auth.check(read, None), Err(Refusal::Unauthenticated));
        assert_eq!(
            auth.check(read, Some(b"read-token-0123456789")),
            Err(Refusal::Unauthenticated),
            "no Bearer prefix"
        );
        assert_eq!(
            auth.check(read, Some(b"Bearer nope")),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            auth.check(read, Some(b"Bearer read-token-0123456789"))
                .unwrap()
                .unwrap()
                .name,
            "bot"
        );
        assert_eq!(
            auth.check(admin, Some(b"Bearer read-token-0123456789")),
            Err(Refusal::PermissionDenied(Role::Read))
        );
        assert!(
            auth.check(admin, Some(b"Bearer admin-token-0123456789"))
                .is_ok()
        );
        assert_eq!(auth.check("/grpc.health.v1.Health/Check", None), Ok(None));
        // Digests are compared, never the text: a token one character off
        // (same length), a prefix, and the token with more after it are
        // all unknown.
        for near in [
            "Bearer admin-token-012345678X",
            "Bearer admin-token-01234567",
            "Bearer admin-token-0123456789 ",
            "Bearer admin-token-01234567890",
        ] {
            assert_eq!(
                auth.check(read, Some(near.as_bytes())),
                Err(Refusal::Unauthenticated),
                "{near}"
            );
        }
        let open = Authenticator::new([]);
        assert_eq!(open.check(admin, None), Ok(None));
    }
}
