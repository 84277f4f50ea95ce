//! Generator definitions: `testdata/*.yaml`, a kind, the snapshots it reads and its
//! parameters' defaults. Parsed from text (a [`SourceFile`]), so tests need no files.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::Deserialize;

use crate::scenario::diagnostic::did_you_mean;
use crate::source::{Finding, SourceFile, locate_key};

/// What a generator produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An instrument list: one symbol per line after a `#` header comment.
    Instruments,
    /// An order file: CSV `id,side,symbol,qty,price`.
    Orders,
}

/// A parameter a kind knows: its name, default, and what it means.
pub struct ParamSpec {
    pub name: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

const fn param(name: &'static str, default: &'static str, doc: &'static str) -> ParamSpec {
    ParamSpec { name, default, doc }
}

const INSTRUMENTS_PARAMS: &[ParamSpec] = &[
    param(
        "markets",
        "",
        "comma list of markets to keep; empty = every market",
    ),
    param(
        "symbols",
        "",
        "comma list of symbols to keep; empty = every instrument",
    ),
];

const ORDERS_PARAMS: &[ParamSpec] = &[
    param("count", "10000", "how many orders (1 to 100000000)"),
    param("seed", "1", "the random seed (0 to 18446744073709551615)"),
    param(
        "symbols",
        "",
        "comma list of symbols to draw from; empty = every symbol in the flow",
    ),
    param(
        "price_stddev_pct",
        "0.5",
        "price standard deviation, percent of ref_price (0 to 50)",
    ),
    param(
        "qty_stddev_pct",
        "50",
        "quantity standard deviation, percent of mean_qty (0 to 100)",
    ),
    param("max_qty", "0", "largest quantity; 0 = no limit"),
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Instruments => "instruments",
            Kind::Orders => "orders",
        }
    }

    /// The snapshots a kind reads, by the name the definition gives them.
    pub fn snapshots(self) -> &'static [&'static str] {
        match self {
            Kind::Instruments => &["instruments"],
            Kind::Orders => &["instruments", "flow"],
        }
    }

    pub fn params(self) -> &'static [ParamSpec] {
        match self {
            Kind::Instruments => INSTRUMENTS_PARAMS,
            Kind::Orders => ORDERS_PARAMS,
        }
    }

    fn known_params(self) -> String {
        let names: Vec<&str> = self.params().iter().map(|p| p.name).collect();
        names.join(", ")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionFile {
    kind: Kind,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    snapshots: BTreeMap<String, String>,
    #[serde(default)]
    params: BTreeMap<String, serde_yaml::Value>,
}

/// A parsed, checked definition: every snapshot name and param name is known.
#[derive(Clone, Debug)]
pub struct Definition {
    pub file: SourceFile,
    pub kind: Kind,
    pub description: Option<String>,
    /// Snapshot name → path relative to `testdata/` (relative, no `..`).
    pub snapshots: BTreeMap<String, String>,
    /// The definition's own param values (defaults for the environment's overrides).
    pub params: BTreeMap<String, String>,
}

impl Definition {
    pub fn parse(file: &SourceFile) -> Result<Definition, Vec<Finding>> {
        let spec: DefinitionFile =
            serde_yaml::from_str(&file.text).map_err(|e| vec![Finding::yaml(file, &e)])?;
        let kind = spec.kind;
        let mut findings = Vec::new();
        let at = |key: &[&str], message: String| {
            let (line, col) = locate_key(&file.text, key).unwrap_or((1, 1));
            Finding::at(file, line, col, key.last().map_or(1, |k| k.len()), message)
        };

        for (name, path) in &spec.snapshots {
            if !kind.snapshots().contains(&name.as_str()) {
                findings.push(
                    at(
                        &["snapshots", name],
                        format!("`{}` generators read no snapshot `{name}`", kind.name()),
                    )
                    .help(format!("they read: {}", kind.snapshots().join(", "))),
                );
            } else if !is_plain_relative(path) {
                findings.push(
                    at(
                        &["snapshots", name],
                        format!("snapshot path `{path}` must stay inside testdata/"),
                    )
                    .help("write it relative to testdata/, without `..`"),
                );
            }
        }
        for want in kind.snapshots() {
            if !spec.snapshots.contains_key(*want) {
                let key: &[&str] = if spec.snapshots.is_empty() {
                    &["kind"]
                } else {
                    &["snapshots"]
                };
                findings.push(
                    at(
                        key,
                        format!("`{}` generators need the snapshot `{want}`", kind.name()),
                    )
                    .help(format!(
                        "add it under `snapshots:`, e.g. `{want}: snapshots/{}`",
                        if *want == "flow" {
                            "order_flow.json"
                        } else {
                            "instruments.csv"
                        }
                    )),
                );
            }
        }

        let mut params = BTreeMap::new();
        for (name, value) in &spec.params {
            if !kind.params().iter().any(|p| p.name == name) {
                findings.push(unknown_param(
                    at(
                        &["params", name],
                        format!("unknown param `{name}` for `{}` generators", kind.name()),
                    ),
                    kind,
                    name,
                ));
                continue;
            }
            match scalar(value) {
                Some(text) => {
                    params.insert(name.clone(), text);
                }
                None => findings.push(
                    at(
                        &["params", name],
                        format!("param `{name}` must be a single value"),
                    )
                    .help("write a number or a string; a list of symbols is `A,B,C`"),
                ),
            }
        }
        if findings.is_empty() {
            Ok(Definition {
                file: file.clone(),
                kind,
                description: spec.description,
                snapshots: spec.snapshots,
                params,
            })
        } else {
            Err(findings)
        }
    }

    /// A finding at a param's key in this definition (or at `params:`, or the top).
    pub fn at_param(&self, name: &str, message: String) -> Finding {
        self.at(&["params", name], message)
    }

    /// A finding at a key path of this definition (or its deepest ancestor, or the top).
    pub fn at(&self, key: &[&str], message: String) -> Finding {
        let (line, col) = locate_key(&self.file.text, key).unwrap_or((1, 1));
        Finding::at(
            &self.file,
            line,
            col,
            key.last().map_or(1, |k| k.len()),
            message,
        )
    }
}

/// Adds "did you mean" or the list of known params to a finding.
pub fn unknown_param(f: Finding, kind: Kind, name: &str) -> Finding {
    let known = kind.known_params();
    match did_you_mean(name, kind.params().iter().map(|p| p.name)) {
        Some(close) => f.help(format!("did you mean `{close}`? known params: {known}")),
        None => f.help(format!("known params: {known}")),
    }
}

/// A YAML scalar as text; a list of scalars joined with commas; `None` for a map.
fn scalar(value: &serde_yaml::Value) -> Option<String> {
    use serde_yaml::Value;
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Sequence(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|v| match v {
                    Value::Sequence(_) => None,
                    v => scalar(v),
                })
                .collect();
            parts.map(|p| p.join(","))
        }
        Value::Mapping(_) | Value::Tagged(_) => None,
    }
}

