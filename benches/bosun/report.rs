//! The table the suite prints: each figure beside the baseline measured in
//! the same run, the ratio between them, and the target for it.

use crate::load::Run;

/// A target: the figure (or ratio) must be at least / at most a bound.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The ratio is at least this.
    RatioAtLeast(f64),
    /// The ratio is at most this.
    RatioAtMost(f64),
    /// The figure is at most this (in the row's unit).
    AtMost(f64, &'static str),
    /// The figure is at least this (in the row's unit).
    AtLeast(f64, &'static str),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Self::RatioAtLeast(bound) => format!(">= {bound:.1}x"),
            Self::RatioAtMost(bound) => format!("<= {bound:.1}x"),
            Self::AtMost(bound, unit) => format!("<= {} {unit}", figure(bound)),
            Self::AtLeast(bound, unit) => format!(">= {} {unit}", figure(bound)),
        }
    }

    fn met(self, value: f64, ratio: Option<f64>) -> bool {
        match self {
            Self::RatioAtLeast(bound) => ratio.is_some_and(|ratio| ratio >= bound),
            Self::RatioAtMost(bound) => ratio.is_some_and(|ratio| ratio <= bound),
            Self::AtMost(bound, _) => value <= bound,
            Self::AtLeast(bound, _) => value >= bound,
        }
    }
}

pub struct Row {
    pub what: String,
    pub figure: String,
    pub latency: String,
    pub baseline: String,
    pub ratio: Option<f64>,
    pub target: Option<Target>,
    pub met: Option<bool>,
}

impl Row {
    /// A row with a value in `unit` and no baseline.
    pub fn value(what: impl Into<String>, value: f64, unit: &str) -> Self {
        Self {
            what: what.into(),
            figure: format!("{} {unit}", figure(value)),
            latency: String::new(),
            baseline: String::new(),
            ratio: None,
            target: None,
            met: None,
        }
    }

    /// CPU per unit of work: the server's (of it, its writer thread's) /
    /// one other figure's, in microseconds.
    pub fn cpu(what: &str, server: f64, writer: f64, other: f64) -> Self {
        let mut row = Self::value(what, 0.0, "");
        row.figure = format!(
            "{} ({}) / {} µs",
            figure(server),
            figure(writer),
            figure(other)
        );
        row
    }

    /// A row under another: the same figure against one more baseline.
    pub fn compare(baseline: &str, value: f64, baseline_value: f64) -> Self {
        Self {
            what: String::new(),
            figure: String::new(),
            latency: String::new(),
            baseline: String::new(),
            ratio: None,
            target: None,
            met: None,
        }
        .against(baseline, value, baseline_value)
    }

    /// A load run's rate and latency.
    pub fn run(what: impl Into<String>, run: &Run) -> Self {
        let mut row = Self::value(what, run.rate(), "/s");
        row.latency = format!("{:.2} / {:.2} ms", run.p50_ms(), run.p99_ms());
        if run.errors > 0 {
            row.figure += &format!(
                " ({} errors: {})",
                run.errors,
                run.first_error.as_deref().unwrap_or("")
            );
        }
        row
    }

    /// Compares this row's value with `baseline` (its name and value).
    pub fn against(mut self, name: &str, value: f64, baseline: f64) -> Self {
        self.baseline = name.to_string();
        self.ratio = Some(value / baseline);
        self
    }

    pub fn target(mut self, target: Target, value: f64) -> Self {
        self.target = Some(target);
        self.met = Some(target.met(value, self.ratio));
        self
    }
}

/// A number in a readable precision.
pub fn figure(value: f64) -> String {
    if value >= 100.0 {
        let rounded = value.round() as u64;
        let text = rounded.to_string();
        let mut grouped = String::new();
        for (i, digit) in text.chars().enumerate() {
            if i > 0 && (text.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        grouped
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Prints `rows` as a Markdown table, and how many targets were met.
pub fn print(rows: &[Row]) {
    println!();
    println!("| measure | result | p50 / p99 | baseline (same run) | ratio | target | met |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.what,
            row.figure,
            row.latency,
            row.baseline,
            row.ratio.map(|r| format!("{r:.2}x")).unwrap_or_default(),
            row.target.map(Target::describe).unwrap_or_default(),
            match row.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            }
        );
    }
    let targets = rows.iter().filter(|row| row.met.is_some()).count();
    let met = rows.iter().filter(|row| row.met == Some(true)).count();
    println!();
    println!("{met} of {targets} targets met");
}
