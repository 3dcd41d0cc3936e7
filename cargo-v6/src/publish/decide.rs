//! The decisions publish makes before its first side effect, as pure functions: may this
//! release be published from this work tree, and is its exact version tag absent, unchanged,
//! or taken by another image. The answer is the list of [`Step`]s that the real run executes
//! and `--dry-run` prints.
//!
//! Nothing published is lost: an exact tag that holds an image with another fingerprint is
//! never overwritten unless the user says `--force`.

use std::path::Path;

use crate::git::GitInfo;
use crate::oci::reference::{Digest, TaggedImage};
use crate::plan::Plan;
use crate::sign::Format;
use crate::vantage6::Wrapper;
use crate::version::Version;

use super::step::Step;
use super::survey::{ExactState, Survey};

/// Why a release is not published. Nothing was built or pushed when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The work tree is not a release (see [`check_work_tree`]), or more than one check
    /// failed before anything was done: every problem is listed.
    #[error("cannot publish:\n  - {}", problems.join("\n  - "))]
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
        reference: TaggedImage,
        /// What it holds.
        digest: Digest,
        /// When the version is a release tag's: that tag, and the one a changed release needs
        /// (boxed: rarely there, and it keeps every error small).
        retag: Option<Box<crate::release_tag::Retag>>,
    },
}

/// What publish does with the image as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// No exact tag exists: build and push.
    Build,
    /// An exact tag holds this very input: no build, no upload; missing tags are pointed at it.
    Unchanged {
        /// The exact tag that holds it.
        tag: TaggedImage,
        /// Its digest.
        digest: Digest,
    },
    /// `--force`: build and push over these exact tags, which hold other images.
    Overwrite {
        /// The tags that will be overwritten.
        references: Vec<TaggedImage>,
    },
}

/// The action and the steps that carry it out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What happens to the image.
    pub action: Action,
    /// Every step, in the order the real run executes them.
    pub steps: Vec<Step>,
}

impl Decision {
    /// The exact tag whose manifest is the release: the one pushed, or the one that already
    /// holds this input.
    pub fn source<'a>(&'a self, plan: &'a Plan) -> &'a TaggedImage {
        match &self.action {
            Action::Unchanged { tag, .. } => tag,
            Action::Build | Action::Overwrite { .. } => plan.primary_tag(),
        }
    }

    /// Whether the engine is needed.
    pub fn builds(&self) -> bool {
        self.steps.contains(&Step::Build)
    }
}

/// How a release is signed: the key as given, and the layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    /// The private key's path, as the user would type it.
    pub key: String,
    /// The layouts to write.
    pub format: Format,
}

/// Decides from the registry's state. An image whose fingerprint label is missing (pushed by
/// another tool) counts as different: it cannot be proven to be the same.
///
/// `smoke` names the function `publish --smoke` runs on the built image before any push. With
/// `signing`, a step signs the release (its digest, whether pushed now or already there); with
/// `store_output`, the last step writes the store's submission there.
pub fn decide(
    plan: &Plan,
    survey: &Survey,
    force: bool,
    smoke: Option<&str>,
    signing: Option<&Signing>,
    store_output: Option<&Path>,
) -> Result<Decision, ReleaseError> {
    let action = match action(&plan.fingerprint, &survey.exact, force) {
        Err(ReleaseError::Refused {
            reference, digest, ..
        }) => {
            return Err(ReleaseError::Refused {
                reference,
                digest,
                retag: crate::release_tag::Retag::of(&plan.version_source, &plan.version)
                    .map(Box::new),
            });
        }
        other => other?,
    };
    let mut steps = Vec::with_capacity(plan.tags.len() + plan.tags_held.len() + 1);
    match &action {
        Action::Build | Action::Overwrite { .. } => {
            steps.push(Step::Build);
            if let Some(method) = smoke {
                steps.push(Step::Smoke {
                    method: method.to_string(),
                });
            }
            let source = plan.primary_tag();
            steps.extend(plan.tags.iter().map(|tag| {
                if plan.is_exact(&tag.tag) {
                    Step::PushExact { tag: tag.clone() }
                } else {
                    Step::PointAlias {
                        tag: tag.clone(),
                        from: source.clone(),
                    }
                }
            }));
        }
        Action::Unchanged {
            tag: source,
            digest,
        } => {
            steps.extend(plan.tags.iter().map(|tag| {
                if survey.digest_of(tag) == Some(digest) {
                    Step::Unchanged {
                        tag: tag.clone(),
                        digest: digest.clone(),
                    }
                } else {
                    Step::PointAlias {
                        tag: tag.clone(),
                        from: source.clone(),
                    }
                }
            }));
        }
    }
    steps.extend(plan.tags_held.iter().map(|held| Step::HoldAlias {
        tag: held.tag.clone(),
        by: held.by.clone(),
    }));
    if let Some(signing) = signing {
        let (reference, digest) = match &action {
            Action::Unchanged { tag, digest } => (tag.clone(), Some(digest.clone())),
            Action::Build | Action::Overwrite { .. } => (plan.primary_tag().clone(), None),
        };
        steps.push(Step::Sign {
            reference,
            digest,
            key: signing.key.clone(),
            format: signing.format,
        });
    }
    if let Some(path) = store_output {
        steps.push(Step::WriteStore {
            path: path.to_path_buf(),
        });
    }
    Ok(Decision { action, steps })
}