/// Relative, and no `..`: a snapshot cannot name a file outside `testdata/`.
pub fn is_plain_relative(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Definition, String> {
        let file = SourceFile {
            path: "def.yaml".into(),
            text: text.into(),
        };
        Definition::parse(&file).map_err(|f| f.iter().map(|f| f.to_string()).collect())
    }

    /// `input` parses (`expected` empty) or fails with every string of `expected`.
    fn check(input: &str, expected: &[&str]) {
        match parse(input) {
            Ok(_) if expected.is_empty() => {}
            Ok(d) => panic!("expected {expected:?}, parsed {d:?}"),
            Err(e) => {
                assert!(!expected.is_empty(), "unexpected errors:\n{e}");
                for want in expected {
                    assert!(e.contains(want), "expected {want:?} in:\n{e}");
                }
            }
        }
    }

    const ORDERS: &str = "kind: orders\nsnapshots:\n  instruments: i.csv\n  flow: f.json\n";

    #[test]
    fn definitions_parse() {
        let d = parse(&format!(
            "{ORDERS}description: x\nparams:\n  count: 10\n  seed: 42\n  symbols: [A, B]\n  price_stddev_pct: 0.5\n  max_qty:\n"
        ))
        .unwrap();
        assert_eq!(d.kind, Kind::Orders);
        assert_eq!(d.params["count"], "10");
        assert_eq!(d.params["symbols"], "A,B");
        assert_eq!(d.params["price_stddev_pct"], "0.5");
        assert_eq!(d.params["max_qty"], "");
        check(
            "kind: instruments\nsnapshots:\n  instruments: snapshots/i.csv\n",
            &[],
        );
    }

    #[test]
    fn definition_errors_are_located() {
        check(
            "kind: trades\n",
            &[
                "unknown variant `trades`, expected `instruments` or `orders`",
                "def.yaml:1:7",
            ],
        );
        check(
            "kind: orders\nextra: 1\n",
            &["unknown field `extra`", "def.yaml:2:1"],
        );
        check(
            &format!("{ORDERS}params:\n  cout: 10\n"),
            &[
                "unknown param `cout` for `orders` generators",
                "def.yaml:6:3",
                "did you mean `count`?",
                "known params: count, seed, symbols, price_stddev_pct, qty_stddev_pct, max_qty",
            ],
        );
        check(
            &format!("{ORDERS}params:\n  zzz: 10\n"),
            &["known params: count, seed"],
        );
        check(
            "kind: orders\nsnapshots:\n  instruments: i.csv\n",
            &[
                "`orders` generators need the snapshot `flow`",
                "def.yaml:2:1",
            ],
        );
        check(
            "kind: instruments\nsnapshots:\n  instruments: i.csv\n  flow: f.json\n",
            &[
                "`instruments` generators read no snapshot `flow`",
                "def.yaml:4:3",
            ],
        );
        check(
            "kind: instruments\nsnapshots:\n  instruments: ../../etc/passwd\n",
            &["must stay inside testdata/"],
        );
        check(
            &format!("{ORDERS}params:\n  count: {{a: 1}}\n"),
            &["param `count` must be a single value"],
        );
    }
}
