//! What an environment says about its metrics (`metrics:` in its YAML; all optional —
//! every metric is judged anyway): the unit, which direction is better, whether it is
//! critical, the smallest effect that matters, a hard limit. And units printed as a
//! person reads them (`12.2 MiB`, `3.1 ms`).
//!
//! ```yaml
//! metrics:
//!   internal_latency_us: { unit: us, better: lower, critical: true }
//!   replica_ops_per_sec: { better: higher, min_effect: 10% }
//!   rss_bytes: { unit: bytes, better: lower, max: 2GiB }
//! ```

use serde::{Deserialize, Serialize};

/// A metric's unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    #[default]
    None,
    Ns,
    Us,
    Ms,
    S,
    Bytes,
    Percent,
}

impl Unit {
    fn parse(text: &str) -> Option<Unit> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "count" => Unit::None,
            "ns" => Unit::Ns,
            "us" | "µs" => Unit::Us,
            "ms" => Unit::Ms,
            "s" | "seconds" => Unit::S,
            "bytes" | "b" => Unit::Bytes,
            "percent" | "%" => Unit::Percent,
            _ => return None,
        })
    }

    /// Seconds per unit, for the time units.
    fn seconds(self) -> Option<f64> {
        match self {
            Unit::Ns => Some(1e-9),
            Unit::Us => Some(1e-6),
            Unit::Ms => Some(1e-3),
            Unit::S => Some(1.0),
            _ => None,
        }
    }

    /// `value` (in this unit) as a person reads it.
    pub fn show(self, value: f64) -> String {
        if !value.is_finite() {
            return format!("{value}");
        }
        if let Some(per) = self.seconds() {
            let s = value * per;
            let a = s.abs();
            return if a >= 1.0 {
                format!("{} s", sig(s))
            } else if a >= 1e-3 {
                format!("{} ms", sig(s * 1e3))
            } else if a >= 1e-6 || a == 0.0 {
                format!("{} µs", sig(s * 1e6))
            } else {
                format!("{} ns", sig(s * 1e9))
            };
        }
        match self {
            Unit::Bytes => {
                let a = value.abs();
                let (div, name) = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
                    .into_iter()
                    .find(|(d, _)| a >= *d as f64)
                    .unwrap_or((1, "B"));
                format!("{} {name}", sig(value / div as f64))
            }
            Unit::Percent => format!("{} %", sig(value)),
            _ => sig(value),
        }
    }
}

/// Three significant digits, no exponent for everyday sizes.
pub fn sig(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e9).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Lower,
    Higher,
}

/// The smallest effect worth a flag.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// A fraction of the baseline's center (`10%` is 0.1).
    Relative(f64),
    /// In the metric's unit.
    Absolute(f64),
}

/// What is known about one metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Declared {
    #[serde(default)]
    pub unit: Unit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub better: Option<Better>,
    #[serde(default)]
    pub critical: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_effect: Option<Effect>,
    /// A hard limit in the metric's unit: a run above it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// What is known about one metric (all optional: every metric is judged anyway).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// Its unit: `us`, `ms`, `s`, `ns`, `bytes`, `percent` or `none`; amounts in `max`
    /// and `min_effect` are read in it.
    #[serde(default)]
    pub unit: Option<String>,
    /// `lower` or `higher`: which way is an improvement (default: a change either way
    /// is reported, neither is called a regression).
    #[serde(default)]
    pub better: Option<String>,
    /// Whether its regression fails a run under `fail_on: critical` (the default policy).
    #[serde(default)]
    pub critical: bool,
    /// The smallest change worth reporting: `10%`, or an amount (`2ms`, `0.5`).
    #[serde(default)]
    #[schemars(with = "Option<crate::environment::model::Scalar>")]
    pub min_effect: Option<serde_yaml::Value>,
    /// A hard limit in its unit (`2GiB`, `500ms`): a run above it fails, whatever history says.
    #[serde(default)]
    #[schemars(with = "Option<crate::environment::model::Scalar>")]
    pub max: Option<serde_yaml::Value>,
}

/// A YAML scalar as text (`max: 2GiB` and `max: 5` alike).
fn text_of(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Why a declaration cannot be read: which field, and what it takes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeclarationError {
    #[error("unknown unit `{0}`; units: us, ms, s, ns, bytes, percent, none")]
    Unit(String),
    #[error("`better` is `lower` or `higher`, not `{0}`")]
    Better(String),
    #[error("`min_effect` is a percentage (`10%`) or an amount in the metric's unit, not `{0}`")]
    MinEffect(String),
    #[error("`max` is an amount in the metric's unit (`2GiB`, `500ms`, `0.5`), not `{0}`")]
    Max(String),
}

impl DeclarationError {
    /// The field the error is about, to point at it in the file.
    pub fn field(&self) -> &'static str {
        match self {
            DeclarationError::Unit(_) => "unit",
            DeclarationError::Better(_) => "better",
            DeclarationError::MinEffect(_) => "min_effect",
            DeclarationError::Max(_) => "max",
        }
    }
}

