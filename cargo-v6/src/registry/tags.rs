//! The tag listing, page by page, and the reachability check made with its first page.

use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;

use super::{Registry, RegistryError, http, is_not_found};
use crate::oci::reference::ImageName;

/// Tags asked for per page; registries that page (GHCR, Docker Hub) ignore the rest of a
/// large listing unless asked for the next page.
const TAGS_PAGE: usize = 1000;

/// The largest page of a tag listing read: a page of [`TAGS_PAGE`] tags of the longest length
/// (128) is 130 KiB; registries that ignore the page size send every tag at once.
const MAX_TAG_LIST: usize = 16 << 20;

impl Registry {
    /// Tags of `image`'s repository, sorted, each once. A repository that does not exist yet has no
    /// tags: that is the state before a first push, not an error.
    ///
    /// Requests: one `GET tags/list` per page of up to 1000 tags, and one more that finds no
    /// further page (a registry may return fewer tags than asked for before the end); one for
    /// a repository that does not exist.
    pub async fn list_tags(&self, image: &ImageName) -> Result<Vec<String>, RegistryError> {
        let repository = image.path();
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        let mut tags: Vec<String> = Vec::new();
        loop {
            let last = tags.last().map(String::as_str);
            let page = match self
                .retrying("listing tags", || {
                    self.tags_page(repository, authorization.as_deref(), TAGS_PAGE, last)
                })
                .await
            {
                Ok(page) => page,
                Err(e) if is_not_found(&e) => break,
                Err(e) => return Err(self.error(e, repository)),
            };
            // An empty page ends the listing; a page ending where the last one did means the
            // registry ignores `last`, and asking again would loop forever.
            if page.is_empty() || page.last().map(String::as_str) == last {
                break;
            }
            tags.extend(page);
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// One page of `repository`'s tag listing: up to `n` tags after `last`.
    async fn tags_page(
        &self,
        repository: &str,
        authorization: Option<&str>,
        n: usize,
        last: Option<&str>,
    ) -> Result<Vec<String>, OciDistributionError> {
        #[derive(serde::Deserialize)]
        struct Page {
            tags: Option<Vec<String>>,
        }
        // Tags are `[A-Za-z0-9_.-]`: nothing to escape in the query.
        let after = last.map(|l| format!("&last={l}")).unwrap_or_default();
        let answer = self
            .http
            .send(http::Request {
                method: reqwest::Method::GET,
                path: format!("{repository}/tags/list?n={n}{after}"),
                authorization,
                accept: &["application/json"],
                body: None,
                limit: http::Limit {
                    max: MAX_TAG_LIST,
                    what: "the tag list",
                },
            })
            .await?;
        let page: Page = serde_json::from_slice(&answer.body)?;
        Ok(page.tags.unwrap_or_default())
    }

    /// Checks that the registry is reachable and lets these credentials read `image`
    /// (a repository that does not exist yet passes). Push permission cannot be checked
    /// without writing, so a `Denied` can still come at push time.
    ///
    /// Requests: one `GET tags/list?n=1`.
    pub async fn check(&self, image: &ImageName) -> Result<(), RegistryError> {
        let repository = image.path();
        let authorization = self.authorize(repository, RegistryOperation::Pull).await?;
        match self
            .tags_page(repository, authorization.as_deref(), 1, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.error(e, repository)),
        }
    }
}
