//! Executes the decided steps, in order, with one match over them.
//!
//! Order matters for "nothing lost": layers and the manifest are pushed under the exact tags
//! first (the engine uploads every blob before it writes the tag, so an interrupted push leaves
//! no tag on a partial image); aliases are moved only afterwards, by manifest writes that
//! upload nothing.

use crate::engine::{BuildRequest, Engine};
use crate::plan::Plan;
use crate::reference::{Digest, TaggedImage};

use super::decide::{Action, Decision};
use super::step::Step;
use super::{Event, Observer, PublishError, Published, Target};

/// Builds the plan's image with the engine and tags it locally with `tags`. Returns the image
/// id. Also `cargo v6 build`'s whole job.
pub async fn build(
    engine: &Engine,
    plan: &Plan,
    tags: &[TaggedImage],
    observer: &dyn Observer,
) -> Result<String, PublishError> {
    observer.event(Event::BuildStarted { plan });
    let request = BuildRequest {
        context_dir: &plan.context,
        files: &plan.context_files,
        dockerfile_name: &plan.dockerfile_name,
        dockerfile: &plan.dockerfile,
        tags,
        build_args: &plan.build_args,
        labels: &plan.build_labels,
        network: plan.network.as_deref(),
        platform: plan.platform.as_deref(),
        expected: Some(&plan.file_digests),
    };
    let image_id = engine
        .build(&request, &mut |event| observer.event(Event::Build(&event)))
        .await?;
    observer.event(Event::Built {
        tag: tags.first(),
        image_id: &image_id,
    });
    Ok(image_id)
}

/// Runs `decision`'s steps against `target`, then reads the release's digest back from the
/// registry (never from log text).
pub async fn execute(
    target: &Target,
    engine: Option<&Engine>,
    plan: &Plan,
    decision: &Decision,
    observer: &dyn Observer,
) -> Result<Published, PublishError> {
    let source = decision.source(plan);
    if let Action::Unchanged { tag, digest } = &decision.action {
        observer.event(Event::Unchanged { tag, digest });
    }
    // Read once the exact tags are in place, before the first alias moves.
    let mut digest: Option<Digest> = None;
    for step in &decision.steps {
        match step {
            Step::Build => {
                let engine = engine.ok_or(PublishError::NoEngine)?;
                build(engine, plan, &plan.exact_tags, observer).await?;
            }
            Step::PushExact { tag } => {
                let engine = engine.ok_or(PublishError::NoEngine)?;
                observer.event(Event::PushStarted { tag });
                engine
                    .push(tag, target.credentials.as_ref(), &mut |event| {
                        observer.event(Event::Push(&event))
                    })
                    .await?;
                observer.event(Event::Pushed { tag });
            }
            Step::PointAlias { tag, from } => {
                let digest = match &digest {
                    Some(digest) => digest,
                    None => digest.insert(target.digest(source).await?),
                };
                target
                    .registry
                    .copy_tag(plan.image.path(), from.tag.as_str(), tag.tag.as_str())
                    .await?;
                observer.event(Event::Pointed { tag, digest });
            }
            Step::Unchanged { .. } | Step::HoldAlias { .. } => {}
        }
    }
    let digest = match digest {
        Some(digest) => digest,
        None => target.digest(source).await?,
    };
    let kind = target
        .registry
        .manifest_kind(plan.image.path(), source.tag.as_str())
        .await?;
    if !kind.resolvable_by_store() {
        observer.event(Event::Warning(format!(
            "{source} is a `{kind}`, not a single-platform docker v2 manifest: the vantage6 algorithm store asks only for `application/vnd.docker.distribution.manifest.v2+json` and may fail to resolve its digest"
        )));
    }
    Ok(Published {
        image: plan.image.clone(),
        version: plan.version.clone(),
        digest,
        fingerprint: plan.fingerprint.clone(),
        tags_pushed: decision
            .steps
            .iter()
            .filter(|s| s.writes_tag())
            .filter_map(Step::tag)
            .cloned()
            .collect(),
        tags_held: plan.tags_held.iter().map(|h| h.tag.clone()).collect(),
        skipped_unchanged: matches!(decision.action, Action::Unchanged { .. }),
    })
}
