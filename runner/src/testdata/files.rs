//! The file side: reading definitions and snapshots, input and output hashes, the
//! manifest of what was generated, atomic writes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::GENERATOR_VERSION;
use super::definition::{Definition, is_plain_relative};
use super::generate::{Generator, prepare};
use crate::source::{Finding, SourceFile};

/// A data set to generate: `testdata/<generator>` to `<runtime dir>/data/<dest>` (an
/// environment's `data:` entry, variables filled in).
#[derive(Debug, Clone)]
pub struct DataSet {
    pub generator: String,
    pub path: PathBuf,
    pub dest: String,
    /// Parameter overrides, variables already filled in.
    pub params: BTreeMap<String, String>,
}

/// The manifest in the output directory: what was generated from which inputs.
pub const MANIFEST_FILE: &str = ".lowtouch-data.json";
const MANIFEST_VERSION: u32 = 1;

/// What happened (or, from [`plan`], would happen) to one data set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub dest: String,
    /// `false`: inputs and output unchanged, nothing generated.
    pub generated: bool,
    pub rows: u64,
    /// sha256 (hex) over the generator version, definition, snapshots and params.
    pub input_hash: String,
    /// sha256 (hex) of the output file's bytes.
    pub output_hash: String,
    pub elapsed: Duration,
}

/// One data set with its inputs read and checked, ready to generate.
#[derive(Debug)]
pub struct Loaded {
    pub dest: String,
    pub generator_name: String,
    pub generator: Generator,
    pub input_hash: String,
}

/// Reads and checks one data set: its definition, its snapshots, its params.
pub fn load(set: &DataSet) -> Result<Loaded, Vec<Finding>> {
    let file = SourceFile::read(&set.path).map_err(|f| vec![f])?;
    let def = Definition::parse(&file)?;
    let root = testdata_root(set);
    let mut snapshots = BTreeMap::new();
    let mut findings = Vec::new();
    for (name, rel) in &def.snapshots {
        let path = root.join(rel);
        match fs::read_to_string(&path) {
            Ok(text) => {
                snapshots.insert(
                    name.clone(),
                    SourceFile {
                        path,
                        text: text.into(),
                    },
                );
            }
            Err(e) => {
                let why = if e.kind() == io::ErrorKind::NotFound {
                    "not found".to_string()
                } else {
                    format!("cannot be read: {e}")
                };
                findings.push(
                    def.at(&["snapshots", name], format!("snapshot file `{rel}` {why}"))
                        .help(format!("snapshot paths are relative to {}", root.display())),
                );
            }
        }
    }
    if !findings.is_empty() {
        return Err(findings);
    }
    let origin = format!("the environment's data entry for `{}`", set.dest);
    let generator = prepare(&def, &snapshots, &set.params, &origin)?;
    let input_hash = input_hash(&def, &snapshots, &generator.params);
    Ok(Loaded {
        dest: set.dest.clone(),
        generator_name: set.generator.clone(),
        generator,
        input_hash,
    })
}

