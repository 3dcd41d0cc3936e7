//! Preflight: every reason not to publish, found before anything is written, and reported
//! together as typed [`Problem`]s.
//!
//! Two rounds. The publish as a whole ([`publish`]): the smoke run asked for and the record of
//! releases; a problem there stops every algorithm. Then each algorithm, in
//! [`super::publish`]: its release tag, work tree, `[store]` section and signing key (local
//! reads), the registry (its credentials, its tags, the plan made from them, the exact version
//! tag's state) and the engine when a build is decided (reachable, and not handed credentials
//! in clear text). Each round gathers what it finds into one [`Problems`], so that fixing one problem
//! does not just reveal the next.
//!
//! The messages speak of the manifest and the project, never of command-line flags: the
//! caller (the CLI) names the flag that overrides a problem where there is one.

use std::path::{Path, PathBuf};

use crate::credentials::CredentialsError;
use crate::engine::EngineError;
use crate::git::GitInfo;
use crate::manifest::Manifest;
use crate::plan::{Inputs, PlanError};
use crate::record::RecordError;
use crate::registry::RegistryError;
use crate::release_tag::ReleaseTagError;
use crate::run::{RunError, RunRequest};
use crate::store::StoreError;
use crate::vantage6::Wrapper;
use crate::version::Version;

use super::decide::ReleaseError;

/// One reason not to publish. Nothing was built or pushed when one is reported.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The work tree has uncommitted changes, and they are not allowed.
    #[error("{}; commit them, or allow uncommitted changes", uncommitted(.files))]
    Dirty {
        /// The changed files, as git lists them.
        files: Vec<String>,
    },
    /// HEAD carries release tags, none of this version.
    #[error(
        "HEAD is tagged {} but the version is {version}; set the version to match the tag, or tag the release {prefix}{version}",
        quoted(.tags)
    )]
    TaggedOtherVersion {
        /// The release tags on HEAD.
        tags: Vec<String>,
        /// The version published.
        version: String,
        /// The algorithm's `release-tag-prefix`.
        prefix: String,
    },
    /// The release tag published (CI's, or given) is not on HEAD, or names another version.
    #[error(transparent)]
    ReleaseTag(ReleaseTagError),
    /// The smoke run cannot be made as asked.
    #[error(transparent)]
    Smoke(SmokeProblem),
    /// The record of releases cannot be read: it could not be updated after the push.
    #[error(transparent)]
    Record(RecordError),
    /// `[store]` is not what the algorithm store accepts.
    #[error(transparent)]
    Store(StoreError),
    /// The signing key is one of the files the build sees: `COPY . /app` would put it into
    /// the image.
    #[error(
        "the signing key `{}` is in the build context (as `{file}`): the image would carry it",
        crate::diagnostic::display(.key)
    )]
    KeyInContext {
        /// The key's path.
        key: PathBuf,
        /// Its path in the context.
        file: String,
    },
    /// The registry's credentials cannot be resolved.
    #[error(transparent)]
    Credentials(CredentialsError),
    /// The registry cannot be read (its tags, the exact version tag's state).
    #[error(transparent)]
    Registry(RegistryError),
    /// No plan can be made from the project and the registry's tags (a context file that
    /// cannot be sent, a template, a version).
    #[error(transparent)]
    Plan(PlanError),
    /// The exact version tag holds another image.
    #[error(transparent)]
    Refused(ReleaseError),
    /// The build needs the engine, and it cannot be reached.
    #[error(transparent)]
    Engine(EngineError),
    /// The push would hand the registry credentials to an engine reached over plain TCP
    /// off this machine.
    #[error(
        "refusing to send the registry credentials to the Docker engine at {endpoint}: it is reached over plain TCP at an address that is not a loopback IP address, so they could cross the network in clear text; use TLS, ssh://, a unix socket or tcp://127.0.0.1"
    )]
    CredentialsInClear {
        /// The engine's address, with where it came from.
        endpoint: String,
    },
    /// The image is assembled (`[build] platforms`), and uv cannot be run.
    #[error("`[build] platforms` assembles the image with uv, and {0}")]
    NoUv(String),
}

impl Problem {
    /// Whether this problem is about the work tree (it is reported in a list even alone).
    pub fn is_work_tree(&self) -> bool {
        matches!(
            self,
            Problem::Dirty { .. } | Problem::TaggedOtherVersion { .. }
        )
    }
}

/// Why the smoke run cannot be made as asked.
#[derive(Debug, thiserror::Error)]
pub enum SmokeProblem {
    /// A smoke run tests one image, and several algorithms are selected.
    #[error("the smoke run tests one algorithm, and several are selected")]
    SeveralSelected,
    /// The smoke run's task is described, but no smoke run is asked for.
    #[error("the smoke run's task is described, but no smoke run is asked for")]
    TaskWithoutRun,
    /// The task cannot be run as described.
    #[error(transparent)]
    Request(RunError),
}

