//! What this process made in an engine that must not outlive it: the containers it runs, and
//! the local tags a caller marks as temporary (publish's build tag). Each is remembered when
//! made and forgotten when removed; when a signal ends the process before a command removed
//! them, [`remove_all`] does.
//!
//! Process-wide, because a signal ends whatever the process was doing, with no caller left to
//! hand a list back to.

use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder};

/// Something made in an engine, removed when its command ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Leftover {
    /// A container, by id or name.
    Container(String),
    /// A local tag, `repository:tag`.
    Tag(String),
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Leftover::Container(id)
                if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                write!(f, "container {}", super::short_id(id))
            }
            Leftover::Container(name) => write!(f, "container {name}"),
            Leftover::Tag(reference) => write!(f, "local tag {reference}"),
        }
    }
}

/// What is still there, with the client of the engine that holds it.
static LEFT: Mutex<Vec<(Docker, Leftover)>> = Mutex::new(Vec::new());

fn left() -> std::sync::MutexGuard<'static, Vec<(Docker, Leftover)>> {
    LEFT.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Remembers `what`, made through `docker`.
pub(super) fn remember(docker: &Docker, what: Leftover) {
    left().push((docker.clone(), what));
}

/// Forgets `what`: it was removed.
pub(super) fn forget(what: &Leftover) {
    left().retain(|(_, other)| other != what);
}

/// Removes everything remembered, the containers first (a tag of an image that a container
/// uses cannot go), each kind all at once, each request waiting at most `limit`. Returns one
/// line per leftover that was there: what was removed, or what could not be and why (one
/// remembered before it was made may not exist).
pub(super) async fn remove_all(limit: Duration) -> Vec<String> {
    let (containers, tags): (Vec<_>, Vec<_>) = std::mem::take(&mut *left())
        .into_iter()
        .partition(|(_, what)| matches!(what, Leftover::Container(_)));
    let mut lines = remove(containers, limit).await;
    lines.extend(remove(tags, limit).await);
    lines
}

/// Removes `all` at once; see [`remove_all`].
async fn remove(all: Vec<(Docker, Leftover)>, limit: Duration) -> Vec<String> {
    let removals = all.into_iter().map(|(docker, what)| async move {
        let docker = docker.with_timeout(limit);
        let result = match &what {
            Leftover::Container(id) => {
                let options = RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build();
                docker.remove_container(id, Some(options)).await
            }
            Leftover::Tag(reference) => {
                // As in `Engine::remove_tag`: the untagged parents are others' build cache.
                let options = RemoveImageOptionsBuilder::new().noprune(true).build();
                docker
                    .remove_image(reference, Some(options), None)
                    .await
                    .map(drop)
            }
        };
        match result {
            Ok(()) => Some(format!("removed {what}")),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => None,
            Err(BollardError::RequestTimeoutError) => Some(format!(
                "could not remove {what}: the engine did not answer within {} s",
                limit.as_secs()
            )),
            Err(err) => Some(format!(
                "could not remove {what}: {}",
                super::api_message(err)
            )),
        }
    });
    let lines = futures_util::future::join_all(removals).await;
    lines.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_shown_by_short_id_or_by_name() {
        let id = "0123456789ab".repeat(5) + "cdef";
        assert_eq!(
            Leftover::Container(id).to_string(),
            "container 0123456789ab"
        );
        assert_eq!(
            Leftover::Container("cargo-v6-run-1-0-5".into()).to_string(),
            "container cargo-v6-run-1-0-5"
        );
        assert_eq!(
            Leftover::Tag("r/x:cargo-v6-build-1".into()).to_string(),
            "local tag r/x:cargo-v6-build-1"
        );
    }
}
