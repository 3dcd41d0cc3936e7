//! The one error type the commands return: each module's error, wrapped once, with the exit
//! code (2 for the user's input, 1 for everything else), the place in a file it concerns and a
//! hint.

use crate::ci::CiError;
use crate::credentials::CredentialsError;
use crate::diagnostic::Location;
use crate::engine::EngineError;
use crate::manifest::ManifestError;
use crate::plan::{PlanError, VersionError, VersionRemedy};
use crate::publish::preflight::SmokeProblem;
use crate::publish::{Problem, Problems, PublishError, ReleaseError};
use crate::record::RecordError;
use crate::registry::RegistryError;
use crate::release_tag::ReleaseTagError;
use crate::run::{Hint, RunError};
use crate::sign::{KeyError, Refusal, SignError};
use crate::store::StoreError;
use crate::version::MetadataError;
use crate::workspace::WorkspaceError;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// v6.toml missing or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// No plan could be made (version, context, Dockerfile).
    #[error(transparent)]
    Plan(PlanError),
    /// The Docker engine failed or cannot be reached.
    #[error(transparent)]
    Engine(EngineError),
    /// The registry failed, cannot be reached, or refused the credentials.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Publishing was refused, or the registry answered something impossible.
    #[error(transparent)]
    Publish(PublishError),
    /// Credentials could not be resolved.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Signing or verifying failed: a key, the registry, or no valid signature.
    #[error(transparent)]
    Sign(SignError),
    /// A CI file could not be generated from the manifest.
    #[error(transparent)]
    Ci(#[from] CiError),
    /// The `[store]` section, or a file to import, is not what the algorithm store accepts.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Other wrong input from the user (arguments, values found in files).
    #[error("{message}")]
    Input {
        /// What is wrong.
        message: String,
        /// Where, when it is in a file.
        location: Option<Location>,
        /// How to fix it.
        help: Option<String>,
    },
    /// The tool refuses, or the outside world failed, in a way no module error covers.
    #[error("{message}")]
    Failed {
        /// What happened.
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// Some algorithms of a workspace failed; each was reported as it failed.
    #[error("{} of {total} algorithms failed: {}", failed.len(), failed.join(", "))]
    Members {
        /// Their names.
        failed: Vec<String>,
        /// How many were selected.
        total: usize,
        /// 2 when every failure was wrong input, else 1.
        exit_code: i32,
    },
    /// The record of releases (v6.lock) could not be read or written.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The reader of stdout went away (`| head`): not a failure, the program just stops.
    #[error("stdout was closed")]
    StdoutClosed,
    /// A file the tool writes could not be written.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// An assembly error as the command reports it (the registry's and the credentials' as
/// everywhere else).
impl From<crate::assemble::AssembleError> for Error {
    fn from(error: crate::assemble::AssembleError) -> Self {
        match error {
            crate::assemble::AssembleError::Registry(e) => Error::Registry(e),
            crate::assemble::AssembleError::Credentials(e) => Error::Credentials(e),
            other => Error::Failed {
                message: other.to_string(),
                help: None,
            },
        }
    }
}

/// A publish error is taken apart, so that an engine or registry failure is reported the same
/// whichever command met it.
impl From<PublishError> for Error {
    fn from(error: PublishError) -> Self {
        match error {
            PublishError::Plan(e) => Error::from(e),
            PublishError::Engine(e) => Error::from(e),
            PublishError::Registry(e)
            | PublishError::Assemble(crate::assemble::AssembleError::Registry(e)) => {
                Error::Registry(e)
            }
            PublishError::Credentials(e) => Error::Credentials(e),
            PublishError::Sign(e) => Error::from(e),
            PublishError::Store(e) => Error::Store(e),
            PublishError::Preflight(problems) => Error::refused(problems),
            PublishError::NotRecorded(_) => Error::Failed {
                message: error.to_string(),
                help: Some(
                    "publish again once the file can be written: it finds the releases unchanged and records them"
                        .to_string(),
                ),
            },
            other => Error::Publish(other),
        }
    }
}

/// A preflight problem as the command reports it: the error it would be alone (its exit code
/// and hint), and the flag that overrides it named where there is one.
impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        match problem {
            Problem::Dirty { files } => Error::Failed {
                message: format!(
                    "{}; commit them, or pass `--allow-dirty`",
                    crate::publish::preflight::uncommitted(&files)
                ),
                help: None,
            },
            Problem::ReleaseTag(e) => Error::from(e),
            Problem::Smoke(SmokeProblem::SeveralSelected) => Error::input(
                "`--smoke` runs one algorithm, and several are selected",
                Some("pass `-p NAME` to publish (and smoke-test) one of them".to_string()),
            ),
            Problem::Smoke(SmokeProblem::TaskWithoutRun) => Error::input(
                "`--kwargs`, `--args`, `--data`, `--org`, `--env`, `--step`, `--extract` and `--timeout` describe the `--smoke` run",
                Some("add `--smoke METHOD`, or leave them out".to_string()),
            ),
            Problem::Smoke(SmokeProblem::Request(RunError::Input { message, help })) => {
                Error::Input {
                    message,
                    location: None,
                    help,
                }
            }
            Problem::Smoke(SmokeProblem::Request(other)) => Error::Failed {
                help: run_help(&other),
                message: other.to_string(),
            },
            Problem::Record(e) => Error::Record(e),
            Problem::Store(e) => Error::Store(e),
            Problem::KeyInContext { .. } => Error::Failed {
                message: problem.to_string(),
                help: Some(
                    "keep the key outside the build context (e.g. `--sign-key ../keys/cosign.key`), or add it to .dockerignore"
                        .to_string(),
                ),
            },
            Problem::Credentials(e) => Error::Credentials(e),
            Problem::Registry(e) => Error::Registry(e),
            Problem::Plan(e) => Error::from(e),
            Problem::Refused(e) => Error::Publish(PublishError::Release(e)),
            Problem::Engine(e) => Error::from(e),
            Problem::CredentialsInClear { endpoint } => {
                Error::from(EngineError::CredentialsInClear { endpoint })
            }
            Problem::TaggedOtherVersion { .. } => Error::Failed {
                message: problem.to_string(),
                help: None,
            },
            Problem::NoUv(_) => Error::Failed {
                message: problem.to_string(),
                help: Some(
                    "install uv (`pip install uv`, or see https://docs.astral.sh/uv/), or set CARGO_V6_UV to its path"
                        .to_string(),
                ),
            },
        }
    }
}

