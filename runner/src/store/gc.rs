//! Keeping history healthy: pruning runs nobody will compare with again, with what the
//! daemons observed around them, and compacting the store's files afterwards (sled does
//! not give freed space back by itself: the store is copied into fresh files).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{Store, StoreError};
use crate::record::{RunRecord, Status};

/// What a prune did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub runs: usize,
    pub scenarios: usize,
    pub steps: usize,
    pub observations: usize,
}

/// The runs to keep: every one in `keep_always` (releases), every unfinished one, and the
/// newest `keep` of each pipeline-and-environment combination. `runs` newest first.
pub fn kept(runs: &[RunRecord], keep: usize, keep_always: &BTreeSet<String>) -> BTreeSet<String> {
    let mut per: BTreeMap<(Vec<String>, Vec<String>), usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for r in runs {
        let n = per
            .entry((r.pipelines.clone(), r.environments.clone()))
            .or_default();
        if keep_always.contains(&r.id) || r.status == Status::Running || *n < keep {
            out.insert(r.id.clone());
        }
        *n += 1;
    }
    out
}

fn micros(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_micros())
        .ok()
}

impl Store {
    /// Deletes every run not in `keep`, with its scenarios, steps and revision entry, and
    /// every observation outside the time of a kept run on its environment.
    pub fn prune(&self, keep: &BTreeSet<String>) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        // Deleting writes too (sled logs it), a little: it may dig into the reserve, as a
        // run's last record does, so a store that filled its disk can still be pruned.
        self.room(super::space::FINAL_RESERVE)?;
        let detail = self.detail()?;
        let runs = self.runs(usize::MAX)?;
        // Per environment: the time windows of kept runs, where observations stay.
        let mut windows: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
        for r in runs.iter().filter(|r| keep.contains(&r.id)) {
            let from = micros(&r.started_at).unwrap_or(i64::MIN);
            let to = r
                .finished_at
                .as_deref()
                .and_then(micros)
                .unwrap_or(i64::MAX);
            for env in &r.environments {
                windows.entry(env.clone()).or_default().push((from, to));
            }
        }
        // Sorted and merged, for a binary search per observation.
        for w in windows.values_mut() {
            *w = merged(std::mem::take(w));
        }
        // The catalog first, made durable: a crash part-way leaves records in the detail
        // that no run points at (harmless, pruned by the next gc), never a listed run
        // without its scenarios.
        let doomed_runs: Vec<&RunRecord> = runs.iter().filter(|r| !keep.contains(&r.id)).collect();
        for r in &doomed_runs {
            let mut rev = r.revision.as_bytes().to_vec();
            rev.push(0);
            rev.extend_from_slice(r.id.as_bytes());
            self.revisions.remove(rev)?;
            self.active.remove(r.id.as_bytes())?;
            self.runs.remove(r.id.as_bytes())?;
            pruned.runs += 1;
        }
        self.db.flush()?;
        // Then the detail of every run the catalog no longer lists: the pruned ones, and
        // any a gc cut short before this one left behind. (A run begun meanwhile is listed:
        // its record comes before its scenarios.)
        let mut unlisted: BTreeSet<String> = doomed_runs.iter().map(|r| r.id.clone()).collect();
        let mut last: Option<Vec<u8>> = None;
        for entry in detail.scenarios.iter().keys() {
            let k = entry?;
            let id = k.split(|b| *b == 0).next().unwrap_or_default();
            if last.as_deref() == Some(id) {
                continue;
            }
            last = Some(id.to_vec());
            if !self.runs.contains_key(id)? {
                unlisted.insert(String::from_utf8_lossy(id).into_owned());
            }
        }
        for id in &unlisted {
            let mut prefix = id.as_bytes().to_vec();
            prefix.push(0);
            let mut artifacts = 0;
            let mut judged = 0;
            for (tree, count) in [
                (&detail.scenarios, &mut pruned.scenarios),
                (&detail.steps, &mut pruned.steps),
                (&detail.artifacts, &mut artifacts),
                (&detail.judged, &mut judged),
            ] {
                let keys: Vec<_> = tree.scan_prefix(&prefix).keys().collect::<Result<_, _>>()?;
                *count += keys.len();
                for k in keys {
                    tree.remove(k)?;
                }
            }
        }
        // Observations: `<env> 0x00 <time>…`, and the same behind 0xfe (events index)
        // and 0xfd (metric chunks, by their first sample); 0xff marks stay.
        let mut doomed = Vec::new();
        for entry in detail.observations.iter().keys() {
            let k = entry?;
            let body = match k.first() {
                Some(0xff) => continue,
                Some(0xfe) | Some(0xfd) => &k[1..],
                _ => &k[..],
            };
            let Some(nul) = body.iter().position(|b| *b == 0) else {
                continue;
            };
            let env = String::from_utf8_lossy(&body[..nul]);
            let Some(time) = body.get(nul + 1..nul + 9) else {
                continue;
            };
            let at = (u64::from_be_bytes(time.try_into().unwrap_or_default()) as i128
                + i64::MIN as i128) as i64;
            // A chunk begun before a window may still hold samples in it.
            let slack = if k.first() == Some(&0xfd) {
                super::chunk::MAX_SPAN_US
            } else {
                0
            };
            // The first window that has not ended before `at`.
            let inside = windows.get(env.as_ref()).is_some_and(|w| {
                let i = w.partition_point(|(_, to)| *to < at);
                w.get(i)
                    .is_some_and(|(from, _)| at >= from.saturating_sub(slack))
            });
            if !inside {
                doomed.push(k);
            }
        }
        for k in doomed {
            if k.first() != Some(&0xfe) {
                pruned.observations += 1;
            }
            detail.observations.remove(k)?;
        }
        self.flush()?;
        Ok(pruned)
    }
}