/// `<project>/testdata`: `set.path` without the components of `set.generator`.
fn testdata_root(set: &DataSet) -> PathBuf {
    let depth = Path::new(&set.generator).components().count().max(1);
    set.path
        .ancestors()
        .nth(depth)
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Loads every set, and checks no two write the same file.
fn load_all(sets: &[DataSet]) -> Result<Vec<Loaded>, Vec<Finding>> {
    let mut findings = Vec::new();
    let mut loaded = Vec::new();
    let mut dests: BTreeMap<&str, &str> = BTreeMap::new();
    for set in sets {
        if !is_plain_relative(&set.dest) || set.dest == MANIFEST_FILE {
            findings.push(
                Finding::file(&set.path, format!("data set destination `{}` is not allowed", set.dest))
                    .help(format!("write a path relative to the data directory, without `..`, other than {MANIFEST_FILE}")),
            );
            continue;
        }
        if let Some(other) = dests.insert(&set.dest, &set.generator) {
            findings.push(
                Finding::file(
                    &set.path,
                    format!(
                        "`{}` and `{}` both generate `{}`",
                        other, set.generator, set.dest
                    ),
                )
                .help("give every data entry its own `dest`"),
            );
            continue;
        }
        match load(set) {
            Ok(l) => loaded.push(l),
            Err(mut f) => findings.append(&mut f),
        }
    }
    if findings.is_empty() {
        Ok(loaded)
    } else {
        Err(findings)
    }
}

/// Validates the data sets' definitions, snapshots and params without generating.
pub fn check(sets: &[DataSet]) -> Vec<Finding> {
    load_all(sets).err().unwrap_or_default()
}

/// Generates every data set into `dir/<dest>` (`dir` created if needed), skipping a set
/// whose input hash equals the one recorded in `dir/.lowtouch-data.json` and whose
/// output file still has the recorded hash. Each output is written to a temporary file
/// and renamed over the old one; the manifest likewise. Nothing is written unless every
/// set checks out.
pub fn apply(sets: &[DataSet], dir: &Path) -> Result<Vec<Outcome>, Vec<Finding>> {
    run(sets, dir, true)
}

/// What [`apply`] would do, without writing anything: `generated: true` means the set
/// would be regenerated (its `rows` and `output_hash` are those of the new output).
pub fn plan(sets: &[DataSet], dir: &Path) -> Result<Vec<Outcome>, Vec<Finding>> {
    run(sets, dir, false)
}

fn run(sets: &[DataSet], dir: &Path, write: bool) -> Result<Vec<Outcome>, Vec<Finding>> {
    let loaded = load_all(sets)?;
    let mut manifest = Manifest::read(dir);
    if write && let Err(e) = fs::create_dir_all(dir) {
        return Err(vec![Finding::file(
            dir,
            format!("cannot create the data directory: {e}"),
        )]);
    }
    let mut outcomes = Vec::new();
    let mut findings = Vec::new();
    for l in loaded {
        let start = Instant::now();
        let path = dir.join(&l.dest);
        if let Some(rec) = manifest.unchanged(&l, &path) {
            outcomes.push(Outcome {
                dest: l.dest,
                generated: false,
                rows: rec.rows,
                input_hash: l.input_hash,
                output_hash: rec.output_hash,
                elapsed: start.elapsed(),
            });
            continue;
        }
        let result = if write {
            write_atomic(&path, &l.generator)
        } else {
            let mut sink = HashWriter::new(io::sink());
            l.generator.write(&mut sink).map(|rows| (rows, sink.hex()))
        };
        match result {
            Ok((rows, output_hash)) => {
                if write {
                    manifest.sets.insert(
                        l.dest.clone(),
                        Recorded {
                            generator: l.generator_name.clone(),
                            input_hash: l.input_hash.clone(),
                            output_hash: output_hash.clone(),
                            rows,
                        },
                    );
                }
                outcomes.push(Outcome {
                    dest: l.dest,
                    generated: true,
                    rows,
                    input_hash: l.input_hash,
                    output_hash,
                    elapsed: start.elapsed(),
                });
            }
            Err(e) => findings.push(Finding::file(
                &path,
                format!("cannot write the data set: {e}"),
            )),
        }
    }
    if write && let Err(e) = manifest.write(dir) {
        findings.push(Finding::file(
            &dir.join(MANIFEST_FILE),
            format!("cannot write the data manifest: {e}"),
        ));
    }
    if findings.is_empty() {
        Ok(outcomes)
    } else {
        Err(findings)
    }
}

/// One line per data set, sorted by destination: its input and output hashes and rows.
/// Stable (no times, no generated/skipped), for the config history.
pub fn manifest_text(outcomes: &[Outcome]) -> String {
    let mut sorted: Vec<&Outcome> = outcomes.iter().collect();
    sorted.sort_by(|a, b| a.dest.cmp(&b.dest));
    let mut out = format!(
        "# lowtouch data sets (test-data generator {GENERATOR_VERSION}): dest, sha256 of inputs and output, rows\n"
    );
    for o in sorted {
        out.push_str(&format!(
            "{} input={} output={} rows={}\n",
            o.dest, o.input_hash, o.output_hash, o.rows
        ));
    }
    out
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    sets: BTreeMap<String, Recorded>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Recorded {
    generator: String,
    input_hash: String,
    output_hash: String,
    rows: u64,
}

impl Manifest {
    /// The recorded manifest; a missing, unreadable or foreign one is empty (so every
    /// set is regenerated, which is always safe).
    fn read(dir: &Path) -> Manifest {
        fs::read_to_string(dir.join(MANIFEST_FILE))
            .ok()
            .and_then(|t| serde_json::from_str::<Manifest>(&t).ok())
            .filter(|m| m.version == MANIFEST_VERSION)
            .unwrap_or(Manifest {
                version: MANIFEST_VERSION,
                sets: BTreeMap::new(),
            })
    }

    /// The record of `l` if its inputs are unchanged and `path` still holds its output.
    fn unchanged(&self, l: &Loaded, path: &Path) -> Option<Recorded> {
        let rec = self.sets.get(&l.dest)?;
        if rec.input_hash != l.input_hash {
            return None;
        }
        (file_hash(path).ok()? == rec.output_hash).then(|| rec.clone())
    }

    fn write(&self, dir: &Path) -> io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        text.push('\n');
        let path = dir.join(MANIFEST_FILE);
        let tmp = temp_path(&path);
        let result = fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, &path));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// Writes `generator`'s output to `path` through a temporary file in the same
/// directory, renamed over `path` when complete: readers see the old file or the new
/// one, never half of one. No fsync: a file torn by a crash fails its output hash and
/// is regenerated by the next apply.
fn write_atomic(path: &Path, generator: &Generator) -> io::Result<(u64, String)> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut w = HashWriter::new(File::create(&tmp)?);
        let rows = generator.write(&mut w)?;
        w.inner.flush()?;
        let hash = w.hex();
        fs::rename(&tmp, path)?;
        Ok((rows, hash))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// sha256 over every input that shapes the output, each framed by its length so no
/// two different input sets hash alike.
fn input_hash(
    def: &Definition,
    snapshots: &BTreeMap<String, SourceFile>,
    params: &BTreeMap<String, String>,
) -> String {
    fn field(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let mut h = Sha256::new();
    field(&mut h, b"lowtouch test data");
    field(&mut h, GENERATOR_VERSION.as_bytes());
    field(&mut h, def.file.text.as_bytes());
    for (name, file) in snapshots {
        field(&mut h, name.as_bytes());
        field(&mut h, file.text.as_bytes());
    }
    for (k, v) in params {
        field(&mut h, k.as_bytes());
        field(&mut h, v.as_bytes());
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// sha256 of a file's bytes, read in chunks.
fn file_hash(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Passes writes through and hashes what was written.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn hex(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::generate::tests::{FLOW, INSTRUMENTS};

    const ORDERS: &str = "kind: orders\nsnapshots:\n  instruments: snapshots/instruments.csv\n  \
        flow: snapshots/order_flow.json\nparams:\n  count: 500\n  seed: 42\n";
    const LIST: &str = "kind: instruments\nsnapshots:\n  instruments: snapshots/instruments.csv\n";

    /// A project with `testdata/` (two definitions, two snapshots) and an output dir.
    struct Project {
        tmp: tempfile::TempDir,
    }

    impl Project {
        fn new() -> Project {
            let p = Project {
                tmp: tempfile::tempdir().unwrap(),
            };
            p.write("orders.yaml", ORDERS);
            p.write("instruments.yaml", LIST);
            p.write("snapshots/instruments.csv", INSTRUMENTS);
            p.write("snapshots/order_flow.json", FLOW);
            p
        }

        fn write(&self, rel: &str, text: &str) {
            let path = self.tmp.path().join("testdata").join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }

        fn set(&self, generator: &str, dest: &str, params: &[(&str, &str)]) -> DataSet {
            DataSet {
                generator: generator.into(),
                path: self.tmp.path().join("testdata").join(generator),
                dest: dest.into(),
                params: params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }
        }

        fn sets(&self, count: &str) -> Vec<DataSet> {
            vec![
                self.set("orders.yaml", "orders.csv", &[("count", count)]),
                self.set(
                    "instruments.yaml",
                    "lists/instruments.txt",
                    &[("markets", "MAIN")],
                ),
            ]
        }

        fn out(&self) -> PathBuf {
            self.tmp.path().join("out")
        }

        fn read(&self, dest: &str) -> String {
            fs::read_to_string(self.out().join(dest)).unwrap()
        }
    }

    /// Which sets `apply` generated, in order.
    fn generated(outcomes: &[Outcome]) -> Vec<(&str, bool)> {
        outcomes
            .iter()
            .map(|o| (o.dest.as_str(), o.generated))
            .collect()
    }

    fn rendered(findings: Vec<Finding>) -> String {
        findings.iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn apply_generates_then_skips_unchanged_sets() {
        let p = Project::new();
        let first = apply(&p.sets("500"), &p.out()).unwrap();
        assert_eq!(
            generated(&first),
            [("orders.csv", true), ("lists/instruments.txt", true)]
        );
        assert_eq!(first[0].rows, 500);
        assert_eq!(first[1].rows, 3);
        assert!(
            p.read("lists/instruments.txt")
                .ends_with("\nDEMO\nACME\nBIG\n")
        );
        let orders = p.read("orders.csv");
        assert_eq!(orders.lines().count(), 501);
        assert!(p.out().join(MANIFEST_FILE).is_file());
        // No temporary file is left behind.
        let names: Vec<String> = fs::read_dir(p.out())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");

        let second = apply(&p.sets("500"), &p.out()).unwrap();
        assert_eq!(
            generated(&second),
            [("orders.csv", false), ("lists/instruments.txt", false)]
        );
        assert_eq!(second[0].rows, 500, "rows come from the manifest");
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(
                (&a.input_hash, &a.output_hash),
                (&b.input_hash, &b.output_hash)
            );
        }
        assert_eq!(manifest_text(&first), manifest_text(&second));
        assert_eq!(p.read("orders.csv"), orders);
    }

    #[test]
    fn a_changed_param_or_snapshot_regenerates_only_what_it_feeds() {
        let p = Project::new();
        apply(&p.sets("500"), &p.out()).unwrap();
        let changed = apply(&p.sets("600"), &p.out()).unwrap();
        assert_eq!(
            generated(&changed),
            [("orders.csv", true), ("lists/instruments.txt", false)]
        );
        assert_eq!(p.read("orders.csv").lines().count(), 601);

        // The flow feeds only the orders.
        p.write("snapshots/order_flow.json", &FLOW.replace("0.6", "0.7"));
        let after_flow = apply(&p.sets("600"), &p.out()).unwrap();
        assert_eq!(
            generated(&after_flow),
            [("orders.csv", true), ("lists/instruments.txt", false)]
        );
        // The instruments feed both.
        p.write(
            "snapshots/instruments.csv",
            &INSTRUMENTS.replace(",100,", ",101,"),
        );
        let after_inst = apply(&p.sets("600"), &p.out()).unwrap();
        assert_eq!(
            generated(&after_inst),
            [("orders.csv", true), ("lists/instruments.txt", true)]
        );
        // So does the definition itself.
        p.write("orders.yaml", &format!("{ORDERS}# a comment\n"));
        let after_def = apply(&p.sets("600"), &p.out()).unwrap();
        assert!(after_def[0].generated);
        assert_ne!(after_def[0].input_hash, after_inst[0].input_hash);
        assert_eq!(
            after_def[0].output_hash, after_inst[0].output_hash,
            "same bytes"
        );
    }

    #[test]
    fn a_tampered_or_missing_output_is_replaced() {
        let p = Project::new();
        apply(&p.sets("500"), &p.out()).unwrap();
        let original = p.read("orders.csv");
        fs::write(
            p.out().join("orders.csv"),
            "id,side,symbol,qty,price\nx,BUY,DEMO,1,1\n",
        )
        .unwrap();
        fs::remove_file(p.out().join("lists/instruments.txt")).unwrap();
        let again = apply(&p.sets("500"), &p.out()).unwrap();
        assert_eq!(
            generated(&again),
            [("orders.csv", true), ("lists/instruments.txt", true)]
        );
        assert_eq!(p.read("orders.csv"), original);
        // A corrupt manifest only means regenerating.
        fs::write(p.out().join(MANIFEST_FILE), "{ not json").unwrap();
        let again = apply(&p.sets("500"), &p.out()).unwrap();
        assert!(again.iter().all(|o| o.generated));
    }

    #[test]
    fn plan_says_what_apply_would_do_without_writing() {
        let p = Project::new();
        let planned = plan(&p.sets("500"), &p.out()).unwrap();
        assert!(!p.out().exists(), "plan writes nothing");
        assert!(planned.iter().all(|o| o.generated));
        let applied = apply(&p.sets("500"), &p.out()).unwrap();
        assert_eq!(manifest_text(&planned), manifest_text(&applied));
        let planned = plan(&p.sets("501"), &p.out()).unwrap();
        assert_eq!(
            generated(&planned),
            [("orders.csv", true), ("lists/instruments.txt", false)]
        );
        assert_eq!(
            p.read("orders.csv").lines().count(),
            501,
            "still the old file"
        );
    }

    #[test]
    fn input_errors_are_findings_and_nothing_is_written() {
        let p = Project::new();
        p.write("broken.yaml", "kind: orders\nsnapshots:\n  instruments: snapshots/instruments.csv\n  flow: snapshots/missing.json\n");
        let mut sets = p.sets("500");
        sets.push(p.set("broken.yaml", "broken.csv", &[]));
        let err = rendered(apply(&sets, &p.out()).unwrap_err());
        assert!(
            err.contains("snapshot file `snapshots/missing.json` not found"),
            "{err}"
        );
        assert!(err.contains("broken.yaml:4:3"), "{err}");
        assert!(!p.out().exists(), "nothing written when a set is bad");

        let err = rendered(check(&[p.set(
            "orders.yaml",
            "o.csv",
            &[("count", "many")],
        )]));
        assert!(err.contains("count must be a whole number from 1 to 100000000, got `many` (set by the environment's data entry for `o.csv`)"), "{err}");

        let dup = vec![
            p.set("orders.yaml", "same.csv", &[]),
            p.set("instruments.yaml", "same.csv", &[]),
        ];
        let err = rendered(check(&dup));
        assert!(
            err.contains("`orders.yaml` and `instruments.yaml` both generate `same.csv`"),
            "{err}"
        );
        let err = rendered(check(&[p.set("orders.yaml", "../escape.csv", &[])]));
        assert!(
            err.contains("data set destination `../escape.csv` is not allowed"),
            "{err}"
        );
        let err = rendered(check(&[p.set("nope.yaml", "x", &[])]));
        assert!(err.contains("cannot read file"), "{err}");
        assert!(check(&p.sets("500")).is_empty());
    }

    #[test]
    fn manifest_text_is_sorted_and_stable() {
        let o = |dest: &str, generated| Outcome {
            dest: dest.into(),
            generated,
            rows: 3,
            input_hash: "aa".into(),
            output_hash: "bb".into(),
            elapsed: Duration::from_millis(generated as u64),
        };
        assert_eq!(
            manifest_text(&[o("z.csv", true), o("a.txt", false)]),
            "# lowtouch data sets (test-data generator 1): dest, sha256 of inputs and output, rows\n\
             a.txt input=aa output=bb rows=3\n\
             z.csv input=aa output=bb rows=3\n"
        );
    }

    #[test]
    fn the_shipped_definitions_generate() {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let set = |generator: &str, dest: &str, params: &[(&str, &str)]| DataSet {
            generator: generator.into(),
            path: testdata.join(generator),
            dest: dest.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        // As environments/local.yaml uses them.
        let sets = [
            set(
                "instruments.yaml",
                "instruments.txt",
                &[("symbols", "DEMO,ACME,ORCA,LYNX")],
            ),
            set(
                "orders.yaml",
                "orders.csv",
                &[("count", "20000"), ("symbols", "DEMO,ACME,ORCA,LYNX")],
            ),
            set("instruments.yaml", "all.txt", &[]),
            set("orders.yaml", "all.csv", &[]),
        ];
        let out = tempfile::tempdir().unwrap();
        let outcomes = apply(&sets, out.path()).unwrap_or_else(|f| panic!("{}", rendered(f)));
        assert_eq!(outcomes[0].rows, 4);
        assert_eq!(outcomes[1].rows, 20000);
        assert!(outcomes[2].rows >= 10);
        let list = fs::read_to_string(out.path().join("instruments.txt")).unwrap();
        assert!(list.starts_with("# generated by lowtouch"), "{list}");
        assert!(list.ends_with("line\nDEMO\nACME\nORCA\nLYNX\n"), "{list}");
        let orders = fs::read_to_string(out.path().join("orders.csv")).unwrap();
        assert!(
            orders.starts_with("id,side,symbol,qty,price\no00001,"),
            "{orders}"
        );
    }
}