impl MetricSpec {
    pub fn read(&self) -> Result<Declared, DeclarationError> {
        let unit = match &self.unit {
            Some(u) => Unit::parse(u).ok_or_else(|| DeclarationError::Unit(u.clone()))?,
            None => Unit::None,
        };
        let better = match self.better.as_deref() {
            None => None,
            Some("lower") => Some(Better::Lower),
            Some("higher") => Some(Better::Higher),
            Some(other) => return Err(DeclarationError::Better(other.into())),
        };
        let min_effect = match &self.min_effect {
            None => None,
            Some(v) => {
                let text = text_of(v);
                Some(
                    match text.trim().strip_suffix('%') {
                        Some(pct) => pct
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|p| *p > 0.0)
                            .map(|p| Effect::Relative(p / 100.0)),
                        None => amount(&text, unit)
                            .filter(|a| *a > 0.0)
                            .map(Effect::Absolute),
                    }
                    .ok_or(DeclarationError::MinEffect(text))?,
                )
            }
        };
        let max = match &self.max {
            None => None,
            Some(v) => {
                let text = text_of(v);
                Some(amount(&text, unit).ok_or(DeclarationError::Max(text))?)
            }
        };
        Ok(Declared {
            unit,
            better,
            critical: self.critical,
            min_effect,
            max,
        })
    }
}

/// An amount with an optional unit suffix, in `unit`: `2GiB` for bytes, `500ms` for a
/// time unit, a plain number as it is.
fn amount(text: &str, unit: Unit) -> Option<f64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    let n: f64 = number.trim().parse().ok()?;
    let suffix = suffix.trim();
    if suffix.is_empty() {
        return Some(n);
    }
    let bytes = |s: &str| -> Option<f64> {
        Some(match s.to_ascii_lowercase().as_str() {
            "b" => 1.0,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            _ => return None,
        })
    };
    match unit {
        Unit::Bytes => bytes(suffix).map(|m| n * m),
        Unit::Percent if suffix == "%" => Some(n),
        u => {
            let per = u.seconds()?;
            let given = Unit::parse(suffix)?.seconds()?;
            Some(n * given / per)
        }
    }
}

/// What lowtouch knows of the metrics its own daemon collects (their names are
/// lowtouch's: `daemon::collect`), under whatever an environment declares.
pub fn own(name: &str) -> Option<Declared> {
    let lower = |unit| Declared {
        unit,
        better: Some(Better::Lower),
        ..Declared::default()
    };
    Some(match name {
        "rss_bytes" | "memory_used_bytes" => lower(Unit::Bytes),
        "cpu_percent" => lower(Unit::Percent),
        "memory_available_bytes" => Declared {
            unit: Unit::Bytes,
            better: Some(Better::Higher),
            ..Declared::default()
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> MetricSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_issue_s_three_declarations_read_as_meant() {
        let d = spec("{ unit: us, better: lower, critical: true }")
            .read()
            .unwrap();
        assert_eq!(d.unit, Unit::Us);
        assert_eq!(d.better, Some(Better::Lower));
        assert!(d.critical);
        let d = spec("{ better: higher, min_effect: 10% }").read().unwrap();
        assert_eq!(d.min_effect, Some(Effect::Relative(0.1)));
        let d = spec("{ unit: bytes, better: lower, max: 2GiB }")
            .read()
            .unwrap();
        assert_eq!(d.max, Some(2.0 * 1024.0 * 1024.0 * 1024.0));
    }

    #[test]
    fn amounts_convert_into_the_metric_s_unit() {
        assert_eq!(amount("500ms", Unit::Us), Some(500_000.0));
        assert_eq!(amount("2 s", Unit::Ms), Some(2000.0));
        assert_eq!(amount("1.5", Unit::None), Some(1.5));
        assert_eq!(amount("3KiB", Unit::Bytes), Some(3072.0));
        assert_eq!(amount("3 parsecs", Unit::Us), None);
        assert_eq!(amount("5ms", Unit::Bytes), None);
    }

    #[test]
    fn a_bad_declaration_names_its_field_and_what_it_takes() {
        let e = spec("{ unit: furlongs }").read().unwrap_err();
        assert_eq!(e.field(), "unit");
        assert!(e.to_string().contains("us, ms, s"), "{e}");
        let e = spec("{ better: sideways }").read().unwrap_err();
        assert_eq!(e.field(), "better");
        let e = MetricSpec {
            min_effect: Some(serde_yaml::Value::String("lots".into())),
            ..spec("{}")
        }
        .read()
        .unwrap_err();
        assert_eq!(e.field(), "min_effect");
    }

    #[test]
    fn units_print_humanly() {
        assert_eq!(Unit::Bytes.show(12.2 * 1024.0 * 1024.0), "12.2 MiB");
        assert_eq!(Unit::Us.show(3100.0), "3.1 ms");
        assert_eq!(Unit::Us.show(41.0), "41 µs");
        assert_eq!(Unit::Ms.show(2500.0), "2.5 s");
        assert_eq!(Unit::Percent.show(12.345), "12.3 %");
        assert_eq!(Unit::None.show(1234.6), "1235");
        assert_eq!(Unit::None.show(0.5), "0.5");
    }
}
