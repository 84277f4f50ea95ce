//! Masks for what changes from run to run without meaning anything: timestamps, ids,
//! durations, pids. Applied to both sides before their outputs are compared, so only real
//! changes show. A pipeline adds its own (`masks:`). Pure.

use regex::Regex;

/// One mask: what matches `pattern` becomes `replace`.
#[derive(Debug, Clone)]
pub struct Mask {
    pub pattern: Regex,
    pub replace: String,
}

/// The masks every comparison applies, in order (the longer shapes first).
const DEFAULTS: &[(&str, &str)] = &[
    // 2026-11-25T19:36:53.123Z, 2026-11-25 19:36:53+01:00
    (
        r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
        "<time>",
    ),
    // lowtouch run ids
    (r"\b\d{8}-\d{6}\.\d{3}-[0-9a-f]{4}\b", "<run>"),
    // UUIDs
    (
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
        "<id>",
    ),
    // 19:36:53, 19:36:53.123
    (r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<time>"),
    // long hex ids (commits, hashes)
    (r"\b[0-9a-f]{12,}\b", "<id>"),
    // 12ms, 1.5s, 250us, 3µs
    (r"\b\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)\b", "<duration>"),
    // pid 4711
    (r"\bpid \d+\b", "pid <n>"),
];

#[derive(Debug, Clone)]
pub struct Masks {
    masks: Vec<Mask>,
}

impl Default for Masks {
    fn default() -> Self {
        Masks {
            masks: DEFAULTS
                .iter()
                .map(|(p, r)| Mask {
                    pattern: Regex::new(p).expect("a default mask compiles"),
                    replace: (*r).to_string(),
                })
                .collect(),
        }
    }
}

impl Masks {
    /// The defaults and then `extra` (a pipeline's own).
    pub fn with(extra: impl IntoIterator<Item = Mask>) -> Masks {
        let mut m = Masks::default();
        m.masks.extend(extra);
        m
    }

    pub fn apply(&self, text: &str) -> String {
        let mut out = std::borrow::Cow::Borrowed(text);
        for m in &self.masks {
            if m.pattern.is_match(&out) {
                out = std::borrow::Cow::Owned(
                    m.pattern
                        .replace_all(&out, regex::NoExpand(&m.replace))
                        .into_owned(),
                );
            }
        }
        out.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_parts_are_masked_and_the_rest_kept() {
        let m = Masks::default();
        assert_eq!(
            m.apply(
                "2026-11-25T19:36:53.123Z started MatchingEnginePrimary (pid 4711), ready in 150ms"
            ),
            "<time> started MatchingEnginePrimary (pid <n>), ready in <duration>"
        );
        assert_eq!(
            m.apply(
                "run 20261125-194411.308-30a3 at 27c27db1e9109693e35a1a68d0d1d7f061e67ba4 took 1.5s"
            ),
            "run <run> at <id> took <duration>"
        );
        assert_eq!(
            m.apply("order 550e8400-e29b-41d4-a716-446655440000 filled at 19:02:03"),
            "order <id> filled at <time>"
        );
        // What a test is about stays: prices, quantities, states, short numbers.
        assert_eq!(
            m.apply("FILL qty=10 px=101.25 STATE: ACTIVE"),
            "FILL qty=10 px=101.25 STATE: ACTIVE"
        );
    }

    #[test]
    fn a_pipelines_own_masks_come_after_the_defaults() {
        let m = Masks::with([Mask {
            pattern: Regex::new(r"order-\d+").unwrap(),
            replace: "order-<n>".into(),
        }]);
        assert_eq!(
            m.apply("placed order-991 in 3ms"),
            "placed order-<n> in <duration>"
        );
    }
}
