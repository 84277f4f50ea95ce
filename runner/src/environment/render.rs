//! Rendering an environment's config templates (minijinja, strict: an undefined variable
//! is an error naming the template's file:line and the variable).
//!
//! Every template is rendered twice: once with secrets as placeholders — the text the
//! config history and diffs see — and once with the real values, for the runtime copy
//! only. The real values never pass through the first rendering, so no template
//! expression can leak them into history.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::value::Value;
use minijinja::{Environment as Jinja, ErrorKind, UndefinedBehavior};

use super::environment::Environment;
use crate::scenario::diagnostic::did_you_mean;
use crate::source::{Finding, SourceFile};

/// The revisions a rendering comes from; they reach templates as `revisions.*` and the
/// config history's commit message.
#[derive(Debug, Clone, Default)]
pub struct Revisions {
    pub product: String,
    pub tools: String,
    pub data: String,
}

impl Revisions {
    /// One revision for everything: the project's own checkout (until repositories are
    /// watched separately).
    pub fn same(rev: &str) -> Revisions {
        Revisions {
            product: rev.to_string(),
            tools: rev.to_string(),
            data: rev.to_string(),
        }
    }
}

/// One rendered file.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub dest: String,
    /// Secrets as `<secret:NAME>`: for history and diffs.
    pub public: String,
    /// Secrets filled in: for the runtime directory only. `None` when not asked for.
    pub runtime: Option<String>,
}

pub fn placeholder(name: &str) -> String {
    format!("<secret:{name}>")
}

/// Renders every template of `env`. With `with_secrets`, also the runtime text (which
/// needs every secret to resolve).
pub fn render(
    env: &Environment,
    revisions: &Revisions,
    runtime_dir: &Path,
    with_secrets: bool,
) -> Result<Vec<Rendered>, Vec<Finding>> {
    let (jinja, sources) = load(env)?;
    let mut findings = Vec::new();
    let public_secrets: BTreeMap<String, String> = env
        .secrets
        .keys()
        .map(|k| (k.clone(), placeholder(k)))
        .collect();
    let real_secrets = if with_secrets {
        let mut real = BTreeMap::new();
        for (name, secret) in &env.secrets {
            match secret.resolve() {
                Ok(v) => {
                    real.insert(name.clone(), v);
                }
                Err(e) => findings.push(
                    Finding::file(&env.file.path, format!("secret `{name}` has no value: {e}"))
                        .help("set it where the environment says it comes from, then render again"),
                ),
            }
        }
        Some(real)
    } else {
        None
    };
    let mut out = Vec::new();
    for t in &env.templates {
        let public = match render_one(&jinja, env, t, revisions, runtime_dir, &public_secrets) {
            Ok(text) => text,
            Err(e) => {
                findings.push(template_error(&sources, &e, env));
                continue;
            }
        };
        let runtime = match &real_secrets {
            Some(real) => match render_one(&jinja, env, t, revisions, runtime_dir, real) {
                Ok(text) => Some(text),
                Err(e) => {
                    findings.push(template_error(&sources, &e, env));
                    continue;
                }
            },
            None => None,
        };
        out.push(Rendered {
            dest: t.dest.clone(),
            public,
            runtime,
        });
    }
    if findings.is_empty() {
        Ok(out)
    } else {
        Err(findings)
    }
}

/// Checks the templates without rendering: syntax, and every variable they use is one
/// the environment (or the template's own `vars`) defines.
pub fn check(env: &Environment) -> Vec<Finding> {
    let (jinja, sources) = match load(env) {
        Ok(x) => x,
        Err(f) => return f,
    };
    let mut findings = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    for t in &env.templates {
        // The template and every template it includes, with this template's variables.
        let reached = reachable(&sources, vec![t.src.clone()]);
        let mut known: Vec<String> = env.variables.keys().chain(t.vars.keys()).cloned().collect();
        known.extend(BUILTINS.iter().map(|s| s.to_string()));
        for src in reached {
            let key = (src.clone(), t.vars.keys().cloned().collect::<Vec<_>>());
            if !checked.insert(key) {
                continue;
            }
            let (Ok(tmpl), Some(file)) = (jinja.get_template(&src), sources.get(&src)) else {
                continue;
            };
            let mut names: Vec<String> = tmpl.undeclared_variables(true).into_iter().collect();
            names.sort();
            for name in names {
                if let Some((message, hint)) = undefined(env, &known, &name) {
                    let (line, col) = find_use(&file.text, &name);
                    let f = Finding::at(file, line, col, name.len(), message);
                    findings.push(match hint {
                        Some(h) => f.help(h),
                        None => f.help(format!(
                            "define it under `variables:` in {}",
                            crate::source::display_path(&env.file.path)
                        )),
                    });
                }
            }
        }
    }
    findings
}

/// Why a (dotted) name a template uses is not defined, and a hint.
fn undefined(env: &Environment, known: &[String], name: &str) -> Option<(String, Option<String>)> {
    let (root, field) = match name.split_once('.') {
        Some((r, f)) => (r, Some(f)),
        None => (name, None),
    };
    match (root, field) {
        ("secrets", Some(s)) => {
            let secret = s.split('.').next().unwrap_or(s);
            (!env.secrets.contains_key(secret)).then(|| {
                (
                    format!(
                        "secret `{secret}` is not defined by environment `{}`",
                        env.name
                    ),
                    did_you_mean(secret, env.secrets.keys().map(String::as_str))
                        .map(|c| format!("did you mean `{c}`?")),
                )
            })
        }
        ("revisions", Some(r)) => (!["product", "tools", "data"].contains(&r)).then(|| {
            (
                format!("`revisions.{r}` does not exist"),
                Some("revisions are product, tools and data".to_string()),
            )
        }),
        (r, _) => (!known.iter().any(|k| k == r)).then(|| {
            (
                format!(
                    "variable `{r}` is not defined by environment `{}`",
                    env.name
                ),
                did_you_mean(r, known.iter().map(String::as_str))
                    .map(|c| format!("did you mean `{c}`?")),
            )
        }),
    }
}