/// A plan error as the command reports it: a version that cannot be settled on also names
/// `--set-version`, which gives it explicitly.
impl From<PlanError> for Error {
    fn from(error: PlanError) -> Self {
        match error {
            PlanError::Version(e) => {
                let message = match &e {
                    VersionError::InvalidExplicit(reason) => {
                        format!("invalid `{SET_VERSION}`: {reason}")
                    }
                    other => other.to_string(),
                };
                Error::input(message, e.remedy().map(|r| or_set_version(&r)))
            }
            PlanError::Metadata(e @ MetadataError::NotLiteral { .. }) => Error::Input {
                message: format!("{e}; {}", or_set_version(&VersionRemedy::SetInManifest)),
                location: e.location().cloned(),
                help: None,
            },
            other => Error::Plan(other),
        }
    }
}

/// The flag that gives the version explicitly.
const SET_VERSION: &str = "--set-version";

/// A fix for the version in the project, and the flag as the other way out.
fn or_set_version(remedy: &VersionRemedy) -> String {
    match remedy {
        VersionRemedy::Tag(_) => {
            format!("{remedy}, or pass `{SET_VERSION}` for a build that is not a release")
        }
        VersionRemedy::SetInManifest => format!("{remedy} or pass `{SET_VERSION}`"),
    }
}

/// An engine error as the command reports it: credentials refused over plain TCP name
/// `--allow-insecure-engine`, which sends them anyway.
impl From<EngineError> for Error {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::CredentialsInClear { .. } => Error::Failed {
                message: format!("{error}, or pass --allow-insecure-engine to send them anyway"),
                help: None,
            },
            other => Error::Engine(other),
        }
    }
}

/// How to fix a failed run (`run`, `publish --smoke`), the request's part worded with the
/// flags that make it.
pub fn run_help(error: &RunError) -> Option<String> {
    Some(match error.hint()? {
        Hint::Say(text) => text,
        Hint::Step(declared) => format!("pass --step {declared}"),
        Hint::Data => {
            "give each database the function takes with --data LABEL=PATH[:TYPE]".to_string()
        }
        Hint::DataType => {
            "check the file and its type (--data LABEL=PATH:TYPE; csv is the default)".to_string()
        }
        Hint::Timeout => "if its log shows it still working, a longer --timeout (or none) lets it \
             finish; a function waiting for what a local run cannot give (the server, the \
             network: the container has none) never will"
            .to_string(),
    })
}

