//! Claims: mutual exclusion between publishes of one version, built from tag writes and reads
//! alone (a registry has no compare-and-swap on tags), so that of runs pushing one version
//! with different content one pushes at a time: the next finds the tag taken and exits 1
//! naming the winner (or, with the same input, counts as unchanged).
//!
//! Lamport's bakery algorithm, whose registers are each written by one process and read by
//! all: each run's register is a tag of its own, `v6-claim-<version>-<run>`, holding a tiny
//! manifest (an OCI index of no images, so that nothing but the manifest is uploaded) whose
//! annotations say whether the run is choosing its number, the number, and the run's input
//! (its fingerprint). A run writes `choosing`, reads every claim of the version, writes
//! `1 + max(numbers)`, then waits until no claim is choosing and none has a lower
//! `(number, tag)`; it then checks the exact tag and pushes (the critical section), and
//! deletes its claim. Runs of the same input wait for each other too: the second then finds
//! the first's push under the tag and counts as unchanged, with the same digest, instead of
//! replacing it with an image of the same input under another digest (which a node may have
//! pinned already).
//!
//! Sound on a registry whose reads see every completed write (a distribution registry on one
//! storage, as the stack's): the bakery needs no more than that. Behind a cache that serves
//! stale tag lists or manifests it is not. A run rewrites its claim every [`BEAT`] while it
//! holds it (waiting, checking, pushing), so a claim that has not changed for [`STALE`] while
//! another run watches it belongs to a run that died or could not release it: it is then
//! ignored and deleted. No clocks are compared.
//!
//! Only a new release pays for it: an unchanged republish pushes nothing and claims nothing.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::fingerprint::LABEL as FINGERPRINT;
use crate::oci::manifest::OCI_INDEX;
use crate::oci::reference::{Digest, Tag, TaggedImage};
use crate::registry::{Registry, RegistryError};

use super::{Event, Observer, PublishError};

/// The annotation saying the run is choosing its number.
const CHOOSING: &str = "io.cargo-v6.claim.choosing";
/// The annotation holding the run's number (0: not claiming).
const NUMBER: &str = "io.cargo-v6.claim.number";
/// The annotation counting the claim's rewrites while it is held: its heartbeat.
const BEAT_COUNT: &str = "io.cargo-v6.claim.beat";
/// The annotation naming the claim's own tag: it makes every claim's manifest, so its digest,
/// unique, so that deleting one by digest deletes no other claim's tag.
const RUN: &str = "io.cargo-v6.claim.run";

/// How often a held claim is rewritten.
const BEAT: Duration = Duration::from_secs(10);

/// A claim that has not changed for this long while another run watches it is ignored: its
/// run died, or could not release it. Several [`BEAT`]s, for a slow registry.
const STALE: Duration = Duration::from_secs(45);

/// The first pause between two reads of the claims while waiting; it doubles up to
/// [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_secs(2);

/// The tag prefix of the claims on `version` (an exact tag).
fn prefix(version: &str) -> String {
    format!("v6-claim-{version}-")
}

/// The claim tag of a run (`unique` to it) on `exact`. A version tag near the 128-character
/// limit leaves no room for the claim's suffix: the registry would refuse the tag, so the run
/// says so instead of asking it.
fn claim_tag(exact: &TaggedImage, unique: &str) -> Result<TaggedImage, RegistryError> {
    let name = format!("{}{unique}", prefix(exact.tag.as_str()));
    let tag = Tag::parse(&name).map_err(|e| RegistryError::Protocol {
        registry: exact.image.domain().to_owned(),
        message: format!("cannot claim {exact}: the claim tag `{name}` is not a valid tag ({e})"),
    })?;
    Ok(exact.image.with_tag(&tag))
}

/// Whether a run can claim `exact`: its claim tag, with the longest suffix a run gives it,
/// is a valid tag. Checked before anything is built, so that a version too long to claim
/// costs no build.
pub fn claimable(exact: &TaggedImage) -> Result<(), RegistryError> {
    claim_tag(exact, &unique(u32::MAX, u128::MAX)).map(|_| ())
}

/// The suffix that makes a run's claim tag its own: its process id and the time.
fn unique(pid: u32, nanos: u128) -> String {
    format!("{pid:x}-{nanos:x}")
}

