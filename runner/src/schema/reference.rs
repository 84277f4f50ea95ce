//! The key reference (docs/reference.md's generated part): every key of both schemas,
//! section by section, with its type, whether it is required, and its doc comment —
//! which says what it does, its default and an example. Rendered from the schema, so a
//! key cannot be added, renamed or removed without the reference following.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::{Kind, schema};

/// The reference of both kinds of file, as markdown.
pub fn reference() -> String {
    let mut out = String::new();
    for kind in Kind::ALL {
        let root = schema(kind);
        let mut walk = Walk {
            defs: root.get("definitions").and_then(Value::as_object),
            out: &mut out,
            done: BTreeSet::new(),
        };
        let title = format!("{} files (`{}`)", capitalized(kind.name()), kind.files());
        walk.object(&title, None, &root, 2);
    }
    out
}

struct Walk<'a> {
    defs: Option<&'a Map<String, Value>>,
    out: &'a mut String,
    /// Definitions already given a section (one may be reached by two paths).
    done: BTreeSet<String>,
}

impl Walk<'_> {
    /// A section for the object `schema` at `path` (`None`: the file itself), then one
    /// for each object below it.
    fn object(&mut self, title: &str, path: Option<&str>, schema: &Value, level: usize) {
        let _ = writeln!(self.out, "{} {title}\n", "#".repeat(level));
        if let Some(about) = description(schema) {
            let _ = writeln!(self.out, "{about}\n");
        }
        let required: BTreeSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let _ = writeln!(self.out, "| key | type | |\n|---|---|---|");
        let mut below = Vec::new();
        for (key, prop) in properties(schema) {
            let shape = shape(self.defs, prop);
            let about = description(prop)
                .or_else(|| shape.child.and_then(|(_, c)| description(c)))
                .unwrap_or_default();
            let needed = if required.contains(key.as_str()) {
                "**required.** "
            } else {
                ""
            };
            let _ = writeln!(
                self.out,
                "| `{key}` | {} | {needed}{} |",
                shape.kind,
                about.replace('|', "\\|")
            );
            if let Some((name, child)) = shape.child
                && self.done.insert(name.to_string())
            {
                let at = match path {
                    Some(p) => format!("{p}.{key}{}", shape.suffix),
                    None => format!("{key}{}", shape.suffix),
                };
                below.push((at, child));
            }
        }
        self.out.push('\n');
        for (at, child) in below {
            self.object(&format!("`{at}`"), Some(&at), child, 3);
        }
    }
}

/// What a property holds, as the reference shows it.
struct Shape<'a> {
    /// `string`, `list of string`, `map of name → object`…
    kind: String,
    /// The object it holds (directly, in a list or as a map's values), by definition name.
    child: Option<(&'a str, &'a Value)>,
    /// How the path continues to that object: `` (a field), `[]` (a list), `.<name>` (a map).
    suffix: &'static str,
}

fn shape<'a>(defs: Option<&'a Map<String, Value>>, prop: &'a Value) -> Shape<'a> {
    let prop = non_null(prop);
    if let Some(items) = prop.get("items") {
        let inner = shape(defs, items);
        return Shape {
            kind: format!("list of {}", inner.kind),
            suffix: if inner.child.is_some() { "[]" } else { "" },
            child: inner.child,
        };
    }
    if let Some(values) = prop.get("additionalProperties").filter(|v| v.is_object()) {
        let inner = shape(defs, values);
        return Shape {
            kind: format!("map of name → {}", inner.kind),
            suffix: if inner.child.is_some() { ".<name>" } else { "" },
            child: inner.child,
        };
    }
    if let Some((name, def)) = reference_of(defs, prop) {
        let inner = shape(defs, def);
        if inner.kind == "object" {
            return Shape {
                kind: "object".into(),
                child: Some((name, def)),
                suffix: "",
            };
        }
        return inner;
    }
    if let Some(choices) = prop.get("oneOf").and_then(Value::as_array) {
        let consts: Vec<String> = choices
            .iter()
            .filter_map(|c| c.get("const").and_then(Value::as_str))
            .map(|c| format!("`{c}`"))
            .collect();
        if consts.len() == choices.len() {
            return plain(consts.join(" \\| "));
        }
    }
    if let Some(choices) = prop.get("anyOf").and_then(Value::as_array) {
        // A scenario entry: a path, or an object.
        let shapes: Vec<Shape> = choices.iter().map(|c| shape(defs, c)).collect();
        let kind = shapes
            .iter()
            .map(|s| s.kind.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        let child = shapes.into_iter().find_map(|s| s.child);
        return Shape {
            kind,
            child,
            suffix: "",
        };
    }
    match prop.get("type") {
        Some(Value::String(t)) => plain(t.clone()),
        Some(Value::Array(types)) => plain(
            types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect::<Vec<_>>()
                .join(" or "),
        ),
        _ => plain("any".into()),
    }
}

fn plain(kind: String) -> Shape<'static> {
    Shape {
        kind,
        child: None,
        suffix: "",
    }
}

/// `Option<T>` as schemars writes it: `anyOf: [T, null]`, or `allOf: [T]` with a
/// description beside the reference. Both read as `T`.
fn non_null(prop: &Value) -> &Value {
    for key in ["anyOf", "allOf"] {
        if let Some(choices) = prop.get(key).and_then(Value::as_array) {
            let real: Vec<&Value> = choices
                .iter()
                .filter(|c| c.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if real.len() == 1 {
                return real[0];
            }
        }
    }
    prop
}

fn reference_of<'a>(
    defs: Option<&'a Map<String, Value>>,
    prop: &Value,
) -> Option<(&'a str, &'a Value)> {
    let name = prop.get("$ref")?.as_str()?.strip_prefix("#/definitions/")?;
    defs?.get_key_value(name).map(|(k, v)| (k.as_str(), v))
}

fn properties(schema: &Value) -> impl Iterator<Item = (&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
}

/// A doc comment as one paragraph.
fn description(schema: &Value) -> Option<String> {
    let text = schema.get("description")?.as_str()?;
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