/// A manifest of the workspace is reported as any manifest; a selection that names no member
/// is wrong input.
impl From<WorkspaceError> for Error {
    fn from(error: WorkspaceError) -> Self {
        let help = error.help();
        match error {
            WorkspaceError::Manifest(e) => Error::Manifest(e),
            WorkspaceError::NothingSelected => {
                Error::input("no member of the workspace is left after `--exclude`", help)
            }
            other => Error::input(other.to_string(), help),
        }
    }
}

/// A release tag that cannot be published is wrong input; the message and hint name the flags.
impl From<ReleaseTagError> for Error {
    fn from(error: ReleaseTagError) -> Self {
        let help = match &error {
            ReleaseTagError::NoTag {
                not_a_tag: Some(reference),
            } => format!(
                "GITHUB_REF is `{reference}`, not a tag: run the job on tag pushes (`on: push: tags:`), or pass the tag"
            ),
            ReleaseTagError::NoTag { not_a_tag: None } => {
                "pass the tag (`--from-tag summary-v1.2.0`); in CI, GITHUB_REF (GitHub) or CI_COMMIT_TAG (GitLab) name it on tag pipelines".to_string()
            }
            ReleaseTagError::NotATag { .. } => {
                "pass the tag as git shows it (`git tag --points-at HEAD`)".to_string()
            }
            ReleaseTagError::NoMember { forms, .. } => {
                format!("release tags here look like {}", forms.join(", "))
            }
            ReleaseTagError::Ambiguous { .. } => {
                "give the algorithms distinct `release-tag-prefix`es, or pick one with `-p NAME`".to_string()
            }
            ReleaseTagError::VersionMismatch { version, tag, .. } => format!(
                "set the version to the tag's, or tag the commit with the version that is there (not `{tag}` but one for {version})"
            ),
            ReleaseTagError::NotOnHead { tag } => format!(
                "check the tag out first (`git checkout {tag}`): what is published is the work tree"
            ),
        };
        let message = match &error {
            ReleaseTagError::NoTag { not_a_tag } => format!(
                "`--from-tag` has no tag: {}",
                crate::release_tag::no_tag_reason(not_a_tag.as_deref())
            ),
            other => other.mismatch(&format!("from {SET_VERSION}")),
        };
        Error::input(message, help)
    }
}

/// A registry failure met while signing is reported as any registry failure.
impl From<SignError> for Error {
    fn from(error: SignError) -> Self {
        match error {
            SignError::Registry(e) => Error::Registry(e),
            other => Error::Sign(other),
        }
    }
}

impl From<KeyError> for Error {
    fn from(error: KeyError) -> Self {
        Error::Sign(SignError::Key(error))
    }
}

impl Error {
    /// Wrong input from the user, without a place in a file.
    pub fn input(message: impl Into<String>, help: impl Into<Option<String>>) -> Self {
        Error::Input {
            message: message.into(),
            location: None,
            help: help.into(),
        }
    }

    /// What preflight found: one problem as itself, several (or any about the work tree) as
    /// one list, each item with its place (`at PATH:LINE:COL`) and hint as it would have
    /// alone; exit 2 when any is wrong input (the input must be fixed whatever else is wrong).
    fn refused(problems: Problems) -> Self {
        let all = match problems.into_single() {
            Ok(one) => return Error::from(one),
            Err(all) => all,
        };
        let errors: Vec<Error> = all.into_iter().map(Error::from).collect();
        let mut message = String::from("cannot publish:");
        for error in &errors {
            message.push_str(&format!("\n  - {error}"));
            if let Some(location) = error.location() {
                message.push_str(&format!("\n    at {}", location.place()));
            }
            if let Some(help) = error.help() {
                message.push_str(&format!("\n    help: {help}"));
            }
        }
        match errors.iter().any(|e| e.exit_code() == 2) {
            true => Error::input(message, None),
            false => Error::Failed {
                message,
                help: None,
            },
        }
    }

