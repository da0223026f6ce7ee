//! Time as bosun stores it: microseconds since the Unix epoch (UTC), in
//! INTEGER columns, so SQL can compare and index it and triggers can stamp it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time, microseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMicros(pub i64);

impl UnixMicros {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self(i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX))
    }

    /// This time moved back by `duration` (saturating).
    pub fn minus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(micros))
    }

    /// This time moved forward by `duration` (saturating).
    pub fn plus(self, duration: Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(micros))
    }

    /// A protobuf Timestamp (saturating).
    pub fn from_timestamp(timestamp: &prost_types::Timestamp) -> Self {
        Self(
            timestamp
                .seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(timestamp.nanos) / 1_000),
        )
    }

    pub fn to_timestamp(self) -> prost_types::Timestamp {
        prost_types::Timestamp {
            seconds: self.0.div_euclid(1_000_000),
            nanos: (self.0.rem_euclid(1_000_000) * 1_000) as i32,
        }
    }
}

/// A duration as protobuf's Duration (saturating).
pub fn duration_to_pb(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: duration.subsec_nanos() as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_timestamp_including_before_the_epoch() {
        let cases = [
            (0, 0, 0),
            (1_500_000, 1, 500_000_000),
            (-1, -1, 999_999_000),
        ];
        for (micros, seconds, nanos) in cases {
            let ts = UnixMicros(micros).to_timestamp();
            assert_eq!((ts.seconds, ts.nanos), (seconds, nanos), "{micros}");
        }
    }

    #[test]
    fn minus_saturates() {
        assert_eq!(
            UnixMicros(10).minus(Duration::from_micros(4)),
            UnixMicros(6)
        );
        assert_eq!(
            UnixMicros(i64::MIN + 1).minus(Duration::from_secs(1)),
            UnixMicros(i64::MIN)
        );
    }
}
