//! The contract of the YAML a user writes: JSON Schemas of `environments/*.yaml` and
//! `pipelines/*.yaml`, derived from the very serde types that read them (so the two
//! cannot disagree), and the key reference of docs/reference.md rendered from them.
//!
//! Draft-07, the draft editors' YAML and JSON language servers support best: a file
//! whose first line is `# yaml-language-server: $schema=…/environment.schema.json` gets
//! completion, hover text (the types' doc comments) and unknown-key warnings.

mod reference;

pub use reference::reference;

use schemars::generate::SchemaSettings;

/// Which file a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// `environments/*.yaml`
    Environment,
    /// `pipelines/*.yaml`
    Pipeline,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Environment, Kind::Pipeline];

    /// `environment` or `pipeline`: the schema file's stem and `lowtouch schema`'s argument.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Environment => "environment",
            Kind::Pipeline => "pipeline",
        }
    }

    /// Where files of this kind live in a project.
    pub fn files(self) -> &'static str {
        match self {
            Kind::Environment => "environments/*.yaml",
            Kind::Pipeline => "pipelines/*.yaml",
        }
    }
}

/// The schema of one kind of file, as the JSON text committed under `schema/`.
pub fn schema(kind: Kind) -> serde_json::Value {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = match kind {
        Kind::Environment => {
            generator.into_root_schema_for::<crate::environment::model::EnvironmentFile>()
        }
        Kind::Pipeline => generator.into_root_schema_for::<crate::pipeline::model::PipelineFile>(),
    };
    schema.insert(
        "title".into(),
        format!("lowtouch {} ({})", kind.name(), kind.files()).into(),
    );
    schema.to_value()
}

/// [`schema`] as the pretty-printed text of `schema/KIND.schema.json`, with a final newline.
pub fn schema_text(kind: Kind) -> String {
    let mut text = serde_json::to_string_pretty(&schema(kind)).expect("a schema serializes");
    text.push('\n');
    text
}
