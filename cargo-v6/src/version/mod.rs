//! Versions: read from the project's own metadata, parsed by the project's scheme
//! (semver, PEP 440, R), and mapped to one tag-safe *exact tag*.
//!
//! A release is published under one exact tag (and some floating aliases, see
//! [`crate::tags`]). The exact tag must be a valid Docker tag
//! (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`), must never look like a floating alias, and must
//! identify the version, so that the registry's tags can be read back and ordered.
//!
//! # Invariants
//!
//! * An exact tag always has at least three numeric components, so it can never equal an
//!   alias like `1.2` or `1`.
//! * [`Version::exact_tag`] is a function of the version's *identity* (equal versions get
//!   equal tags) and is injective (different versions get different tags).
//! * [`Version::from_exact_tag`] inverts it: `from_exact_tag(&v.exact_tag(), v.scheme())`
//!   is `Some(w)` with `w == v`, and it returns `None` for any text that is not the exact tag
//!   of some version (a floating alias, a non-canonical spelling).
//! * Every [`Version`] has a valid exact tag: [`Version::parse`] rejects versions whose tag
//!   would exceed Docker's 128 characters. Nothing in this module panics on any input.
//!
//! # Mapping
//!
//! | Scheme  | Version written                   | Exact tag                      | Stable | `prerelease()` |
//! |---------|-----------------------------------|--------------------------------|--------|----------------|
//! | semver  | `1.2.3`                           | `1.2.3`                        | yes    |                |
//! | semver  | `1.2.3-rc.1`                      | `1.2.3-rc.1`                   | no     | `rc.1`         |
//! | semver  | `1.2.3+build.5`                   | `1.2.3_build.5`                | yes    |                |
//! | semver  | `1.2.3-beta.2+sha.5114f85`        | `1.2.3-beta.2_sha.5114f85`     | no     | `beta.2`       |
//! | PEP 440 | `1.2`, `1.2.0`, `1.2.0.0`, `v1.2` | `1.2.0`                        | yes    |                |
//! | PEP 440 | `1.2.3.4`                         | `1.2.3.4`                      | yes    |                |
//! | PEP 440 | `1.2rc1`, `1.2.0-RC1`, `1.2c1`    | `1.2.0rc1`                     | no     | `rc1`          |
//! | PEP 440 | `1.2a1`, `1.2.0-alpha.1`          | `1.2.0a1`                      | no     | `a1`           |
//! | PEP 440 | `1.2b2`                           | `1.2.0b2`                      | no     | `b2`           |
//! | PEP 440 | `1.2.post1`, `1.2-1`, `1.2.0.r1`  | `1.2.0.post1`                  | yes    |                |
//! | PEP 440 | `1.2.dev3`, `1.2-dev3`            | `1.2.0.dev3`                   | no     | `dev3`         |
//! | PEP 440 | `1.2.0.post1.dev2`                | `1.2.0.post1.dev2`             | no     | `dev2`         |
//! | PEP 440 | `1.2rc1.post2.dev3`               | `1.2.0rc1.post2.dev3`          | no     | `rc1.dev3`     |
//! | PEP 440 | `1.2+ubuntu.1`, `1.2+Ubuntu-1`    | `1.2.0_ubuntu.1`               | yes    |                |
//! | PEP 440 | `1!2.0`                           | `epoch1-2.0.0`                 | yes    |                |
//! | PEP 440 | `1!2.0rc1+local`                  | `epoch1-2.0.0rc1_local`        | no     | `rc1`          |
//! | R       | `1.2`                             | `1.2.0`                        | yes    |                |
//! | R       | `1.2-3`, `1.2.3`, `1.02-03`       | `1.2.3`                        | yes    |                |
//! | R       | `1.2.3.0`                         | `1.2.3`                        | yes    |                |
//! | R       | `1.2.3.4`                         | `1.2.3.4`                      | yes    |                |
//! | R       | `0.1.2.9000`, `0.1.2-9000`        | `0.1.2.9000`                   | no     | `9000`         |
//!
//! Why this is injective:
//!
//! * **semver**: the tag is the canonical text with `+` replaced by `_`. Semver identifiers
//!   use only `[0-9A-Za-z-]`, so `_` occurs nowhere else and the replacement is reversible.
//! * **PEP 440**: the tag is the normalized text (pep440_rs: lower case, `a`/`b`/`rc`,
//!   `.postN`, `.devN`, `.`-separated local segments) with the release padded to three
//!   components and trailing zeros past the third dropped (PEP 440 pads with zeros when
//!   comparing, so `1.2`, `1.2.0` and `1.2.0.0` are one version), `+` replaced by `_`, and a
//!   non-zero epoch `N!` written as the prefix `epochN-`. Normalized PEP 440 contains neither
//!   `_` nor `-`, so both markers are unambiguous. The epoch is a prefix rather than a
//!   `-epochN` suffix so that no reader mistakes it for a semver pre-release: an epoch makes a
//!   version *higher* than every version of a lower epoch.
//! * **R**: the numeric components joined by `.`, padded and trimmed like PEP 440. R reads
//!   `-` like `.`, and component values are integers (`02` is `2`).
//!
//! # Ordering
//!
//! `Eq`/`Ord` follow each scheme's precedence, made total and consistent with the exact tag:
//! semver orders build metadata after precedence (as the semver crate does, so `1.0.0+a` and
//! `1.0.0+b` are distinct versions with distinct tags); PEP 440 orders as pep440_rs does
//! (including local versions); R compares components numerically with missing components
//! read as `0`. That last rule deliberately differs from R's `package_version`, which ranks
//! `1.2.0` above `1.2`: both must map to the tag `1.2.0`, so here they are the same version.
//! Versions of different schemes never compare equal; they order by scheme (semver, PEP 440,
//! R), which only exists to make `Ord` total.

