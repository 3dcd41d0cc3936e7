//! The steps of a publish, decided before anything is written: the real run executes this list
//! and `--dry-run` prints it. Each step holds what it needs (the smoke run's task, the key
//! that signs, the releases to record), so that executing it checks nothing the decision
//! already knew. The two things no step can hold, the engine and the image `Build` makes,
//! come by type: a decision that builds is executed with its engine (`execute::Work`), and its
//! build phase hands the image it made to `Smoke` and `PushExact`. A new capability is a new variant here, decided in [`super::decide`] and
//! performed in [`super::execute`].

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::oci::reference::{Digest, TaggedImage};
use crate::record::Release;
use crate::run::RunRequest;
use crate::sign::{Format, SigningKey};

/// One thing publish does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Build the plan's image with the engine (once, before the first push).
    Build,
    /// Run the built image as a vantage6 node runs it (`publish --smoke`); a failure stops
    /// the publish before anything is pushed.
    Smoke {
        /// The run: the function, its task, the data.
        request: Box<RunRequest>,
    },
    /// Push the built image under an exact version tag (layers, then the manifest).
    PushExact {
        /// The exact tag.
        tag: TaggedImage,
    },
    /// Write an exact version tag that an unchanged release lacks (its other exact tag holds
    /// it) by a manifest write: no layer upload.
    CompleteExact {
        /// The missing exact tag.
        tag: TaggedImage,
        /// The exact tag whose manifest it gets.
        from: TaggedImage,
    },
    /// Move an alias to the manifest of `from` by a manifest write: no layer upload. After a
    /// build, the aliases are decided again against the registry's tags right before the
    /// first is written.
    PointAlias {
        /// The alias.
        tag: TaggedImage,
        /// The exact tag whose manifest it gets.
        from: TaggedImage,
    },
    /// The tag already holds this release: nothing to write.
    Unchanged {
        /// The tag.
        tag: TaggedImage,
        /// What it holds.
        digest: Digest,
    },
    /// Leave an alias where it is: a higher version owns it.
    HoldAlias {
        /// The alias.
        tag: TaggedImage,
        /// The owner's exact tag.
        by: TaggedImage,
    },
    /// Make sure the release's digest carries a signature by the configured key: added
    /// unless a valid one is there (an unchanged release signed before). Last, once the exact
    /// tags are verified to hold this run's input.
    Sign {
        /// The exact tag whose digest is signed.
        reference: TaggedImage,
        /// That digest, when known before the run (an unchanged release); `None`: the digest
        /// this run pushes, read back from the registry.
        digest: Option<Digest>,
        /// The key.
        key: SignKey,
        /// The layouts to write.
        format: Format,
    },
    /// Write the algorithm store's submission (`store.output`) for the release's digest, so
    /// that the file beside the project names what was just published. After the signature:
    /// the file is written only for a release that is complete.
    WriteStore {
        /// The file, as the user would type it.
        path: PathBuf,
    },
    /// Submit the release to the algorithm store (`[store] submit`), after its file is
    /// written: the store reads the image from the registry, so only a complete release.
    SubmitStore {
        /// Where.
        endpoints: crate::store::submit::Endpoints,
    },
    /// Write the releases of a publish to the record (`v6.lock`). Not a step of one
    /// algorithm: the algorithms of a workspace publish concurrently and the file is one, so
    /// this is the publish's own step, once every algorithm is done, with every release.
    Record {
        /// The record's file.
        path: PathBuf,
        /// The releases published.
        releases: Vec<Release>,
    },
}

/// The key a `Sign` step signs with: its path, for the dry run and messages, and the key,
/// decrypted before any algorithm is published (the password is asked for once).
#[derive(Clone)]
pub struct SignKey {
    /// The private key's file.
    pub path: PathBuf,
    /// The decrypted key.
    pub key: Arc<SigningKey>,
}

impl PartialEq for SignKey {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path && self.key.public().id() == other.key.public().id()
    }
}

impl Eq for SignKey {}

impl std::fmt::Debug for SignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignKey({}, {:?})", self.path.display(), self.key)
    }
}

impl Step {
    /// The tag this step writes or leaves, `None` for the build, the smoke run, the
    /// signature and the files.
    pub fn tag(&self) -> Option<&TaggedImage> {
        match self {
            Step::Build
            | Step::Smoke { .. }
            | Step::Sign { .. }
            | Step::WriteStore { .. }
            | Step::SubmitStore { .. }
            | Step::Record { .. } => None,
            Step::PushExact { tag }
            | Step::CompleteExact { tag, .. }
            | Step::PointAlias { tag, .. }
            | Step::Unchanged { tag, .. }
            | Step::HoldAlias { tag, .. } => Some(tag),
        }
    }
}

/// A tag step in JSON: `{"reference": ..., "change": "push" | "point" | "unchanged" | "held"}`,
/// with `from` or `by` where they apply; the signature as `{"reference": EXACT_TAG, "change":
/// "sign", "digest": ... | null, "key": ..., "format": "sig" | "bundle" | "both"}` (the format
/// `--dry-run --message-format json` prints); the store file as `{"change": "store", "path":
/// ...}`, the record as `{"change": "record", "path": ..., "releases": N}`. An exact tag
/// completed and an alias moved are both a `point`.
impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Step::Build => map.serialize_entry("change", "build")?,
            Step::Smoke { request } => {
                map.serialize_entry("change", "smoke")?;
                map.serialize_entry("method", &request.method)?;
            }
            Step::PushExact { tag } => {
                map.serialize_entry("reference", tag)?;
                map.serialize_entry("change", "push")?;
            }
            Step::CompleteExact { tag, from } | Step::PointAlias { tag, from } => {
                map.serialize_entry("reference", tag)?;
                map.serialize_entry("change", "point")?;
                map.serialize_entry("from", from)?;
            }
            Step::Unchanged { tag, .. } => {
                map.serialize_entry("reference", tag)?;
                map.serialize_entry("change", "unchanged")?;
            }
            Step::HoldAlias { tag, by } => {
                map.serialize_entry("reference", tag)?;
                map.serialize_entry("change", "held")?;
                map.serialize_entry("by", by)?;
            }
            Step::Sign {
                reference,
                digest,
                key,
                format,
            } => {
                map.serialize_entry("reference", reference)?;
                map.serialize_entry("change", "sign")?;
                map.serialize_entry("digest", digest)?;
                map.serialize_entry("key", &crate::diagnostic::display(&key.path))?;
                map.serialize_entry("format", format)?;
            }
            Step::WriteStore { path } => {
                map.serialize_entry("change", "store")?;
                map.serialize_entry("path", &crate::diagnostic::display(path))?;
            }
            Step::SubmitStore { endpoints } => {
                map.serialize_entry("change", "submit")?;
                map.serialize_entry("store", &endpoints.store)?;
                map.serialize_entry("server", &endpoints.server)?;
            }
            Step::Record { path, releases } => {
                map.serialize_entry("change", "record")?;
                map.serialize_entry("path", &crate::diagnostic::display(path))?;
                map.serialize_entry("releases", &releases.len())?;
            }
        }
        map.end()
    }
}
