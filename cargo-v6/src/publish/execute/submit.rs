//! The store's steps of a release, once it is complete and verified: its file written
//! ([`Step::WriteStore`]), and the release submitted to the algorithm store
//! ([`Step::SubmitStore`]) with the account of the environment.
//!
//! [`Step::WriteStore`]: crate::publish::Step::WriteStore
//! [`Step::SubmitStore`]: crate::publish::Step::SubmitStore

use super::Run;
use crate::oci::reference::Digest;
use crate::publish::{Event, PublishError};
use crate::store::submit::{self, Endpoints, Login};

impl Run<'_> {
    /// Writes the store file at `file`, then submits to `submission`, each when asked, for the
    /// release at `digest`; what the store holds when it was submitted to.
    pub(super) async fn store_steps(
        &self,
        file: Option<&std::path::PathBuf>,
        submission: Option<&Endpoints>,
        digest: &Digest,
    ) -> Result<Option<submit::Submitted>, PublishError> {
        if let Some(path) = file {
            let reference = self.decision.source(self.plan);
            crate::store::refresh_after_publish(self.manifest, reference, digest)?;
            self.observer.event(Event::WroteStore { path });
        }
        match submission {
            Some(endpoints) => self.submit(endpoints, digest).await.map(Some),
            None => Ok(None),
        }
    }

    /// Submits the release at `digest` to the store at `endpoints`.
    async fn submit(
        &self,
        endpoints: &Endpoints,
        digest: &Digest,
    ) -> Result<submit::Submitted, PublishError> {
        let store = crate::store::load(self.manifest)?.ok_or_else(|| {
            crate::store::StoreError::NoSection {
                path: crate::diagnostic::display(&self.manifest.path),
            }
        })?;
        let reference = self.decision.source(self.plan);
        let export = crate::store::export::document(self.manifest, &store, reference, Some(digest));
        let login = Login::from_env()?;
        let submitted = submit::submit(endpoints, &login, &export, digest)
            .await
            .map_err(|e| match e.placed(&store, self.manifest) {
                Ok(refused) => PublishError::Store(refused),
                Err(other) => PublishError::Submit(other),
            })?;
        self.observer.event(Event::Submitted {
            submitted: &submitted,
            endpoints,
            image: &export.image,
        });
        Ok(submitted)
    }
}
