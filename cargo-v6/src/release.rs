//! The decisions `publish` makes before its first side effect, as pure functions: may this
//! release be published from this work tree, and is its exact version tag absent, unchanged,
//! or taken by another image.
//!
//! Nothing published is lost: an exact tag that holds an image with another fingerprint is
//! never overwritten unless the user says `--force`.

use crate::git::GitInfo;
use crate::manifest::Wrapper;
use crate::version::Version;

/// What the registry holds under one exact version tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactTag {
    /// The full reference.
    pub reference: String,
    /// The tag alone.
    pub tag: String,
    /// Its digest, `None` when the tag does not exist.
    pub digest: Option<String>,
    /// The fingerprint label of the image there, if it has one.
    pub fingerprint: Option<String>,
}

/// What publish will do with the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No exact tag exists: build and push.
    Build,
    /// An exact tag holds this very input: no build, no upload; missing tags are pointed at it.
    Unchanged {
        /// The tag that holds it.
        tag: String,
        /// Its digest.
        digest: String,
    },
    /// An exact tag holds another image and `--force` was not given.
    Refuse {
        /// The full reference of the tag.
        reference: String,
        /// What it holds.
        digest: String,
    },
    /// `--force`: build and push over these exact tags.
    Overwrite {
        /// Full references that will be overwritten.
        references: Vec<String>,
    },
}

/// Decides from the exact tags' state. An image whose fingerprint label is missing (pushed
/// by another tool) counts as different: it cannot be proven to be the same.
pub fn decide(fingerprint: &str, exact: &[ExactTag], force: bool) -> Action {
    let present: Vec<&ExactTag> = exact.iter().filter(|t| t.digest.is_some()).collect();
    let differing: Vec<&ExactTag> = present
        .iter()
        .copied()
        .filter(|t| t.fingerprint.as_deref() != Some(fingerprint))
        .collect();
    match (differing.first(), present.first()) {
        (Some(_), _) if force => Action::Overwrite {
            references: differing.iter().map(|t| t.reference.clone()).collect(),
        },
        (Some(taken), _) => Action::Refuse {
            reference: taken.reference.clone(),
            digest: taken.digest.clone().unwrap_or_default(),
        },
        (None, Some(same)) => Action::Unchanged {
            tag: same.tag.clone(),
            digest: same.digest.clone().unwrap_or_default(),
        },
        (None, None) => Action::Build,
    }
}

/// Checks that the work tree is a release: clean (unless `allow_dirty`), and any release tag on
/// HEAD names this version. Returns every problem at once, each with its fix.
pub fn check_work_tree(
    git: Option<&GitInfo>,
    version: &Version,
    wrapper: Wrapper,
    tag_prefix: &str,
    allow_dirty: bool,
) -> Vec<String> {
    let Some(git) = git else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if !allow_dirty && !git.dirty.is_empty() {
        let shown: Vec<&str> = git.dirty.iter().take(5).map(String::as_str).collect();
        let more = git.dirty.len().saturating_sub(shown.len());
        problems.push(format!(
            "the work tree has uncommitted changes ({}{}); commit them, or pass `--allow-dirty`",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    let release_tags: Vec<&String> = git
        .head_tags
        .iter()
        .filter(|t| {
            t.strip_prefix(tag_prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    let matches = |tag: &str| {
        let rest = &tag[tag_prefix.len()..];
        Version::parse_for(rest, wrapper).is_ok_and(|v| v == *version)
    };
    if !release_tags.is_empty() && !release_tags.iter().any(|t| matches(t)) {
        problems.push(format!(
            "HEAD is tagged {} but the version is {}; set the version to match the tag, or tag the release {tag_prefix}{}",
            release_tags.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "),
            version.raw(),
            version.raw()
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Scheme;

    fn tag(name: &str, digest: Option<&str>, fingerprint: Option<&str>) -> ExactTag {
        ExactTag {
            reference: format!("r.example/a:{name}"),
            tag: name.to_string(),
            digest: digest.map(str::to_string),
            fingerprint: fingerprint.map(str::to_string),
        }
    }

    #[test]
    fn absent_builds_same_skips_other_refuses_force_overwrites() {
        assert_eq!(
            decide("f", &[tag("1.0.0", None, None)], false),
            Action::Build
        );
        assert_eq!(
            decide("f", &[tag("1.0.0", Some("sha256:a"), Some("f"))], false),
            Action::Unchanged {
                tag: "1.0.0".into(),
                digest: "sha256:a".into()
            }
        );
        assert_eq!(
            decide("f", &[tag("1.0.0", Some("sha256:a"), Some("g"))], false),
            Action::Refuse {
                reference: "r.example/a:1.0.0".into(),
                digest: "sha256:a".into()
            }
        );
        assert_eq!(
            decide("f", &[tag("1.0.0", Some("sha256:a"), None)], false),
            Action::Refuse {
                reference: "r.example/a:1.0.0".into(),
                digest: "sha256:a".into()
            },
            "an image without our label is not ours to overwrite"
        );
        assert_eq!(
            decide("f", &[tag("1.0.0", Some("sha256:a"), Some("g"))], true),
            Action::Overwrite {
                references: vec!["r.example/a:1.0.0".into()]
            }
        );
    }

    #[test]
    fn one_unchanged_exact_tag_completes_the_others() {
        let tags = [
            tag("1.0.0", None, None),
            tag("1.0.0-v6-4.13", Some("sha256:a"), Some("f")),
        ];
        assert_eq!(
            decide("f", &tags, false),
            Action::Unchanged {
                tag: "1.0.0-v6-4.13".into(),
                digest: "sha256:a".into()
            }
        );
    }

    fn git(dirty: &[&str], head_tags: &[&str]) -> GitInfo {
        GitInfo {
            dirty: dirty.iter().map(|s| s.to_string()).collect(),
            head_tags: head_tags.iter().map(|s| s.to_string()).collect(),
            ..GitInfo::default()
        }
    }

    #[test]
    fn work_tree_checks_report_every_problem() {
        let v = Version::parse("1.2.0", Scheme::Semver).unwrap();
        assert!(check_work_tree(None, &v, Wrapper::Minimal, "v", false).is_empty());
        assert!(
            check_work_tree(
                Some(&git(&[], &["v1.2.0"])),
                &v,
                Wrapper::Minimal,
                "v",
                false
            )
            .is_empty()
        );
        assert!(
            check_work_tree(Some(&git(&["a"], &[])), &v, Wrapper::Minimal, "v", true).is_empty()
        );
        let problems = check_work_tree(
            Some(&git(&["a.py"], &["v1.3.0", "other"])),
            &v,
            Wrapper::Minimal,
            "v",
            false,
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("a.py") && problems[0].contains("--allow-dirty"));
        assert!(problems[1].contains("`v1.3.0`"));
        // A tag that is not a release tag (no digit after the prefix) is not checked.
        assert!(
            check_work_tree(
                Some(&git(&[], &["vnext"])),
                &v,
                Wrapper::Minimal,
                "v",
                false
            )
            .is_empty()
        );
    }
}