mod metadata;

use std::cmp::Ordering;
use std::fmt;

use crate::vantage6::Wrapper;

pub use metadata::{MetadataError, MetadataVersion, read_project_version};

/// Docker's limit on the length of a tag.
const MAX_TAG_LEN: usize = 128;

/// The version grammar a project uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Cargo and most tools: `1.2.3-rc.1+build`.
    Semver,
    /// Python: `1!2.0rc1.post2.dev3+local`.
    Pep440,
    /// R's DESCRIPTION: `1.2-3`, `0.1.2.9000`.
    R,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Semver => "semver",
            Scheme::Pep440 => "PEP 440",
            Scheme::R => "R",
        })
    }
}

/// A parsed version, ordered by its scheme's precedence.
///
/// Equality is the scheme's notion of "the same version" (PEP 440 `1.2 == 1.2.0`, R
/// `1.2-3 == 1.2.3`), not equality of the text; [`Version::raw`] keeps the text as written.
#[derive(Debug, Clone)]
pub struct Version {
    raw: String,
    parsed: Parsed,
}

/// The scheme-specific parse. R keeps its components as written (not trimmed) so that
/// `major`/`minor`/`patch` read the written numbers.
#[derive(Debug, Clone)]
enum Parsed {
    Semver(semver::Version),
    Pep440(pep440_rs::Version),
    R(Vec<u64>),
}

/// Why a version string is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {scheme} version `{raw}`: {reason}")]
pub struct ParseVersionError {
    /// The text that failed.
    pub raw: String,
    /// The grammar it was parsed with.
    pub scheme: Scheme,
    /// What is wrong with it.
    pub reason: String,
}

impl Version {
    /// Parses `raw` with `scheme`.
    ///
    /// Fails on text that is not a version of that scheme, and on versions whose exact tag
    /// would be longer than Docker allows, so that every `Version` can be published.
    pub fn parse(raw: &str, scheme: Scheme) -> Result<Self, ParseVersionError> {
        let error = |reason: String| ParseVersionError {
            raw: raw.to_owned(),
            scheme,
            reason,
        };
        if raw.trim().is_empty() {
            return Err(error("the version is empty".to_owned()));
        }
        let parsed = match scheme {
            Scheme::Semver => Parsed::Semver(parse_semver(raw).map_err(error)?),
            Scheme::Pep440 => Parsed::Pep440(
                raw.parse::<pep440_rs::Version>()
                    .map_err(|e| error(e.to_string()))?,
            ),
            Scheme::R => Parsed::R(parse_r(raw).map_err(error)?),
        };
        let version = Version {
            raw: raw.to_owned(),
            parsed,
        };
        let tag_len = version.exact_tag().len();
        if tag_len > MAX_TAG_LEN {
            return Err(error(format!(
                "its exact tag would be {tag_len} characters long; Docker allows at most \
                 {MAX_TAG_LEN}"
            )));
        }
        Ok(version)
    }

