//! The check a hospital can run on an image a researcher asks it to allow: assemble it again
//! from the work tree and compare digests. What the published image says of its own making
//! is read from it, so that the rebuild has the same inputs: the version
//! (`org.opencontainers.image.version`), the base's digest
//! (`org.opencontainers.image.base.digest`) and the time (`created`, from
//! `SOURCE_DATE_EPOCH` or the commit). Everything else comes from the work tree: a changed
//! file, dependency or base gives another digest.

use super::{AssembleError, Assembled, Tools, assemble};
use crate::oci::manifest::{ManifestKind, labels_of_config, list_entries};
use crate::oci::reference::{Digest, ImageName};
use crate::plan::Plan;
use crate::registry::Registry;
use crate::time::epoch_of;

/// What a published assembled image says of its making.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its digest (the manifest list's, or the one platform's manifest).
    pub digest: Digest,
    /// The version it was published as.
    pub version: String,
    /// The base's digest it was made on.
    pub base_digest: Digest,
    /// Its time, in seconds since 1970.
    pub epoch: u64,
    /// Each platform's manifest digest, in the list's order.
    pub platforms: Vec<Digest>,
    /// The uv version it was assembled with (its label), when it says.
    pub uv: Option<String>,
}

/// How the rebuild compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The published image.
    pub published: Published,
    /// The rebuilt digest.
    pub rebuilt: Digest,
    /// The rebuilt platforms' manifest digests.
    pub rebuilt_platforms: Vec<Digest>,
    /// Where the first platform's layers differ, newest first: what changed.
    pub differences: Vec<String>,
}

impl Verdict {
    /// Whether the rebuild gave the published digest: the list's, or (given one platform's
    /// image of a list) that platform's.
    pub fn matches(&self) -> bool {
        self.published.digest == self.rebuilt
            || self.rebuilt_platforms.contains(&self.published.digest)
    }
}

/// Reads what `image@digest` says of its making.
pub async fn published(
    registry: &Registry,
    image: &ImageName,
    digest: &Digest,
) -> Result<Published, AssembleError> {
    let not_assembled = |message: &str| AssembleError::NotRebuildable {
        image: format!("{image}@{digest}"),
        message: message.to_string(),
    };
    let top = registry
        .manifest_at(image, digest)
        .await?
        .ok_or_else(|| not_assembled("is not in the registry"))?;
    let platforms = match &top.kind {
        ManifestKind::Index { .. } => list_entries(&top),
        _ => vec![top.digest.clone()],
    };
    let first = match platforms.first() {
        Some(first) if *first != top.digest => registry
            .manifest_at(image, first)
            .await?
            .ok_or_else(|| not_assembled("lacks a platform's manifest"))?,
        _ => top.clone(),
    };
    let config_digest = first.image_config().map_err(|m| not_assembled(&m))?;
    let config = registry
        .blob(image, &config_digest, super::MAX_CONFIG)
        .await?;
    let labels = labels_of_config(&config).map_err(|m| not_assembled(&m))?;
    let label = |name: &str| {
        labels
            .get(name)
            .cloned()
            .ok_or_else(|| not_assembled(&format!("has no `{name}` label")))
    };
    let base_digest = Digest::parse(&label("org.opencontainers.image.base.digest")?)
        .map_err(|e| not_assembled(&e.to_string()))?;
    let created: serde_json::Value =
        serde_json::from_slice(&config).map_err(|e| not_assembled(&e.to_string()))?;
    let epoch = created
        .get("created")
        .and_then(serde_json::Value::as_str)
        .and_then(epoch_of)
        .ok_or_else(|| not_assembled("has no `created` time in its config"))?;
    Ok(Published {
        digest: digest.clone(),
        version: label("org.opencontainers.image.version")?,
        base_digest,
        epoch,
        platforms,
        uv: labels.get(super::UV_LABEL).cloned(),
    })
}

/// Assembles `plan` (planned at `published.version`) again with `published`'s time and base,
/// and compares.
pub async fn rebuild(
    plan: &Plan,
    tools: &Tools<'_>,
    registry: &Registry,
    published: Published,
) -> Result<Verdict, AssembleError> {
    let Some(recipe) = &plan.assembled else {
        return Err(AssembleError::Base {
            base: plan.base_image.clone(),
            message: "the work tree's image is built by the engine, not assembled (`[build] platforms`): its digest depends on the build's time and machine".into(),
        });
    };
    let tools = Tools {
        epoch: Some(published.epoch),
        base_digest: Some(published.base_digest.clone()),
        cache: tools.cache.clone(),
        ..*tools
    };
    let assembled = assemble(plan, recipe, &tools, &|_| {}).await?;
    let rebuilt_platforms: Vec<Digest> = assembled
        .images
        .iter()
        .map(|image| image.manifest.digest.clone())
        .collect();
    let mut differences = differences(&assembled, &published, registry, &plan.image).await;
    let here = super::uv_version(tools.uv).ok();
    if let (Some(theirs), Some(here)) = (&published.uv, &here)
        && theirs != here
    {
        differences.push(format!(
            "the uv version (the image was assembled with uv {theirs}, this machine has uv {here})"
        ));
    }
    Ok(Verdict {
        rebuilt: assembled.index.digest.clone(),
        rebuilt_platforms,
        differences,
        published,
    })
}

/// Which of the first platform's layers differ from the published image's: the context
/// (`COPY`), the install (dependencies), or the base.
async fn differences(
    assembled: &Assembled,
    published: &Published,
    registry: &Registry,
    image_name: &ImageName,
) -> Vec<String> {
    // One platform's image given: compare with that platform's; a list: with its first.
    let given = assembled.images.iter().position(|image| {
        published.platforms.len() == 1 && image.manifest.digest == published.digest
    });
    let (Some(image), Some(first)) = (
        assembled.images.get(given.unwrap_or(0)),
        published.platforms.first(),
    ) else {
        return Vec::new();
    };
    if image.manifest.digest == *first {
        return Vec::new();
    }
    // On any failure, no detail: the digests still say whether it matches.
    let Ok(Some(theirs)) = registry.manifest_at(image_name, first).await else {
        return vec![format!("the {} image differs", image.platform)];
    };
    let Ok(theirs) = theirs.image() else {
        return Vec::new();
    };
    let theirs: Vec<String> = theirs
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    let ours: Vec<String> = image
        .base_layers
        .iter()
        .chain(image.new_layers.iter().map(|(blob, _)| blob))
        .map(|l| l.digest.to_string())
        .collect();
    let names = ["the build context (`COPY`)", "the installed dependencies"];
    let mut found = Vec::new();
    if ours.len() != theirs.len()
        || ours[..ours.len().saturating_sub(2)] != theirs[..theirs.len().saturating_sub(2)]
    {
        found.push("the base's layers".to_string());
    }
    for (i, name) in names.iter().enumerate() {
        let at = |v: &Vec<String>| v.len().checked_sub(2 - i).and_then(|k| v.get(k)).cloned();
        if at(&ours) != at(&theirs) {
            found.push((*name).to_string());
        }
    }
    if found.is_empty() {
        found.push("the image's config (labels, command or time)".to_string());
    }
    found
}
