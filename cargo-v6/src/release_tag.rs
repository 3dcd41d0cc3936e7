//! `publish --from-tag`: the release tag a CI job runs for, the algorithm it names, and the
//! check that the version published is the one the tag says.
//!
//! A tag is `{release-tag-prefix}{version}`: bare (`1.2.3`, vantage6's repositories) or `v1.2.3`
//! for one algorithm, `NAME-v1.2.3` for a workspace's members (cargo-release's form).

use crate::git::GitInfo;
use crate::manifest::Manifest;
use crate::plan::{Inputs, VersionSource};
use crate::version::Version;

/// Why a release tag cannot be published. The messages speak of the release and the project;
/// the command names its flags (`--from-tag`, `--set-version`).
#[derive(Debug, thiserror::Error)]
pub enum ReleaseTagError {
    /// No TAG given and no CI tag variable set.
    #[error("no release tag: {}", no_tag_reason(not_a_tag.as_deref()))]
    NoTag {
        /// `GITHUB_REF` when it names a branch: the job did not run for a tag.
        not_a_tag: Option<String>,
    },
    /// The tag holds what no git tag can (a space, a line break, another control character):
    /// shown escaped, since it came from an argument or the CI's environment.
    #[error("{tag:?} is not a git tag name (it holds a space or a control character)")]
    NotATag {
        /// The tag as given.
        tag: String,
    },
    /// The tag names no algorithm.
    #[error("the release tag `{tag}` names no algorithm")]
    NoMember {
        /// The tag.
        tag: String,
        /// The forms the algorithms' tags take.
        forms: Vec<String>,
    },
    /// The tag fits several algorithms' forms.
    #[error("the release tag `{tag}` fits more than one algorithm: {}", names.join(", "))]
    Ambiguous {
        /// The tag.
        tag: String,
        /// The algorithms it fits.
        names: Vec<String>,
    },
    /// The version to publish is not the tag's.
    #[error("{}", self.mismatch("given explicitly"))]
    VersionMismatch {
        /// The tag.
        tag: String,
        /// Its version.
        tagged: String,
        /// The algorithm.
        name: String,
        /// Its version.
        version: String,
        /// Where that version was read (`from setup.py`); `None` when it was given explicitly,
        /// which the command names.
        origin: Option<String>,
    },
    /// The work tree is not at the tag.
    #[error("the release tag `{tag}` is not on HEAD")]
    NotOnHead {
        /// The tag.
        tag: String,
    },
}

/// Why no tag was found, when none was given: the CI ran for a branch, or names no tag.
pub fn no_tag_reason(not_a_tag: Option<&str>) -> &'static str {
    match not_a_tag {
        Some(_) => "none was given, and GITHUB_REF names a branch, not a tag",
        None => "none was given, and no CI tag variable is set",
    }
}

impl ReleaseTagError {
    /// The message of [`ReleaseTagError::VersionMismatch`] (any other's as it is), with
    /// `explicit` for where a version given explicitly came from: the command names its flag.
    pub fn mismatch(&self, explicit: &str) -> String {
        let ReleaseTagError::VersionMismatch {
            tag,
            tagged,
            name,
            version,
            origin,
        } = self
        else {
            return self.to_string();
        };
        let origin = origin.as_deref().unwrap_or(explicit);
        format!(
            "the release tag `{tag}` says {tagged}, but `{name}`'s version is {version} ({origin})"
        )
    }
}

/// The tag to publish: `given`, else the CI's (`CI_COMMIT_TAG`, `GITHUB_REF` on a tag push,
/// `GITHUB_REF_NAME` when `GITHUB_REF_TYPE` is `tag`), read through `env`.
pub fn resolve(
    given: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, ReleaseTagError> {
    let tag = ci_or_given(given, env)?;
    if tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ReleaseTagError::NotATag { tag });
    }
    Ok(tag)
}