    /// Parses a version given explicitly (`--set-version`, `version` in v6.toml) for a wrapper.
    ///
    /// The wrapper decides the ecosystem: Python takes PEP 440, R takes R versions. A
    /// minimal image has no ecosystem, so semver is tried first (it is the stricter grammar
    /// and keeps `-rc.1` as written) and PEP 440 second, which accepts `1.2` and `1.2rc1`.
    pub fn parse_for(raw: &str, wrapper: Wrapper) -> Result<Self, ParseVersionError> {
        match wrapper {
            Wrapper::Python => Version::parse(raw, Scheme::Pep440),
            Wrapper::R => Version::parse(raw, Scheme::R),
            Wrapper::Minimal => Version::parse(raw, Scheme::Semver).or_else(|semver| {
                Version::parse(raw, Scheme::Pep440).map_err(|pep440| ParseVersionError {
                    raw: raw.to_owned(),
                    scheme: Scheme::Semver,
                    reason: format!(
                        "{}; nor is it a PEP 440 version: {}",
                        semver.reason, pep440.reason
                    ),
                })
            }),
        }
    }

    /// The version as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The grammar it was parsed with.
    pub fn scheme(&self) -> Scheme {
        match self.parsed {
            Parsed::Semver(_) => Scheme::Semver,
            Parsed::Pep440(_) => Scheme::Pep440,
            Parsed::R(_) => Scheme::R,
        }
    }

    /// The tag-safe exact tag: at least three numeric components, injective. See the module
    /// documentation for the mapping.
    pub fn exact_tag(&self) -> String {
        match &self.parsed {
            Parsed::Semver(v) => {
                let mut tag = format!("{}.{}.{}", v.major, v.minor, v.patch);
                if !v.pre.is_empty() {
                    tag.push('-');
                    tag.push_str(v.pre.as_str());
                }
                if !v.build.is_empty() {
                    tag.push('_');
                    tag.push_str(v.build.as_str());
                }
                tag
            }
            Parsed::Pep440(v) => {
                let mut tag = String::new();
                if v.epoch() != 0 {
                    tag.push_str(&format!("epoch{}-", v.epoch()));
                }
                tag.push_str(&numeric_tag(v.release()));
                if let Some(pre) = v.pre() {
                    tag.push_str(&pre.to_string());
                }
                if let Some(post) = v.post() {
                    tag.push_str(&format!(".post{post}"));
                }
                if let Some(dev) = v.dev() {
                    tag.push_str(&format!(".dev{dev}"));
                }
                if !v.local().is_empty() {
                    let local: Vec<String> = v.local().iter().map(ToString::to_string).collect();
                    tag.push('_');
                    tag.push_str(&local.join("."));
                }
                tag
            }
            Parsed::R(components) => numeric_tag(components),
        }
    }

    /// Reads an exact tag back (the inverse of [`Version::exact_tag`]); `None` if `tag` is not one.
    ///
    /// Only the canonical tag of a version is accepted: `1.2` (an alias) and `1.2.0.0` (not
    /// how `1.2.0` is tagged) are `None`, so that scanning a registry finds each release once.
    pub fn from_exact_tag(tag: &str, scheme: Scheme) -> Option<Self> {
        let text = match scheme {
            Scheme::Semver => tag.replace('_', "+"),
            Scheme::Pep440 => {
                let (epoch, rest) = match tag.strip_prefix("epoch") {
                    Some(rest) => {
                        let (epoch, rest) = rest.split_once('-')?;
                        (Some(epoch), rest)
                    }
                    None => (None, tag),
                };
                let rest = rest.replace('_', "+");
                match epoch {
                    Some(epoch) => format!("{epoch}!{rest}"),
                    None => rest,
                }
            }
            Scheme::R => tag.to_owned(),
        };
        let version = Version::parse(&text, scheme).ok()?;
        (version.exact_tag() == tag).then_some(version)
    }

    /// First numeric component (for PEP 440, of the release, ignoring the epoch).
    pub fn major(&self) -> u64 {
        self.component(0)
    }
    /// Second numeric component (0 when absent).
    pub fn minor(&self) -> u64 {
        self.component(1)
    }
    /// Third numeric component (0 when absent).
    pub fn patch(&self) -> u64 {
        self.component(2)
    }

