//! The decision publish makes before its first side effect, as a pure function: is the exact
//! version tag absent, unchanged, or taken by another image. The answer is the list of [`Step`]s that the real run executes
//! and `--dry-run` prints.
//!
//! Nothing published is lost: an exact tag that holds an image with another fingerprint is
//! never overwritten unless the user says `--force`.

use std::path::Path;

use crate::oci::reference::{Digest, TaggedImage};
use crate::plan::Plan;
use crate::run::RunRequest;
use crate::sign::Format;

use super::step::{SignKey, Step};
use super::survey::{ExactState, Survey};
use super::{Outcome, PublishError};

/// Why a release is not published. Nothing was built or pushed when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
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

/// How a release is signed: the key, and the layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    /// The private key.
    pub key: SignKey,
    /// The layouts to write.
    pub format: Format,
}

/// Decides from the registry's state. An image whose fingerprint label is missing (pushed by
/// another tool) counts as different: it cannot be proven to be the same.
///
/// `smoke` is the run made on the built image before any push (a step holding it). With
/// `signing`, a step signs the release (its digest, whether pushed now or already there); with
/// `store_output`, the last step writes the store's submission there.
pub fn decide(
    plan: &Plan,
    survey: &Survey,
    force: bool,
    smoke: Option<&RunRequest>,
    signing: Option<&Signing>,
    store_output: Option<&Path>,
    submit: Option<&crate::store::submit::Endpoints>,
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
            if let Some(request) = smoke {
                steps.push(Step::Smoke {
                    request: Box::new(request.clone()),
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
                } else if plan.is_exact(&tag.tag) {
                    Step::CompleteExact {
                        tag: tag.clone(),
                        from: source.clone(),
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
    if let Some(endpoints) = submit {
        steps.push(Step::SubmitStore {
            endpoints: endpoints.clone(),
        });
    }
    Ok(Decision { action, steps })
}

/// The publish's own step, once every algorithm is done: the releases published go into the
/// record at `path`, in one write for them all (the algorithms publish concurrently, and the
/// file is one). `None` when nothing was published: a dry run, or every algorithm failed.
pub fn record(path: &Path, outcomes: &[Result<Outcome, PublishError>]) -> Option<Step> {
    let releases: Vec<_> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Ok(Outcome::Published(published)) => Some(published.release()),
            _ => None,
        })
        .collect();
    (!releases.is_empty()).then(|| Step::Record {
        path: path.to_path_buf(),
        releases,
    })
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

#[cfg(test)]
mod tests {

    use std::collections::BTreeMap;

    use super::*;
    use crate::oci::reference::{ImageName, Tag};
    use crate::plan::{HeldTag, RegistryView, VersionSource};
    use crate::vantage6::Wrapper;
    use crate::version::{Scheme, Version};

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
            platforms: Vec::new(),
            assembled: None,
            commit_time: None,
            lock: None,
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

    /// A key to sign with, made once: the key derivation is slow on purpose.
    fn key(path: &str) -> SignKey {
        static KEY: std::sync::OnceLock<std::sync::Arc<crate::sign::SigningKey>> =
            std::sync::OnceLock::new();
        let key = KEY.get_or_init(|| {
            let password = crate::sign::Password::new("p");
            let dir = tempfile::tempdir().unwrap();
            let keys = crate::sign::NewKeys::generate(&password).unwrap();
            let (private, _) = crate::sign::keys::write_new(dir.path(), &keys).unwrap();
            std::sync::Arc::new(crate::sign::SigningKey::load(&private, &password).unwrap())
        });
        SignKey {
            path: path.into(),
            key: key.clone(),
        }
    }

    #[test]
    fn the_store_file_is_written_last() {
        let signing = Signing {
            key: key("cosign.key"),
            format: Format::Sig,
        };
        let decision = decide(
            &plan(),
            &survey(state("1.2.0", None, None), &[]),
            false,
            None,
            Some(&signing),
            Some(Path::new("algorithm_store.json")),
            None,
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
        let decision = decide(&plan(), &survey, false, None, None, None, None).unwrap();
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
    fn a_missing_exact_tag_is_completed_and_told_from_an_alias() {
        // Two exact tags; `1.2.0-v6-4.15` holds the release, `1.2.0` and `latest` do not.
        let mut plan = plan();
        plan.tags.insert(1, tag("1.2.0-v6-4.15"));
        plan.exact_tags.push(tag("1.2.0-v6-4.15"));
        let survey = Survey {
            exact: vec![
                state("1.2.0", None, None),
                state("1.2.0-v6-4.15", Some('d'), Some("f")),
            ],
            current: [("1.2.0-v6-4.15", 'd'), ("1.2", 'd')]
                .iter()
                .map(|(name, d)| (tag(name), Some(digest(*d))))
                .collect(),
            manifests: BTreeMap::new(),
            tags: Vec::new(),
        };
        let decision = decide(&plan, &survey, false, None, None, None, None).unwrap();
        let source = tag("1.2.0-v6-4.15");
        assert_eq!(
            decision.steps[..4],
            [
                Step::CompleteExact {
                    tag: tag("1.2.0"),
                    from: source.clone()
                },
                Step::Unchanged {
                    tag: source.clone(),
                    digest: digest('d')
                },
                Step::Unchanged {
                    tag: tag("1.2"),
                    digest: digest('d')
                },
                Step::PointAlias {
                    tag: tag("latest"),
                    from: source
                },
            ]
        );
        // Both are tag writes, printed alike.
        assert_eq!(
            serde_json::to_value(&decision.steps[0]).unwrap()["change"],
            "point"
        );
    }

    #[test]
    fn a_refusal_is_an_error_not_a_step() {
        let survey = survey(state("1.2.0", Some('b'), Some("other")), &[("1.2.0", 'b')]);
        assert!(matches!(
            decide(&plan(), &survey, false, None, None, None, None,),
            Err(ReleaseError::Refused { .. })
        ));
    }

    #[test]
    fn a_configured_key_signs_last_the_pushed_or_the_unchanged_digest() {
        let signing = Signing {
            key: key("../cosign.key"),
            format: Format::Both,
        };
        let built = decide(
            &plan(),
            &survey(state("1.2.0", None, None), &[]),
            false,
            None,
            Some(&signing),
            None,
            None,
        )
        .unwrap();
        let sign = Step::Sign {
            reference: tag("1.2.0"),
            digest: None,
            key: key("../cosign.key"),
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
        let decision =
            decide(&plan(), &unchanged, false, None, Some(&signing), None, None).unwrap();
        assert!(!decision.builds());
        assert!(matches!(
            decision.steps.last(),
            Some(Step::Sign { digest: Some(d), .. }) if *d == digest('d')
        ));
        // Without a key, no step and nothing else changes.
        let unsigned = decide(&plan(), &unchanged, false, None, None, None, None).unwrap();
        assert_eq!(
            unsigned.steps[..],
            decision.steps[..decision.steps.len() - 1]
        );
    }

    #[test]
    fn the_releases_published_are_recorded_once_and_a_dry_run_records_nothing() {
        let published = |name: &str| {
            Ok(Outcome::Published(Box::new(super::super::Published {
                algorithm: name.into(),
                image: image(),
                reference: tag("1.2.0"),
                version: plan().version,
                digest: digest('d'),
                fingerprint: "f".into(),
                tags_pushed: Vec::new(),
                tags_held: Vec::new(),
                skipped_unchanged: false,
                signatures: Vec::new(),
                store: None,
            })))
        };
        let failed = Err(PublishError::Vanished {
            reference: tag("1.2.0"),
        });
        let outcomes = [published("a"), failed, published("b")];
        let Some(Step::Record { path, releases }) = record(Path::new("v6.lock"), &outcomes) else {
            panic!("no record step");
        };
        assert_eq!(path, Path::new("v6.lock"));
        let names: Vec<&str> = releases.iter().map(|r| r.algorithm.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let decision = decide(
            &plan(),
            &survey(state("1.2.0", None, None), &[]),
            false,
            None,
            None,
            None,
            None,
        )
        .unwrap();
        let dry_run = Ok(Outcome::DryRun {
            plan: Box::new(plan()),
            decision,
        });
        assert_eq!(record(Path::new("v6.lock"), &[dry_run]), None);
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
}
