//! The release submitted to the algorithm store ([`Step::SubmitStore`]), once it is complete:
//! the store's JSON for the verified digest, posted with the account of the environment.

use super::Run;
use crate::oci::reference::Digest;
use crate::publish::{Event, PublishError};
use crate::store::submit::{self, Endpoints, Login};

impl Run<'_> {
    /// Submits the release at `digest` to the store at `endpoints`.
    pub(super) async fn submit(
        &self,
        endpoints: &Endpoints,
        digest: &Digest,
    ) -> Result<(), PublishError> {
        let store = crate::store::load(self.manifest)?.ok_or_else(|| {
            crate::store::StoreError::NoSection {
                path: crate::diagnostic::display(&self.manifest.path),
            }
        })?;
        let reference = self.decision.source(self.plan);
        let export = crate::store::export::document(self.manifest, &store, reference, Some(digest));
        let document: serde_json::Value = serde_json::from_str(&export.json).unwrap_or_default();
        let login = Login::from_env()?;
        let submitted = submit::submit(endpoints, &login, &document, digest).await?;
        self.observer.event(Event::Submitted {
            submitted: &submitted,
            endpoints,
            image: document["image"].as_str().unwrap_or_default(),
        });
        Ok(())
    }
}