/// Time windows sorted by start, overlapping ones merged: their ends ascend too.
fn merged(mut windows: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    windows.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(windows.len());
    for (from, to) in windows {
        match out.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

/// Copies the store at `path` into fresh files and puts them in its place: the space
/// pruned records held is given back. Nobody may have the store open (sled's lock says
/// so: the copy opens it). Returns the sizes before and after, in bytes.
pub fn compact(path: &Path) -> Result<(u64, u64), StoreError> {
    let before = size(path);
    let fresh = sibling(path, "compacting");
    let old = sibling(path, "before-compaction");
    let _ = std::fs::remove_dir_all(&fresh);
    // As `Store::open` does: waiting a moment for the lock a closing store still holds.
    // Held until the new files are in place, so nobody writes to the old ones meanwhile.
    let source = super::store::open_db(path)?;
    let detail = super::detail::path_of(path);
    let source_detail = match detail.is_dir() {
        true => Some(super::store::open_db(&detail)?),
        false => None,
    };
    // The copy holds only what pruning kept, usually far less than the files it replaces:
    // its room is checked as it grows, not guessed from the old files' size (which, on a
    // disk the store filled, never fits and left no way out).
    let copied = copy_into(&source, &fresh, path).and_then(|()| match &source_detail {
        Some(source_detail) => copy_into(source_detail, &super::detail::path_of(&fresh), path),
        None => Ok(()),
    });
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&fresh);
        return Err(e);
    }
    // Swap: the old files stay until the new ones are in place; a crash in between
    // leaves the old ones under `.before-compaction`, which `Store::open` puts back.
    std::fs::rename(path, &old).map_err(|e| io_error(path, e))?;
    if let Err(e) = std::fs::rename(&fresh, path) {
        let _ = std::fs::rename(&old, path);
        return Err(io_error(&fresh, e));
    }
    drop(source_detail);
    drop(source);
    let _ = std::fs::remove_dir_all(&old);
    Ok((before, size(path)))
}

/// Bytes of records copied between two checks of the room left: small, so a disk the store
/// filled down to its final reserve still has room for the first chunk.
const CHUNK: u64 = 256 * 1024;

/// Every tree of `source` into a new database at `to`, durable when this returns. Before
/// each chunk, the disk of `store` must have room for it (twice over: sled's log holds
/// more than the records) and the final reserve after: sled never sees a full disk.
fn copy_into(source: &sled::Db, to: &Path, store: &Path) -> Result<(), StoreError> {
    let target = sled::Config::new()
        .path(to)
        .open()
        .map_err(|e| open_error(to, e))?;
    let mut pending = 0u64;
    for name in source.tree_names() {
        let from = source.open_tree(&name)?;
        let into = target.open_tree(&name)?;
        for entry in from.iter() {
            let (k, v) = entry?;
            if pending == 0 {
                super::space::room(store, super::space::FINAL_RESERVE + 2 * CHUNK)?;
            }
            pending += (k.len() + v.len()) as u64;
            into.insert(k, v)?;
            if pending >= CHUNK {
                target.flush()?;
                pending = 0;
            }
        }
    }
    target.flush()?;
    Ok(())
}

/// A compaction a crash cut short leaves the store under `.before-compaction`: put it
/// back before anything opens (or creates) a store at `path`.
pub fn recover_compaction(path: &Path) -> Option<String> {
    let old = sibling(path, "before-compaction");
    if path.exists() || !old.is_dir() {
        return None;
    }
    std::fs::rename(&old, path).ok()?;
    let _ = std::fs::remove_dir_all(sibling(path, "compacting"));
    Some(format!(
        "put the store {} back from an interrupted compaction",
        path.display()
    ))
}

fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "db".into());
    path.with_file_name(format!("{name}.{what}"))
}

fn open_error(path: &Path, e: sled::Error) -> StoreError {
    StoreError::Open {
        path: path.to_path_buf(),
        source: e,
    }
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Open {
        path: path.to_path_buf(),
        source: sled::Error::Io(e),
    }
}

/// The bytes of every file under `path`.
fn size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, pipeline: &str, status: Status) -> RunRecord {
        RunRecord {
            pipelines: vec![pipeline.into()],
            status,
            ..RunRecord::for_test(id)
        }
    }

    #[test]
    fn a_compaction_cut_short_is_put_back_before_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        // The crash came after the old files were moved aside, before the new ones moved in.
        std::fs::create_dir(sibling(&path, "before-compaction")).unwrap();
        std::fs::write(sibling(&path, "before-compaction").join("db"), b"old").unwrap();
        std::fs::create_dir(sibling(&path, "compacting")).unwrap();
        assert!(recover_compaction(&path).is_some());
        assert_eq!(std::fs::read(path.join("db")).unwrap(), b"old");
        assert!(!sibling(&path, "compacting").exists());
        // With the store in place there is nothing to do.
        assert!(recover_compaction(&path).is_none());
    }

    #[test]
    fn observations_stay_inside_the_windows_of_kept_runs_only() {
        use crate::store::ObservationRecord;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let at = |minute: u32| format!("2026-11-25T10:{minute:02}:00Z");
        let us = |minute: u32| micros(&at(minute)).unwrap();
        // Kept: 10:00–10:10 and 10:30–10:40; pruned: 10:15–10:20.
        for (id, from, to) in [("1", 0, 10), ("2", 15, 20), ("3", 30, 40)] {
            let run = RunRecord {
                started_at: at(from),
                finished_at: Some(at(to)),
                ..RunRecord::for_test(id)
            };
            store.begin_run(&run).unwrap();
            store.finish_run(&run).unwrap();
        }
        let event = |minute: u32, n: u32| {
            (
                ObservationRecord {
                    at_us: us(minute),
                    environment: "local".into(),
                    daemon: "d".into(),
                    source: "c".into(),
                    kind: "event".into(),
                    name: "state".into(),
                    text: Some(format!("at {minute}")),
                    number: None,
                },
                n,
            )
        };
        let items: Vec<_> = [5, 12, 17, 35, 50].iter().map(|m| event(*m, 0)).collect();
        store.put_observations(&items, &[]).unwrap();
        let keep = BTreeSet::from(["1".to_string(), "3".to_string()]);
        let pruned = store.prune(&keep).unwrap();
        assert_eq!(pruned.runs, 1);
        assert_eq!(pruned.observations, 3);
        let left: Vec<String> = store
            .events("local", i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .filter_map(|o| o.text)
            .collect();
        assert_eq!(left, vec!["at 5", "at 35"]);
    }

    #[test]
    fn what_a_cut_short_prune_left_in_the_detail_goes_with_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        for id in ["kept", "orphan"] {
            let run = RunRecord::for_test(id);
            store.begin_run(&run).unwrap();
            let sc = crate::record::ScenarioRecord::for_test(id, 0, "s", Status::Passed);
            store.finish_scenario(&sc).unwrap();
            store.finish_run(&run).unwrap();
        }
        // A prune that removed the run from the catalog and crashed before its detail.
        store.runs.remove("orphan").unwrap();
        let keep = BTreeSet::from(["kept".to_string()]);
        let pruned = store.prune(&keep).unwrap();
        assert_eq!((pruned.runs, pruned.scenarios), (0, 1));
        assert!(store.scenarios("orphan").unwrap().is_empty());
        assert_eq!(store.scenarios("kept").unwrap().len(), 1);
    }

    #[test]
    fn windows_merge_so_their_ends_ascend() {
        assert_eq!(
            merged(vec![(50, 60), (10, 20), (15, 40), (41, 45), (45, 47)]),
            vec![(10, 40), (41, 47), (50, 60)]
        );
    }

    #[test]
    fn releases_unfinished_runs_and_the_newest_of_each_pipeline_stay() {
        let runs = vec![
            run("6", "a", Status::Running),
            run("5", "a", Status::Passed),
            run("4", "b", Status::Passed),
            run("3", "a", Status::Failed),
            run("2", "a", Status::Passed),
            run("1", "a", Status::Passed),
        ];
        let releases = BTreeSet::from(["1".to_string()]);
        let kept = kept(&runs, 2, &releases);
        assert_eq!(
            kept.into_iter().collect::<Vec<_>>(),
            vec!["1", "4", "5", "6"]
        );
    }
}
