//! Which record stands for a scenario in a report. A scenario with `retries:` has one
//! record per attempt: the last is its result, the earlier ones are its reruns — unless
//! the run stopped before the retry ran (that record is `skipped`): then the last attempt
//! that ran stands for it, so its failure is not lost. Pure.

use std::collections::HashMap;

use crate::record::ScenarioWithSteps;
use crate::record::{ScenarioRecord, Status};

pub struct Standing<'a> {
    pub record: &'a ScenarioWithSteps,
    /// The attempts before it, in order.
    pub reruns: Vec<&'a ScenarioWithSteps>,
    /// The retry the run skipped, when `record` is the attempt before it.
    pub skipped_retry: Option<&'a ScenarioRecord>,
}

/// One per scenario and hook of `entries`, in their order.
pub fn standing<'a>(entries: impl IntoIterator<Item = &'a ScenarioWithSteps>) -> Vec<Standing<'a>> {
    let entries: Vec<&'a ScenarioWithSteps> = entries.into_iter().collect();
    let key = |sc: &'a ScenarioRecord| {
        (
            sc.pipeline.as_str(),
            sc.environment.as_str(),
            sc.name.as_str(),
        )
    };
    let mut replaced: HashMap<(&str, &str, &str), Vec<&'a ScenarioWithSteps>> = HashMap::new();
    for e in entries.iter().filter(|e| e.0.retried) {
        replaced.entry(key(&e.0)).or_default().push(e);
    }
    entries
        .iter()
        .filter(|e| !e.0.retried)
        .map(|e| {
            let tried = match replaced.is_empty() {
                true => Vec::new(),
                false => replaced.remove(&key(&e.0)).unwrap_or_default(),
            };
            match tried.split_last() {
                Some((last, earlier)) if e.0.status == Status::Skipped => Standing {
                    record: last,
                    reruns: earlier.to_vec(),
                    skipped_retry: Some(&e.0),
                },
                _ => Standing {
                    record: e,
                    reruns: tried,
                    skipped_retry: None,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(name: &str, attempt: u32, status: Status, retried: bool) -> ScenarioWithSteps {
        (
            ScenarioRecord {
                attempt,
                retried,
                ..ScenarioRecord::for_test("r", attempt, name, status)
            },
            vec![],
        )
    }

    #[test]
    fn the_final_attempt_stands_unless_the_run_skipped_it() {
        let entries = vec![
            sc("lucky", 0, Status::Failed, true),
            sc("lucky", 1, Status::Passed, false),
            sc("cut", 0, Status::Failed, true),
            sc("cut", 1, Status::Failed, true),
            sc("cut", 2, Status::Skipped, false),
            sc("plain", 0, Status::Passed, false),
        ];
        let s = standing(&entries);
        let got: Vec<(&str, u32, usize, bool)> = s
            .iter()
            .map(|s| {
                (
                    s.record.0.name.as_str(),
                    s.record.0.attempt,
                    s.reruns.len(),
                    s.skipped_retry.is_some(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("lucky", 1, 1, false),
                ("cut", 1, 1, true),
                ("plain", 0, 0, false)
            ]
        );
    }
}
