//! Docker image references, validated and normalized by distribution's grammar
//! (`user/x` is `docker.io/user/x`, `x` is `docker.io/library/x`).
//!
//! The grammar and the normalization are those of `github.com/distribution/reference`
//! (`regexp.go`, `normalize.go`, `reference.go`), the library behind `docker pull`, so that a
//! name accepted here is one the engine and registries accept, and one they reject is rejected
//! here first, with the same message. Invariants of a parsed [`ImageName`]:
//!
//! - `domain` is never empty and never `index.docker.io` (normalized to `docker.io`);
//! - on `docker.io`, single-component paths carry the `library/` prefix;
//! - `path` is lowercase, matches distribution's `remoteName` and is at most 255 characters.
//!
//! # Why an own parser
//!
//! `oci-spec`'s `distribution::Reference` (re-exported by `oci-client`) is not faithful: its
//! regular expression has no IPv6 hosts (`[::1]:5000/x`), it misses the rule that an uppercase
//! first component is a domain, it reports uppercase paths as a bare "invalid reference
//! format", it does not refuse 64-hex names, it accepts uppercase digest hex, and it fills in
//! `latest`, losing whether a tag was written (which [`ImageName::parse`] must know). The
//! grammar is small, so it is written out here and tested against distribution's own tables.
//!
//! Deliberate differences from `ParseNormalizedNamed`: an empty string reports "repository name
//! must have at least one component" (distribution's `Parse` message) rather than "invalid
//! reference format"; and a first component that distribution treats as a domain (it contains
//! `.` or `:`) but that is not a valid host (`foo_bar.com/x`) is an error, where distribution
//! returns a name with an empty domain that no registry can serve.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

/// Docker Hub, as normalized names spell it.
const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy name, normalized to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Namespace of Docker Hub's official images (`ubuntu` is `library/ubuntu`).
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Longest repository path distribution accepts.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

// The building blocks of distribution's `regexp.go`, in the same words.
const ALPHANUMERIC: &str = "[a-z0-9]+";
const SEPARATOR: &str = "(?:[._]|__|[-]+)";
const DOMAIN_NAME_COMPONENT: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const OPTIONAL_PORT: &str = "(?::[0-9]+)?";
const IPV6_ADDRESS: &str = r"\[(?:[a-fA-F0-9:]+)\]";
const TAG: &str = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST: &str = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}";

fn path_component() -> String {
    format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*")
}

fn domain_and_port() -> String {
    let domain_name = format!(r"{DOMAIN_NAME_COMPONENT}(?:\.{DOMAIN_NAME_COMPONENT})*");
    format!("(?:{domain_name}|{IPV6_ADDRESS}){OPTIONAL_PORT}")
}

/// `domain/remote-name[:tag][@digest]`, anchored; captures domain, path, tag, digest.
///
/// The domain is mandatory because normalization always supplies one.
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let component = path_component();
    let pattern = format!(
        "^({domain})/({component}(?:/{component})*)(?::({TAG}))?(?:@({DIGEST}))?$",
        domain = domain_and_port(),
    );
    Regex::new(&pattern).expect("distribution's reference grammar is a valid regex")
});

static ANCHORED_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{TAG}$")).expect("tag grammar is a valid regex"));

/// A bare content identifier, which Docker refuses as a repository name.
static IDENTIFIER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-f0-9]{64}$").expect("identifier grammar is a valid regex"));

/// Why a string is not a valid image reference or tag; messages follow distribution's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not match the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The string is empty.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// The repository path has uppercase letters (only the domain may).
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    NameContainsUppercase {
        /// The offending repository path, as written.
        name: String,
    },
    /// The repository path is longer than distribution allows.
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    /// A 64-hex name, which Docker would confuse with an image ID.
    #[error("invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")]
    NameIsIdentifier {
        /// The name as written.
        name: String,
    },
    /// A tag outside `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid tag format: `{tag}`")]
    InvalidTag {
        /// The tag as given.
        tag: String,
    },
    /// The digest's hex part is not lowercase hex of the algorithm's size.
    #[error("invalid checksum digest format")]
    DigestInvalidFormat,
    /// The digest's hex part has the wrong length for its algorithm.
    #[error("invalid checksum digest length")]
    DigestInvalidLength,
    /// The digest's algorithm is not sha256, sha384 or sha512.
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
    /// An image name (`image` in v6.toml) carries a tag; tags are generated, never written.
    #[error("image name must not have a tag (`:{tag}`); tags come from `tags` in v6.toml")]
    NameHasTag {
        /// The tag that was written.
        tag: String,
    },
    /// A reference to one tag (`IMAGE:TAG`) has no tag.
    #[error("reference has no tag (`IMAGE:TAG` is needed)")]
    TagMissing,
    /// An image name (`image` in v6.toml) carries a digest; a digest names one build, not a
    /// repository to publish to.
    #[error("image name must not have a digest (`@{digest}`); tags come from `tags` in v6.toml")]
    NameHasDigest {
        /// The digest that was written.
        digest: String,
    },
}