/// This run's claim on an exact tag, held while it checks and pushes.
#[derive(Debug)]
pub struct Claim<'a> {
    registry: &'a Registry,
    /// The claim's own tag.
    tag: TaggedImage,
    fingerprint: String,
    /// What the claim says now, when it was last written, and its digest (`None` before its
    /// first write).
    written: Mutex<(State, Instant, Option<Digest>)>,
}

/// What a claim says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    choosing: bool,
    number: u64,
    beat: u64,
}

/// Another run's claim, as read: what it says, and its digest (to delete it when stale).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Other {
    state: State,
    digest: Digest,
}

/// Takes the claim on `exact` for a run of input `fingerprint`: returns once this run may
/// check and push, every claim ahead of it released (or stale).
pub async fn acquire<'a>(
    registry: &'a Registry,
    exact: &TaggedImage,
    fingerprint: &str,
    observer: &dyn Observer,
) -> Result<Claim<'a>, PublishError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tag = claim_tag(exact, &unique(std::process::id(), nanos))?;
    let choosing = State {
        choosing: true,
        number: 0,
        beat: 0,
    };
    let claim = Claim {
        registry,
        tag,
        fingerprint: fingerprint.to_owned(),
        written: Mutex::new((choosing, Instant::now(), None)),
    };
    claim.write(choosing).await?;
    match claim.take(exact, observer).await {
        Ok(()) => Ok(claim),
        Err(e) => {
            // A run that fails while waiting leaves no claim for others to wait out.
            claim.release().await;
            Err(e)
        }
    }
}

impl Claim<'_> {
    /// The bakery after the claim's first write (`choosing`): reads every claim, writes
    /// `1 + max(numbers)`, and waits until no other claim is choosing or ahead of this one.
    async fn take(&self, exact: &TaggedImage, observer: &dyn Observer) -> Result<(), PublishError> {
        let others = self.others(exact).await?;
        let number = 1 + others.values().map(|o| o.state.number).max().unwrap_or(0);
        self.write(State {
            choosing: false,
            number,
            beat: 0,
        })
        .await?;
        let mut seen: BTreeMap<Tag, (Other, Instant)> = BTreeMap::new();
        let mut poll = FIRST_POLL;
        loop {
            let others = self.others(exact).await?;
            let now = Instant::now();
            let mut blocking = None;
            for (tag, other) in &others {
                let since = match seen.get(tag) {
                    Some((before, since)) if before == other => *since,
                    _ => now,
                };
                seen.insert(tag.clone(), (other.clone(), since));
                let ahead =
                    other.state.number != 0 && (other.state.number, tag) < (number, &self.tag.tag);
                if !(other.state.choosing || ahead) {
                    continue;
                }
                if now.duration_since(since) >= STALE {
                    // Its run died or cannot write: the claim no longer counts.
                    observer.event(Event::Retry(format!(
                        "the claim {tag} has not changed for {} s: ignored as stale, and deleted",
                        STALE.as_secs()
                    )));
                    let _ = self
                        .registry
                        .delete_manifest(&self.tag.image, &other.digest)
                        .await;
                    continue;
                }
                blocking.get_or_insert(tag);
            }
            let Some(first) = blocking else {
                return Ok(());
            };
            self.beat_if_due().await?;
            observer.event(Event::Retry(format!(
                "another publish of {exact} holds its claim ({first}); waiting {} ms",
                poll.as_millis()
            )));
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(MAX_POLL);
        }
    }

    /// Runs `work` while keeping the claim alive: rewritten every [`BEAT`] until `work` ends.
    pub async fn hold<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let heartbeat = async {
            loop {
                tokio::time::sleep(BEAT).await;
                // A missed beat is no error: the claim goes stale only after several.
                let _ = self.beat_if_due().await;
            }
        };
        tokio::pin!(work, heartbeat);
        tokio::select! {
            done = &mut work => done,
            never = &mut heartbeat => never,
        }
    }

    /// Rewrites the claim with its beat counted up, when [`BEAT`] has passed since the last
    /// write.
    async fn beat_if_due(&self) -> Result<(), PublishError> {
        let (state, written, _) = self.lock().clone();
        if written.elapsed() < BEAT {
            return Ok(());
        }
        self.write(State {
            beat: state.beat + 1,
            ..state
        })
        .await
    }

    fn lock(&self) -> MutexGuard<'_, (State, Instant, Option<Digest>)> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes this claim's `state`.
    async fn write(&self, state: State) -> Result<(), PublishError> {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [],
            "annotations": {
                CHOOSING: state.choosing.to_string(),
                NUMBER: state.number.to_string(),
                BEAT_COUNT: state.beat.to_string(),
                RUN: self.tag.tag.as_str(),
                FINGERPRINT: self.fingerprint,
            },
        });
        let body = serde_json::to_vec(&manifest).unwrap_or_default();
        let digest = self
            .registry
            .put_manifest(&self.tag, body, OCI_INDEX)
            .await?;
        *self.lock() = (state, Instant::now(), Some(digest));
        Ok(())
    }

    /// Every other claim on `exact`, by tag. A claim that cannot be read (gone meanwhile, or
    /// not a claim) counts as none.
    async fn others(&self, exact: &TaggedImage) -> Result<BTreeMap<Tag, Other>, PublishError> {
        let prefix = prefix(exact.tag.as_str());
        let mut others = BTreeMap::new();
        for tag in self.registry.list_tags(&exact.image).await? {
            if !tag.starts_with(&prefix) || tag == self.tag.tag.as_str() {
                continue;
            }
            let Ok(tag) = Tag::parse(&tag) else {
                continue;
            };
            let claim = exact.image.with_tag(&tag);
            let Some(manifest) = self.registry.manifest(&claim).await? else {
                continue;
            };
            if let Some(state) = read_state(manifest.body()) {
                let digest = manifest.digest.clone();
                others.insert(tag, Other { state, digest });
            }
        }
        Ok(others)
    }

    /// Gives the claim up: its manifest deleted; where the registry refuses deletes, written
    /// as released (number 0). Best effort: a claim left behind (the registry unreachable or
    /// read-only) goes stale, and is deleted by the next run that waits on it.
    pub async fn release(self) {
        let Some(digest) = self.lock().2.clone() else {
            return;
        };
        match self
            .registry
            .delete_manifest(&self.tag.image, &digest)
            .await
        {
            Ok(_) | Err(RegistryError::Unreachable { .. }) => {}
            Err(_) => {
                let released = State {
                    choosing: false,
                    number: 0,
                    beat: 0,
                };
                let _ = self.write(released).await;
            }
        }
    }
}

