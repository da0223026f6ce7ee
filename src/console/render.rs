//! How the console shows answers. `-o json` and `-o yaml` print the answer
//! message whole in the protobuf JSON mapping (read from bosun's own
//! descriptor set with prost-reflect, so enum names, 64-bit integers as
//! strings and RFC 3339 timestamps are as every other client sees them);
//! default values are written too, so every answer has the same keys; the
//! default `table` prints aligned columns for people, with relative
//! times, and colour only where the terminal takes it (anstream strips it
//! otherwise, and honours NO_COLOR and CLICOLOR_FORCE).

use std::io::Write;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anstyle::{AnsiColor, Style};
use comfy_table::presets::NOTHING;
use comfy_table::{CellAlignment, ColumnConstraint, ContentArrangement, Table};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use super::exit::ConsoleError;

/// The output format (`-o`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// One JSON document (JSON lines for `events watch`).
    Json,
    /// One YAML document.
    Yaml,
}

/// bosun's descriptors, from the descriptor set the build embeds.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET)
        .expect("the embedded descriptor set decodes (built by build.rs)")
});

/// A generated message and its full protobuf name.
pub trait Described: Message + Sized {
    const NAME: &'static str;
}

macro_rules! described {
    ($($ty:ident),+ $(,)?) => {
        $(impl Described for crate::pb::$ty {
            const NAME: &'static str = concat!("bosun.v1.", stringify!($ty));
        })+
    };
}

described!(
    Session,
    ListSessionsResponse,
    KillSessionResponse,
    ListAttentionResponse,
    Project,
    ListProjectsResponse,
    Task,
    ListTasksResponse,
    AdvanceResult,
    Lesson,
    ListLessonsResponse,
    RecordLessonResponse,
    LessonStats,
    Event,
    ListEventsResponse,
    ListProcessorsResponse,
    ProcessorRun,
    ResetProcessorStateResponse,
    GetUsageResponse,
    ReconcilerStatus,
    ReconcilerRun,
);

/// `message` in the protobuf JSON mapping, with default values written.
pub fn json_value<M: Described>(message: &M) -> serde_json::Value {
    let descriptor = POOL
        .get_message_by_name(M::NAME)
        .expect("every Described message is in the descriptor set");
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .expect("a message re-decodes from its own encoding");
    // Every field, defaults included, so a script finds the same keys in
    // every answer (`.sessions` is `[]` rather than missing).
    let options = SerializeOptions::new().skip_default_fields(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .expect("a decoded message serializes to JSON")
}

/// Prints `message` as one document in `format` (JSON or YAML), or calls
/// `table` to print it for people.
pub fn print<M: Described>(
    format: Format,
    message: &M,
    table: impl FnOnce(&M) -> String,
) -> Result<(), ConsoleError> {
    let text = match format {
        Format::Table => table(message),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&json_value(message))
                .map_err(|err| std::io::Error::other(err.to_string()))?;
            text.push('\n');
            text
        }
        Format::Yaml => serde_norway::to_string(&json_value(message))
            .map_err(|err| std::io::Error::other(err.to_string()))?,
    };
    let mut out = anstream::stdout();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The short name of an enum value: `SESSION_STATE_WORKING` -> `working`
/// (for `bosun.v1.SessionState`); the number when the proto does not know it,
/// "-" for UNSPECIFIED.
pub fn enum_name(full_name: &str, number: i32) -> String {
    let Some(descriptor) = POOL.get_enum_by_name(full_name) else {
        return number.to_string();
    };
    let prefix = enum_prefix(descriptor.name());
    match descriptor.get_value(number) {
        Some(_) if number == 0 => "-".into(),
        Some(value) => value
            .name()
            .strip_prefix(&prefix)
            .unwrap_or(value.name())
            .to_ascii_lowercase(),
        None => number.to_string(),
    }
}

/// The short names and numbers of an enum's values (UNSPECIFIED left out),
/// for command-line choices.
pub fn enum_values(full_name: &str) -> Vec<(String, i32)> {
    let Some(descriptor) = POOL.get_enum_by_name(full_name) else {
        return Vec::new();
    };
    let prefix = enum_prefix(descriptor.name());
    descriptor
        .values()
        .filter(|value| value.number() != 0)
        .map(|value| {
            let name = value.name().strip_prefix(&prefix).unwrap_or(value.name());
            (name.to_ascii_lowercase().replace('_', "-"), value.number())
        })
        .collect()
}

/// `SessionState` -> `SESSION_STATE_`.
fn enum_prefix(name: &str) -> String {
    let mut prefix = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            prefix.push('_');
        }
        prefix.push(c.to_ascii_uppercase());
    }
    prefix.push('_');
    prefix
}

