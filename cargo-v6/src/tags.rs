//! Tags: templates rendered over a version's fields, and the *highest-only* rule that decides
//! which floating aliases a release may move, given the tags already in the registry.

use crate::version::Version;

/// A tag template from v6.toml. One that contains `{{version}}` is an exact tag; any other is a
/// floating alias.
#[derive(Debug, Clone)]
pub struct TagTemplate {
    source: String,
}

/// A template is not valid handlebars, names an unknown field, or renders an invalid tag.
#[derive(Debug, thiserror::Error)]
#[error("invalid tag template `{template}`: {reason}")]
pub struct TemplateError {
    /// The template as written.
    pub template: String,
    /// Index of the template in the manifest's list (to point at it).
    pub index: usize,
    /// What is wrong.
    pub reason: String,
}

/// The fields other than the version that templates may use.
#[derive(Debug, Clone)]
pub struct TagContext {
    /// vantage6 version as in v6.toml, e.g. `4.13`.
    pub vantage6: String,
    /// The algorithm's name.
    pub name: String,
}

/// What happens to one alias.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AliasAction {
    /// This version is the highest stable in the alias's range: point the alias here.
    Move,
    /// A higher stable version already owns it.
    Held {
        /// The exact tag of the owning version.
        by: String,
    },
}

/// A rendered alias and its fate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alias {
    /// The tag (without repository).
    pub tag: String,
    /// Move or hold.
    #[serde(flatten)]
    pub action: AliasAction,
}

/// All tags for one release.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagPlan {
    /// Exact tags, in template order.
    pub exact: Vec<String>,
    /// Aliases in template order (none for pre-releases; no `{{major}}` alias for 0.x).
    pub aliases: Vec<Alias>,
}

impl TagTemplate {
    /// Parses and checks a template (`index` is its position in the manifest list).
    pub fn parse(source: &str, index: usize) -> Result<Self, TemplateError> {
        todo!("{source} {index}")
    }
}

/// The default templates: `{{version}}`, `{{major}}.{{minor}}`, `{{major}}`, `latest`.
pub fn default_templates() -> Vec<TagTemplate> {
    todo!()
}

/// Renders the templates for `version` and applies highest-only against `existing` (the tags
/// already in the registry; empty when offline). Pure: no I/O.
pub fn plan_tags(
    templates: &[TagTemplate],
    version: &Version,
    context: &TagContext,
    existing: &[String],
) -> Result<TagPlan, TemplateError> {
    todo!("{templates:?} {version:?} {context:?} {existing:?}")
}

impl TagTemplate {
    /// Exact templates contain `{{version}}`; they name one release and are never overwritten.
    pub fn is_exact(&self) -> bool {
        self.source.contains("{{version}}")
    }
}
