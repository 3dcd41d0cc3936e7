//! The decisions `publish` makes before its first side effect, as pure functions: may this
//! release be published from this work tree, and is its exact version tag absent, unchanged,
//! or taken by another image.
//!
//! Nothing published is lost: an exact tag that holds an image with another fingerprint is
//! never overwritten unless the user says `--force`.

use crate::git::GitInfo;
use crate::manifest::Wrapper;
use crate::plan::HeldTag;
use crate::version::Version;

/// Why a release is not published. Nothing was built or pushed when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The work tree is not a release (see [`check_work_tree`]); every problem is listed.
    #[error("not a releasable state:\n  - {}", problems.join("\n  - "))]
    NotReleasable {
        /// Each problem with its fix.
        problems: Vec<String>,
    },
    /// The exact version tag holds another image.
    #[error(
        "{reference} is already published ({digest}) with different content; refusing to overwrite a released version"
    )]
    Refused {
        /// The exact tag.
        reference: String,
        /// What it holds.
        digest: String,
    },
}

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

/// What publish does to one tag, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum TagChange {
    /// Built and pushed by the engine (layers and manifest).
    Push,
    /// Pointed at the manifest of `from` by a manifest write: no layer upload.
    Point {
        /// The full reference whose manifest it gets.
        from: String,
    },
    /// Already holds this release.
    Unchanged,
    /// Left where it is: a higher version owns it.
    Held {
        /// The owner's exact tag.
        by: String,
    },
}

/// One tag and what happens to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagStep {
    /// The full reference.
    pub reference: String,
    /// What happens to it.
    #[serde(flatten)]
    pub change: TagChange,
}

/// The plan's tags, as [`tag_steps`] needs them.
#[derive(Debug, Clone, Copy)]
pub struct PlannedTags<'a> {
    /// Full references to write: exact tags first, then the aliases that move.
    pub tags: &'a [String],
    /// The exact version tags among them (at least one).
    pub exact: &'a [String],
    /// Aliases a higher version owns.
    pub held: &'a [HeldTag],
}

/// Decides, for every planned tag, what publish does to it. `current` gives the digest the
/// registry holds under a full reference now (`None`: absent). Pure, so that `--dry-run`
/// shows exactly the steps the real run takes.
pub fn tag_steps(
    plan: PlannedTags<'_>,
    action: &Action,
    current: impl Fn(&str) -> Option<String>,
) -> Vec<TagStep> {
    let mut steps: Vec<TagStep> = match action {
        Action::Refuse { .. } => Vec::new(),
        Action::Build | Action::Overwrite { .. } => {
            let source = &plan.exact[0];
            plan.tags
                .iter()
                .map(|reference| TagStep {
                    reference: reference.clone(),
                    change: if plan.exact.contains(reference) {
                        TagChange::Push
                    } else {
                        TagChange::Point {
                            from: source.clone(),
                        }
                    },
                })
                .collect()
        }
        Action::Unchanged { tag, digest } => {
            let source = plan
                .exact
                .iter()
                .find(|r| crate::reference::split_tag(r).1 == tag)
                .cloned()
                .unwrap_or_else(|| tag.clone());
            plan.tags
                .iter()
                .map(|reference| TagStep {
                    reference: reference.clone(),
                    change: if current(reference).as_deref() == Some(digest.as_str()) {
                        TagChange::Unchanged
                    } else {
                        TagChange::Point {
                            from: source.clone(),
                        }
                    },
                })
                .collect()
        }
    };
    steps.extend(plan.held.iter().map(|held| TagStep {
        reference: held.tag.clone(),
        change: TagChange::Held {
            by: held.by.clone(),
        },
    }));
    steps
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
    // Release tags are the prefix and a version; `v6-migration` is not one.
    let release_tags: Vec<(&String, Version)> = git
        .head_tags
        .iter()
        .filter_map(|t| {
            let rest = t.strip_prefix(tag_prefix)?;
            let parsed = Version::parse_for(rest, wrapper).ok()?;
            Some((t, parsed))
        })
        .collect();
    if !release_tags.is_empty() && !release_tags.iter().any(|(_, v)| v == version) {
        problems.push(format!(
            "HEAD is tagged {} but the version is {}; set the version to match the tag, or tag the release {tag_prefix}{}",
            release_tags
                .iter()
                .map(|(t, _)| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", "),
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

    #[test]
    fn steps_push_exact_tags_point_aliases_and_skip_what_is_in_place() {
        let tags = vec![
            "r/a:1.2.0".to_string(),
            "r/a:1.2".to_string(),
            "r/a:latest".to_string(),
        ];
        let exact = vec!["r/a:1.2.0".to_string()];
        let held = vec![HeldTag {
            tag: "r/a:1".to_string(),
            by: "r/a:1.3.0".to_string(),
        }];
        let planned = PlannedTags {
            tags: &tags,
            exact: &exact,
            held: &held,
        };
        let changes =
            |action: &Action, current: &dyn Fn(&str) -> Option<String>| -> Vec<TagChange> {
                tag_steps(planned, action, current)
                    .into_iter()
                    .map(|s| s.change)
                    .collect()
            };
        let point = TagChange::Point {
            from: "r/a:1.2.0".to_string(),
        };
        let hold = TagChange::Held {
            by: "r/a:1.3.0".to_string(),
        };
        assert_eq!(
            changes(&Action::Build, &|_| None),
            [TagChange::Push, point.clone(), point.clone(), hold.clone()]
        );
        let unchanged = Action::Unchanged {
            tag: "1.2.0".to_string(),
            digest: "sha256:d".to_string(),
        };
        // An interrupted publish: the exact tag and `1.2` are in place, `latest` is not.
        let current = |r: &str| (r != "r/a:latest").then(|| "sha256:d".to_string());
        assert_eq!(
            changes(&unchanged, &current),
            [TagChange::Unchanged, TagChange::Unchanged, point, hold]
        );
        let refuse = Action::Refuse {
            reference: "r/a:1.2.0".to_string(),
            digest: "sha256:x".to_string(),
        };
        assert_eq!(
            changes(&refuse, &|_| None),
            [TagChange::Held {
                by: "r/a:1.3.0".to_string()
            }]
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
                Some(&git(&[], &["vnext", "v6-migration"])),
                &v,
                Wrapper::Minimal,
                "v",
                false
            )
            .is_empty()
        );
    }
}