/// [`resolve`]'s tag before it is checked.
fn ci_or_given(
    given: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, ReleaseTagError> {
    if let Some(tag) = given {
        return Ok(tag.to_string());
    }
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(tag) = set("CI_COMMIT_TAG") {
        return Ok(tag);
    }
    let github_ref = set("GITHUB_REF");
    if let Some(tag) = github_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/tags/"))
    {
        return Ok(tag.to_string());
    }
    if set("GITHUB_REF_TYPE").as_deref() == Some("tag")
        && let Some(tag) = set("GITHUB_REF_NAME")
    {
        return Ok(tag);
    }
    Err(ReleaseTagError::NoTag {
        not_a_tag: github_ref,
    })
}

/// Under `version-from-tag`, the release tag the version was read from and the tag a changed
/// release needs instead: the project's metadata is not read there, so a new tag is the only
/// way to a new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retag {
    /// The release tag on HEAD (`1.1.3`).
    pub tag: String,
    /// The next patch's tag under the same prefix (`1.1.4`).
    pub next: String,
}

impl Retag {
    /// For a version read from a release tag; `None` for one from anywhere else.
    pub fn of(source: &VersionSource, version: &Version) -> Option<Retag> {
        let VersionSource::ReleaseTag(tag) = source else {
            return None;
        };
        let prefix = tag.strip_suffix(version.raw()).unwrap_or_default();
        Some(Retag {
            tag: tag.clone(),
            next: format!("{prefix}{}", version.next_patch()),
        })
    }
}

/// The version `tag` gives `manifest`'s algorithm, if it is one of its release tags.
pub fn version_in(manifest: &Manifest, tag: &str) -> Option<Version> {
    crate::plan::inputs::tag_version(tag, &manifest.publish.release_tag_prefix, manifest.wrapper)
}

/// The one algorithm among `candidates` whose release tags `tag` is one of; the longest
/// prefix wins (`v` and `summary-v` both fit nothing but their own tags, but `` fits
/// `1.2.3` while `v` does not).
pub fn member<'a>(candidates: &[&'a Manifest], tag: &str) -> Result<&'a Manifest, ReleaseTagError> {
    let fitting: Vec<&Manifest> = candidates
        .iter()
        .copied()
        .filter(|m| version_in(m, tag).is_some())
        .collect();
    let longest = fitting
        .iter()
        .map(|m| m.publish.release_tag_prefix.len())
        .max();
    let best: Vec<&Manifest> = fitting
        .into_iter()
        .filter(|m| Some(m.publish.release_tag_prefix.len()) == longest)
        .collect();
    match best[..] {
        [one] => Ok(one),
        [] => {
            let mut forms: Vec<String> = candidates
                .iter()
                .map(|m| format!("`{}1.2.3`", m.publish.release_tag_prefix))
                .collect();
            forms.sort();
            forms.dedup();
            Err(ReleaseTagError::NoMember {
                tag: tag.to_string(),
                forms,
            })
        }
        _ => Err(ReleaseTagError::Ambiguous {
            tag: tag.to_string(),
            names: best.iter().map(|m| format!("`{}`", m.name)).collect(),
        }),
    }
}