/// A normalized repository: registry domain plus path, no tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageName {
    domain: String,
    path: String,
}

impl ImageName {
    /// Parses a repository with no tag or digest (`image` in v6.toml).
    ///
    /// A tag or digest is an error rather than being dropped, because the tags a release gets
    /// come from the `tags` templates; note that, as in Docker, `localhost:5000` alone is the
    /// Docker Hub image `library/localhost` with tag `5000` (write `localhost:5000/name`).
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let reference = ImageRef::parse(s)?;
        if let Some(tag) = reference.tag {
            return Err(ReferenceError::NameHasTag { tag });
        }
        if let Some(digest) = reference.digest {
            return Err(ReferenceError::NameHasDigest {
                digest: digest.to_string(),
            });
        }
        Ok(reference.name)
    }

    /// `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/x`, `org/algo`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full reference for `tag`.
    pub fn with_tag(&self, tag: &Tag) -> TaggedImage {
        TaggedImage {
            image: self.clone(),
            tag: tag.clone(),
        }
    }

    /// Whether the registry is on this machine (`localhost`, `127.0.0.0/8`, `[::1]`, with any
    /// port): the registry layer speaks plain HTTP only to these, as Docker does by default.
    pub fn is_loopback(&self) -> bool {
        is_loopback_domain(&self.domain)
    }
}

/// Whether a registry domain (`host[:port]`) is on this machine: `localhost`, `127.0.0.0/8` or
/// `[::1]`, with any port. The one loopback rule of the crate: the registry client speaks plain
/// HTTP to these, as the Docker engine does by default.
pub fn is_loopback_domain(domain: &str) -> bool {
    let host = match domain.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((v6, _port)) => {
                return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
            }
            None => return false,
        },
        None => domain.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)
    }
}

