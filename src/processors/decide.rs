//! The pure rules of a pass and of the scheduler: which transcripts to read,
//! what a hash match or a failure means, when a pass must stop starting
//! transcripts, when the next pass is due, and when a processor lags.

use std::time::Duration;

use crate::time::UnixMicros;

/// How far a file's modification time may fall behind the moment it was
/// written. Linux stamps files from a coarse clock (one scheduler tick, at
/// most 10 ms), so an append made just after a read can carry an mtime just
/// before the read time; within this margin a transcript is hashed again
/// rather than trusted to be unchanged.
pub const MTIME_GRANULARITY: Duration = Duration::from_millis(10);

/// What a processor remembers of a transcript, as far as a pass needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remembered {
    pub processed_time: Option<UnixMicros>,
    pub content_hash: Option<String>,
    pub consecutive_failures: u32,
    pub quarantined: bool,
}

/// What a pass does with a listed transcript before reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precheck {
    /// Quarantined: skipped, even if it changed.
    Quarantined,
    /// Not modified since it was last read: skipped without reading.
    Unchanged,
    /// Hash it (and process it when the hash differs).
    Read,
}

/// Decides from the modification time alone, so stable transcripts are never
/// read again. `mtime` is `None` when the file could not be stat'ed: reading
/// it will tell what is wrong.
pub fn precheck(remembered: Option<&Remembered>, mtime: Option<UnixMicros>) -> Precheck {
    let Some(remembered) = remembered else {
        return Precheck::Read;
    };
    if remembered.quarantined {
        return Precheck::Quarantined;
    }
    match (remembered.processed_time, mtime) {
        (Some(processed), Some(mtime)) if mtime <= processed.minus(MTIME_GRANULARITY) => {
            Precheck::Unchanged
        }
        _ => Precheck::Read,
    }
}

/// Whether the content read is what was last processed successfully. Then
/// the transcript is skipped, and its processed time moves to this read so
/// a touched but unchanged transcript is hashed once, not on every pass.
pub fn same_content(remembered: Option<&Remembered>, hash: &str) -> bool {
    remembered
        .and_then(|remembered| remembered.content_hash.as_deref())
        .is_some_and(|stored| stored == hash)
}

/// The failure count after one more failure, and whether it quarantines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    pub consecutive_failures: u32,
    pub quarantined: bool,
}

pub fn after_failure(remembered: Option<&Remembered>, limit: u32) -> AfterFailure {
    let consecutive_failures = remembered
        .map_or(0, |remembered| remembered.consecutive_failures)
        .saturating_add(1);
    AfterFailure {
        consecutive_failures,
        quarantined: consecutive_failures >= limit.max(1),
    }
}

/// Why a pass stops starting transcripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// The cap on transcripts per pass is reached.
    Cap,
    /// The time budget is spent.
    Budget,
}

/// Whether a pass that has started `started` transcripts and run `elapsed`
/// may start one more. A cap or budget of zero means none.
pub fn halt(started: u32, elapsed: Duration, cap: u32, budget: Duration) -> Option<Halt> {
    if cap > 0 && started >= cap {
        Some(Halt::Cap)
    } else if !budget.is_zero() && elapsed >= budget {
        Some(Halt::Budget)
    } else {
        None
    }
}

/// When the scheduler starts the next pass: one cadence after the last pass
/// started, or after the scheduler started when none ever ran. `None` when
/// the processor is disabled.
pub fn next_run(
    enabled: bool,
    cadence: Duration,
    last_run: Option<UnixMicros>,
    scheduler_start: UnixMicros,
) -> Option<UnixMicros> {
    enabled.then(|| later(last_run.unwrap_or(scheduler_start), cadence))
}

fn later(time: UnixMicros, by: Duration) -> UnixMicros {
    let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
    UnixMicros(time.0.saturating_add(micros))
}

/// The lag warning, for people: set when the newest transcript is newer than
/// the start of the last pass that ended by more than twice the cadence.
/// Never for a disabled processor or one that has not completed a pass.
pub fn lag_warning(
    enabled: bool,
    cadence: Duration,
    last_completed_start: Option<UnixMicros>,
    newest_transcript: Option<UnixMicros>,
) -> Option<String> {
    let (Some(start), Some(newest)) = (last_completed_start, newest_transcript) else {
        return None;
    };
    let lag = Duration::from_micros(u64::try_from(newest.0.saturating_sub(start.0)).ok()?);
    (enabled && lag > cadence * 2).then(|| {
        format!(
            "newest transcript is {} newer than the last pass (cadence {})",
            whole_seconds(lag),
            whole_seconds(cadence)
        )
    })
}

