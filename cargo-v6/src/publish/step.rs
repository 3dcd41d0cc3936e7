//! The steps of a publish, decided before anything is written: the real run executes this list
//! and `--dry-run` prints it. A new capability (signing, a record of what was published) is a
//! new variant here, decided in [`super::decide`] and performed in [`super::execute`].

use std::path::PathBuf;

use serde::Serialize;
use serde::ser::SerializeMap;

use crate::oci::reference::{Digest, TaggedImage};
use crate::sign::Format;

/// One thing publish does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Build the plan's image with the engine (once, before the first push).
    Build,
    /// Run the built image as a vantage6 node runs it (`publish --smoke`); a failure stops
    /// the publish before anything is pushed.
    Smoke {
        /// The function run.
        method: String,
    },
    /// Push the built image under an exact version tag (layers, then the manifest).
    PushExact {
        /// The exact tag.
        tag: TaggedImage,
    },
    /// Point a tag at the manifest of `from` by a manifest write: no layer upload.
    PointAlias {
        /// The tag that moves (an alias, or a missing exact tag of an unchanged release).
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
        /// The private key, as given.
        key: String,
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
}

impl Step {
    /// The tag this step writes or leaves, `None` for the build and the signature.
    pub fn tag(&self) -> Option<&TaggedImage> {
        match self {
            Step::Build | Step::Smoke { .. } | Step::Sign { .. } | Step::WriteStore { .. } => None,
            Step::PushExact { tag }
            | Step::PointAlias { tag, .. }
            | Step::Unchanged { tag, .. }
            | Step::HoldAlias { tag, .. } => Some(tag),
        }
    }

    /// Whether the step writes `tag` to the registry.
    pub fn writes_tag(&self) -> bool {
        matches!(self, Step::PushExact { .. } | Step::PointAlias { .. })
    }
}

/// A tag step in JSON: `{"reference": ..., "change": "push" | "point" | "unchanged" | "held"}`,
/// with `from` or `by` where they apply; the signature as `{"reference": EXACT_TAG, "change":
/// "sign", "digest": ... | null, "key": ..., "format": "sig" | "bundle" | "both"}` (the format
/// `--dry-run --message-format json` prints); the store file as `{"change": "store", "path":
/// ...}`.
impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Step::Build => map.serialize_entry("change", "build")?,
            Step::Smoke { method } => {
                map.serialize_entry("change", "smoke")?;
                map.serialize_entry("method", method)?;
            }
            Step::PushExact { tag } => {
                map.serialize_entry("reference", tag)?;
                map.serialize_entry("change", "push")?;
            }
            Step::PointAlias { tag, from } => {
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
                map.serialize_entry("key", key)?;
                map.serialize_entry("format", format)?;
            }
            Step::WriteStore { path } => {
                map.serialize_entry("change", "store")?;
                map.serialize_entry("path", &crate::diagnostic::display(path))?;
            }
        }
        map.end()
    }
}