    /// The process exit code: 2 when the user's input is wrong, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Manifest(_) | Error::Input { .. } => 2,
            Error::Plan(e) if e.is_input() => 2,
            Error::Publish(PublishError::Smoke { source, .. })
                if matches!(**source, RunError::Input { .. }) =>
            {
                2
            }
            Error::Sign(e) if e.is_input() => 2,
            Error::Ci(e) => e.exit_code(),
            Error::Members { exit_code, .. } => *exit_code,
            Error::Record(RecordError::Invalid { .. }) => 2,
            Error::Store(e) if e.is_input() => 2,
            Error::StdoutClosed => 0,
            _ => 1,
        }
    }

    /// The place in a file this error is about, if any.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Manifest(ManifestError::Invalid { location, .. }) => Some(location),
            Error::Plan(e) => e.location(),
            Error::Input { location, .. } => location.as_ref(),
            Error::Store(e) => e.location(),
            _ => None,
        }
    }

    /// A hint on how to fix it.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Manifest(ManifestError::Invalid { help, .. })
            | Error::Input { help, .. }
            | Error::Failed { help, .. } => help.clone(),
            Error::Manifest(ManifestError::NotFound { .. }) => {
                Some("run `cargo v6 init` to create one, or pass `--manifest-path`".to_string())
            }
            Error::Plan(e) => e.help(),
            Error::Store(e) => e.help(),
            Error::Publish(PublishError::Smoke { source, .. }) => run_help(source),
            Error::Publish(PublishError::Release(ReleaseError::Refused { retag, .. })) => {
                Some(match retag {
                    // The metadata is not read under `version-from-tag`: only a tag helps.
                    Some(retag) => format!(
                        "the version is the release tag `{}` on HEAD (`version-from-tag`; the project's metadata is not read): tag the change as a new release (e.g. `git tag {}`), or pass `--force` to overwrite it",
                        retag.tag, retag.next
                    ),
                    None => "bump the version (e.g. `--set-version` or the project's metadata), or pass `--force` to overwrite it"
                        .to_string(),
                })
            }
            Error::Engine(EngineError::Push { .. }) => Some(
                "a push that fails part-way tags nothing: run `cargo v6 publish` again to complete it"
                    .to_string(),
            ),
            Error::Engine(EngineError::BuildStep { output, message, .. })
                if resolves_no_names(output) || resolves_no_names(message) =>
            {
                Some(
                    "nothing was pushed; the step could not resolve a host name: RUN steps get no network on an engine without a bridge network; set `network = \"host\"` under [build] in v6.toml"
                        .to_string(),
                )
            }
            Error::Engine(EngineError::BuildStep { .. }) => {
                Some("nothing was pushed; `-v` shows every step's output".to_string())
            }
            Error::Sign(SignError::Key(KeyError::WrongPassword { .. })) => Some(format!(
                "the password is read from {} when it is set, else asked for on the terminal",
                crate::sign::keys::PASSWORD_VAR
            )),
            Error::Sign(SignError::Key(KeyError::Exists { .. })) => Some(
                "move the existing keys away first, or pass `--output-dir` for another directory"
                    .to_string(),
            ),
            Error::Sign(SignError::Refused(Refusal::NoSignature { .. })) => Some(
                "sign it with `cargo v6 sign IMAGE@DIGEST --key cosign.key` (or `publish` with a `[sign]` key)"
                    .to_string(),
            ),
            Error::Sign(SignError::Refused(_)) => Some(
                "do not run this image: get the digest and the public key from the publisher, and check both"
                    .to_string(),
            ),
            Error::Ci(e) => e.help(),
            Error::Registry(RegistryError::Unreachable { .. }) => Some(
                "check `image` in v6.toml and the network; `cargo v6 doctor` checks the registry and credentials"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// Whether a build step's output says that it could not resolve a host name (pip, apt, curl
/// and wget each say it their own way).
fn resolves_no_names(output: &str) -> bool {
    [
        "Temporary failure in name resolution",
        "Could not resolve host",
        "Name or service not known",
        "No address associated with hostname",
        "Failed to establish a new connection",
        "Could not resolve",
    ]
    .iter()
    .any(|needle| output.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_without_name_resolution_points_at_build_network() {
        let step = |output: &str| {
            Error::Engine(EngineError::BuildStep {
                step: "Step 4/6 : RUN pip install /app".to_string(),
                output: output.to_string(),
                message: "returned a non-zero code: 1".to_string(),
            })
        };
        let offline = step(
            "WARNING: Retrying ... NewConnectionError('... [Errno -3] Temporary failure in name resolution')",
        );
        assert!(offline.help().unwrap().contains("network = \"host\""));
        let other = step("SyntaxError: invalid syntax");
        assert!(!other.help().unwrap().contains("network"));
    }

    fn refused(problems: Vec<Problem>) -> Error {
        let mut found = crate::publish::preflight::Found::default();
        found.extend(problems);
        Error::from(PublishError::Preflight(found.into_problems()))
    }

    #[test]
    fn preflight_problems_are_reported_together_naming_the_flags() {
        let dirty = || Problem::Dirty {
            files: vec!["a.py".into()],
        };
        let in_clear = Problem::from(EngineError::CredentialsInClear {
            endpoint: "tcp://10.0.0.1:2375 (DOCKER_HOST)".into(),
        });
        let both = refused(vec![in_clear, dirty()]);
        let shown = both.to_string();
        assert!(
            shown.starts_with("cannot publish:\n  - refusing to send the registry credentials")
        );
        assert!(
            shown.contains("--allow-insecure-engine to send them anyway"),
            "{shown}"
        );
        assert!(
            shown.ends_with("\n  - the work tree has uncommitted changes (a.py); commit them, or pass `--allow-dirty`"),
            "{shown}"
        );
        assert_eq!(both.exit_code(), 1);
        // Alone, a work-tree problem is still a list; any other is the error it always was.
        assert!(
            refused(vec![dirty()])
                .to_string()
                .starts_with("cannot publish:\n  - ")
        );
        let several = refused(vec![Problem::Smoke(SmokeProblem::SeveralSelected)]);
        assert_eq!(
            several.to_string(),
            "`--smoke` runs one algorithm, and several are selected"
        );
        assert_eq!(several.exit_code(), 2);
        assert!(several.help().unwrap().contains("-p NAME"));
        // Every problem wrong input: still exit 2.
        let record = Problem::Record(RecordError::Invalid {
            path: "v6.lock".into(),
            message: "expected `=`".into(),
        });
        let inputs = refused(vec![Problem::Smoke(SmokeProblem::TaskWithoutRun), record]);
        assert_eq!(inputs.exit_code(), 2, "{inputs}");
        // Each item keeps its hint.
        assert_eq!(inputs.to_string().lines().count(), 4, "{inputs}");
        assert!(
            inputs
                .to_string()
                .contains("\n    help: add `--smoke METHOD`, or leave them out"),
            "{inputs}"
        );
        // Wrong input beside a dirty tree: still exit 2, and the place is kept.
        let source = "[build]\ndockerfile = \"Dockerfile\"\n".to_string();
        let input = Problem::Plan(crate::plan::PlanError::Input(
            crate::diagnostic::Diagnostic {
                message: "the Dockerfile's step 3 is a heredoc".into(),
                location: Some(Location::new("v6.toml", source, 21..33)),
                help: Some("write the step as one line".into()),
            },
        ));
        let mixed = refused(vec![input, dirty()]);
        assert_eq!(mixed.exit_code(), 2, "{mixed}");
        let shown = mixed.to_string();
        assert!(
            shown.contains("heredoc\n    at v6.toml:2:14\n    help: write the step as one line\n  - the work tree"),
            "{shown}"
        );
    }

    #[test]
    fn a_release_tag_error_is_wrong_input_with_a_hint() {
        let branch = Error::from(ReleaseTagError::NoTag {
            not_a_tag: Some("refs/heads/main".into()),
        });
        assert_eq!(branch.exit_code(), 2);
        assert!(
            branch
                .help()
                .unwrap()
                .contains("`refs/heads/main`, not a tag")
        );
        let none = Error::from(ReleaseTagError::NoMember {
            tag: "gamma-v1.0.0".into(),
            forms: vec!["`alpha-v1.2.3`".into(), "`beta-v1.2.3`".into()],
        });
        assert!(
            none.help()
                .unwrap()
                .contains("`alpha-v1.2.3`, `beta-v1.2.3`")
        );
    }

    #[test]
    fn a_changed_release_from_a_tag_needs_a_new_tag_not_new_metadata() {
        let refused = |retag| {
            let image = crate::oci::reference::ImageName::parse("r.example/a").unwrap();
            Error::Publish(PublishError::Release(ReleaseError::Refused {
                reference: image.with_tag(&crate::oci::reference::Tag::parse("1.1.3").unwrap()),
                digest: crate::oci::reference::Digest::parse(&format!("sha256:{}", "a".repeat(64)))
                    .unwrap(),
                retag,
            }))
        };
        let from_tag = refused(Some(Box::new(crate::release_tag::Retag {
            tag: "1.1.3".into(),
            next: "1.1.4".into(),
        })))
        .help()
        .unwrap();
        assert!(from_tag.contains("`git tag 1.1.4`"), "{from_tag}");
        assert!(from_tag.contains("metadata is not read"), "{from_tag}");
        assert!(!from_tag.contains("bump"), "{from_tag}");
        let from_metadata = refused(None).help().unwrap();
        assert!(
            from_metadata.contains("the project's metadata"),
            "{from_metadata}"
        );
    }

    /// The library says what is wrong with the version; the command adds `--set-version`.
    #[test]
    fn a_version_that_cannot_be_settled_on_names_set_version() {
        use crate::vantage6::Wrapper;
        let reason = crate::version::Version::parse_for("one", Wrapper::Python).unwrap_err();
        let cases = [
            (
                VersionError::InvalidExplicit(reason.clone()),
                format!("invalid `--set-version`: {reason}"),
                None,
            ),
            (
                VersionError::NoReleaseTag {
                    latest: Some("v1.1.3".into()),
                    prefix: "v".into(),
                    next: "v1.1.4".into(),
                },
                "`version-from-tag` is set, but HEAD has no release tag (the latest, `v1.1.3`, is on an earlier commit)".to_string(),
                Some("tag the commit to release (`git tag v1.1.4`), or pass `--set-version` for a build that is not a release"),
            ),
            (
                VersionError::NoReleaseTag {
                    latest: None,
                    prefix: "v".into(),
                    next: "v0.1.0".into(),
                },
                "`version-from-tag` is set, but the repository has no release tag yet (`v` and a version)".to_string(),
                Some("tag the commit to release (`git tag v0.1.0`), or pass `--set-version` for a build that is not a release"),
            ),
            (
                VersionError::NotInMetadata {
                    name: "algo".into(),
                    wrapper: Wrapper::Python,
                },
                "no version found for `algo`: none of its python metadata files has one".to_string(),
                Some("set `version` in v6.toml or pass `--set-version`"),
            ),
            (
                VersionError::InvalidInMetadata {
                    file: "setup.py".into(),
                    source: reason.clone(),
                },
                format!("invalid version in setup.py: {reason}"),
                Some("set `version` in v6.toml or pass `--set-version`"),
            ),
        ];
        for (error, message, help) in cases {
            let plan = PlanError::from(error);
            assert!(!plan.to_string().contains("--"), "{plan}");
            assert!(!plan.help().unwrap_or_default().contains("--"), "{plan}");
            let shown = Error::from(plan);
            assert_eq!(shown.to_string(), message);
            assert_eq!(shown.help().as_deref(), help, "{message}");
            assert_eq!(shown.exit_code(), 2, "{message}");
        }
        let computed = MetadataError::NotLiteral {
            file: "pyproject.toml".into(),
            what: "`version` is listed in `dynamic`".into(),
            location: Some(Location::new(
                "pyproject.toml",
                "dynamic = [\"version\"]",
                11..20,
            )),
        };
        let shown = Error::from(PlanError::from(computed));
        assert_eq!(
            shown.to_string(),
            "the version in pyproject.toml is not a literal (`version` is listed in `dynamic`); set `version` in v6.toml or pass `--set-version`"
        );
        assert_eq!(shown.location().map(Location::line_col), Some((1, 12)));
        assert_eq!((shown.help(), shown.exit_code()), (None, 2));
    }

    /// The engine refuses to send credentials in clear; the command names the flag that does.
    #[test]
    fn credentials_in_clear_name_allow_insecure_engine() {
        let error = EngineError::CredentialsInClear {
            endpoint: "tcp://10.0.0.1:2375 (DOCKER_HOST)".into(),
        };
        let library = error.to_string();
        assert!(!library.contains("--"), "{library}");
        let shown = Error::from(error);
        assert_eq!(
            shown.to_string(),
            format!("{library}, or pass --allow-insecure-engine to send them anyway")
        );
        assert_eq!((shown.exit_code(), shown.help()), (1, None));
    }

    /// Excluding every member: the command names `--exclude`.
    #[test]
    fn nothing_left_after_exclusions_names_exclude() {
        let error = WorkspaceError::NothingSelected;
        assert!(!error.to_string().contains("--"), "{error}");
        let shown = Error::from(error);
        assert_eq!(
            shown.to_string(),
            "no member of the workspace is left after `--exclude`"
        );
        assert_eq!((shown.exit_code(), shown.help()), (2, None));
    }

    /// The release tag's messages speak of the release; the command names `--from-tag` and
    /// `--set-version`.
    #[test]
    fn release_tag_errors_name_the_flags_at_the_top() {
        for (not_a_tag, shown) in [
            (
                Some("refs/heads/main"),
                "`--from-tag` has no tag: none was given, and GITHUB_REF names a branch, not a tag",
            ),
            (
                None,
                "`--from-tag` has no tag: none was given, and no CI tag variable is set",
            ),
        ] {
            let error = ReleaseTagError::NoTag {
                not_a_tag: not_a_tag.map(String::from),
            };
            assert!(!error.to_string().contains("--"), "{error}");
            assert_eq!(Error::from(error).to_string(), shown);
        }
        let mismatch = |origin| ReleaseTagError::VersionMismatch {
            tag: "v1.2.0".into(),
            tagged: "1.2.0".into(),
            name: "algo".into(),
            version: "1.3.0".into(),
            origin,
        };
        let explicit = mismatch(None);
        assert_eq!(
            explicit.to_string(),
            "the release tag `v1.2.0` says 1.2.0, but `algo`'s version is 1.3.0 (given explicitly)"
        );
        assert_eq!(
            Error::from(explicit).to_string(),
            "the release tag `v1.2.0` says 1.2.0, but `algo`'s version is 1.3.0 (from --set-version)"
        );
        for from in [
            "from `version` in v6.toml",
            "from the release tag `v1.3.0` on HEAD",
        ] {
            let error = mismatch(Some(from.to_string()));
            let library = error.to_string();
            assert!(library.ends_with(&format!("({from})")), "{library}");
            let shown = Error::from(error);
            assert_eq!(shown.to_string(), library);
            assert_eq!(shown.exit_code(), 2);
        }
    }

    /// The run says what to change in the request; the command names the flags.
    #[test]
    fn run_hints_are_worded_with_the_flags() {
        let failed = |failure| RunError::Failed {
            method: "partial_sum".into(),
            failure,
            code: 1,
        };
        let wrong_step = failed(crate::run::Failure::WrongStep {
            method: "partial_sum".into(),
            declared: "federated_compute".into(),
            started: "preprocessing".into(),
        });
        assert_eq!(
            run_help(&wrong_step).as_deref(),
            Some("pass --step federated_compute")
        );
        let too_few = failed(crate::run::Failure::NotEnoughData {
            message: "takes 2 databases".into(),
        });
        assert_eq!(
            run_help(&too_few).as_deref(),
            Some("give each database the function takes with --data LABEL=PATH[:TYPE]")
        );
        let unreadable = failed(crate::run::Failure::DataUnreadable {
            label: None,
            error: "not a csv".into(),
        });
        assert_eq!(
            run_help(&unreadable).as_deref(),
            Some("check the file and its type (--data LABEL=PATH:TYPE; csv is the default)")
        );
        let timed_out = RunError::TimedOut {
            method: "partial_sum".into(),
            after: std::time::Duration::from_secs(5),
        };
        assert_eq!(
            run_help(&timed_out).as_deref(),
            Some(
                "if its log shows it still working, a longer --timeout (or none) lets it finish; a function waiting for what a local run cannot give (the server, the network: the container has none) never will"
            )
        );
        // Through publish, a failed smoke run keeps the hint.
        let smoke = Error::from(PublishError::Smoke {
            method: "partial_sum".into(),
            source: Box::new(timed_out),
        });
        assert!(smoke.help().unwrap().contains("a longer --timeout"));
        let input = RunError::Input {
            message: "wrong".into(),
            help: Some("write it right".into()),
        };
        assert_eq!(run_help(&input).as_deref(), Some("write it right"));
    }
}
