//! `v6.lock`: the record of what each release published, beside the workspace's root v6.toml
//! (or the algorithm's own). One `[[release]]` per algorithm and version, with the exact tag
//! and the digest the registry gave it, sorted by algorithm then version, so that a release
//! adds or changes a few lines and the diff reads as what was released. Commit it: node
//! `allowed_algorithms` lists and store entries pin these digests.
//!
//! `cargo v6 publish` writes it after each release (re-read just before writing, so that the
//! members published at once all land); `cargo v6 plan` says where it and the registry
//! disagree.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::oci::reference::{Digest, TaggedImage};

/// The file's name.
pub const FILE_NAME: &str = "v6.lock";

const HEADER: &str = "# What `cargo v6 publish` published: each algorithm's releases, with the exact tag and\n# the digest the registry gave it. Written by cargo v6; commit it.\n\n";

/// One published release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// `algorithm.name`.
    pub algorithm: String,
    /// The version released.
    pub version: String,
    /// The exact version tag, `REGISTRY/REPOSITORY:TAG`.
    pub image: Recorded<TaggedImage>,
    /// The digest the tag held after the release, `sha256:...`.
    pub digest: Recorded<Digest>,
}

impl Release {
    /// The exact tag and its digest, when both are what they should be: what `plan` checks
    /// against the registry.
    pub fn checkable(&self) -> Option<(&TaggedImage, &Digest)> {
        match (&self.image, &self.digest) {
            (Recorded::Valid(image), Recorded::Valid(digest)) => Some((image, digest)),
            _ => None,
        }
    }
}

/// A value of a recorded release, typed, or as written when it is not one (an entry edited
/// by hand, or written by another tool). Such an entry is kept and written back as it was and
/// left out of `plan`'s checks, with a warning: one bad line in a file that records every
/// algorithm of a workspace must not stop the others' publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Recorded<T> {
    /// The value, read.
    Valid(T),
    /// The text, which is none.
    Invalid(String),
}

/// The releases recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Sorted by algorithm, then version.
    #[serde(default, rename = "release")]
    pub releases: Vec<Release>,
}

/// The record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading failed.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a record.
    #[error("`{}` is not a record of releases: {message} (fix it, or remove it to start a new one)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing failed.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Record {
    /// The record at `path`; empty when there is none yet.
    pub fn load(path: &Path) -> Result<Record, RecordError> {
        let text = match crate::files::read_regular_text(path, crate::files::SMALL_FILE_MAX) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Record::default()),
            Err(source) => {
                return Err(RecordError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| RecordError::Invalid {
            path: path.to_path_buf(),
            message: e.message().trim_end().to_string(),
        })
    }

    /// Adds `release`, or replaces the entry of the same algorithm and version.
    pub fn insert(&mut self, release: Release) {
        self.releases
            .retain(|r| !(r.algorithm == release.algorithm && r.version == release.version));
        self.releases.push(release);
        self.releases.sort_by(|a, b| {
            a.algorithm
                .cmp(&b.algorithm)
                .then_with(|| version_order(&a.version, &b.version))
        });
    }

    /// The releases of `algorithm`.
    pub fn of<'a>(&'a self, algorithm: &'a str) -> impl Iterator<Item = &'a Release> + 'a {
        self.releases
            .iter()
            .filter(move |r| r.algorithm == algorithm)
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let body = toml::to_string(self).expect("a record of strings serializes");
        format!("{HEADER}{body}")
    }

    /// Adds `releases` to the record at `path` as it is now, and writes it whole
    /// ([`crate::files::write_whole`]: a reader never sees half a record).
    pub fn update(path: &Path, releases: Vec<Release>) -> Result<(), RecordError> {
        let mut record = Record::load(path)?;
        for release in releases {
            record.insert(release);
        }
        let write_error = |source| RecordError::Write {
            path: path.to_path_buf(),
            source,
        };
        crate::files::write_whole(path, record.to_text().as_bytes()).map_err(write_error)
    }
}

