//! Durations as scenarios and YAML files write them: `500ms`, `5s`, `2m`, `1h`; a bare
//! number is seconds and may have a fraction (`0.5`).

use std::time::Duration;

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "us" => value / 1_000_000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    // Nothing a test waits for is longer than a year; beyond it, deadlines overflow.
    if seconds > MAX_SECONDS {
        return None;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// Formats a duration the way people read it in a summary: `842ms`, `3.2s`, `2m05s`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<u64>) {
        assert_eq!(
            parse_duration(text).map(|d| d.as_millis() as u64),
            expected,
            "{text}"
        );
    }

    #[test]
    fn units() {
        check("500ms", Some(500));
        check("5s", Some(5000));
        check("2m", Some(120_000));
        check("1h", Some(3_600_000));
        check("3", Some(3000));
        check("0.5", Some(500));
        check("1.5s", Some(1500));
    }

    #[test]
    fn rejects() {
        check("", None);
        check("s", None);
        check("5x", None);
        check("-1", None);
        check(".5", None);
        check("5.", None);
        check("1e400", None);
        check("3000000000000000h", None);
        check("366d", None);
    }

    #[test]
    fn human_forms() {
        assert_eq!(human(Duration::from_millis(842)), "842ms");
        assert_eq!(human(Duration::from_millis(3210)), "3.2s");
        assert_eq!(human(Duration::from_secs(125)), "2m05s");
    }
}