fn whole_seconds(duration: Duration) -> String {
    let rounded = Duration::from_secs(duration.as_secs().max(1));
    humantime_serde::re::humantime::format_duration(rounded).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000;

    fn remembered(
        processed: Option<i64>,
        hash: Option<&str>,
        failures: u32,
        q: bool,
    ) -> Remembered {
        Remembered {
            processed_time: processed.map(UnixMicros),
            content_hash: hash.map(str::to_string),
            consecutive_failures: failures,
            quarantined: q,
        }
    }

    #[test]
    fn precheck_table() {
        let processed = 100 * SEC;
        let margin = MTIME_GRANULARITY.as_micros() as i64;
        let cases = [
            (None, Some(5 * SEC), Precheck::Read, "never seen"),
            (None, None, Precheck::Read, "never seen, cannot stat"),
            (
                Some(remembered(Some(processed), Some("h"), 0, false)),
                None,
                Precheck::Read,
                "processed, now cannot stat: the read fails",
            ),
            (
                Some(remembered(Some(processed), Some("h"), 5, true)),
                None,
                Precheck::Quarantined,
                "quarantined and cannot stat",
            ),
            (
                Some(remembered(Some(processed), Some("h"), 0, false)),
                Some(50 * SEC),
                Precheck::Unchanged,
                "modified long before the read",
            ),
            (
                Some(remembered(Some(processed), Some("h"), 0, false)),
                Some(processed - margin),
                Precheck::Unchanged,
                "modified at the edge of the margin",
            ),
            (
                Some(remembered(Some(processed), Some("h"), 0, false)),
                Some(processed - margin + 1),
                Precheck::Read,
                "modified within a clock tick of the read: maybe after it",
            ),
            (
                Some(remembered(Some(processed), Some("h"), 0, false)),
                Some(processed + SEC),
                Precheck::Read,
                "modified after the read",
            ),
            (
                Some(remembered(None, None, 2, false)),
                Some(5 * SEC),
                Precheck::Read,
                "failed before, never processed",
            ),
            (
                Some(remembered(Some(processed), Some("h"), 5, true)),
                Some(processed + SEC),
                Precheck::Quarantined,
                "quarantined, even when changed",
            ),
            (
                Some(remembered(None, None, 5, true)),
                Some(5 * SEC),
                Precheck::Quarantined,
                "quarantined before any success",
            ),
        ];
        for (state, mtime, expected, why) in cases {
            assert_eq!(
                precheck(state.as_ref(), mtime.map(UnixMicros)),
                expected,
                "{why}"
            );
        }
    }

    #[test]
    fn same_content_needs_a_stored_equal_hash() {
        let stored = remembered(Some(SEC), Some("abc"), 0, false);
        let failed_only = remembered(None, None, 1, false);
        let cases = [
            (None, "abc", false),
            (Some(&failed_only), "abc", false),
            (Some(&stored), "abc", true),
            (Some(&stored), "abd", false),
        ];
        for (state, hash, expected) in cases {
            assert_eq!(same_content(state, hash), expected, "{state:?} {hash}");
        }
    }

    #[test]
    fn failures_count_up_to_the_quarantine() {
        let cases = [
            (None, 5, 1, false),
            (Some(remembered(None, None, 3, false)), 5, 4, false),
            (Some(remembered(None, None, 4, false)), 5, 5, true),
            (
                Some(remembered(Some(SEC), Some("h"), 0, false)),
                5,
                1,
                false,
            ),
            (None, 1, 1, true),
            (None, 0, 1, true),
            (
                Some(remembered(None, None, u32::MAX, false)),
                5,
                u32::MAX,
                true,
            ),
        ];
        for (state, limit, failures, quarantined) in cases {
            assert_eq!(
                after_failure(state.as_ref(), limit),
                AfterFailure {
                    consecutive_failures: failures,
                    quarantined
                },
                "{state:?} limit {limit}"
            );
        }
    }

    #[test]
    fn halt_table() {
        let minute = Duration::from_secs(60);
        let cases = [
            (0, Duration::ZERO, 0, Duration::ZERO, None),
            (1_000_000, minute * 60, 0, Duration::ZERO, None),
            (9, Duration::ZERO, 10, Duration::ZERO, None),
            (10, Duration::ZERO, 10, Duration::ZERO, Some(Halt::Cap)),
            (3, minute, 10, minute, Some(Halt::Budget)),
            (3, minute - Duration::from_millis(1), 10, minute, None),
            (10, minute, 10, minute, Some(Halt::Cap)),
        ];
        for (started, elapsed, cap, budget, expected) in cases {
            assert_eq!(
                halt(started, elapsed, cap, budget),
                expected,
                "{started} {elapsed:?} {cap} {budget:?}"
            );
        }
    }

    #[test]
    fn next_run_follows_the_last_start() {
        let cadence = Duration::from_secs(300);
        let start = UnixMicros(1_000 * SEC);
        let cases = [
            (true, None, Some(UnixMicros(1_300 * SEC))),
            (
                true,
                Some(UnixMicros(500 * SEC)),
                Some(UnixMicros(800 * SEC)),
            ),
            (false, Some(UnixMicros(500 * SEC)), None),
            (false, None, None),
        ];
        for (enabled, last, expected) in cases {
            assert_eq!(
                next_run(enabled, cadence, last, start),
                expected,
                "{enabled} {last:?}"
            );
        }
    }

    #[test]
    fn lag_table() {
        let cadence = Duration::from_secs(300);
        let start = UnixMicros(1_000 * SEC);
        let at = |secs: i64| Some(UnixMicros(1_000 * SEC + secs * SEC));
        let cases = [
            (
                true,
                Some(start),
                at(601),
                Some("newest transcript is 10m 1s newer than the last pass (cadence 5m)"),
            ),
            (true, Some(start), at(600), None),
            (true, Some(start), at(-50), None),
            (true, None, at(10_000), None),
            (true, Some(start), None, None),
            (false, Some(start), at(10_000), None),
            (
                true,
                Some(start),
                at(14 * 60),
                Some("newest transcript is 14m newer than the last pass (cadence 5m)"),
            ),
        ];
        for (enabled, last, newest, expected) in cases {
            assert_eq!(
                lag_warning(enabled, cadence, last, newest).as_deref(),
                expected,
                "{enabled} {last:?} {newest:?}"
            );
        }
    }
}