/// Every problem one round of preflight found; never empty.
#[derive(Debug)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// The one problem, when it is shown as itself; else every problem, for a list (a
    /// work-tree problem is listed even alone).
    pub fn into_single(mut self) -> Result<Problem, Vec<Problem>> {
        match self.0.len() == 1 && !self.0[0].is_work_tree() {
            true => Ok(self.0.remove(0)),
            false => Err(self.0),
        }
    }
}

impl std::error::Error for Problems {}

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0[..] {
            [one] if !one.is_work_tree() => write!(f, "{one}"),
            all => {
                write!(f, "cannot publish:")?;
                for problem in all {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

/// Collects a round's problems; the work tree's come last.
#[derive(Debug, Default)]
pub struct Found {
    problems: Vec<Problem>,
    work_tree: Vec<Problem>,
}

impl Found {
    /// Adds `problem`.
    pub fn push(&mut self, problem: impl Into<Problem>) {
        self.problems.push(problem.into());
    }

    /// Adds the error of `result`, if any, and passes its value on.
    pub fn take<T, E: Into<Problem>>(&mut self, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// Adds each of `problems`.
    pub fn extend(&mut self, problems: impl IntoIterator<Item = Problem>) {
        self.problems.extend(problems);
    }

    /// Whether something besides the work tree's state was found.
    pub fn beyond_work_tree(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty() && self.work_tree.is_empty()
    }

    /// What was found, for a caller that found something.
    pub fn into_problems(mut self) -> Problems {
        self.problems.append(&mut self.work_tree);
        Problems(self.problems)
    }

    /// `Ok` when nothing was found, else every problem.
    pub fn into_result(self) -> Result<(), Problems> {
        match self.is_empty() {
            true => Ok(()),
            false => Err(self.into_problems()),
        }
    }
}

impl From<ReleaseTagError> for Problem {
    fn from(error: ReleaseTagError) -> Self {
        Problem::ReleaseTag(error)
    }
}

impl From<SmokeProblem> for Problem {
    fn from(problem: SmokeProblem) -> Self {
        Problem::Smoke(problem)
    }
}

impl From<RecordError> for Problem {
    fn from(error: RecordError) -> Self {
        Problem::Record(error)
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        Problem::Store(error)
    }
}

impl From<RegistryError> for Problem {
    fn from(error: RegistryError) -> Self {
        Problem::Registry(error)
    }
}

impl From<PlanError> for Problem {
    fn from(error: PlanError) -> Self {
        Problem::Plan(error)
    }
}

impl From<ReleaseError> for Problem {
    fn from(error: ReleaseError) -> Self {
        Problem::Refused(error)
    }
}

impl From<EngineError> for Problem {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::CredentialsInClear { endpoint } => {
                Problem::CredentialsInClear { endpoint }
            }
            other => Problem::Engine(other),
        }
    }
}

/// What was asked of the publish as a whole.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// How many algorithms are selected.
    pub selected: usize,
    /// Whether a smoke run is asked for.
    pub smoke: bool,
    /// Its task, when one algorithm is selected and its task could be read.
    pub request: Option<&'a RunRequest>,
    /// Whether any of the smoke run's task options is given.
    pub task_given: bool,
    /// The record of releases the publish updates.
    pub record: &'a Path,
}

/// The first round: the problems of the publish as a whole, before any algorithm's.
pub fn publish(asked: &Asked<'_>) -> Result<(), Problems> {
    let mut found = Found::default();
    match (asked.smoke, asked.request) {
        (true, _) if asked.selected > 1 => found.push(SmokeProblem::SeveralSelected),
        (false, _) if asked.task_given => found.push(SmokeProblem::TaskWithoutRun),
        (_, Some(request)) => {
            found.take(crate::run::check(request).map_err(SmokeProblem::Request));
        }
        _ => {}
    }
    // The record is read before anything is pushed: a broken one is found now, not after.
    found.take(crate::record::Record::load(asked.record));
    found.into_result()
}

/// The second round's first part, for one algorithm: what the project shows before the
/// registry is asked. The release tag given (`release_tag`), the `[store]` section, the
/// signing key (`key`) among the files the build sees, and the work tree (uncommitted changes
/// unless `allow_dirty`; HEAD's release tags against the version, unless a release tag is
/// given: its own check compares it with the version, and HEAD's other tags are not this
/// release's).
pub fn project(
    manifest: &Manifest,
    inputs: &Inputs,
    release_tag: Option<&str>,
    key: Option<&Path>,
    allow_dirty: bool,
) -> Found {
    let mut found = Found::default();
    if let Some(tag) = release_tag {
        found.take(crate::release_tag::check(manifest, inputs, tag));
    }
    // A bad [store] is found before anything is pushed, not when its file is written after.
    found.take(crate::store::check(manifest));
    if let Some(key) = key {
        found.extend(key_in_context(
            key,
            &inputs.context_dir,
            &inputs.context_files,
        ));
    }
    found.work_tree = work_tree(
        inputs.git.as_ref(),
        &inputs.version.0,
        manifest.wrapper,
        &manifest.publish.release_tag_prefix,
        allow_dirty,
    );
    if release_tag.is_some() {
        found
            .work_tree
            .retain(|problem| !matches!(problem, Problem::TaggedOtherVersion { .. }));
    }
    found
}

/// The work tree's problems: uncommitted changes (unless `allow_dirty`), and release tags on
/// HEAD that name another version.
pub fn work_tree(
    git: Option<&GitInfo>,
    version: &Version,
    wrapper: Wrapper,
    tag_prefix: &str,
    allow_dirty: bool,
) -> Vec<Problem> {
    let Some(git) = git else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    if !allow_dirty && !git.dirty.is_empty() {
        problems.push(Problem::Dirty {
            files: git.dirty.clone(),
        });
    }
    // Release tags are the prefix and a version; `v6-migration` is not one.
    let release_tags = crate::plan::inputs::release_tags(Some(git), tag_prefix, wrapper);
    if !release_tags.is_empty() && !release_tags.iter().any(|(_, v)| v == version) {
        problems.push(Problem::TaggedOtherVersion {
            tags: release_tags.into_iter().map(|(t, _)| t).collect(),
            version: version.raw().to_string(),
            prefix: tag_prefix.to_string(),
        });
    }
    problems
}

/// "the work tree has uncommitted changes (a, b, ... and N more)": the first five files.
pub fn uncommitted(files: &[String]) -> String {
    let shown: Vec<&str> = files.iter().take(5).map(String::as_str).collect();
    let more = files.len().saturating_sub(shown.len());
    format!(
        "the work tree has uncommitted changes ({}{})",
        shown.join(", "),
        match more {
            0 => String::new(),
            more => format!(" and {more} more"),
        }
    )
}

fn quoted(tags: &[String]) -> String {
    let quoted: Vec<String> = tags.iter().map(|t| format!("`{t}`")).collect();
    quoted.join(", ")
}

/// The signing key `key`, when the build sees it (`context_files` of `context_dir`): the
/// problem that `COPY . /app` would put the (encrypted) private key into the image.
pub fn key_in_context(key: &Path, context_dir: &Path, context_files: &[String]) -> Option<Problem> {
    let canonical = std::fs::canonicalize(key).ok()?;
    let context = std::fs::canonicalize(context_dir).ok()?;
    let relative = canonical.strip_prefix(&context).ok()?;
    let relative: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let file = relative.join("/");
    context_files
        .contains(&file)
        .then(|| Problem::KeyInContext {
            key: key.to_path_buf(),
            file,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::Scheme;

    fn git(dirty: &[&str], head_tags: &[&str]) -> GitInfo {
        GitInfo {
            dirty: dirty.iter().map(|s| s.to_string()).collect(),
            head_tags: head_tags.iter().map(|s| s.to_string()).collect(),
            ..GitInfo::default()
        }
    }

    fn version() -> Version {
        Version::parse("1.2.0", Scheme::Semver).unwrap()
    }

    #[test]
    fn work_tree_checks_report_every_problem() {
        let v = version();
        assert!(work_tree(None, &v, Wrapper::Minimal, "v", false).is_empty());
        let tagged = git(&[], &["v1.2.0"]);
        assert!(work_tree(Some(&tagged), &v, Wrapper::Minimal, "v", false).is_empty());
        let dirty = git(&["a"], &[]);
        assert!(work_tree(Some(&dirty), &v, Wrapper::Minimal, "v", true).is_empty());
        let both = git(&["a.py"], &["v1.3.0", "other"]);
        let problems = work_tree(Some(&both), &v, Wrapper::Minimal, "v", false);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            matches!(&problems[0], Problem::Dirty { files } if files == &["a.py"]),
            "{problems:?}"
        );
        assert_eq!(
            problems[1].to_string(),
            "HEAD is tagged `v1.3.0` but the version is 1.2.0; set the version to match the tag, or tag the release v1.2.0"
        );
        // A tag that is not a release tag (no digit after the prefix) is not checked.
        let other = git(&[], &["vnext", "v6-migration"]);
        assert!(work_tree(Some(&other), &v, Wrapper::Minimal, "v", false).is_empty());
    }

    #[test]
    fn library_messages_name_no_flags() {
        let files: Vec<String> = (1..=7).map(|i| format!("f{i}")).collect();
        let dirty = Problem::Dirty { files };
        assert_eq!(
            dirty.to_string(),
            "the work tree has uncommitted changes (f1, f2, f3, f4, f5 and 2 more); commit them, or allow uncommitted changes"
        );
        let clear = Problem::from(EngineError::CredentialsInClear {
            endpoint: "tcp://10.0.0.1:2375 (DOCKER_HOST)".into(),
        });
        assert!(matches!(clear, Problem::CredentialsInClear { .. }));
        let smoke = Problem::from(SmokeProblem::SeveralSelected);
        for problem in [dirty, clear, smoke] {
            assert!(!problem.to_string().contains("--"), "{problem}");
        }
    }

    #[test]
    fn several_problems_are_reported_together_and_one_as_itself() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("v6.lock");
        std::fs::write(&record, "not = [toml").unwrap();
        let asked = Asked {
            selected: 2,
            smoke: true,
            request: None,
            task_given: false,
            record: &record,
        };
        let shown = publish(&asked).unwrap_err().to_string();
        assert!(shown.starts_with("cannot publish:\n  - the smoke run tests one algorithm"));
        assert_eq!(shown.lines().count(), 3, "{shown}");
        let all = publish(&asked).unwrap_err().into_single().unwrap_err();
        assert!(
            matches!(
                all[..],
                [
                    Problem::Smoke(SmokeProblem::SeveralSelected),
                    Problem::Record(RecordError::Invalid { .. })
                ]
            ),
            "{all:?}"
        );

        // Alone, a problem is shown as itself; a work-tree problem still as a list.
        std::fs::remove_file(&record).unwrap();
        let task_only = Asked {
            selected: 1,
            smoke: false,
            task_given: true,
            ..asked
        };
        let one = publish(&task_only).unwrap_err();
        assert_eq!(
            one.to_string(),
            "the smoke run's task is described, but no smoke run is asked for"
        );
        let clean = Asked {
            task_given: false,
            ..task_only
        };
        assert!(publish(&clean).is_ok());
        let mut found = Found::default();
        found.push(Problem::Dirty {
            files: vec!["a".into()],
        });
        let tree = found.into_result().unwrap_err().to_string();
        assert!(
            tree.starts_with("cannot publish:\n  - the work tree"),
            "{tree}"
        );
    }

    #[test]
    fn the_project_shows_every_problem_at_once_and_the_work_tree_last() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("cosign.key");
        std::fs::write(&key, "key").unwrap();
        let text = "[algorithm]\nname = \"a\"\nwrapper = \"python\"\nvantage6 = \"4.15\"\nimage = \"r.example/a\"\nversion = \"1.2.0\"\n[publish]\nrelease-tag-prefix = \"v\"\n";
        let manifest = Manifest::parse(&dir.path().join("v6.toml"), text.to_string()).unwrap();
        let inputs = Inputs {
            version: (
                Version::parse_for("1.2.0", Wrapper::Python).unwrap(),
                crate::plan::VersionSource::Manifest,
            ),
            git: Some(git(&["a.py"], &["v1.3.0"])),
            context_dir: dir.path().to_path_buf(),
            context_files: vec!["cosign.key".into(), "v6.toml".into()],
            file_digests: Vec::new(),
            unused_dockerfile: None,
        };
        let found = project(&manifest, &inputs, None, Some(&key), false);
        let all = found.into_problems().into_single().unwrap_err();
        assert!(
            matches!(
                all[..],
                [
                    Problem::KeyInContext { .. },
                    Problem::Dirty { .. },
                    Problem::TaggedOtherVersion { .. }
                ]
            ),
            "{all:?}"
        );
        // A release tag given is checked instead of HEAD's other tags; a problem found
        // later (the registry's) still comes before the work tree's.
        let mut found = project(&manifest, &inputs, Some("v1.2.0"), None, false);
        found.push(RegistryError::Unreachable {
            registry: "r.example".into(),
            reason: "refused".into(),
        });
        let all = found.into_problems().into_single().unwrap_err();
        assert!(
            matches!(
                all[..],
                [
                    Problem::ReleaseTag(ReleaseTagError::NotOnHead { .. }),
                    Problem::Registry(_),
                    Problem::Dirty { .. }
                ]
            ),
            "{all:?}"
        );
    }

    #[test]
    fn a_key_the_build_sees_is_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        let key = dir.path().join("keys/cosign.key");
        std::fs::write(&key, "key").unwrap();
        let files = vec!["keys/cosign.key".to_string()];
        let found = key_in_context(&key, dir.path(), &files).unwrap();
        assert!(
            matches!(&found, Problem::KeyInContext { file, .. } if file == "keys/cosign.key"),
            "{found:?}"
        );
        // Excluded from the context (.dockerignore): the build does not see it.
        assert!(key_in_context(&key, dir.path(), &[]).is_none());
        // Outside the context.
        let outside = tempfile::tempdir().unwrap();
        assert!(key_in_context(&key, outside.path(), &files).is_none());
    }
}
