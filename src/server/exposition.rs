//! What `GET /metrics` answers: the registry as OpenMetrics text, or as the
//! Prometheus text format 0.0.4 for a client that asks for it, negotiated
//! on the `Accept` header as the Prometheus client libraries do. The
//! highest-`q` media range decides; OpenMetrics wins ties, a missing or
//! unmatched header (the answer bosun has always given). prometheus-client
//! encodes OpenMetrics only, so the 0.0.4 text is rewritten from it: counter
//! families are named with `_total`, `# UNIT`, `# EOF`, `_created` samples
//! and exemplars are dropped, OpenMetrics-only types map to 0.0.4 ones.

use std::collections::HashMap;

use prometheus_client::registry::Registry;

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A text exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsFormat {
    OpenMetrics,
    PrometheusText,
}

impl MetricsFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Self::PrometheusText => PROMETHEUS_TEXT_CONTENT_TYPE,
        }
    }
}

/// The format an `Accept` header asks for.
pub fn negotiate(accept: Option<&str>) -> MetricsFormat {
    let (mut open_metrics, mut text) = (None::<f32>, None::<f32>);
    for range in accept.unwrap_or_default().split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let q = parts
            .filter_map(|param| param.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(Some(1.0), |(_, value)| value.trim().parse::<f32>().ok())
            .unwrap_or(0.0);
        let best = |seen: &mut Option<f32>| *seen = Some(seen.map_or(q, |s| s.max(q)));
        match media.as_str() {
            "application/openmetrics-text" => best(&mut open_metrics),
            "text/plain" => best(&mut text),
            "*/*" => {
                best(&mut open_metrics);
                best(&mut text);
            }
            "text/*" => best(&mut text),
            "application/*" => best(&mut open_metrics),
            _ => {}
        }
    }
    match (open_metrics, text) {
        (Some(om), Some(text)) if text > om => MetricsFormat::PrometheusText,
        (None, Some(text)) if text > 0.0 => MetricsFormat::PrometheusText,
        _ => MetricsFormat::OpenMetrics,
    }
}

/// The registry in `format`.
pub fn encode(registry: &Registry, format: MetricsFormat) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(match format {
        MetricsFormat::OpenMetrics => text,
        MetricsFormat::PrometheusText => to_prometheus_text(&text),
    })
}

/// The 0.0.4 name and type of an OpenMetrics family.
fn family_in_text(name: &str, kind: &str) -> (String, &'static str) {
    match kind {
        "counter" => (format!("{name}_total"), "counter"),
        "gauge" => (name.to_string(), "gauge"),
        "histogram" | "gaugehistogram" => (name.to_string(), "histogram"),
        "summary" => (name.to_string(), "summary"),
        "info" => (format!("{name}_info"), "gauge"),
        "stateset" => (name.to_string(), "gauge"),
        _ => (name.to_string(), "untyped"),
    }
}

/// Rewrites OpenMetrics text as Prometheus text 0.0.4.
pub fn to_prometheus_text(open_metrics: &str) -> String {
    let types: HashMap<&str, &str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let (name, _) = family_in_text(name, types.get(name).copied().unwrap_or("unknown"));
            out.push_str(&format!("# HELP {name} {}\n", help.replace("\\\"", "\"")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = family_in_text(name, kind);
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if line.starts_with('#') {
            // # UNIT and # EOF have no 0.0.4 form.
        } else if !line.is_empty() {
            let sample = line.split_once(" # ").map_or(line, |(sample, _)| sample);
            let name = sample.split(['{', ' ']).next().unwrap_or_default();
            let created = name.strip_suffix("_created").is_some_and(|family| {
                matches!(
                    types.get(family),
                    Some(&("counter" | "histogram" | "summary"))
                )
            });
            if !created {
                out.push_str(sample);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        use MetricsFormat::*;
        let cases = [
            (None, OpenMetrics),
            (Some(""), OpenMetrics),
            (Some("*/*"), OpenMetrics),
            (Some("text/plain;version=0.0.4"), PrometheusText),
            (
                Some("text/plain; version=0.0.4; charset=utf-8"),
                PrometheusText,
            ),
            (
                Some("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
                PrometheusText,
            ),
            (Some("text/*"), PrometheusText),
            (Some("application/openmetrics-text"), OpenMetrics),
            // Prometheus 2.x scraping.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                ),
                OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0.2,text/plain;q=0.9"),
                PrometheusText,
            ),
            (Some("text/plain;q=0"), OpenMetrics),
            (Some("application/json"), OpenMetrics),
        ];
        for (accept, expected) in cases {
            assert_eq!(negotiate(accept), expected, "{accept:?}");
        }
    }

    #[test]
    fn open_metrics_rewritten_as_text() {
        let open_metrics = "\
# HELP bosun_calls Calls \\\"answered\\\".
# TYPE bosun_calls counter
bosun_calls_total{code=\"Ok\"} 3 # {trace_id=\"a\"} 1.0
bosun_calls_created{code=\"Ok\"} 1.7e9
# HELP bosun_latency_seconds Latency.
# TYPE bosun_latency_seconds histogram
# UNIT bosun_latency_seconds seconds
bosun_latency_seconds_bucket{le=\"+Inf\"} 2
bosun_latency_seconds_sum 0.5
bosun_latency_seconds_count 2
# HELP bosun_build Build.
# TYPE bosun_build info
bosun_build_info{version=\"1\"} 1
# HELP bosun_head Head.
# TYPE bosun_head gauge
bosun_head 7
# EOF
";
        let expected = "\
# HELP bosun_calls_total Calls \"answered\".
# TYPE bosun_calls_total counter
bosun_calls_total{code=\"Ok\"} 3
# HELP bosun_latency_seconds Latency.
# TYPE bosun_latency_seconds histogram
bosun_latency_seconds_bucket{le=\"+Inf\"} 2
bosun_latency_seconds_sum 0.5
bosun_latency_seconds_count 2
# HELP bosun_build_info Build.
# TYPE bosun_build_info gauge
bosun_build_info{version=\"1\"} 1
# HELP bosun_head Head.
# TYPE bosun_head gauge
bosun_head 7
";
        assert_eq!(to_prometheus_text(open_metrics), expected);
    }
}
