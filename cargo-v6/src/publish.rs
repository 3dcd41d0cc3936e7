//! Publishing a plan: survey the registry, then build and push, or recognise the release as
//! unchanged; move the aliases the highest-only rule allows; read the digest back.
//!
//! Order matters for "nothing lost": layers and the manifest are pushed under the exact tag
//! first (the engine uploads every blob before it writes the tag, so an interrupted push leaves
//! no tag on a partial image), aliases are moved only afterwards, by manifest writes that
//! upload nothing.

use std::collections::BTreeMap;

use crate::credentials::Credentials;
use crate::engine::{BuildRequest, Engine};
use crate::error::Error;
use crate::fingerprint;
use crate::plan::Plan;
use crate::reference::ImageName;
use crate::registry::Registry;
use crate::release::{Action, ExactTag, ReleaseError, TagChange, TagStep};
use crate::report::{Progress, Reporter};

/// The registry, engine and identity one publish talks to.
pub struct Target<'a> {
    /// The repository.
    pub image: &'a ImageName,
    /// Registry client with the resolved credentials.
    pub registry: &'a Registry,
    /// The same credentials, for the engine's push.
    pub credentials: Option<&'a Credentials>,
}

/// What a publish did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The normalized repository.
    pub image: String,
    /// The version as found.
    pub version: String,
    /// The digest of the exact version tag, read back from the registry.
    pub digest: String,
    /// The input fingerprint.
    pub fingerprint: String,
    /// Full references written by this run.
    pub tags_pushed: Vec<String>,
    /// Aliases left alone because a higher version owns them.
    pub tags_held: Vec<String>,
    /// The release was already in the registry: nothing was built or uploaded.
    pub skipped_unchanged: bool,
}

/// What the registry holds for a plan, read before any decision.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    /// The exact version tags, with their digests and fingerprints.
    pub exact: Vec<ExactTag>,
    /// The digest under every planned tag (full reference), `None` when absent.
    pub current: BTreeMap<String, Option<String>>,
}

/// Reads the digest under each tag of the plan, and the fingerprint of each exact tag present.
pub async fn survey(target: &Target<'_>, plan: &Plan) -> Result<Survey, Error> {
    let mut survey = Survey::default();
    for reference in &plan.tags {
        let tag = tag_of(reference);
        let digest = target.registry.digest(target.image.path(), tag).await?;
        if plan.exact_tags.contains(reference) {
            let fingerprint = match &digest {
                Some(_) => target
                    .registry
                    .labels(target.image.path(), tag)
                    .await?
                    .and_then(|labels| labels.get(fingerprint::LABEL).cloned()),
                None => None,
            };
            survey.exact.push(ExactTag {
                reference: reference.clone(),
                tag: tag.to_string(),
                digest: digest.clone(),
                fingerprint,
            });
        }
        survey.current.insert(reference.clone(), digest);
    }
    Ok(survey)
}

/// The tag part of a full reference from the plan.
fn tag_of(reference: &str) -> &str {
    crate::reference::split_tag(reference).1
}

/// Builds the plan's image with the engine and tags it with the exact tags (and aliases, for
/// `cargo v6 build`). Returns the image id.
pub async fn build(
    engine: &Engine,
    plan: &Plan,
    tags: &[String],
    reporter: &Reporter,
) -> Result<String, Error> {
    let progress = Progress::new(
        reporter,
        "Building",
        &format!("{} {}", plan.name, plan.version),
    );
    let request = BuildRequest {
        context_dir: &plan.context,
        files: &plan.context_files,
        dockerfile_name: &plan.dockerfile_name,
        dockerfile: &plan.dockerfile,
        tags,
        build_args: &plan.build_args,
        labels: &plan.labels,
        network: plan.network.as_deref(),
        platform: plan.platform.as_deref(),
    };
    let image_id = engine
        .build(&request, &mut |event| progress.build_event(&event))
        .await?;
    progress.finish(
        "Built",
        format!(
            "{} ({})",
            tags.first().map_or("image", String::as_str),
            short_id(&image_id)
        ),
    );
    Ok(image_id)
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// Executes the decided steps: builds once if any tag is pushed, pushes, points the other
/// tags by manifest writes, then reads the digest back from the registry.
pub async fn execute(
    target: &Target<'_>,
    engine: Option<&Engine>,
    plan: &Plan,
    action: &Action,
    steps: &[TagStep],
    reporter: &Reporter,
) -> Result<Outcome, Error> {
    let path = target.image.path();
    if let Action::Refuse { reference, digest } = action {
        return Err(ReleaseError::Refused {
            reference: reference.clone(),
            digest: digest.clone(),
        }
        .into());
    }
    if let Action::Unchanged { tag, digest } = action {
        reporter.status(
            "Unchanged",
            format!(
                "{} already holds this input ({digest})",
                target.image.with_tag(tag)
            ),
        );
    }
    let pushes: Vec<&TagStep> = steps
        .iter()
        .filter(|s| s.change == TagChange::Push)
        .collect();
    if !pushes.is_empty() {
        let engine = engine.ok_or_else(|| Error::Failed {
            message: "internal error: no Docker engine connected for a build".to_string(),
            help: None,
        })?;
        build(engine, plan, &plan.exact_tags, reporter).await?;
        for step in &pushes {
            let progress = Progress::new(reporter, "Pushing", &step.reference);
            engine
                .push(
                    &target.image.to_string(),
                    tag_of(&step.reference),
                    target.credentials,
                    &mut |event| progress.push_event(&event),
                )
                .await?;
            progress.finish("Pushed", &step.reference);
        }
    }
    let source_tag = match action {
        Action::Unchanged { tag, .. } => tag.clone(),
        _ => tag_of(&plan.exact_tags[0]).to_string(),
    };
    let digest = target
        .registry
        .digest(path, &source_tag)
        .await?
        .ok_or_else(|| Error::Failed {
            message: format!(
                "{} vanished from the registry while publishing",
                target.image.with_tag(&source_tag)
            ),
            help: None,
        })?;
    for step in steps {
        if let TagChange::Point { from } = &step.change {
            target
                .registry
                .copy_tag(path, tag_of(from), tag_of(&step.reference))
                .await?;
            reporter.status("Tagged", format!("{} -> {digest}", step.reference));
        }
    }
    let kind = target.registry.manifest_kind(path, &source_tag).await?;
    if !kind.resolvable_by_store() {
        reporter.warn(format!(
            "{} is a `{kind}`, not a single-platform docker v2 manifest: the vantage6 algorithm store asks only for `application/vnd.docker.distribution.manifest.v2+json` and may fail to resolve its digest",
            target.image.with_tag(&source_tag)
        ));
    }
    Ok(Outcome {
        image: target.image.to_string(),
        version: plan.version.clone(),
        digest,
        fingerprint: plan.fingerprint.clone(),
        tags_pushed: steps
            .iter()
            .filter(|s| matches!(s.change, TagChange::Push | TagChange::Point { .. }))
            .map(|s| s.reference.clone())
            .collect(),
        tags_held: plan.tags_held.iter().map(|h| h.tag.clone()).collect(),
        skipped_unchanged: matches!(action, Action::Unchanged { .. }),
    })
}