/// A table for people: a header row and aligned columns, no borders.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    if rows.is_empty() {
        return "(none)\n".into();
    }
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().map(|h| bold(h)));
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_cell_alignment(CellAlignment::Left);
        column.set_padding((0, 2));
        column.set_constraint(ColumnConstraint::ContentWidth);
    }
    let mut text: String = table
        .lines()
        .map(|line| line.trim_end().to_string() + "\n")
        .collect();
    if text.is_empty() {
        text.push('\n');
    }
    text
}

/// `key: value` lines for one object, keys aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{}  {value}\n", bold(&format!("{key:<width$}"))))
        .collect()
}

fn bold(text: &str) -> String {
    paint(Style::new().bold(), text)
}

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// A status word coloured by what it asks of a person: red for trouble,
/// yellow for waiting on someone, green for good news, dim for the end.
pub fn status(word: &str) -> String {
    let color = match word {
        "stuck" | "ci_failed" | "errored" | "killed" | "failed" | "changes_requested" => {
            Some(AnsiColor::Red)
        }
        "needs_input" | "detecting" | "review_pending" | "draft" | "spawning" | "pending" => {
            Some(AnsiColor::Yellow)
        }
        "mergeable" | "approved" | "merged" | "passing" | "succeeded" | "done" => {
            Some(AnsiColor::Green)
        }
        "working" | "pr_open" | "idle" | "running" => Some(AnsiColor::Cyan),
        _ => None,
    };
    match color {
        Some(color) => paint(Style::new().fg_color(Some(color.into())), word),
        None => word.to_string(),
    }
}

/// A timestamp relative to now: "12s ago", "5m ago", "3h ago", "2d ago",
/// "in 4m"; "-" when unset.
pub fn ago(time: Option<&prost_types::Timestamp>) -> String {
    let Some(time) = time else {
        return "-".into();
    };
    let then = UNIX_EPOCH + Duration::from_secs(u64::try_from(time.seconds).unwrap_or(0));
    relative(then, SystemTime::now())
}

fn relative(then: SystemTime, now: SystemTime) -> String {
    let (seconds, future) = match now.duration_since(then) {
        Ok(past) => (past.as_secs(), false),
        Err(err) => (err.duration().as_secs(), true),
    };
    let amount = match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// A timestamp as RFC 3339 (UTC, seconds); "-" when unset.
pub fn when(time: Option<&prost_types::Timestamp>) -> String {
    time.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map_or_else(
            || "-".into(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

/// `text` cut to `max` characters with an ellipsis, on one line.
pub fn clip(text: &str, max: usize) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        line
    } else {
        line.chars().take(max.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// Empty as "-".
pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let cases = [
            (0, "0s ago"),
            (59, "59s ago"),
            (60, "1m ago"),
            (3599, "59m ago"),
            (3600, "1h ago"),
            (86_399, "23h ago"),
            (86_400, "1d ago"),
            (-240, "in 4m"),
        ];
        for (age, want) in cases {
            let then = if age >= 0 {
                now - Duration::from_secs(age as u64)
            } else {
                now + Duration::from_secs((-age) as u64)
            };
            assert_eq!(relative(then, now), want, "{age}");
        }
    }

    #[test]
    fn enum_names_both_ways() {
        assert_eq!(enum_name("bosun.v1.SessionState", 4), "needs_input");
        assert_eq!(enum_name("bosun.v1.SessionState", 0), "-");
        assert_eq!(enum_name("bosun.v1.SessionState", 99), "99");
        assert_eq!(enum_name("bosun.v1.DisplayStatus", 10), "ci_failed");
        let values = enum_values("bosun.v1.StageSessionOutcome");
        assert_eq!(
            values,
            vec![("completed".into(), 1), ("failed-transient".into(), 2)]
        );
    }

    #[test]
    fn json_is_the_protobuf_mapping() {
        let session = crate::pb::Session {
            id: "mer-1".into(),
            task_id: 7,
            state: crate::pb::SessionState::NeedsInput as i32,
            create_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        let json = json_value(&session);
        assert_eq!(json["id"], "mer-1");
        assert_eq!(json["taskId"], "7", "64-bit integers are strings");
        assert_eq!(json["state"], "SESSION_STATE_NEEDS_INPUT");
        assert_eq!(json["createTime"], "2023-11-14T22:13:20Z");
        assert_eq!(json["projectId"], "", "defaults are written");
        assert_eq!(json["isAlive"], false);
    }

    #[test]
    fn tables_align_and_say_none() {
        let text = table(
            &["ID", "STATE"],
            vec![
                vec!["mer-1".into(), "working".into()],
                vec!["mer-12".into(), "stuck".into()],
            ],
        );
        let plain: String = anstream::adapter::strip_str(&text).to_string();
        assert_eq!(plain, "ID      STATE\nmer-1   working\nmer-12  stuck\n");
        assert_eq!(table(&["ID"], vec![]), "(none)\n");
    }
}