/// What the claim manifest `body` says; `None` when it is no claim.
fn read_state(body: &[u8]) -> Option<State> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let annotations = json.get("annotations")?;
    let text = |key: &str| annotations.get(key).and_then(|v| v.as_str());
    Some(State {
        choosing: text(CHOOSING)? == "true",
        number: text(NUMBER)?.parse().ok()?,
        beat: text(BEAT_COUNT).and_then(|b| b.parse().ok()).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_their_annotations() {
        let body = br#"{"annotations":{"io.cargo-v6.claim.choosing":"false","io.cargo-v6.claim.number":"3","io.cargo-v6.claim.beat":"2"}}"#;
        assert_eq!(
            read_state(body),
            Some(State {
                choosing: false,
                number: 3,
                beat: 2,
            })
        );
        assert_eq!(read_state(br#"{"annotations":{}}"#), None);
        assert_eq!(read_state(b"{}"), None);
        assert_eq!(read_state(b"x"), None);
        assert_eq!(prefix("1.0.0"), "v6-claim-1.0.0-");
    }

    #[test]
    fn claim_tags_are_tags_of_the_exact_tags_repository() {
        let image = crate::oci::reference::ImageName::parse("r.example/o/a").unwrap();
        let exact = image.with_tag(&Tag::parse("1.0.0").unwrap());
        let claim = claim_tag(&exact, "1f-2a").unwrap();
        assert_eq!(claim.to_string(), "r.example/o/a:v6-claim-1.0.0-1f-2a");
        // The longest suffix fits on a version that leaves room for it, and is refused beyond.
        let fits = image.with_tag(&Tag::parse(&"9".repeat(77)).unwrap());
        assert!(claimable(&fits).is_ok());
        let over = image.with_tag(&Tag::parse(&"9".repeat(78)).unwrap());
        assert!(claimable(&over).is_err());
        let long = image.with_tag(&Tag::parse(&"9".repeat(120)).unwrap());
        let error = claim_tag(&long, "1f-2a").unwrap_err().to_string();
        assert!(
            error.starts_with("registry r.example: cannot claim r.example/o/a:999"),
            "{error}"
        );
        assert!(error.contains("is not a valid tag"), "{error}");
    }
}