/// Versions in release order, a total order (sorting panics on one that is not): PEP 440's
/// order for every version it reads (it reads semver's too: `1.10.0` after `1.9.0`, `1.0.0rc1`
/// and `1.0.0-rc.1` before `1.0.0`), then semver's for the rest, then the text.
fn version_order(a: &str, b: &str) -> Ordering {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Key {
        Pep440(pep440_rs::Version),
        Semver(semver::Version),
        Text(String),
    }
    let key = |text: &str| match (
        text.parse::<pep440_rs::Version>(),
        semver::Version::parse(text),
    ) {
        (Ok(version), _) => Key::Pep440(version),
        (_, Ok(version)) => Key::Semver(version),
        _ => Key::Text(text.to_string()),
    };
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(algorithm: &str, version: &str, digest: &str) -> Release {
        Release {
            algorithm: algorithm.into(),
            version: version.into(),
            image: Recorded::Valid(
                TaggedImage::parse(&format!("r.example/{algorithm}:{version}")).unwrap(),
            ),
            digest: Recorded::Valid(
                Digest::parse(&format!("sha256:{}", digest.repeat(64))).unwrap(),
            ),
        }
    }

    #[test]
    fn sorted_by_algorithm_then_version_and_replaced_in_place() {
        let mut record = Record::default();
        record.insert(release("b", "1.10.0", "3"));
        record.insert(release("b", "1.9.0", "2"));
        record.insert(release("a", "2.0.0", "1"));
        record.insert(release("b", "1.9.0", "4"));
        let order: Vec<(&str, &str, &str)> = record
            .releases
            .iter()
            .map(|r| {
                (
                    r.algorithm.as_str(),
                    r.version.as_str(),
                    &r.checkable().unwrap().1.as_str()[7..8],
                )
            })
            .collect();
        assert_eq!(
            order,
            [
                ("a", "2.0.0", "1"),
                ("b", "1.9.0", "4"),
                ("b", "1.10.0", "3")
            ]
        );
        assert_eq!(record.of("b").count(), 2);
    }

    #[test]
    fn any_versions_sort_in_a_total_order_with_release_candidates_first() {
        let mut record = Record::default();
        let mut versions = Vec::new();
        for n in [10, 2, 0, 24, 9, 1] {
            versions.extend([
                format!("1.{n}.0"),
                format!("1.{n}.0rc1"),
                format!("1.{n}"),
                format!("x{n}"),
            ]);
        }
        for version in &versions {
            record.insert(release("a", version, "0"));
        }
        let order: Vec<&str> = record.releases.iter().map(|r| r.version.as_str()).collect();
        let position = |v: &str| order.iter().position(|o| *o == v).unwrap();
        assert!(position("1.0.0rc1") < position("1.0.0"));
        assert!(position("1.9.0") < position("1.10.0"));
        assert!(position("1.10.0rc1") < position("1.10.0"));
        assert_eq!(order.len(), versions.len());
    }

    #[test]
    fn the_file_round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        assert_eq!(Record::load(&path).unwrap(), Record::default());
        Record::update(&path, vec![release("a", "1.0.0", "1")]).unwrap();
        Record::update(&path, vec![release("a", "1.1.0", "2")]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# What `cargo v6 publish` published"),
            "{text}"
        );
        assert_eq!(text.matches("[[release]]").count(), 2, "{text}");
        assert!(
            text.contains(&format!(
                "image = \"r.example/a:1.0.0\"\ndigest = \"sha256:{}\"\n",
                "1".repeat(64)
            )),
            "{text}"
        );
        let loaded = Record::load(&path).unwrap();
        assert_eq!(loaded.releases.len(), 2);
        assert_eq!(loaded.releases[0], release("a", "1.0.0", "1"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "[[release]]\nalgorithm = 1\n").unwrap();
        let error = Record::load(&path).unwrap_err().to_string();
        assert!(error.contains("is not a record of releases"), "{error}");
        // An entry whose image or digest is none is no record either.
        let entry = |image: &str, digest: &str| {
            format!(
                "[[release]]\nalgorithm = \"a\"\nversion = \"1\"\nimage = \"{image}\"\ndigest = \"{digest}\"\n"
            )
        };
        let good = format!("sha256:{}", "1".repeat(64));
        std::fs::write(&path, entry("r.example/a:1", &good)).unwrap();
        let loaded = Record::load(&path).unwrap();
        assert!(loaded.releases[0].checkable().is_some());
        // An entry whose image or digest is none is kept as written, and not checked.
        for (image, digest) in [
            ("r.example/a", good.as_str()),
            ("r.example/a:1", "sha256:1"),
        ] {
            let text = entry(image, digest);
            std::fs::write(&path, &text).unwrap();
            let loaded = Record::load(&path).unwrap();
            assert!(loaded.releases[0].checkable().is_none(), "{image} {digest}");
            Record::update(&path, vec![release("b", "1.0.0", "2")]).unwrap();
            let written = std::fs::read_to_string(&path).unwrap();
            assert!(written.contains(&text), "{written}");
            assert_eq!(Record::load(&path).unwrap().releases.len(), 2);
        }
    }
}