    fn component(&self, index: usize) -> u64 {
        match &self.parsed {
            Parsed::Semver(v) => [v.major, v.minor, v.patch][index],
            Parsed::Pep440(v) => v.release().get(index).copied().unwrap_or(0),
            Parsed::R(components) => components.get(index).copied().unwrap_or(0),
        }
    }

    /// The tag-safe pre-release part, `None` for stable versions.
    ///
    /// semver: the pre-release identifiers (`rc.1`); PEP 440: the pre-release and dev parts
    /// joined by `.` (`rc1`, `dev3`, `rc1.dev3`); R: the development components (`9000`).
    pub fn prerelease(&self) -> Option<String> {
        match &self.parsed {
            Parsed::Semver(v) => (!v.pre.is_empty()).then(|| v.pre.to_string()),
            Parsed::Pep440(v) => {
                let parts: Vec<String> = v
                    .pre()
                    .map(|pre| pre.to_string())
                    .into_iter()
                    .chain(v.dev().map(|dev| format!("dev{dev}")))
                    .collect();
                (!parts.is_empty()).then(|| parts.join("."))
            }
            // Trimmed, so that equal versions (`0.1.2.9000`, `0.1.2.9000.0`) agree.
            Parsed::R(components) => (!self.is_stable()).then(|| {
                let dev = trim_zeros(components, 0)[3..].iter().map(u64::to_string);
                dev.collect::<Vec<_>>().join(".")
            }),
        }
    }

    /// No pre-release, dev or R development part. Post-releases, build metadata and local
    /// versions are stable: they are final releases, so they may move floating aliases.
    pub fn is_stable(&self) -> bool {
        match &self.parsed {
            Parsed::Semver(v) => v.pre.is_empty(),
            Parsed::Pep440(v) => v.pre().is_none() && v.dev().is_none(),
            // R's convention (usethis, r-lib): `x.y.z.9000` and up is an in-development version.
            Parsed::R(components) => components.get(3).is_none_or(|&dev| dev < 9000),
        }
    }

    /// The version a release after this one would most plainly take, as `MAJOR.MINOR.PATCH`:
    /// the next patch of a stable version (`1.1.3` -> `1.1.4`), the release a pre-release
    /// leads to (`1.2.0rc1` -> `1.2.0`). A suggestion for the user, never published as is.
    /// A part already at its largest (a tag anyone could push) cannot grow: the next minor,
    /// or major, follows instead.
    /// A PEP 440 epoch stays (`1!2.0` -> `1!2.0.1`): without it the suggestion would sort
    /// below the release.
    pub fn next_patch(&self) -> String {
        let (major, minor) = (self.major(), self.minor());
        let next = match self.patch().checked_add(u64::from(self.is_stable())) {
            Some(patch) => format!("{major}.{minor}.{patch}"),
            None => match minor.checked_add(1) {
                Some(minor) => format!("{major}.{minor}.0"),
                None => format!("{}.0.0", major.saturating_add(1)),
            },
        };
        match &self.parsed {
            Parsed::Pep440(v) if v.epoch() != 0 => format!("{}!{next}", v.epoch()),
            _ => next,
        }
    }
}

impl fmt::Display for Version {
    /// The version as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A version serializes as written (`1.2.0rc1`), as plan and publish print it.
impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.raw())
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.parsed, &other.parsed) {
            (Parsed::Semver(a), Parsed::Semver(b)) => a.cmp(b),
            (Parsed::Pep440(a), Parsed::Pep440(b)) => a.cmp(b),
            (Parsed::R(a), Parsed::R(b)) => trim_zeros(a, 0).cmp(trim_zeros(b, 0)),
            _ => self.scheme().cmp(&other.scheme()),
        }
    }
}

/// `components` without trailing zeros, keeping at least `keep` of them.
fn trim_zeros(components: &[u64], keep: usize) -> &[u64] {
    let mut len = components.len();
    while len > keep && components[len - 1] == 0 {
        len -= 1;
    }
    &components[..len]
}

/// Numeric components for a tag: trailing zeros past the third dropped (they do not change
/// the version), then padded to three (so a tag never looks like an alias).
fn numeric_tag(components: &[u64]) -> String {
    let kept = trim_zeros(components, 3);
    let mut parts: Vec<String> = kept.iter().map(u64::to_string).collect();
    while parts.len() < 3 {
        parts.push("0".to_owned());
    }
    parts.join(".")
}

