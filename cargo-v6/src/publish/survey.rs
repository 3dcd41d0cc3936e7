//! What the registry holds for a plan, read before any decision: the tags, the manifest and
//! fingerprint label of each exact tag that is present, and the digest under each alias.
//!
//! The tags are listed once per publish, before the plan (which decides the aliases against
//! them), and the survey keeps that listing for the steps: they list the tags again only
//! where a race needs a fresh read (after a build and push, and after writing aliases).
//!
//! Few round trips: the tag listing says which tags exist, so absent ones cost no request;
//! an exact tag costs its manifest and its config (digest, kind and labels from one read);
//! an alias costs one `HEAD`.

use std::collections::BTreeMap;

use crate::fingerprint;
use crate::oci::reference::{Digest, TaggedImage};
use crate::plan::Plan;
use crate::registry::{ManifestInfo, Registry};

use super::PublishError;

/// What the registry holds under one exact version tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactState {
    /// The tag.
    pub tag: TaggedImage,
    /// Its digest, `None` when the tag does not exist.
    pub digest: Option<Digest>,
    /// The fingerprint label of the image there, if it has one.
    pub fingerprint: Option<String>,
}

/// The registry's state for one plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    /// The exact version tags, in the plan's order.
    pub exact: Vec<ExactState>,
    /// The digest under every planned tag, `None` when absent.
    pub current: BTreeMap<TaggedImage, Option<Digest>>,
    /// The manifests of the exact tags that exist, as stored: an unchanged release's aliases
    /// are written from these bytes without reading them again.
    pub manifests: BTreeMap<TaggedImage, ManifestInfo>,
    /// The registry's tags, as listed before the plan was made.
    pub tags: Vec<String>,
}

impl Survey {
    /// The digest `tag` holds now, if any.
    pub fn digest_of(&self, tag: &TaggedImage) -> Option<&Digest> {
        self.current.get(tag).and_then(Option::as_ref)
    }
}

/// Reads the registry's state for `plan`; `listed` is the registry's tag listing, which the
/// plan was made against.
pub async fn read(
    registry: &Registry,
    plan: &Plan,
    listed: &[String],
) -> Result<Survey, PublishError> {
    let mut survey = Survey {
        tags: listed.to_vec(),
        ..Survey::default()
    };
    for tag in &plan.tags {
        let present = listed.iter().any(|t| t == tag.tag.as_str());
        let digest = if plan.is_exact(&tag.tag) {
            let (state, manifest) = match present {
                true => exact_state(registry, tag).await?,
                false => (ExactState::absent(tag), None),
            };
            if let Some(manifest) = manifest {
                survey.manifests.insert(tag.clone(), manifest);
            }
            let digest = state.digest.clone();
            survey.exact.push(state);
            digest
        } else if present {
            registry.digest(tag).await?
        } else {
            None
        };
        survey.current.insert(tag.clone(), digest);
    }
    Ok(survey)
}

impl ExactState {
    fn absent(tag: &TaggedImage) -> Self {
        ExactState {
            tag: tag.clone(),
            digest: None,
            fingerprint: None,
        }
    }
}

/// What the exact tag `tag` holds now, with its manifest when it exists. Two requests for a
/// tag that exists (the manifest, then the config), one for a tag that does not.
pub async fn exact_state(
    registry: &Registry,
    tag: &TaggedImage,
) -> Result<(ExactState, Option<ManifestInfo>), PublishError> {
    let Some(manifest) = registry.manifest(tag).await? else {
        return Ok((ExactState::absent(tag), None));
    };
    let digest = manifest.digest.clone();
    let fingerprint = registry
        .config_labels(&tag.image, &manifest)
        .await?
        .remove(fingerprint::LABEL);
    let state = ExactState {
        tag: tag.clone(),
        digest: Some(digest),
        fingerprint,
    };
    Ok((state, Some(manifest)))
}
