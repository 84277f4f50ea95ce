//! Strings with `#{var}` in environment files: parsed once at load, filled in per use.

use std::collections::BTreeMap;

use super::error::EnvironmentError;
use crate::scenario::lexer::interpolated;
use crate::scenario::token::{LexError, Part};

#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, LexError> {
        Ok(Template {
            parts: interpolated(text)?,
        })
    }

    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { name, .. } => Some(name.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// Fills in the variables; `lookup` returns `None` for one that is not set.
    pub fn render_with<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<String, EnvironmentError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var { name, .. } => match lookup(name) {
                    Some(v) => out.push_str(v),
                    None => return Err(EnvironmentError::Unset { name: name.clone() }),
                },
            }
        }
        Ok(out)
    }

    /// Fills in the variables `lookup` knows and leaves the others as `#{name}`, for a
    /// later pass (the run's builtins).
    pub fn fill(&self, lookup: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var { name, .. } => match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push_str("#{");
                        out.push_str(name);
                        out.push('}');
                    }
                },
            }
        }
        out
    }

    pub fn render(&self, vars: &BTreeMap<String, String>) -> Result<String, EnvironmentError> {
        self.render_with(|n| vars.get(n).map(String::as_str))
    }
}
