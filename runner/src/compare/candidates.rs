//! Runs grouped by candidate, for `lowtouch history`: what a tester asks first is how each
//! release candidate did, not how each of the 24/7 loop's runs did.
//!
//! A candidate is what a run tested: the project's revision, the pipelines' repositories'
//! commits and the config commit of each environment. One line is a candidate's stretch of
//! consecutive runs on one set of pipelines and environments (its lane): the loop runs a
//! candidate until a newer one arrives, so a stretch is all its runs there; a candidate that
//! comes back later (a revert) starts a new stretch, which is what happened.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::record::RunRecord;

/// What a run tested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tested {
    pub revision: String,
    /// Repository name → commit.
    pub candidate: BTreeMap<String, String>,
    /// Environment → config-history commit.
    pub config_commits: BTreeMap<String, String>,
}

impl Tested {
    pub fn of(run: &RunRecord) -> Tested {
        Tested {
            revision: run.revision.clone(),
            candidate: run.candidate.clone(),
            config_commits: run.config_commits.clone(),
        }
    }
}

/// A candidate's consecutive runs on one lane, newest first (never empty).
#[derive(Debug, Clone)]
pub struct Stretch {
    pub candidate: Tested,
    pub runs: Vec<RunRecord>,
}

impl Stretch {
    pub fn newest(&self) -> &RunRecord {
        &self.runs[0]
    }
}

type Lane = (Vec<String>, Vec<String>);

/// Runs read past a full page at most, looking for the older runs of its stretches: a lane
/// that never sees another candidate (a one-off) would otherwise read the whole history.
pub const READ_PAST_PAGE: usize = 10_000;

/// The newest `limit` stretches of `runs` (newest first), reading no further than needed:
/// it stops once each of them has met an older run of another candidate on its lane, the
/// runs end, or [`READ_PAST_PAGE`] runs were read past the page's last new stretch (what
/// was read is what they show).
pub fn stretches<E>(
    runs: impl IntoIterator<Item = Result<RunRecord, E>>,
    limit: usize,
) -> Result<Vec<Stretch>, E> {
    let mut out: Vec<Stretch> = Vec::new();
    // Lane → the stretch it is in (an index into `out`), or None once that stretch is
    // beyond the limit.
    let mut open: HashMap<Lane, Option<usize>> = HashMap::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut past_page = 0;
    let mut runs = runs.into_iter();
    loop {
        if out.len() == limit {
            if past_page == READ_PAST_PAGE {
                break;
            }
            past_page += 1;
        }
        let Some(run) = runs.next() else { break };
        let run = run?;
        let lane = (run.pipelines.clone(), run.environments.clone());
        let candidate = Tested::of(&run);
        match open.get(&lane) {
            Some(Some(i)) if out[*i].candidate == candidate => out[*i].runs.push(run),
            Some(None) => {}
            _ if out.len() < limit => {
                open.insert(lane, Some(out.len()));
                out.push(Stretch {
                    candidate,
                    runs: vec![run],
                });
            }
            _ => {
                open.insert(lane, None);
            }
        }
        if out.len() == limit && open.values().all(Option::is_none) {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, revision: &str, pipeline: &str) -> Result<RunRecord, ()> {
        Ok(RunRecord {
            revision: revision.into(),
            pipelines: vec![pipeline.into()],
            ..RunRecord::for_test(id)
        })
    }

    fn ids(s: &Stretch) -> Vec<&str> {
        s.runs.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn consecutive_runs_of_a_candidate_are_one_stretch_per_lane() {
        let runs = vec![
            run("9", "c", "a"),
            run("8", "y", "b"),
            run("7", "c", "a"),
            run("6", "b", "a"),
            run("5", "y", "b"),
            run("4", "b", "a"),
            run("3", "c", "a"),
        ];
        let all = stretches(runs.clone(), 10).unwrap();
        let got: Vec<(String, Vec<&str>)> = all
            .iter()
            .map(|s| (s.candidate.revision.clone(), ids(s)))
            .collect();
        assert_eq!(
            got,
            vec![
                ("c".to_string(), vec!["9", "7"]),
                ("y".to_string(), vec!["8", "5"]),
                ("b".to_string(), vec!["6", "4"]),
                // Back to an older candidate: a new stretch.
                ("c".to_string(), vec!["3"]),
            ]
        );
        // The limit counts stretches, each still whole.
        let two = stretches(runs, 2).unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(ids(&two[0]), vec!["9", "7"]);
        assert_eq!(ids(&two[1]), vec!["8", "5"]);
    }

    #[test]
    fn a_new_config_commit_is_a_new_candidate() {
        let mut other = run("1", "r", "a").unwrap();
        other.config_commits.insert("local".into(), "abc".into());
        let all = stretches(vec![run("2", "r", "a"), Ok(other)], 10).unwrap();
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn reading_stops_once_the_page_is_whole() {
        let mut read = 0;
        let runs = (0..1000).rev().map(|i| {
            read += 1;
            run(&format!("{i:04}"), &format!("rev{i}"), "a")
        });
        let page = stretches(runs, 50).unwrap();
        assert_eq!(page.len(), 50);
        // The 51st run closed the 50th stretch.
        assert_eq!(read, 51);
    }

    #[test]
    fn a_lane_that_never_closes_is_read_only_so_far() {
        let mut read = 0;
        // A one-off lane first, then a long history on another lane.
        let runs = std::iter::once(run("z", "once", "other"))
            .chain((0..50_000).map(|i| run(&format!("{i:05}"), "same", "a")))
            .inspect(|_| read += 1);
        let page = stretches(runs, 1).unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(read, 1 + READ_PAST_PAGE);
    }
}