fn action(fingerprint: &str, exact: &[ExactState], force: bool) -> Result<Action, ReleaseError> {
    let present: Vec<(&ExactState, &Digest)> = exact
        .iter()
        .filter_map(|t| Some((t, t.digest.as_ref()?)))
        .collect();
    let differing: Vec<(&ExactState, &Digest)> = present
        .iter()
        .copied()
        .filter(|(t, _)| t.fingerprint.as_deref() != Some(fingerprint))
        .collect();
    match (differing.first(), present.first()) {
        (Some(_), _) if force => Ok(Action::Overwrite {
            references: differing.iter().map(|(t, _)| t.tag.clone()).collect(),
        }),
        (Some((taken, digest)), _) => Err(ReleaseError::Refused {
            reference: taken.tag.clone(),
            digest: (*digest).clone(),
            retag: None,
        }),
        (None, Some((same, digest))) => Ok(Action::Unchanged {
            tag: same.tag.clone(),
            digest: (*digest).clone(),
        }),
        (None, None) => Ok(Action::Build),
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
    // Release tags are the prefix and a version; `v6-migration` is not one.
    let release_tags = crate::plan::inputs::release_tags(Some(git), tag_prefix, wrapper);
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

    use std::collections::BTreeMap;

    use super::*;
    use crate::oci::reference::{ImageName, Tag};
    use crate::plan::{HeldTag, RegistryView, VersionSource};
    use crate::version::Scheme;

    fn image() -> ImageName {
        ImageName::parse("r.example/a").unwrap()
    }

    fn tag(name: &str) -> TaggedImage {
        image().with_tag(&Tag::parse(name).unwrap())
    }

    fn digest(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn state(name: &str, d: Option<char>, fingerprint: Option<&str>) -> ExactState {
        ExactState {
            tag: tag(name),
            digest: d.map(digest),
            fingerprint: fingerprint.map(str::to_string),
        }
    }

    /// A plan for 1.2.0 with aliases `1.2` and `latest`, and `1` held by 1.3.0.
    fn plan() -> Plan {
        Plan {
            name: "a".into(),
            version: Version::parse("1.2.0", Scheme::Semver).unwrap(),
            version_source: VersionSource::Manifest,
            stable: true,
            wrapper: Wrapper::Minimal,
            vantage6: "4.15".into(),
            image: image(),
            tags: vec![tag("1.2.0"), tag("1.2"), tag("latest")],
            exact_tags: vec![tag("1.2.0")],
            tags_held: vec![HeldTag {
                tag: tag("1"),
                by: tag("1.3.0"),
            }],
            tag_templates: crate::tags::default_templates(),
            tag_context: crate::tags::TagContext {
                vantage6: "4.15".into(),
                name: "a".into(),
            },
            registry: RegistryView::Read,
            base_image: "busybox:1".into(),
            dockerfile: String::new(),
            dockerfile_name: ".cargo-v6.Dockerfile".into(),
            labels: BTreeMap::new(),
            build_labels: BTreeMap::new(),
            build_args: BTreeMap::new(),
            network: None,
            platform: None,
            context: "/".into(),
            context_files: Vec::new(),
            file_digests: Vec::new(),
            fingerprint: "f".into(),
            own_dockerfile: None,
            unused_dockerfile: None,
            warnings: Vec::new(),
        }
    }

    fn survey(exact: ExactState, current: &[(&str, char)]) -> Survey {
        Survey {
            exact: vec![exact],
            current: current
                .iter()
                .map(|(name, d)| (tag(name), Some(digest(*d))))
                .collect(),
            manifests: BTreeMap::new(),
            tags: Vec::new(),
        }
    }

    #[test]
    fn absent_builds_same_skips_other_refuses_force_overwrites() {
        let absent = state("1.2.0", None, None);
        assert_eq!(action("f", &[absent], false).unwrap(), Action::Build);
        assert_eq!(
            action("f", &[state("1.2.0", Some('a'), Some("f"))], false).unwrap(),
            Action::Unchanged {
                tag: tag("1.2.0"),
                digest: digest('a')
            }
        );
        let refused = action("f", &[state("1.2.0", Some('a'), Some("g"))], false).unwrap_err();
        assert!(
            matches!(&refused, ReleaseError::Refused { reference, digest: d, .. }
                if *reference == tag("1.2.0") && *d == digest('a')),
            "{refused:?}"
        );
        assert!(
            matches!(
                action("f", &[state("1.2.0", Some('a'), None)], false),
                Err(ReleaseError::Refused { .. })
            ),
            "an image without our label is not ours to overwrite"
        );
        assert_eq!(
            action("f", &[state("1.2.0", Some('a'), Some("g"))], true).unwrap(),
            Action::Overwrite {
                references: vec![tag("1.2.0")]
            }
        );
    }

    #[test]
    fn one_unchanged_exact_tag_completes_the_others() {
        let tags = [
            state("1.0.0", None, None),
            state("1.0.0-v6-4.15", Some('a'), Some("f")),
        ];
        assert_eq!(
            action("f", &tags, false).unwrap(),
            Action::Unchanged {
                tag: tag("1.0.0-v6-4.15"),
                digest: digest('a')
            }
        );
    }

    #[test]
    fn the_store_file_is_written_last() {
        let signing = Signing {
            key: "cosign.key".into(),
            format: Format::Sig,
        };
        let decision = decide(
            &plan(),
            &survey(state("1.2.0", None, None), &[]),
            false,
            None,
            Some(&signing),
            Some(Path::new("algorithm_store.json")),
        )
        .unwrap();
        let last = decision.steps.last().unwrap();
        assert_eq!(
            *last,
            Step::WriteStore {
                path: "algorithm_store.json".into()
            }
        );
        assert!(matches!(
            decision.steps[decision.steps.len() - 2],
            Step::Sign { .. }
        ));
    }

    #[test]
    fn a_build_pushes_exact_tags_then_points_aliases_and_holds_the_rest() {
        let decision = decide(
            &plan(),
            &survey(state("1.2.0", None, None), &[]),
            false,
            None,
            None,
            None,
        )
        .unwrap();
        assert!(decision.builds());
        assert_eq!(
            decision.steps,
            [
                Step::Build,
                Step::PushExact { tag: tag("1.2.0") },
                Step::PointAlias {
                    tag: tag("1.2"),
                    from: tag("1.2.0")
                },
                Step::PointAlias {
                    tag: tag("latest"),
                    from: tag("1.2.0")
                },
                Step::HoldAlias {
                    tag: tag("1"),
                    by: tag("1.3.0")
                },
            ]
        );
    }

    #[test]
    fn an_interrupted_publish_is_completed_without_a_build() {
        // The exact tag and `1.2` are in place, `latest` is not.
        let survey = survey(
            state("1.2.0", Some('d'), Some("f")),
            &[("1.2.0", 'd'), ("1.2", 'd'), ("latest", 'e')],
        );
        let decision = decide(&plan(), &survey, false, None, None, None).unwrap();
        assert!(!decision.builds());
        assert_eq!(decision.source(&plan()), &tag("1.2.0"));
        assert_eq!(
            decision.steps,
            [
                Step::Unchanged {
                    tag: tag("1.2.0"),
                    digest: digest('d')
                },
                Step::Unchanged {
                    tag: tag("1.2"),
                    digest: digest('d')
                },
                Step::PointAlias {
                    tag: tag("latest"),
                    from: tag("1.2.0")
                },
                Step::HoldAlias {
                    tag: tag("1"),
                    by: tag("1.3.0")
                },
            ]
        );
    }

    #[test]
    fn a_refusal_is_an_error_not_a_step() {
        let survey = survey(state("1.2.0", Some('b'), Some("other")), &[("1.2.0", 'b')]);
        assert!(matches!(
            decide(&plan(), &survey, false, None, None, None),
            Err(ReleaseError::Refused { .. })
        ));
    }

    #[test]
    fn a_configured_key_signs_last_the_pushed_or_the_unchanged_digest() {
        let signing = Signing {
            key: "../cosign.key".into(),
            format: Format::Both,
        };
        let built = decide(
            &plan(),
            &survey(state("1.2.0", None, None), &[]),
            false,
            None,
            Some(&signing),
            None,
        )
        .unwrap();
        let sign = Step::Sign {
            reference: tag("1.2.0"),
            digest: None,
            key: "../cosign.key".into(),
            format: Format::Both,
        };
        assert_eq!(built.steps.last(), Some(&sign));
        assert_eq!(
            serde_json::to_value(&sign).unwrap(),
            serde_json::json!({"reference": "r.example/a:1.2.0", "change": "sign", "digest": null, "key": "../cosign.key", "format": "both"})
        );
        let unchanged = survey(
            state("1.2.0", Some('d'), Some("f")),
            &[("1.2.0", 'd'), ("1.2", 'd'), ("latest", 'd')],
        );
        let decision = decide(&plan(), &unchanged, false, None, Some(&signing), None).unwrap();
        assert!(!decision.builds());
        assert!(matches!(
            decision.steps.last(),
            Some(Step::Sign { digest: Some(d), .. }) if *d == digest('d')
        ));
        // Without a key, no step and nothing else changes.
        let unsigned = decide(&plan(), &unchanged, false, None, None, None).unwrap();
        assert_eq!(
            unsigned.steps[..],
            decision.steps[..decision.steps.len() - 1]
        );
    }

    #[test]
    fn steps_serialize_as_the_dry_run_prints_them() {
        let step = Step::PointAlias {
            tag: tag("latest"),
            from: tag("1.2.0"),
        };
        assert_eq!(
            serde_json::to_value(&step).unwrap(),
            serde_json::json!({"reference": "r.example/a:latest", "change": "point", "from": "r.example/a:1.2.0"})
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