impl FromStr for ImageName {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for ImageName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A valid tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`): built only by [`Tag::parse`], so that a
/// `Tag` is always one the registry accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Checks `tag` against the tag grammar.
    pub fn parse(tag: &str) -> Result<Self, ReferenceError> {
        validate_tag(tag)?;
        Ok(Tag(tag.to_owned()))
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Tag {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Tag {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A content digest (`sha256:<64 hex>`), as go-digest validates it: what a registry answers in
/// `Docker-Content-Digest` and what nodes pin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Checks `digest` (a known algorithm, lowercase hex of its size).
    pub fn parse(digest: &str) -> Result<Self, ReferenceError> {
        validate_digest(digest)?;
        Ok(Digest(digest.to_owned()))
    }

    /// The digest as text, `algorithm:hex`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is no digest: {e}")))
    }
}

/// One tag of one repository (`ghcr.io/o/a:1.2.0`): what publish writes, kept typed so that
/// nothing downstream parses a reference string back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaggedImage {
    /// The repository.
    pub image: ImageName,
    /// The tag.
    pub tag: Tag,
}

impl TaggedImage {
    /// Parses `IMAGE:TAG` (normalized as [`ImageRef::parse`] does): the tag is required, and
    /// a digest refused.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let reference = ImageRef::parse(s)?;
        if let Some(digest) = reference.digest {
            return Err(ReferenceError::NameHasDigest {
                digest: digest.to_string(),
            });
        }
        let tag = Tag::parse(reference.tag.as_deref().ok_or(ReferenceError::TagMissing)?)?;
        Ok(reference.name.with_tag(&tag))
    }
}

impl<'de> serde::Deserialize<'de> for TaggedImage {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TaggedImage::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("`{text}` is no image tag: {e}")))
    }
}

impl fmt::Display for TaggedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.image, self.tag)
    }
}

impl serde::Serialize for TaggedImage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A normalized reference that may carry a tag and/or digest (a base image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository.
    pub name: ImageName,
    /// The tag, if written (`latest` is *not* filled in).
    pub tag: Option<String>,
    /// `sha256:...`, if pinned.
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses a full reference (`python:3.12-slim`, `ghcr.io/o/r:1@sha256:...`) the way
    /// Docker's `ParseNormalizedNamed` does.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        if IDENTIFIER.is_match(s) {
            return Err(ReferenceError::NameIsIdentifier { name: s.to_owned() });
        }
        let (domain, remainder) = split_docker_domain(s);
        // Everything before the first `:` is the path (`:` after it starts a tag or is
        // inside a digest), and only the path must be lowercase.
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::NameContainsUppercase {
                name: remote.to_owned(),
            });
        }
        let full = format!("{domain}/{remainder}");
        let captures = REFERENCE
            .captures(&full)
            .ok_or(ReferenceError::InvalidFormat)?;
        let text = |i: usize| captures.get(i).map(|m| m.as_str().to_owned());
        let path = text(2).unwrap_or_default();
        if path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let digest = text(4).as_deref().map(Digest::parse).transpose()?;
        Ok(Self {
            name: ImageName {
                domain: text(1).unwrap_or_default(),
                path,
            },
            tag: text(3),
            digest,
        })
    }

    /// The tag written, or `latest` when none is, as Docker has it.
    pub fn tag_or_latest(&self) -> Tag {
        Tag(self.tag.clone().unwrap_or_else(|| "latest".to_owned()))
    }
}

impl fmt::Display for ImageRef {
    /// Normalized, with `:latest` when neither tag nor digest was written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        match (&self.tag, &self.digest) {
            (None, None) => write!(f, ":latest"),
            (tag, digest) => {
                if let Some(tag) = tag {
                    write!(f, ":{tag}")?;
                }
                if let Some(digest) = digest {
                    write!(f, "@{digest}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Checks a tag against `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    if ANCHORED_TAG.is_match(tag) {
        Ok(())
    } else {
        Err(ReferenceError::InvalidTag {
            tag: tag.to_owned(),
        })
    }
}

/// Splits off the registry the way Docker does: the first component is a domain if it is
/// `localhost`, contains `.` or `:`, or has uppercase letters (paths may not); otherwise the
/// registry is Docker Hub, where a single component is an official (`library/`) image.
fn split_docker_domain(name: &str) -> (&str, String) {
    let (domain, remote) = match name.split_once('/') {
        None => (DEFAULT_DOMAIN, name),
        Some((LEGACY_DEFAULT_DOMAIN, rest)) => (DEFAULT_DOMAIN, rest),
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.to_lowercase() != first =>
        {
            (first, rest)
        }
        Some(_) => (DEFAULT_DOMAIN, name),
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        (domain, format!("{OFFICIAL_REPO_PREFIX}{remote}"))
    } else {
        (domain, remote.to_owned())
    }
}

