//! The tag listing, page by page, and the reachability check made with its first page.

use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;

use super::{Registry, RegistryError, http, is_not_found};
use crate::oci::reference::ImageName;

/// Tags asked for per page; registries that page (GHCR, Docker Hub) ignore the rest of a
/// large listing unless asked for the next page.
const TAGS_PAGE: usize = 1000;

/// One page of a tag listing.
struct TagsPage {
    /// Its tags, in the registry's order.
    tags: Vec<String>,
    /// The answer's `Link` header, if any.
    link: Option<String>,
}

/// Whether a tag listing may go on after a page of `count` tags when `asked` were asked for
/// and the answer's `Link` header was `link`: after a full page, or after a short one that
/// links a next page (`rel="next"`). A short page without that link ends the listing: the
/// distribution spec lets a registry return fewer tags than asked for only at the end or with
/// the link, so asking again would only find an empty page.
fn more_after(count: usize, asked: usize, link: Option<&str>) -> bool {
    let next = link.is_some_and(|link| {
        link.split(',').any(|value| {
            value.split(';').skip(1).any(|param| {
                let param = param.trim();
                param.eq_ignore_ascii_case("rel=\"next\"") || param.eq_ignore_ascii_case("rel=next")
            })
        })
    });
    count >= asked || next
}

/// The largest page of a tag listing read: a page of [`TAGS_PAGE`] tags of the longest length
/// (128) is 130 KiB; registries that ignore the page size send every tag at once.
const MAX_TAG_LIST: usize = 16 << 20;

impl Registry {
    /// Tags of `image`'s repository, sorted, each once. A repository that does not exist yet has no
    /// tags: that is the state before a first push, not an error.
    ///
    /// Requests: one `GET tags/list` per page of up to 1000 tags. A page with fewer tags than
    /// asked for is the last one unless its answer links a next page (`Link: <...>;
    /// rel="next"`: the distribution spec lets a registry return a short page before the end
    /// only with that header); after a full page, or a short one with a link, one more page is
    /// read, which may find nothing. One request for a repository that does not exist.
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
            if page.tags.is_empty() || page.tags.last().map(String::as_str) == last {
                break;
            }
            let more = more_after(page.tags.len(), TAGS_PAGE, page.link.as_deref());
            tags.extend(page.tags);
            if !more {
                break;
            }
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
    ) -> Result<TagsPage, OciDistributionError> {
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
        Ok(TagsPage {
            tags: page.tags.unwrap_or_default(),
            link: answer.header("link").map(str::to_owned),
        })
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

#[cfg(test)]
mod tests {
    use super::more_after;

    #[test]
    fn a_short_page_ends_the_listing_unless_it_links_a_next_one() {
        // distribution 2.8 ignores `n` and sends every tag, with no `Link`.
        assert!(!more_after(4, 1000, None));
        assert!(!more_after(
            4,
            1000,
            Some("<https://example.org/help>; rel=\"help\"")
        ));
        // A registry that pages (GHCR, Docker Hub) links the next page.
        let next = "</v2/org/algo/tags/list?last=1.0.99&n=1000>; rel=\"next\"";
        assert!(more_after(100, 1000, Some(next)));
        assert!(more_after(
            100,
            1000,
            Some("</v2/a/tags/list?last=b&n=2>; REL=next")
        ));
        // A full page may be followed by more, link or not.
        assert!(more_after(1000, 1000, None));
    }
}
