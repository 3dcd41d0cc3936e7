//! What the registry holds for a plan, read before any decision: the digest under every planned
//! tag, and the fingerprint label of each exact tag that is present.

use std::collections::BTreeMap;

use crate::fingerprint;
use crate::plan::Plan;
use crate::reference::{Digest, TaggedImage};
use crate::registry::Registry;

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
}

impl Survey {
    /// The digest `tag` holds now, if any.
    pub fn digest_of(&self, tag: &TaggedImage) -> Option<&Digest> {
        self.current.get(tag).and_then(Option::as_ref)
    }
}

/// Reads the registry's state for `plan`.
pub async fn read(registry: &Registry, plan: &Plan) -> Result<Survey, PublishError> {
    let path = plan.image.path();
    let mut survey = Survey::default();
    for tag in &plan.tags {
        let digest = match registry.digest(path, tag.tag.as_str()).await? {
            Some(text) => Some(super::parse_digest(&text, tag)?),
            None => None,
        };
        if plan.is_exact(&tag.tag) {
            let fingerprint = match &digest {
                Some(_) => registry
                    .labels(path, tag.tag.as_str())
                    .await?
                    .and_then(|labels| labels.get(fingerprint::LABEL).cloned()),
                None => None,
            };
            survey.exact.push(ExactState {
                tag: tag.clone(),
                digest: digest.clone(),
                fingerprint,
            });
        }
        survey.current.insert(tag.clone(), digest);
    }
    Ok(survey)
}