/// go-digest's validation: a known algorithm and lowercase hex of exactly its size.
fn validate_digest(digest: &str) -> Result<(), ReferenceError> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or(ReferenceError::DigestInvalidFormat)?;
    let size = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if hex.len() != size {
        return Err(ReferenceError::DigestInvalidLength);
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ReferenceError::DigestInvalidFormat);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_images_parse_normalized_and_round_trip_through_serde() {
        let tagged = TaggedImage::parse("user/algo:1.0.0").unwrap();
        assert_eq!(tagged.to_string(), "docker.io/user/algo:1.0.0");
        assert_eq!(TaggedImage::parse(&tagged.to_string()).unwrap(), tagged);
        assert_eq!(
            TaggedImage::parse("ghcr.io/o/a").unwrap_err(),
            ReferenceError::TagMissing
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(
            TaggedImage::parse(&format!("ghcr.io/o/a:1@{digest}")),
            Err(ReferenceError::NameHasDigest { .. })
        ));
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Both {
            image: TaggedImage,
            digest: Digest,
        }
        let both = Both {
            image: tagged,
            digest: Digest::parse(&digest).unwrap(),
        };
        let json = serde_json::to_string(&both).unwrap();
        assert_eq!(
            json,
            format!(r#"{{"image":"docker.io/user/algo:1.0.0","digest":"{digest}"}}"#)
        );
        assert_eq!(serde_json::from_str::<Both>(&json).unwrap(), both);
        let bad = serde_json::from_str::<Both>(r#"{"image":"a:1","digest":"sha256:x"}"#);
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("`sha256:x` is no digest")
        );
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for r in [
            "127.0.0.1:5570",
            "127.1.2.3",
            "localhost",
            "LOCALHOST:5000",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback_domain(r), "{r}");
        }
        for r in [
            "ghcr.io",
            "10.0.0.1:5000",
            "[::2]:5000",
            "localhost.example",
        ] {
            assert!(!is_loopback_domain(r), "{r}");
        }
    }

    use proptest::prelude::*;

    const SHA256_F: &str =
        "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    fn parsed(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
    }

    /// A parse expectation: input, domain, path, tag, digest.
    type Case<'a> = (String, &'a str, String, Option<&'a str>, Option<&'a str>);

    /// distribution's `TestReferenceParse`, seen through normalization: (input, domain, path,
    /// tag, digest). Names without a domain land on Docker Hub, single components in `library/`.
    #[test]
    fn distribution_reference_parse_table() {
        let sha512 = format!("sha512:{}", "f".repeat(128));
        let long_name = format!("{}a", "a/".repeat(127));
        let cases: Vec<Case> = vec![
            (
                "test_com".into(),
                "docker.io",
                "library/test_com".into(),
                None,
                None,
            ),
            (
                "test.com:tag".into(),
                "docker.io",
                "library/test.com".into(),
                Some("tag"),
                None,
            ),
            (
                "test.com:5000".into(),
                "docker.io",
                "library/test.com".into(),
                Some("5000"),
                None,
            ),
            (
                "test.com/repo:tag".into(),
                "test.com",
                "repo".into(),
                Some("tag"),
                None,
            ),
            (
                "test:5000/repo".into(),
                "test:5000",
                "repo".into(),
                None,
                None,
            ),
            (
                "test:5000/repo:tag".into(),
                "test:5000",
                "repo".into(),
                Some("tag"),
                None,
            ),
            (
                format!("test:5000/repo@{SHA256_F}"),
                "test:5000",
                "repo".into(),
                None,
                Some(SHA256_F),
            ),
            (
                format!("test:5000/repo:tag@{SHA256_F}"),
                "test:5000",
                "repo".into(),
                Some("tag"),
                Some(SHA256_F),
            ),
            (
                "lowercase:Uppercase".into(),
                "docker.io",
                "library/lowercase".into(),
                Some("Uppercase"),
                None,
            ),
            (
                format!("{long_name}:tag-puts-this-over-max"),
                "docker.io",
                long_name.clone(),
                Some("tag-puts-this-over-max"),
                None,
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux".into(),
                "sub-dom1.foo.com",
                "bar/baz/quux".into(),
                None,
                None,
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(),
                "sub-dom1.foo.com",
                "bar/baz/quux".into(),
                Some("some-long-tag"),
                None,
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com".into(),
                "b.gcr.io",
                "test.example.com/my-app".into(),
                Some("test.example.com"),
                None,
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com".into(),
                "xn--n3h.com",
                "myimage".into(),
                Some("xn--n3h.com"),
                None,
            ),
            (
                format!("xn--7o8h.com/myimage:xn--7o8h.com@{sha512}"),
                "xn--7o8h.com",
                "myimage".into(),
                Some("xn--7o8h.com"),
                Some(sha512.as_str()),
            ),
            (
                "foo_bar.com:8080".into(),
                "docker.io",
                "library/foo_bar.com".into(),
                Some("8080"),
                None,
            ),
            (
                "foo/foo_bar.com:8080".into(),
                "docker.io",
                "foo/foo_bar.com".into(),
                Some("8080"),
                None,
            ),
            (
                "192.168.1.1".into(),
                "docker.io",
                "library/192.168.1.1".into(),
                None,
                None,
            ),
            (
                "192.168.1.1:tag".into(),
                "docker.io",
                "library/192.168.1.1".into(),
                Some("tag"),
                None,
            ),
            (
                "192.168.1.1:5000".into(),
                "docker.io",
                "library/192.168.1.1".into(),
                Some("5000"),
                None,
            ),
            (
                "192.168.1.1/repo".into(),
                "192.168.1.1",
                "repo".into(),
                None,
                None,
            ),
            (
                "192.168.1.1:5000/repo".into(),
                "192.168.1.1:5000",
                "repo".into(),
                None,
                None,
            ),
            (
                "192.168.1.1:5000/repo:5050".into(),
                "192.168.1.1:5000",
                "repo".into(),
                Some("5050"),
                None,
            ),
            (
                "[2001:db8::1]/repo".into(),
                "[2001:db8::1]",
                "repo".into(),
                None,
                None,
            ),
            (
                "[2001:db8:1:2:3:4:5:6]/repo:tag".into(),
                "[2001:db8:1:2:3:4:5:6]",
                "repo".into(),
                Some("tag"),
                None,
            ),
            (
                "[2001:db8::1]:5000/repo".into(),
                "[2001:db8::1]:5000",
                "repo".into(),
                None,
                None,
            ),
            (
                "[2001:db8::1]:5000/repo:tag".into(),
                "[2001:db8::1]:5000",
                "repo".into(),
                Some("tag"),
                None,
            ),
            (
                format!("[2001:db8::1]:5000/repo@{SHA256_F}"),
                "[2001:db8::1]:5000",
                "repo".into(),
                None,
                Some(SHA256_F),
            ),
            (
                format!("[2001:db8::1]:5000/repo:tag@{SHA256_F}"),
                "[2001:db8::1]:5000",
                "repo".into(),
                Some("tag"),
                Some(SHA256_F),
            ),
            (
                "[2001:db8::]:5000/repo".into(),
                "[2001:db8::]:5000",
                "repo".into(),
                None,
                None,
            ),
            (
                "[::1]:5000/repo".into(),
                "[::1]:5000",
                "repo".into(),
                None,
                None,
            ),
            // Newer rule: an uppercase first component is a domain (distribution's FIXME case).
            (
                "Uppercase/lowercase:tag".into(),
                "Uppercase",
                "lowercase".into(),
                Some("tag"),
                None,
            ),
        ];
        for (input, domain, path, tag, digest) in cases {
            let r = parsed(&input);
            assert_eq!(r.name.domain(), domain, "{input}");
            assert_eq!(r.name.path(), path, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
            assert_eq!(r.digest.as_ref().map(Digest::as_str), digest, "{input}");
        }
    }

    #[test]
    fn distribution_reference_parse_errors() {
        use ReferenceError::*;
        let upper = |name: &str| NameContainsUppercase { name: name.into() };
        let cases: Vec<(String, ReferenceError)> = vec![
            ("".into(), NameEmpty),
            (":justtag".into(), InvalidFormat),
            (format!("@{SHA256_F}"), InvalidFormat),
            (
                format!("repo@sha256:{}", "f".repeat(34)),
                DigestInvalidLength,
            ),
            (
                format!("validname@invaliddigest:{}", "f".repeat(64)),
                DigestUnsupported,
            ),
            (
                format!("repo@sha256:{}", "F".repeat(64)),
                DigestInvalidFormat,
            ),
            // Docker says `repository name (library/Uppercase) must be lowercase` too.
            ("Uppercase:tag".into(), upper("library/Uppercase")),
            (
                "test:5000/Uppercase/lowercase:tag".into(),
                upper("Uppercase/lowercase"),
            ),
            (format!("{}a:tag", "a/".repeat(128)), NameTooLong),
            ("aa/asdf$$^/aa".into(), InvalidFormat),
            ("[2001:db8::1]".into(), InvalidFormat),
            ("[2001:db8::1]:5000".into(), InvalidFormat),
            ("[2001:db8::1]:tag".into(), InvalidFormat),
            ("[fe80::1%eth0]:5000/repo".into(), InvalidFormat),
            ("[fe80::1%@invalidzone]:5000/repo".into(), InvalidFormat),
            ("foo_bar.com/x".into(), InvalidFormat),
        ];
        for (input, error) in cases {
            assert_eq!(ImageRef::parse(&input), Err(error), "{input}");
        }
    }

    /// distribution's `TestValidateReferenceName` and `TestValidateRemoteName`.
    #[test]
    fn distribution_validate_names() {
        let hex = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
        let docker_io_hex = format!("docker.io/{hex}");
        let valid = [
            "docker/docker",
            "library/debian",
            "debian",
            "docker.io/docker/docker",
            "docker.io/library/debian",
            "docker.io/debian",
            "index.docker.io/docker/docker",
            "index.docker.io/library/debian",
            "index.docker.io/debian",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/debian",
            "192.168.0.1",
            "192.168.0.1:80",
            "192.168.0.1:8/debian",
            "192.168.0.2:25000/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker/docker",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            &docker_io_hex,
            "Docker/docker",
            "DOCKER/docker",
            "docker-rules/docker",
            "docker---rules/docker",
            "doc/docker",
            "d/docker",
            "jess/t",
            "dock__er/docker",
            "registry.io/foo/project--id.module--name.ver---sion--name",
            "example.com/some_separator__underscore/myimage",
        ];
        for name in valid {
            assert!(ImageRef::parse(name).is_ok(), "{name} should be valid");
        }
        let long_namespace = format!("{}/docker", "this_is_not_a_valid_namespace".repeat(9));
        let invalid = [
            "https://github.com/docker/docker",
            "docker/Docker",
            "-docker",
            "-docker/docker",
            "-docker.io/docker/docker",
            "docker///docker",
            "docker.io/docker/Docker",
            "docker.io/docker///docker",
            "[fc00::1]",
            "[fc00::1]:5000",
            "fc00::1:5000/debian",
            "[fe80::1%eth0]:5000/debian",
            "[2001:db8:3:4::192.0.2.33]:5000/debian",
            hex,
            "docker-/docker",
            "-docker-/docker",
            "____/____",
            "_docker/_docker",
            "dock..er/docker",
            "dock_.er/docker",
            "dock-.er/docker",
            "docker/",
            &long_namespace,
            "example.com/__underscore/myimage",
            "example.com/..dots/myimage",
            "example.com/.dots/myimage",
            "docker./docker",
            "foo.com:http/bar",
            "registry.com:8080/myapp:invalid~tag",
            "registry.com:8080/myapp@sha256:badbadbadbad",
            "registry.com:8080/myapp@2bad",
        ];
        for name in invalid {
            assert!(ImageRef::parse(name).is_err(), "{name} should be invalid");
        }
        assert_eq!(
            ImageRef::parse(hex).unwrap_err().to_string(),
            format!("invalid repository name ({hex}), cannot specify 64-byte hexadecimal strings")
        );
    }

    /// distribution's `TestParseRepositoryInfo` and `TestNormalizedSplitHostname`: every
    /// spelling normalizes to the full name.
    #[test]
    fn distribution_normalization() {
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["fooo/bar", "docker.io/fooo/bar", "index.docker.io/fooo/bar"],
                "docker.io",
                "fooo/bar",
            ),
            (
                &["ubuntu", "library/ubuntu", "docker.io/library/ubuntu"],
                "docker.io",
                "library/ubuntu",
            ),
            (&["nonlibrary/ubuntu"], "docker.io", "nonlibrary/ubuntu"),
            (&["other/library"], "docker.io", "other/library"),
            (
                &["127.0.0.1:8000/private/moonbase"],
                "127.0.0.1:8000",
                "private/moonbase",
            ),
            (
                &["127.0.0.1:8000/privatebase"],
                "127.0.0.1:8000",
                "privatebase",
            ),
            (
                &["example.com/private/moonbase"],
                "example.com",
                "private/moonbase",
            ),
            (
                &["example.com:8000/privatebasee"],
                "example.com:8000",
                "privatebasee",
            ),
            (
                &[
                    "ubuntu-12.04-base",
                    "index.docker.io/library/ubuntu-12.04-base",
                ],
                "docker.io",
                "library/ubuntu-12.04-base",
            ),
            (
                &["foo", "docker.io/foo", "docker.io/library/foo"],
                "docker.io",
                "library/foo",
            ),
            (
                &["library/foo/bar", "docker.io/library/foo/bar"],
                "docker.io",
                "library/foo/bar",
            ),
            (&["store/foo/bar"], "docker.io", "store/foo/bar"),
            (&["Foo/bar"], "Foo", "bar"),
            (&["FOO/bar"], "FOO", "bar"),
            (&["test_com/foo"], "docker.io", "test_com/foo"),
            (&["test-com:8080/foo"], "test-com:8080", "foo"),
            (&["xn--n3h.com:18080/foo"], "xn--n3h.com:18080", "foo"),
            (&["localhost/foo"], "localhost", "foo"),
            (&["localhost:5000/foo"], "localhost:5000", "foo"),
        ];
        for (inputs, domain, path) in cases {
            for input in *inputs {
                let name = ImageName::parse(input).unwrap();
                assert_eq!((name.domain(), name.path()), (*domain, *path), "{input}");
            }
        }
    }

    #[test]
    fn display_is_normalized_with_latest_default() {
        assert_eq!(
            parsed("ubuntu").to_string(),
            "docker.io/library/ubuntu:latest"
        );
        assert_eq!(parsed("user/x:1").to_string(), "docker.io/user/x:1");
        let pinned = format!("busybox:latest@{SHA256_F}");
        assert_eq!(
            parsed(&pinned).to_string(),
            format!("docker.io/library/{pinned}")
        );
        let digest_only = format!("ghcr.io/o/r@{SHA256_F}");
        assert_eq!(parsed(&digest_only).to_string(), digest_only);
        assert_eq!(
            ImageName::parse("x")
                .unwrap()
                .with_tag(&Tag::parse("1.2.3").unwrap())
                .to_string(),
            "docker.io/library/x:1.2.3"
        );
    }

    #[test]
    fn image_name_refuses_tag_and_digest() {
        let err = ImageName::parse("ghcr.io/o/algo:1.0").unwrap_err();
        assert_eq!(err, ReferenceError::NameHasTag { tag: "1.0".into() });
        assert!(err.to_string().contains("tags come from `tags` in v6.toml"));
        let err = ImageName::parse(&format!("o/algo@{SHA256_F}")).unwrap_err();
        assert_eq!(
            err,
            ReferenceError::NameHasDigest {
                digest: SHA256_F.into()
            }
        );
        // As in Docker, a lone `localhost:5000` is an image with tag 5000.
        assert_eq!(
            ImageName::parse("localhost:5000").unwrap_err(),
            ReferenceError::NameHasTag { tag: "5000".into() }
        );
    }

    #[test]
    fn tags() {
        let max = format!("a{}", "b".repeat(127));
        for ok in [
            "latest",
            "1.2.3",
            "1.2.3-rc.1",
            "_x",
            "V1",
            "a.-_",
            max.as_str(),
        ] {
            assert_eq!(validate_tag(ok), Ok(()), "{ok}");
        }
        let too_long = format!("a{}", "b".repeat(128));
        for bad in ["", "-x", ".x", "a+b", "a/b", "a:b", "ü", too_long.as_str()] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_tag("1.0+build").unwrap_err().to_string(),
            "invalid tag format: `1.0+build`"
        );
    }

    #[test]
    fn loopback() {
        let loopback = |s: &str| ImageName::parse(s).unwrap().is_loopback();
        for yes in [
            "localhost/x",
            "localhost:5000/x",
            "127.0.0.1/x",
            "127.0.0.1:5000/x",
            "127.1.2.3:80/x",
            "[::1]/x",
            "[::1]:5000/x",
            "[0:0:0:0:0:0:0:1]:5000/x",
        ] {
            assert!(loopback(yes), "{yes}");
        }
        for no in [
            "x",
            "ghcr.io/o/x",
            "128.0.0.1:5000/x",
            "[::2]:5000/x",
            "localhost.example.com/x",
            "[fc00::1]:5000/x",
        ] {
            assert!(!loopback(no), "{no}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = ImageRef::parse(&s);
            let _ = ImageName::parse(&s);
            let _ = validate_tag(&s);
        }

        #[test]
        fn never_panics_near_grammar(s in "[a-zA-Z0-9:/@.\\[\\]_-]{0,60}") {
            if let Ok(r) = ImageRef::parse(&s) {
                let _ = r.name.is_loopback();
            }
        }

        /// Normalizing is idempotent: the displayed form parses back to the same reference.
        #[test]
        fn display_round_trips(
            s in "([a-z]{1,5}\\.[a-z]{2,3}(:[0-9]{1,4})?/)?[a-z0-9]{1,6}([._-][a-z0-9]{1,4})?(/[a-z0-9]{1,6}){0,2}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,10})?"
        ) {
            let r = ImageRef::parse(&s).unwrap();
            let again = ImageRef::parse(&r.to_string()).unwrap();
            prop_assert_eq!(&again.name, &r.name);
            prop_assert_eq!(again.tag.unwrap_or_else(|| "latest".into()), r.tag.unwrap_or_else(|| "latest".into()));
        }
    }
}
