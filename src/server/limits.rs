//! The `[limits]` configuration section: how much one message, one
//! connection and the whole server may hold at once, how long a call may
//! run, and how dead peers are found. Each value goes to the knob that
//! enforces it: tonic's generated servers (message size), the HTTP/2
//! connection builder (streams, keepalive) and the [`Admission`] layer
//! (calls in flight, Watch streams, deadlines).
//!
//! [`Admission`]: super::admission

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest gRPC message decoded (request) or encoded (response), in
    /// bytes; a larger request is refused OUT_OF_RANGE before it is read.
    pub max_message_size: usize,
    /// SETTINGS_MAX_CONCURRENT_STREAMS of each HTTP/2 connection: calls
    /// beyond it wait in the client for a free stream.
    pub max_concurrent_streams: u32,
    /// Calls in flight across the server (all but health checks and
    /// Events.Watch streams); one more is refused RESOURCE_EXHAUSTED at
    /// once.
    pub max_concurrent_calls: usize,
    /// Events.Watch streams open across the server; one more is refused
    /// RESOURCE_EXHAUSTED at once.
    pub max_watch_streams: usize,
    /// The longest any call may take to answer (for streams: to open); a
    /// shorter client deadline (`grpc-timeout`) wins. Past it the call's work
    /// is dropped and the client gets DEADLINE_EXCEEDED.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How often the server sends an HTTP/2 PING on each connection; 0s
    /// sends none.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// A PING not acknowledged within this closes the connection.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_size: 4 * 1024 * 1024,
            max_concurrent_streams: 200,
            max_concurrent_calls: 512,
            max_watch_streams: 1024,
            request_timeout: Duration::from_secs(120),
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// Largest count accepted for the in-flight limits.
const MAX_COUNT: usize = 1_000_000;

impl LimitsConfig {
    /// One line naming the first bad setting.
    pub fn validate(&self) -> Result<(), String> {
        let Self {
            max_message_size,
            max_concurrent_streams,
            max_concurrent_calls,
            max_watch_streams,
            request_timeout,
            keepalive_interval,
            keepalive_timeout,
        } = *self;
        if !(1024..=u32::MAX as usize).contains(&max_message_size) {
            return Err("limits.max_message_size must be between 1024 and 4294967295 bytes".into());
        }
        if max_concurrent_streams == 0 {
            return Err("limits.max_concurrent_streams must be at least 1".into());
        }
        for (key, value) in [
            ("max_concurrent_calls", max_concurrent_calls),
            ("max_watch_streams", max_watch_streams),
        ] {
            if !(1..=MAX_COUNT).contains(&value) {
                return Err(format!("limits.{key} must be between 1 and {MAX_COUNT}"));
            }
        }
        if request_timeout < Duration::from_millis(10) {
            return Err("limits.request_timeout must be at least 10ms".into());
        }
        if !keepalive_interval.is_zero() && keepalive_interval < Duration::from_millis(10) {
            return Err("limits.keepalive_interval must be 0s (off) or at least 10ms".into());
        }
        if keepalive_timeout < Duration::from_millis(10) {
            return Err("limits.keepalive_timeout must be at least 10ms".into());
        }
        Ok(())
    }

    /// The HTTP/2 PING interval, if pings are on.
    pub fn keepalive(&self) -> Option<Duration> {
        Some(self.keepalive_interval).filter(|interval| !interval.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(LimitsConfig::default().validate(), Ok(()));
        let off = LimitsConfig {
            keepalive_interval: Duration::ZERO,
            ..LimitsConfig::default()
        };
        assert_eq!(off.validate(), Ok(()));
        assert_eq!(off.keepalive(), None);
    }

    #[test]
    fn bad_settings_are_one_line() {
        type Case = (fn(&mut LimitsConfig), &'static str);
        let cases: [Case; 7] = [
            (|c| c.max_message_size = 10, "max_message_size"),
            (|c| c.max_concurrent_streams = 0, "max_concurrent_streams"),
            (|c| c.max_concurrent_calls = 0, "max_concurrent_calls"),
            (|c| c.max_watch_streams = usize::MAX, "max_watch_streams"),
            (|c| c.request_timeout = Duration::ZERO, "request_timeout"),
            (
                |c| c.keepalive_interval = Duration::from_millis(1),
                "keepalive_interval",
            ),
            (
                |c| c.keepalive_timeout = Duration::ZERO,
                "keepalive_timeout",
            ),
        ];
        for (change, expected) in cases {
            let mut config = LimitsConfig::default();
            change(&mut config);
            let err = config.validate().unwrap_err();
            assert!(err.starts_with(&format!("limits.{expected} ")), "{err}");
        }
    }
}