/// Semver, with a clearer message than the semver crate's when the core is not three numbers
/// (the common mistake: `1.2`).
fn parse_semver(raw: &str) -> Result<semver::Version, String> {
    let core = raw.split(['-', '+']).next().unwrap_or(raw);
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() != 3
        || numbers
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "expected MAJOR.MINOR.PATCH (three numbers, e.g. `1.2.3`), found `{core}`"
        ));
    }
    semver::Version::parse(raw).map_err(|e| e.to_string())
}

/// R's `package_version` grammar: at least two non-negative integers separated by `.` or `-`.
fn parse_r(raw: &str) -> Result<Vec<u64>, String> {
    let components: Vec<&str> = raw.split(['.', '-']).collect();
    let shape = || {
        format!(
            "expected at least two non-negative integers separated by `.` or `-` \
             (e.g. `1.2-3`), found `{raw}`"
        )
    };
    if components.len() < 2 {
        return Err(shape());
    }
    components
        .iter()
        .map(|c| {
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_digit()) {
                return Err(shape());
            }
            c.parse::<u64>()
                .map_err(|_| format!("component `{c}` is too large"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(raw: &str, scheme: Scheme) -> Version {
        Version::parse(raw, scheme).unwrap_or_else(|e| panic!("{e}"))
    }

    fn is_docker_tag(tag: &str) -> bool {
        regex::Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
            .unwrap()
            .is_match(tag)
    }

    /// The module documentation's table, row by row: (scheme, inputs, tag, prerelease).
    const TABLE: &[(Scheme, &[&str], &str, Option<&str>)] = &[
        (Scheme::Semver, &["1.2.3"], "1.2.3", None),
        (Scheme::Semver, &["1.2.3-rc.1"], "1.2.3-rc.1", Some("rc.1")),
        (Scheme::Semver, &["1.2.3+build.5"], "1.2.3_build.5", None),
        (
            Scheme::Semver,
            &["1.2.3-beta.2+sha.5114f85"],
            "1.2.3-beta.2_sha.5114f85",
            Some("beta.2"),
        ),
        (
            Scheme::Pep440,
            &["1.2", "1.2.0", "1.2.0.0", "v1.2"],
            "1.2.0",
            None,
        ),
        (Scheme::Pep440, &["1.2.3.4"], "1.2.3.4", None),
        (
            Scheme::Pep440,
            &["1.2rc1", "1.2.0-RC1", "1.2c1"],
            "1.2.0rc1",
            Some("rc1"),
        ),
        (
            Scheme::Pep440,
            &["1.2a1", "1.2.0-alpha.1"],
            "1.2.0a1",
            Some("a1"),
        ),
        (Scheme::Pep440, &["1.2b2"], "1.2.0b2", Some("b2")),
        (
            Scheme::Pep440,
            &["1.2.post1", "1.2-1", "1.2.0.r1"],
            "1.2.0.post1",
            None,
        ),
        (
            Scheme::Pep440,
            &["1.2.dev3", "1.2-dev3"],
            "1.2.0.dev3",
            Some("dev3"),
        ),
        (
            Scheme::Pep440,
            &["1.2.0.post1.dev2"],
            "1.2.0.post1.dev2",
            Some("dev2"),
        ),
        (
            Scheme::Pep440,
            &["1.2rc1.post2.dev3"],
            "1.2.0rc1.post2.dev3",
            Some("rc1.dev3"),
        ),
        (
            Scheme::Pep440,
            &["1.2+ubuntu.1", "1.2+Ubuntu-1"],
            "1.2.0_ubuntu.1",
            None,
        ),
        (Scheme::Pep440, &["1!2.0"], "epoch1-2.0.0", None),
        (
            Scheme::Pep440,
            &["1!2.0rc1+local"],
            "epoch1-2.0.0rc1_local",
            Some("rc1"),
        ),
        (Scheme::R, &["1.2"], "1.2.0", None),
        (Scheme::R, &["1.2-3", "1.2.3", "1.02-03"], "1.2.3", None),
        (Scheme::R, &["1.2.3.0"], "1.2.3", None),
        (Scheme::R, &["1.2.3.4"], "1.2.3.4", None),
        (
            Scheme::R,
            &["0.1.2.9000", "0.1.2-9000"],
            "0.1.2.9000",
            Some("9000"),
        ),
    ];

    #[test]
    fn mapping_table_holds() {
        for &(scheme, inputs, tag, pre) in TABLE {
            for input in inputs {
                let version = v(input, scheme);
                assert_eq!(version.exact_tag(), tag, "{scheme} {input}");
                assert_eq!(version.prerelease().as_deref(), pre, "{scheme} {input}");
                assert_eq!(version.is_stable(), pre.is_none(), "{scheme} {input}");
                assert_eq!(version.raw(), *input);
                assert_eq!(
                    Version::from_exact_tag(tag, scheme).as_ref(),
                    Some(&version),
                    "{scheme} {input}"
                );
            }
        }
    }

    #[test]
    fn the_next_patch_follows_a_release_and_completes_a_prerelease() {
        for (raw, scheme, next) in [
            ("1.1.3", Scheme::Pep440, "1.1.4"),
            ("1.2", Scheme::Pep440, "1.2.1"),
            ("1.2.0rc1", Scheme::Pep440, "1.2.0"),
            ("2.0.0-rc.1", Scheme::Semver, "2.0.0"),
            ("1.2-3", Scheme::R, "1.2.4"),
            ("0.1.2.9000", Scheme::R, "0.1.2"),
            // The epoch stays, or the suggestion would sort below the release.
            ("1!2.0", Scheme::Pep440, "1!2.0.1"),
            // A tag anyone can push: a part at its largest cannot grow, the next one does.
            ("1.2.18446744073709551615", Scheme::Pep440, "1.3.0"),
            ("1.2.18446744073709551615", Scheme::Semver, "1.3.0"),
            (
                "1.18446744073709551615.18446744073709551615",
                Scheme::Semver,
                "2.0.0",
            ),
        ] {
            assert_eq!(v(raw, scheme).next_patch(), next, "{raw}");
        }
    }

    #[test]
    fn components() {
        let version = v("1!2.3rc1", Scheme::Pep440);
        assert_eq!(
            (version.major(), version.minor(), version.patch()),
            (2, 3, 0)
        );
        let version = v("4.5-6", Scheme::R);
        assert_eq!(
            (version.major(), version.minor(), version.patch()),
            (4, 5, 6)
        );
        let version = v("7.8.9-rc.1", Scheme::Semver);
        assert_eq!(
            (version.major(), version.minor(), version.patch()),
            (7, 8, 9)
        );
    }

    #[test]
    fn ordering_follows_each_scheme() {
        let ordered = |scheme, list: &[&str]| {
            for pair in list.windows(2) {
                assert!(v(pair[0], scheme) < v(pair[1], scheme), "{pair:?}");
            }
        };
        ordered(
            Scheme::Semver,
            &[
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-rc.1",
                "1.0.0",
                "1.0.0+b",
                "1.0.1",
            ],
        );
        ordered(
            Scheme::Pep440,
            &[
                "1.0.dev1",
                "1.0a1",
                "1.0rc1",
                "1.0",
                "1.0+local",
                "1.0.post1",
                "1.1",
                "1!0.1",
            ],
        );
        ordered(
            Scheme::R,
            &["0.1.2", "0.1.2.9000", "0.1.3", "0.10", "1.2-3"],
        );
        assert_eq!(v("1.2", Scheme::R), v("1.2.0", Scheme::R));
        assert_eq!(v("1.2", Scheme::Pep440), v("1.2.0.0", Scheme::Pep440));
        assert_ne!(v("1.2.3", Scheme::Semver), v("1.2.3", Scheme::Pep440));
    }

    #[test]
    fn errors_say_why() {
        let reason = |raw, scheme| Version::parse(raw, scheme).unwrap_err().reason;
        assert!(reason("1.2", Scheme::Semver).starts_with("expected MAJOR.MINOR.PATCH"));
        assert!(reason("v1.2.3", Scheme::Semver).starts_with("expected MAJOR.MINOR.PATCH"));
        assert!(reason("1", Scheme::R).starts_with("expected at least two"));
        assert!(reason("1.2a", Scheme::R).starts_with("expected at least two"));
        assert!(reason("1.99999999999999999999", Scheme::R).contains("too large"));
        assert_eq!(reason("", Scheme::Pep440), "the version is empty");
        assert!(!reason("not a version", Scheme::Pep440).is_empty());
        let long = format!("1.2.3+{}", "a".repeat(130));
        assert!(reason(&long, Scheme::Semver).contains("at most 128"));
        let error = Version::parse("1.2", Scheme::Semver).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid semver version `1.2`: expected MAJOR.MINOR.PATCH (three numbers, \
             e.g. `1.2.3`), found `1.2`"
        );
    }

    #[test]
    fn parse_for_picks_the_wrappers_scheme() {
        let scheme = |raw, wrapper| Version::parse_for(raw, wrapper).unwrap().scheme();
        assert_eq!(scheme("1.2.3", Wrapper::Python), Scheme::Pep440);
        assert_eq!(scheme("1.2-3", Wrapper::R), Scheme::R);
        assert_eq!(scheme("1.2.3-rc.1", Wrapper::Minimal), Scheme::Semver);
        assert_eq!(scheme("1.2rc1", Wrapper::Minimal), Scheme::Pep440);
        let error = Version::parse_for("banana", Wrapper::Minimal).unwrap_err();
        assert!(error.reason.contains("MAJOR.MINOR.PATCH"), "{error}");
        assert!(error.reason.contains("PEP 440"), "{error}");
        assert!(Version::parse_for("1.2rc1", Wrapper::R).is_err());
    }

    #[test]
    fn from_exact_tag_rejects_aliases_and_non_canonical_text() {
        for tag in [
            "1.2",
            "1",
            "latest",
            "1.2.0.0",
            "v1.2.3",
            "epoch0-1.2.0",
            "1!2.0.0",
        ] {
            for scheme in [Scheme::Semver, Scheme::Pep440, Scheme::R] {
                assert!(Version::from_exact_tag(tag, scheme).is_none(), "{tag}");
            }
        }
        assert!(Version::from_exact_tag("1.2.3+b", Scheme::Semver).is_none());
        assert!(Version::from_exact_tag("1.2.3_a_b", Scheme::Semver).is_none());
        assert!(Version::from_exact_tag("1.2.0RC1", Scheme::Pep440).is_none());
        assert!(Version::from_exact_tag("1.2-3", Scheme::R).is_none());
    }

    fn semver_text() -> impl Strategy<Value = String> {
        let ident = prop_oneof![
            (0u64..3).prop_map(|n| n.to_string()),
            "[a-cA-C][a-c0-9-]{0,2}",
        ];
        let pre = prop::collection::vec(ident, 0..3);
        let build = prop::collection::vec("[a-b0-9-]{1,2}", 0..3);
        (0u64..3, 0u64..3, 0u64..3, pre, build).prop_map(|(a, b, c, pre, build)| {
            let mut s = format!("{a}.{b}.{c}");
            if !pre.is_empty() {
                s = format!("{s}-{}", pre.join("."));
            }
            if !build.is_empty() {
                s = format!("{s}+{}", build.join("."));
            }
            s
        })
    }

    fn pep440_text() -> impl Strategy<Value = String> {
        let epoch = prop::option::of(0u64..3);
        let release = prop::collection::vec(0u64..3, 1..6);
        let pre = prop::option::of((
            prop::sample::select(vec!["a", "alpha", "b", "beta", "rc", "c", "pre", "preview"]),
            prop::sample::select(vec!["", ".", "-", "_"]),
            0u64..3,
        ));
        let post = prop::option::of((
            prop::sample::select(vec![".post", "post", "-post", ".r", "-rev", "-"]),
            0u64..3,
        ));
        let dev = prop::option::of((prop::sample::select(vec![".dev", "dev", "-dev"]), 0u64..3));
        let local = prop::collection::vec("[a-bA-B0-9]{1,2}", 0..3);
        (epoch, release, pre, post, dev, local).prop_map(
            |(epoch, release, pre, post, dev, local)| {
                let mut s = String::new();
                if let Some(e) = epoch {
                    s.push_str(&format!("{e}!"));
                }
                let release: Vec<String> = release.iter().map(u64::to_string).collect();
                s.push_str(&release.join("."));
                if let Some((kind, sep, n)) = pre {
                    s.push_str(&format!("{sep}{kind}{n}"));
                }
                if let Some((kind, n)) = post {
                    s.push_str(&format!("{kind}{n}"));
                }
                if let Some((kind, n)) = dev {
                    s.push_str(&format!("{kind}{n}"));
                }
                if !local.is_empty() {
                    s.push('+');
                    s.push_str(&local.join("."));
                }
                s
            },
        )
    }

    fn r_text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                prop_oneof![0u64..3, 8999u64..9001],
                prop::sample::select(vec![".", "-"]),
            ),
            2..6,
        )
        .prop_map(|parts| {
            let mut s = String::new();
            for (i, (n, sep)) in parts.iter().enumerate() {
                if i > 0 {
                    s.push_str(sep);
                }
                s.push_str(&n.to_string());
            }
            s
        })
    }

    fn version_of(scheme: Scheme) -> BoxedStrategy<Version> {
        let text = match scheme {
            Scheme::Semver => semver_text().boxed(),
            Scheme::Pep440 => pep440_text().boxed(),
            Scheme::R => r_text().boxed(),
        };
        text.prop_filter_map("valid version", move |s| Version::parse(&s, scheme).ok())
            .boxed()
    }

    fn any_version() -> impl Strategy<Value = Version> {
        any_scheme().prop_flat_map(version_of)
    }

    /// Two versions of one scheme: tags are only read back with a known scheme, and the
    /// small component ranges make equal-but-differently-written pairs common.
    fn same_scheme_pair() -> impl Strategy<Value = (Version, Version)> {
        any_scheme().prop_flat_map(|scheme| (version_of(scheme), version_of(scheme)))
    }

    fn any_scheme() -> impl Strategy<Value = Scheme> {
        prop::sample::select(vec![Scheme::Semver, Scheme::Pep440, Scheme::R])
    }

    /// Every property of a parsed version that the rest of cargo v6 relies on.
    fn check_tag(version: &Version) -> Result<(), TestCaseError> {
        let tag = version.exact_tag();
        prop_assert!(is_docker_tag(&tag), "{tag}");
        prop_assert!(tag.split('.').count() >= 3, "{tag}");
        let back = Version::from_exact_tag(&tag, version.scheme());
        prop_assert_eq!(back.as_ref(), Some(version), "{}", tag);
        let back = back.unwrap();
        prop_assert_eq!(back.cmp(version), Ordering::Equal);
        prop_assert_eq!(back.exact_tag(), tag);
        prop_assert_eq!(back.is_stable(), version.is_stable());
        prop_assert_eq!(back.prerelease(), version.prerelease());
        prop_assert_eq!(version.prerelease().is_none(), version.is_stable());
        Ok(())
    }

    proptest! {
        #[test]
        fn the_exact_tag_round_trips(version in any_version()) {
            check_tag(&version)?;
        }

        #[test]
        fn tags_are_equal_exactly_when_versions_are((a, b) in same_scheme_pair()) {
            prop_assert_eq!(a == b, a.exact_tag() == b.exact_tag(), "{:?} {:?}", a, b);
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        }

        #[test]
        fn different_schemes_never_compare_equal(a in any_version(), b in any_version()) {
            if a.scheme() != b.scheme() {
                prop_assert_ne!(&a, &b);
                prop_assert_eq!(a.cmp(&b), a.scheme().cmp(&b.scheme()));
            }
        }

        #[test]
        fn arbitrary_text_never_panics(raw in ".{0,40}", scheme in any_scheme()) {
            if let Ok(version) = Version::parse(&raw, scheme) {
                check_tag(&version)?;
            }
            if let Some(version) = Version::from_exact_tag(&raw, scheme) {
                prop_assert_eq!(version.exact_tag(), raw.as_str());
            }
            for wrapper in [Wrapper::Python, Wrapper::R, Wrapper::Minimal] {
                if let Ok(version) = Version::parse_for(&raw, wrapper) {
                    check_tag(&version)?;
                }
            }
        }

        #[test]
        fn version_like_text_never_panics(
            raw in "[0-9a-zA-Z.+_!-]{0,24}",
            scheme in any_scheme(),
        ) {
            if let Ok(version) = Version::parse(&raw, scheme) {
                check_tag(&version)?;
            }
            if let Some(version) = Version::from_exact_tag(&raw, scheme) {
                prop_assert_eq!(version.exact_tag(), raw.as_str());
            }
        }
    }
}