/// Variables every template has besides the environment's.
pub const BUILTINS: &[&str] = &[
    "env",
    "revisions",
    "secrets",
    "data",
    "env_dir",
    "project_dir",
];

/// Loads every file under `templates/` (so `include` and `extends` work), strictly.
fn load(env: &Environment) -> Result<(Jinja<'static>, BTreeMap<String, SourceFile>), Vec<Finding>> {
    let mut jinja = Jinja::new();
    jinja.set_undefined_behavior(UndefinedBehavior::Strict);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
    {
        jinja.set_syntax(syntax);
    }
    let root = env.project.join("templates");
    let mut sources = BTreeMap::new();
    let mut findings = Vec::new();
    let mut files = Vec::new();
    collect_files(&root, &root, &mut files);
    for (name, path) in files {
        if let Ok(file) = SourceFile::read(&path) {
            sources.insert(name, file);
        }
    }
    // Syntax errors matter in the templates this environment uses and what they include.
    let roots: Vec<String> = env.templates.iter().map(|t| t.src.clone()).collect();
    let reached = reachable(&sources, roots);
    for (name, file) in &sources {
        if let Err(e) = jinja.add_template_owned(name.clone(), file.text.to_string())
            && reached.contains(name)
        {
            findings.push(located(file, &e));
        }
    }
    if findings.is_empty() {
        Ok((jinja, sources))
    } else {
        Err(findings)
    }
}

/// The templates `roots` name and, transitively, the ones they include, extend or import.
fn reachable(sources: &BTreeMap<String, SourceFile>, roots: Vec<String>) -> Vec<String> {
    let include =
        regex::Regex::new(r#"\{%-?\s*(?:include|extends|import|from)\s+["']([^"']+)["']"#)
            .expect("a valid pattern");
    let mut queue = roots;
    let mut reached: Vec<String> = Vec::new();
    while let Some(name) = queue.pop() {
        if reached.contains(&name) {
            continue;
        }
        if let Some(file) = sources.get(&name) {
            queue.extend(include.captures_iter(&file.text).map(|c| c[1].to_string()));
        }
        reached.push(name);
    }
    reached
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            collect_files(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push((rel.to_string_lossy().replace('\\', "/"), p));
        }
    }
}

fn render_one(
    jinja: &Jinja<'static>,
    env: &Environment,
    t: &super::environment::TemplateFile,
    revisions: &Revisions,
    runtime_dir: &Path,
    secrets: &BTreeMap<String, String>,
) -> Result<String, minijinja::Error> {
    let mut ctx: BTreeMap<String, Value> = env
        .variables
        .iter()
        .chain(t.vars.iter())
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    ctx.insert("env".into(), Value::from(env.name.as_str()));
    let revs: BTreeMap<String, String> = [
        ("product", &revisions.product),
        ("tools", &revisions.tools),
        ("data", &revisions.data),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect();
    ctx.insert("revisions".into(), Value::from(revs));
    ctx.insert("secrets".into(), Value::from(secrets.clone()));
    let data: BTreeMap<String, String> = env
        .data
        .iter()
        .map(|d| {
            (
                d.dest.clone(),
                runtime_dir.join("data").join(&d.dest).display().to_string(),
            )
        })
        .collect();
    ctx.insert("data".into(), Value::from(data));
    ctx.insert(
        "env_dir".into(),
        Value::from(runtime_dir.display().to_string()),
    );
    ctx.insert(
        "project_dir".into(),
        Value::from(env.project.display().to_string()),
    );
    jinja.get_template(&t.src)?.render(Value::from(ctx))
}

/// A minijinja error as a finding at its template's file:line:column.
fn template_error(
    sources: &BTreeMap<String, SourceFile>,
    e: &minijinja::Error,
    env: &Environment,
) -> Finding {
    match e.name().and_then(|n| sources.get(n)) {
        Some(file) => located(file, e),
        None => Finding::file(&env.file.path, format!("template error: {e}")),
    }
}

fn located(file: &SourceFile, e: &minijinja::Error) -> Finding {
    let kind = match e.kind() {
        ErrorKind::UndefinedError => "undefined variable",
        ErrorKind::SyntaxError => "template syntax error",
        _ => "template error",
    };
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    let (line, col, len) = match e.range() {
        Some(r) => {
            let before = &file.text[..r.start.min(file.text.len())];
            let line = before.matches('\n').count() as u32 + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            (line, col, r.len())
        }
        None => (e.line().unwrap_or(1) as u32, 1, 1),
    };
    let mut f = Finding::at(file, line, col, len, format!("{kind}{detail}"));
    if e.kind() == ErrorKind::UndefinedError {
        f = f.help("define it under the environment's `variables:` (or the template's `vars:`)");
    }
    f
}

/// Where a (dotted) variable is first used in a template: its line and column.
fn find_use(text: &str, name: &str) -> (u32, u32) {
    for (i, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(pos) = line[from..].find(name) {
            let at = from + pos;
            let before = line[..at].chars().last();
            let after = line[at + name.len()..].chars().next();
            let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            if boundary(before) && boundary(after) {
                return (i as u32 + 1, line[..at].chars().count() as u32 + 1);
            }
            from = at + name.len();
        }
    }
    (1, 1)
}