/// The release checks of `--from-tag`: the tag is on HEAD (when there is a repository), and
/// the version read for the algorithm is the tag's.
pub fn check(manifest: &Manifest, inputs: &Inputs, tag: &str) -> Result<(), ReleaseTagError> {
    if let Some(GitInfo { head_tags, .. }) = &inputs.git
        && !head_tags.iter().any(|t| t == tag)
    {
        return Err(ReleaseTagError::NotOnHead {
            tag: tag.to_string(),
        });
    }
    let Some(tagged) = version_in(manifest, tag) else {
        return Err(ReleaseTagError::NoMember {
            tag: tag.to_string(),
            forms: vec![format!("`{}1.2.3`", manifest.publish.release_tag_prefix)],
        });
    };
    let (version, source) = &inputs.version;
    if *version != tagged {
        let origin = match source {
            VersionSource::CommandLine => None,
            VersionSource::Manifest => Some(format!(
                "from `version` in {}",
                crate::diagnostic::display(&manifest.path)
            )),
            VersionSource::File(file) => Some(format!("from {file}")),
            VersionSource::ReleaseTag(other) => {
                Some(format!("from the release tag `{other}` on HEAD"))
            }
        };
        return Err(ReleaseTagError::VersionMismatch {
            tag: tag.to_string(),
            tagged: tagged.raw().to_string(),
            name: manifest.name.clone(),
            version: version.raw().to_string(),
            origin,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::testing::env;

    fn manifest(name: &str, prefix: &str) -> Manifest {
        let text = format!(
            "[algorithm]\nname = \"{name}\"\nwrapper = \"python\"\nvantage6 = \"4.15\"\nimage = \"r.example/{name}\"\n[publish]\nrelease-tag-prefix = \"{prefix}\"\n"
        );
        Manifest::parse(Path::new("v6.toml"), text).unwrap()
    }

    #[test]
    fn the_ci_variables_name_the_tag() {
        assert_eq!(resolve(Some("v1.0.0"), env(&[])).unwrap(), "v1.0.0");
        assert_eq!(
            resolve(None, env(&[("CI_COMMIT_TAG", "a-v1.0.0")])).unwrap(),
            "a-v1.0.0"
        );
        assert_eq!(
            resolve(None, env(&[("GITHUB_REF", "refs/tags/1.2.1")])).unwrap(),
            "1.2.1"
        );
        assert_eq!(
            resolve(
                None,
                env(&[("GITHUB_REF_TYPE", "tag"), ("GITHUB_REF_NAME", "v2.0.0")])
            )
            .unwrap(),
            "v2.0.0"
        );
        let branch = resolve(None, env(&[("GITHUB_REF", "refs/heads/main")])).unwrap_err();
        assert!(
            matches!(&branch, ReleaseTagError::NoTag { not_a_tag: Some(r) } if r == "refs/heads/main"),
            "{branch:?}"
        );
        assert!(matches!(
            resolve(None, env(&[("CI_COMMIT_TAG", "")])),
            Err(ReleaseTagError::NoTag { not_a_tag: None })
        ));
    }

    #[test]
    fn a_tag_with_a_line_break_or_space_is_refused_escaped() {
        let no_env = |_: &str| None;
        for given in ["1.2.3\n", "1.2.3 ", "v1\t2"] {
            let err = resolve(Some(given), no_env).unwrap_err();
            assert!(matches!(err, ReleaseTagError::NotATag { .. }), "{err}");
            assert!(!err.to_string().contains(['\n', '\t']), "{err}");
        }
        let ci = |name: &str| (name == "CI_COMMIT_TAG").then(|| "1.2.3\r".to_string());
        assert!(matches!(
            resolve(None, ci),
            Err(ReleaseTagError::NotATag { .. })
        ));
        assert_eq!(
            resolve(Some("summary-v1.2.3"), no_env).unwrap(),
            "summary-v1.2.3"
        );
    }

    #[test]
    fn a_tag_names_the_member_with_its_prefix() {
        let (alpha, beta) = (manifest("alpha", "alpha-v"), manifest("beta", "beta-v"));
        let members = [&alpha, &beta];
        assert_eq!(member(&members, "beta-v1.2.0").unwrap().name, "beta");
        assert_eq!(version_in(&beta, "beta-v1.2.0").unwrap().raw(), "1.2.0");
        let none = member(&members, "gamma-v1.0.0").unwrap_err();
        assert_eq!(
            none.to_string(),
            "the release tag `gamma-v1.0.0` names no algorithm"
        );
        assert!(
            matches!(&none, ReleaseTagError::NoMember { forms, .. } if forms == &["`alpha-v1.2.3`", "`beta-v1.2.3`"]),
            "{none:?}"
        );
        // `alpha-vX` is not a version.
        assert!(member(&members, "alpha-vnext").is_err());
    }

    #[test]
    fn a_version_from_a_tag_is_retagged_with_the_next_patch() {
        let version = Version::parse_for("1.1.3", crate::vantage6::Wrapper::Python).unwrap();
        let retag = Retag::of(
            &VersionSource::ReleaseTag("summary-v1.1.3".into()),
            &version,
        );
        assert_eq!(
            retag,
            Some(Retag {
                tag: "summary-v1.1.3".into(),
                next: "summary-v1.1.4".into()
            })
        );
        let file = VersionSource::File("setup.py".into());
        assert_eq!(Retag::of(&file, &version), None);
    }

    #[test]
    fn bare_and_v_prefixes_and_ambiguity() {
        let (bare, v) = (manifest("a", ""), manifest("b", "v"));
        assert_eq!(member(&[&bare, &v], "1.2.3").unwrap().name, "a");
        assert_eq!(member(&[&bare, &v], "v1.2.3").unwrap().name, "b");
        let twin = manifest("c", "v");
        let error = member(&[&v, &twin], "v1.0.0").unwrap_err();
        assert!(
            matches!(error, ReleaseTagError::Ambiguous { .. }),
            "{error}"
        );
    }
}
