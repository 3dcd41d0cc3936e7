//! Release workflows for CI: the GitHub Actions workflow and the GitLab CI job that run
//! `cargo v6 publish --from-tag` when a release tag is pushed (`cargo v6 ci github|gitlab`).
//!
//! Pure: [`render`] turns the members to release (one algorithm, or the selected members of a
//! workspace, each a [`Member`]) and where the job gets cargo-v6 ([`Install`]) into the file's
//! text, from the templates under `cargo-v6/templates/ci/`, rendered in strict mode by
//! [`crate::render::render_text`]. The caller writes it. [`warnings`] says what would keep
//! the file from working (a registry no runner reaches, another workflow on the same tags).
//!
//! Invariants:
//! - Every value from v6.toml or the command line passes [`check_value`] before it is
//!   written, in both generators: one line of YAML-printable characters, no GitHub expression
//!   (`${{`) in a GitHub file, and for a path kept as an artifact no glob or variable syntax.
//!   It then reaches the YAML only through [`yaml_string`] (a double-quoted scalar), through
//!   [`shell_quote`] on a line of its own in a `run:`/`script:` block, or in a comment: a
//!   value can neither end a string, start a YAML node or a second job, nor run a command.
//! - A trigger accepts exactly the tags `{prefix}MAJOR.MINOR...` of the members' prefixes:
//!   [`github_tag_pattern`] escapes GitHub's glob characters, [`gitlab_tag_regex`] the regex
//!   characters and the `/` that would end GitLab's regex literal.
//! - The job installs cargo-v6 from a git repository at an exact commit ([`Install`]), never
//!   by name from a package registry, and caches the binary under that commit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use serde::Serialize;

use crate::manifest::Manifest;
use crate::render::RenderError;

mod syntax;
mod triggers;

use syntax::yaml_printable;
pub use syntax::{github_tag_pattern, gitlab_tag_regex, shell_quote, yaml_string};
use triggers::workflow_fires_on_tag;

/// The registry GitHub's `GITHUB_TOKEN` can push to.
pub const GHCR: &str = "ghcr.io";

/// The secret (GitHub) or CI/CD variable (GitLab) holding the signing key's text.
pub const KEY_SECRET: &str = "COSIGN_PRIVATE_KEY";

/// Where each provider reads its CI configuration, relative to the repository's root.
pub const GITHUB_PATH: &str = ".github/workflows/v6-publish.yml";
/// See [`GITHUB_PATH`].
pub const GITLAB_PATH: &str = ".gitlab-ci.yml";

const GITHUB_TEMPLATE: (&str, &str) = (
    "ci/github.yml.hbs",
    include_str!("../../templates/ci/github.yml.hbs"),
);
const GITLAB_TEMPLATE: (&str, &str) = (
    "ci/gitlab.yml.hbs",
    include_str!("../../templates/ci/gitlab.yml.hbs"),
);

/// The CI service a file is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// GitHub Actions: a workflow under `.github/workflows/`.
    GitHub,
    /// GitLab CI: a job in `.gitlab-ci.yml`.
    GitLab,
}

impl Provider {
    /// The file's path relative to the project root, where the provider looks for it.
    pub fn default_path(self) -> &'static str {
        match self {
            Provider::GitHub => GITHUB_PATH,
            Provider::GitLab => GITLAB_PATH,
        }
    }
}

/// One algorithm the generated job may publish: what the file needs to know of its manifest.
/// A workspace passes one per selected member; [`Member::from_manifest`] builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The algorithm's name (PKG_NAME), for comments and the next steps.
    pub name: String,
    /// Its release tags are `{release_tag_prefix}{version}`.
    pub release_tag_prefix: String,
    /// The registry its image is pushed to (`ghcr.io`, `registry.gitlab.com`), which decides
    /// how the job logs in.
    pub registry: String,
    /// The image repository, for comments.
    pub image: String,
    /// `sign.key`, relative to the project root (`/`-separated): the job writes the key there.
    pub sign_key: Option<String>,
    /// `store.output`, relative to the project root: publish writes it, the job keeps it.
    pub store_output: Option<String>,
    /// `[store] submit`: publish submits the release to the store, with the account the job
    /// is given (V6_SERVER_USERNAME, V6_SERVER_PASSWORD).
    pub submits: bool,
}

/// A CI file could not be made from the members.
#[derive(Debug, thiserror::Error)]
pub enum CiError {
    /// Nothing to publish.
    #[error("no algorithm to publish: the CI file needs at least one")]
    NoMembers,
    /// `sign.key` is not valid UTF-8, so it cannot be written into YAML.
    #[error("`sign.key` of `{name}` is not valid UTF-8: {}", path.display())]
    NonUtf8Path {
        /// The member.
        name: String,
        /// The key's path.
        path: std::path::PathBuf,
    },
    /// A value GitHub would evaluate as an expression.
    #[error(
        "`{key}` of `{name}` contains `${{{{`, which GitHub evaluates as an expression: `{value}`"
    )]
    Expression {
        /// The member.
        name: String,
        /// Which setting (`release-tag-prefix`, `sign.key`).
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// A value that cannot be written into the file as itself.
    #[error("`{key}` of `{name}` cannot be written into the CI file: {reason}: {}", value.escape_debug())]
    Unwritable {
        /// The member (or `cargo v6 ci` for an option).
        name: String,
        /// Which setting.
        key: &'static str,
        /// Its value.
        value: String,
        /// What it holds that the file cannot.
        reason: &'static str,
    },
    /// Where the job installs cargo-v6 from is unknown or not a pinned source.
    #[error("{message}")]
    Install {
        /// What is wrong.
        message: String,
    },
    /// The template failed to render.
    #[error(transparent)]
    Render(#[from] RenderError),
}

impl CiError {
    /// 2 when v6.toml or the arguments hold what cannot go into the file (the user's input),
    /// else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            CiError::NonUtf8Path { .. }
            | CiError::Expression { .. }
            | CiError::Unwritable { .. }
            | CiError::Install { .. } => 2,
            CiError::NoMembers | CiError::Render(_) => 1,
        }
    }

    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        match self {
            CiError::Expression { key, .. } => Some(format!(
                "change `{key}` in v6.toml: GitHub would replace the `${{{{ ... }}}}` with a value of its own"
            )),
            CiError::Unwritable { key, .. } => Some(format!(
                "change `{key}`: a CI file takes it only as a single line of printable characters (paths without `*?[]{{}}$\\` and not starting with `!` or `#`)"
            )),
            CiError::Install { .. } => Some(format!(
                "pass the repository and the exact commit to install: `--install-git {EXAMPLE_GIT} --install-rev <40-hex commit>`"
            )),
            _ => None,
        }
    }
}

/// Where the generated job installs cargo-v6 from: a git repository at an exact commit
/// (`cargo install --git URL --rev SHA --locked cargo-v6`). Never by name from crates.io:
/// the crate is not published there, and whoever took the name would run code in a job that
/// holds the registry's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    git: String,
    rev: String,
}

/// An example repository URL for messages.
const EXAMPLE_GIT: &str = "https://github.com/OWNER/cargo-v6";

impl Install {
    /// The source from the options, each falling back to what this binary was built from
    /// (recorded by build.rs: the commit, and the repository when it is a network URL).
    pub fn from_options(git: Option<&str>, rev: Option<&str>) -> Result<Self, CiError> {
        let git = git.or(option_env!("CARGO_V6_SOURCE_GIT")).ok_or_else(|| CiError::Install {
            message: "this cargo-v6 does not know the repository it was built from: the CI job must be told where to install cargo-v6 from".to_string(),
        })?;
        let rev = rev.or(option_env!("CARGO_V6_SOURCE_REV")).ok_or_else(|| CiError::Install {
            message: "this cargo-v6 does not know the commit it was built from: the CI job must be told which commit of cargo-v6 to install".to_string(),
        })?;
        Self::new(git, rev)
    }

    /// Checks `git` (an `https://`, `ssh://`, `user@host:path` or `file://` URL, without a
    /// password) and `rev` (a full commit id: a branch or tag could move under the job).
    pub fn new(git: &str, rev: &str) -> Result<Self, CiError> {
        let refuse = |message: String| Err(CiError::Install { message });
        let scheme_ok = ["https://", "ssh://", "file://"]
            .iter()
            .any(|s| git.starts_with(s))
            || scp_like(git);
        if !scheme_ok {
            return refuse(format!(
                "`--install-git {}` is not an https://, ssh://, user@host:path or file:// URL (plain http:// and git:// are not authenticated, and the job runs what they serve with the registry's credentials)",
                git.escape_debug()
            ));
        }
        if git.len() > 2048
            || git.starts_with('-')
            || git
                .chars()
                .any(|c| !c.is_ascii_graphic() || "'\"\\`$".contains(c))
        {
            return refuse(format!(
                "`--install-git {}` must be one URL of printable ASCII without quotes, `\\`, `` ` `` or `$`",
                git.escape_debug()
            ));
        }
        // The authority of a URL with a scheme: a host to reach, and no password (https: no
        // user name either), since the file is committed.
        for scheme in ["https://", "ssh://"] {
            let Some(rest) = git.strip_prefix(scheme) else {
                continue;
            };
            let authority = rest.split('/').next().unwrap_or_default();
            let (user, host) = authority.rsplit_once('@').unwrap_or(("", authority));
            if user.contains(':') || (scheme == "https://" && authority.contains('@')) {
                return refuse(
                    "`--install-git` holds a user name or password: the CI file is committed, so write the URL without them (a private repository needs the runner's own git credentials)".to_string(),
                );
            }
            if host.is_empty() || host.starts_with(':') {
                return refuse(format!("`--install-git {git}` names no host to clone from"));
            }
        }
        let full = matches!(rev.len(), 40 | 64) && rev.chars().all(|c| c.is_ascii_hexdigit());
        if !full {
            return refuse(format!(
                "`--install-rev {}` is not a full commit id (40 hexadecimal digits; 64 for a SHA-256 repository): a branch, tag or short id could name other code later",
                rev.escape_debug()
            ));
        }
        Ok(Install {
            git: git.to_string(),
            rev: rev.to_ascii_lowercase(),
        })
    }

    /// The repository URL.
    pub fn git(&self) -> &str {
        &self.git
    }

    /// The commit.
    pub fn rev(&self) -> &str {
        &self.rev
    }

    /// The install command, its values shell-quoted; `root` (a shell word, written as it is)
    /// installs under that directory.
    fn command(&self, root: Option<&str>) -> String {
        let root = root.map_or_else(String::new, |r| format!(" --root {r}"));
        format!(
            "cargo install --locked --git {} --rev {}{root} cargo-v6",
            shell_quote(&self.git),
            shell_quote(&self.rev)
        )
    }
}

/// `user@host:path`, git's scp-like ssh syntax.
fn scp_like(git: &str) -> bool {
    match git.split_once(':') {
        Some((user_host, path)) => {
            user_host.contains('@') && !user_host.contains('/') && !path.starts_with("//")
        }
        None => false,
    }
}

impl Member {
    /// The member for `manifest`, whose project root (where the CI job runs and the file is
    /// written) is `root`, as the user would type it: the key path is made relative to it.
    pub fn from_manifest(manifest: &Manifest, root: &Path) -> Result<Self, CiError> {
        let sign_key = manifest
            .sign
            .key
            .as_ref()
            .map(|key| {
                let relative = relative_to(key, root);
                // Runners run a POSIX shell: Windows separators become `/`.
                relative
                    .to_str()
                    .map(|text| {
                        if cfg!(windows) {
                            text.replace('\\', "/")
                        } else {
                            text.to_string()
                        }
                    })
                    .ok_or_else(|| CiError::NonUtf8Path {
                        name: manifest.name.clone(),
                        path: key.clone(),
                    })
            })
            .transpose()?;
        let store_output = crate::store::output(manifest)
            .map(|path| {
                let relative = relative_to(&path, root);
                relative
                    .to_str()
                    .map(|text| text.replace('\\', "/"))
                    .ok_or_else(|| CiError::NonUtf8Path {
                        name: manifest.name.clone(),
                        path,
                    })
            })
            .transpose()?;
        Ok(Member {
            name: manifest.name.clone(),
            release_tag_prefix: manifest.publish.release_tag_prefix.clone(),
            registry: manifest.image.domain().to_string(),
            image: manifest.image.to_string(),
            sign_key,
            store_output,
            submits: crate::store::submit_target(manifest, false).is_some(),
        })
    }
}

/// `path` relative to `root`, both as the user would type them (relative to the same current
/// directory, or both absolute); `path` itself when it is absolute and `root` is not.
fn relative_to(path: &Path, root: &Path) -> std::path::PathBuf {
    if let Ok(rest) = path.strip_prefix(root) {
        return normalize(rest);
    }
    if path.is_absolute() != root.is_absolute() {
        return normalize(path);
    }
    // Climb out of `root` (`..` per normal component) then descend into `path`.
    let mut up = std::path::PathBuf::new();
    for component in normalize(root).components() {
        match component {
            Component::Normal(_) => up.push(".."),
            _ => return normalize(path),
        }
    }
    normalize(&up.join(path))
}

/// Drops `.` components and folds `name/..`, lexically (the key may not exist yet).
fn normalize(path: &Path) -> std::path::PathBuf {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.iter().collect()
}

/// What the GitHub template renders from; every string is already quoted for where it goes.
#[derive(Debug, Serialize)]
struct GitHubData {
    version: String,
    comments: Vec<String>,
    tag_patterns: Vec<String>,
    ghcr: bool,
    mixed_registries: bool,
    sign_keys: Vec<String>,
    /// An algorithm submits to the store: the job gets the server account's secrets.
    submits: bool,
    /// ` --manifest-path 'DIR/v6.toml'` for publish, shell-quoted, when v6.toml is below the
    /// repository's top; else empty.
    manifest_path: String,
    /// The install step's command, as a YAML string.
    install: String,
    /// The cache key of the installed binary, as a YAML string.
    cache_key: String,
    /// The files the job keeps as an artifact: one YAML string, a path per line.
    kept: String,
}

/// What the GitLab template renders from; every string is already quoted for where it goes.
#[derive(Debug, Serialize)]
struct GitLabData {
    version: String,
    comments: Vec<String>,
    rule: String,
    /// The one registry all members push to, as a YAML string: the job uses GitLab's own
    /// credentials when it is `$CI_REGISTRY`.
    registry: Option<String>,
    mixed_registries: bool,
    sign_keys: Vec<String>,
    /// See [`GitHubData::manifest_path`].
    manifest_path: String,
    /// The install command (a line of the script), into `$tools` (outside the project).
    install: String,
    /// The cache key of the installed binary, as a YAML string.
    cache_key: String,
    /// The files the job keeps as an artifact (YAML strings).
    kept: Vec<String>,
}

/// The text of `provider`'s CI file for `members`, installing cargo-v6 from `install`;
/// `version` (this binary's) is named in the file's header. `dir` is the directory of the
/// (root) v6.toml below the repository's top, where the job runs (`/`-separated, empty at the
/// top): publish is pointed at it, and the members' paths are placed under it.
pub fn render(
    provider: Provider,
    members: &[Member],
    install: &Install,
    version: &str,
    dir: &str,
) -> Result<String, CiError> {
    if members.is_empty() {
        return Err(CiError::NoMembers);
    }
    let members: Vec<Member> = members.iter().map(|m| m.under(dir)).collect();
    let members = members.as_slice();
    for member in members {
        member.check(provider)?;
    }
    let (manifest_path, record) = match dir {
        "" => (String::new(), crate::record::FILE_NAME.to_string()),
        dir => {
            let name = &members[0].name;
            check_value(provider, name, "the directory of v6.toml", dir)?;
            check_artifact_path(name, "the directory of v6.toml", dir)?;
            (
                format!(
                    " --manifest-path {}",
                    shell_quote(&format!("{dir}/{}", crate::manifest::FILE_NAME))
                ),
                format!("{dir}/{}", crate::record::FILE_NAME),
            )
        }
    };
    let comments = members
        .iter()
        .map(|m| {
            format!(
                "`{}`: tags `{}1.2.3` publish {}",
                m.name, m.release_tag_prefix, m.image
            )
        })
        .collect();
    let registries: BTreeSet<&str> = members.iter().map(|m| m.registry.as_str()).collect();
    let sign_keys: Vec<String> = members
        .iter()
        .filter_map(|m| m.sign_key.as_deref())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(shell_quote)
        .collect();
    // What publish writes and the job keeps: the record of releases, and the store's files.
    let kept: BTreeSet<&str> = std::iter::once(record.as_str())
        .chain(members.iter().filter_map(|m| m.store_output.as_deref()))
        .collect();
    match provider {
        Provider::GitHub => {
            let data = GitHubData {
                version: version.to_string(),
                comments,
                tag_patterns: prefixes(members)
                    .into_iter()
                    .map(|p| yaml_string(&github_tag_pattern(p)))
                    .collect(),
                ghcr: registries.iter().all(|r| *r == GHCR),
                mixed_registries: registries.len() > 1,
                sign_keys,
                submits: members.iter().any(|m| m.submits),
                manifest_path,
                install: yaml_string(&install.command(None)),
                cache_key: yaml_string(&format!(
                    "cargo-v6-${{{{ runner.os }}}}-${{{{ runner.arch }}}}-{}",
                    install.rev()
                )),
                kept: yaml_string(&kept.into_iter().collect::<Vec<_>>().join("\n")),
            };
            let (name, text) = GITHUB_TEMPLATE;
            Ok(crate::render::render_text(name, text, &data)?)
        }
        Provider::GitLab => {
            let data = GitLabData {
                version: version.to_string(),
                comments,
                rule: yaml_string(&format!(
                    "$CI_COMMIT_TAG =~ /{}/",
                    gitlab_tag_regex(&prefixes(members))
                )),
                registry: match registries.len() {
                    1 => registries.first().map(|r| yaml_string(r)),
                    _ => None,
                },
                mixed_registries: registries.len() > 1,
                sign_keys,
                manifest_path,
                install: install.command(Some("\"$tools\"")),
                cache_key: yaml_string(&format!("cargo-v6-{}", install.rev())),
                kept: kept.into_iter().map(yaml_string).collect(),
            };
            let (name, text) = GITLAB_TEMPLATE;
            Ok(crate::render::render_text(name, text, &data)?)
        }
    }
}

impl Member {
    /// The member with its relative paths placed under `dir` (the project's directory below
    /// the repository's top, where the job runs).
    fn under(&self, dir: &str) -> Member {
        let place = |path: &String| match dir.is_empty() || Path::new(path).is_absolute() {
            true => path.clone(),
            false => normalize(&Path::new(dir).join(path))
                .to_string_lossy()
                .replace('\\', "/"),
        };
        Member {
            sign_key: self.sign_key.as_ref().map(place),
            store_output: self.store_output.as_ref().map(place),
            ..self.clone()
        }
    }

    /// Every value of the member that the file holds, through [`check_value`]; the store's
    /// file also as a literal artifact path.
    fn check(&self, provider: Provider) -> Result<(), CiError> {
        let values = [
            ("name", Some(&self.name)),
            ("release-tag-prefix", Some(&self.release_tag_prefix)),
            ("image", Some(&self.image)),
            ("image", Some(&self.registry)),
            ("sign.key", self.sign_key.as_ref()),
            ("store.output", self.store_output.as_ref()),
        ];
        for (key, value) in values {
            if let Some(value) = value {
                check_value(provider, &self.name, key, value)?;
            }
        }
        if let Some(path) = &self.store_output {
            check_artifact_path(&self.name, "store.output", path)?;
        }
        Ok(())
    }
}

/// The one check of a value before it goes into a CI file: a single line of YAML-printable
/// characters (no line break of YAML 1.1 or 1.2, no control, no byte order mark) and, in a
/// GitHub file, no `${{`, which GitHub evaluates wherever it stands.
fn check_value(
    provider: Provider,
    name: &str,
    key: &'static str,
    value: &str,
) -> Result<(), CiError> {
    let unwritable = |reason| CiError::Unwritable {
        name: name.to_string(),
        key,
        value: value.to_string(),
        reason,
    };
    if value.chars().any(|c| c == '\t' || !yaml_printable(c)) {
        return Err(unwritable(
            "it holds a line break or another control character",
        ));
    }
    if provider == Provider::GitHub && value.contains("${{") {
        return Err(CiError::Expression {
            name: name.to_string(),
            key,
            value: value.to_string(),
        });
    }
    Ok(())
}

/// Artifact paths are patterns to both services (GitHub's `@actions/glob`, GitLab's
/// `artifacts:paths` with variables expanded): a path is kept as itself only without glob
/// characters, `$`, `\\`, and a leading `!` (exclusion) or `#` (a comment line to GitHub).
fn check_artifact_path(name: &str, key: &'static str, path: &str) -> Result<(), CiError> {
    if path.starts_with(['!', '#']) || path.contains(['*', '?', '[', ']', '{', '}', '$', '\\']) {
        return Err(CiError::Unwritable {
            name: name.to_string(),
            key,
            value: path.to_string(),
            reason: "an artifact path is a pattern to GitHub and GitLab, and this one would not name the file itself",
        });
    }
    Ok(())
}

/// The members' distinct prefixes, sorted: one trigger each.
fn prefixes(members: &[Member]) -> Vec<&str> {
    members
        .iter()
        .map(|m| m.release_tag_prefix.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Warnings about what would keep the generated file from working, for the user to read
/// before committing it: an install source or a registry that no CI runner can reach, and other workflows
/// (`workflows`: each file's path as shown and its text) that fire on the same tags.
pub fn warnings(
    provider: Provider,
    members: &[Member],
    install: &Install,
    workflows: &[(String, String)],
) -> Vec<String> {
    let mut warnings = Vec::new();
    if install.git.starts_with("file://") {
        warnings.push(format!(
            "the job installs cargo-v6 from `{}`, a path on this machine: a runner that is not this machine cannot clone it; pass `--install-git` with a URL the runners reach",
            install.git
        ));
    }
    let registries: BTreeSet<&str> = members.iter().map(|m| m.registry.as_str()).collect();
    for registry in registries {
        if let Some(why) = unreachable_from_ci(registry) {
            warnings.push(format!(
                "the image registry `{registry}` is {why}: a job on {} runners can never push there; set `image` in v6.toml to a registry the runners reach (or run the job on a runner of your own in that network)",
                match provider {
                    Provider::GitHub => "GitHub's",
                    Provider::GitLab => "GitLab's",
                }
            ));
        }
    }
    let samples: Vec<String> = prefixes(members)
        .into_iter()
        .map(|p| format!("{p}1.2.3"))
        .collect();
    for (path, text) in workflows {
        if let Some(tag) = samples.iter().find(|tag| workflow_fires_on_tag(text, tag)) {
            warnings.push(format!(
                "`{path}` also runs when the tag `{tag}` is pushed, so a release would run both: retire it (delete the file, or narrow its `on.push.tags`) or move what it does beyond publishing into a job that `needs` this one"
            ));
        }
    }
    warnings
}

/// Why the runners of a CI service cannot reach `registry` (`host[:port]`), if they cannot:
/// loopback, unspecified, link-local and multicast-DNS names are on the runner itself, private
/// addresses (IPv4 and IPv6) and names without a domain on a network it is not in.
fn unreachable_from_ci(registry: &str) -> Option<&'static str> {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.rsplit_once(':').map_or(registry, |(host, _)| host),
    };
    let host = host.to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return Some("the runner itself (localhost)");
    }
    if host.ends_with(".local") {
        return Some("a multicast-DNS name of a local network (.local)");
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_loopback() => Some("a loopback address (the runner itself)"),
        Ok(ip) if ip.is_unspecified() => Some("the unspecified address"),
        Ok(std::net::IpAddr::V4(v4)) if v4.is_link_local() => Some("a link-local address"),
        Ok(std::net::IpAddr::V4(v4)) if v4.is_private() => {
            Some("a private-network address, which hosted runners are not in")
        }
        // fc00::/7 (unique local, IPv6's private networks) and fe80::/10 (link-local).
        Ok(std::net::IpAddr::V6(v6)) if v6.segments()[0] & 0xfe00 == 0xfc00 => {
            Some("a private-network address, which hosted runners are not in")
        }
        Ok(std::net::IpAddr::V6(v6)) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
            Some("a link-local address")
        }
        Ok(_) => None,
        // A name of one label (`registry:5000`): only a local resolver knows it.
        Err(_) if !host.contains('.') => {
            Some("a host name without a domain, which only a local network resolves")
        }
        Err(_) => None,
    }
}

/// What the user must set up for the generated file to work: secrets or variables, one
/// sentence each, for the `note:` after `Created`. `releases` maps a release tag prefix to
/// the repository's latest release tag under it and the tag of its next patch: the example
/// tag follows it (a made-up `1.2.3` could be older than a release already out).
pub fn next_steps(
    provider: Provider,
    members: &[Member],
    releases: &BTreeMap<String, (String, String)>,
) -> Vec<String> {
    let mut steps = Vec::new();
    let registries: BTreeSet<&str> = members.iter().map(|m| m.registry.as_str()).collect();
    let signs = members.iter().any(|m| m.sign_key.is_some());
    let submits = members.iter().any(|m| m.submits);
    match provider {
        Provider::GitHub => {
            if registries.iter().all(|r| *r == GHCR) {
                steps.push("the job pushes to ghcr.io with GITHUB_TOKEN (`packages: write`): no registry secret needed; a package that already exists must grant this repository write access (package settings, Manage Actions access)".to_string());
            } else {
                steps.push(format!(
                    "set the repository secrets V6_REGISTRY_USERNAME and V6_REGISTRY_PASSWORD (Settings > Secrets and variables > Actions): a user and access token that may push to {}",
                    registries.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
            if signs {
                steps.push(format!("set the repository secrets {KEY_SECRET} (the text of the cosign.key file) and COSIGN_PASSWORD"));
            }
            if submits {
                steps.push("set the repository secrets V6_SERVER_USERNAME and V6_SERVER_PASSWORD: the vantage6 server account that submits to the algorithm store ([store] submit)".to_string());
            }
        }
        Provider::GitLab => {
            let listed = registries.iter().copied().collect::<Vec<_>>().join(", ");
            steps.push(if registries.len() == 1 {
                format!(
                    "the job logs in to {listed} with its own token when that is this project's registry ($CI_REGISTRY); for another registry set the CI/CD variables V6_REGISTRY_USERNAME and V6_REGISTRY_PASSWORD (Settings > CI/CD > Variables, masked)"
                )
            } else {
                format!(
                    "set the CI/CD variables V6_REGISTRY_USERNAME and V6_REGISTRY_PASSWORD (Settings > CI/CD > Variables, masked): the job uses them for each of {listed}"
                )
            });
            if signs {
                steps.push(format!("set the CI/CD variables {KEY_SECRET} (the text of the cosign.key file) and COSIGN_PASSWORD (masked)"));
            }
            if submits {
                steps.push("set the CI/CD variables V6_SERVER_USERNAME and V6_SERVER_PASSWORD (masked): the vantage6 server account that submits to the algorithm store ([store] submit)".to_string());
            }
            steps.push("protected variables reach only protected tags: protect the release tags (Settings > Repository > Protected tags)".to_string());
        }
    }
    let examples: Vec<String> = prefixes(members)
        .into_iter()
        .map(|p| match releases.get(p) {
            Some((latest, next)) => format!(
                "git tag {next} && git push origin {next} (after the latest release tag `{latest}`)"
            ),
            None => format!("git tag {p}1.2.3 && git push origin {p}1.2.3"),
        })
        .collect();
    steps.push(format!(
        "commit the file, then release by pushing a tag: {}",
        examples.join(", or ")
    ));
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, prefix: &str, registry: &str) -> Member {
        Member {
            store_output: None,
            submits: false,
            name: name.into(),
            release_tag_prefix: prefix.into(),
            registry: registry.into(),
            image: format!("{registry}/org/{name}"),
            sign_key: None,
        }
    }

    fn install() -> Install {
        Install::new(
            "https://example.org/cargo-v6.git",
            "0123456789abcdef0123456789abcdef01234567",
        )
        .unwrap()
    }

    /// Every member value goes through the one check in both generators: a line break,
    /// a tab or a separator YAML 1.1 reads as a line break is refused wherever it would go.
    #[test]
    fn values_with_line_breaks_are_refused_in_every_field_and_file() {
        for bad in ["a\nb", "a\tb", "a\u{2028}b", "a\u{85}b", "a\rb"] {
            let fields: [fn(&mut Member, &str); 5] = [
                |m, v| m.release_tag_prefix = v.into(),
                |m, v| m.image = v.into(),
                |m, v| m.registry = v.into(),
                |m, v| m.sign_key = Some(v.into()),
                |m, v| m.store_output = Some(format!("{v}.json")),
            ];
            for set in fields {
                let mut m = member("a", "v", GHCR);
                set(&mut m, bad);
                for provider in [Provider::GitHub, Provider::GitLab] {
                    let result =
                        render(provider, std::slice::from_ref(&m), &install(), "0.1.0", "");
                    assert!(
                        matches!(result, Err(CiError::Unwritable { .. })),
                        "{bad:?} in {m:?}: {result:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_artifact_path_is_one_yaml_string_of_lines() {
        let mut m = member("a", "v", GHCR);
        m.store_output = Some("out/it's: \"#1\".json".into());
        let text = render(Provider::GitHub, &[m], &install(), "0.1.0", "").unwrap();
        assert!(
            text.contains("path: \"out/it's: \\\"#1\\\".json\\nv6.lock\""),
            "{text}"
        );
    }

    /// Odd but valid shapes of an existing workflow's `on`, as GitHub reads them.
    #[test]
    fn other_workflows_on_the_same_tags_are_found_in_every_shape() {
        let fires = [
            "on: push",
            "on: [push, pull_request]",
            "on:\n  push:\n    tags: \"*.*.*\"",
            "on:\n  push:\n    tags:\n      - \"*.*.*\"",
            // Path filters are not evaluated for tag pushes; with no branch or tag filter the
            // workflow runs on every tag.
            "on:\n  push:\n    paths: [\"src/**\"]",
            "on:\n  push: {}",
            // A YAML anchor and alias.
            "x: &tags [\"[0-9]+.*\"]\non:\n  push:\n    tags: *tags",
            // `create` runs when any tag is created.
            "on: [create]",
            "on:\n  create:",
        ];
        for text in fires {
            assert!(workflow_fires_on_tag(text, "1.2.3"), "{text}");
        }
        let quiet = [
            "on:\n  push:\n    branches: [main]",
            "on:\n  push:\n    branches: [main]\n    paths: [\"src/**\"]",
            "on:\n  push:\n    tags: [\"v*\"]",
            "on:\n  push:\n    tags-ignore: [\"*.*.*\"]",
            "on: [pull_request]",
            "on:\n  release:\n    types: [published]",
            "not: [valid",
        ];
        for text in quiet {
            assert!(!workflow_fires_on_tag(text, "1.2.3"), "{text}");
        }
    }

    #[test]
    fn paths_are_placed_under_the_projects_directory() {
        let mut m = member("a", "v", GHCR);
        m.sign_key = Some("../keys/cosign.key".into());
        m.store_output = Some("/abs/store.json".into());
        let placed = m.under("algorithms/a");
        assert_eq!(
            placed.sign_key.as_deref(),
            Some("algorithms/keys/cosign.key")
        );
        assert_eq!(placed.store_output.as_deref(), Some("/abs/store.json"));
        assert_eq!(m.under(""), m);
        // The directory is a value of the file like any other.
        let text = render(
            Provider::GitLab,
            &[m.clone()],
            &install(),
            "0.1.0",
            "it's dir",
        )
        .unwrap();
        assert!(
            text.contains("--manifest-path 'it'\\''s dir/v6.toml'"),
            "{text}"
        );
        assert!(matches!(
            render(Provider::GitHub, &[m], &install(), "0.1.0", "a*b"),
            Err(CiError::Unwritable { .. })
        ));
    }

    #[test]
    fn install_checks_the_url_and_the_commit() {
        let rev = "0123456789abcdef0123456789abcdef01234567";
        for good in [
            "https://github.com/o/cargo-v6",
            "ssh://git@example.org/o/cargo-v6.git",
            "git@example.org:o/cargo-v6.git",
            "file:///srv/git/cargo-v6",
        ] {
            assert!(Install::new(good, rev).is_ok(), "{good}");
        }
        for bad in [
            "http://example.org/x",
            "git://example.org/x",
            "example.org/x",
            "https://u:p@example.org/x",
            "https://example.org/x y",
            "https://example.org/'x'",
            "-uhttps://example.org/x",
            "C:/x",
            // The file is committed: no password in any scheme, and a host to reach.
            "ssh://git:secret@example.org/o/cargo-v6.git",
            "https://",
            "ssh:///x",
        ] {
            assert!(Install::new(bad, rev).is_err(), "{bad}");
        }
        assert!(Install::new("https://e.org/x", &rev[..39]).is_err());
        assert!(Install::new("https://e.org/x", "v1.2.3").is_err());
        assert_eq!(
            Install::new("https://e.org/x", &rev.to_uppercase())
                .unwrap()
                .rev(),
            rev
        );
        assert_eq!(
            install().command(Some("\"$tools\"")),
            format!(
                "cargo install --locked --git 'https://example.org/cargo-v6.git' --rev '{rev}' --root \"$tools\" cargo-v6"
            )
        );
    }

    #[test]
    fn registries_on_the_runner_itself_are_unreachable() {
        for host in [
            "127.0.0.1:5550",
            "127.1.2.3",
            "localhost",
            "LOCALHOST:5000",
            "reg.localhost",
            "[::1]:5000",
            "nas.local:5000",
            "0.0.0.0:5000",
            "169.254.1.1",
            "10.0.0.5:5000",
        ] {
            assert!(unreachable_from_ci(host).is_some(), "{host}");
        }
        for host in [
            "ghcr.io",
            "registry.example.org:5000",
            "8.8.8.8",
            "[2001:db8::1]:5000",
        ] {
            assert_eq!(unreachable_from_ci(host), None, "{host}");
        }
    }

    /// The patterns' meaning on real tags is checked in tests/ci.rs, on the generated file.
    #[test]
    fn github_patterns_are_the_prefix_then_major_dot_minor() {
        assert_eq!(github_tag_pattern("v"), "v[0-9]+.[0-9]+*");
        assert_eq!(github_tag_pattern(""), "[0-9]+.[0-9]+*");
        assert_eq!(github_tag_pattern("summary-v"), "summary-v[0-9]+.[0-9]+*");
    }

    #[test]
    fn github_glob_characters_in_a_prefix_are_escaped() {
        assert_eq!(
            github_tag_pattern("!rel+[x]*?\\"),
            "\\!rel\\+\\[x]\\*\\?\\\\[0-9]+.[0-9]+*"
        );
    }

    #[test]
    fn gitlab_regex_takes_the_prefixes_only() {
        let re = |prefixes: &[&str]| regex::Regex::new(&gitlab_tag_regex(prefixes)).unwrap();
        let v = re(&["v"]);
        assert!(v.is_match("v1.2.3") && v.is_match("v1.2.3-rc.1"));
        assert!(!v.is_match("1.2.3") && !v.is_match("summary-v1.2.3"));
        let bare = re(&[""]);
        assert!(bare.is_match("1.2.3") && bare.is_match("1.1.3"));
        assert!(!bare.is_match("v1.2.3") && !bare.is_match("summary-v1.2.3"));
        let both = re(&["", "summary-v"]);
        assert_eq!(
            gitlab_tag_regex(&["", "summary-v"]),
            "^(?:|summary\\-v)[0-9]+\\.[0-9]+"
        );
        assert!(both.is_match("1.2.3") && both.is_match("summary-v1.2.3"));
        assert!(!both.is_match("v1.2.3") && !both.is_match("crosstab-v1.2.3"));
    }

    #[test]
    fn gitlab_regex_escapes_metacharacters_and_the_delimiter() {
        let text = gitlab_tag_regex(&["a.b/c+(d)|"]);
        assert!(!text.replace("\\/", "").contains('/'), "{text}");
        let re = regex::Regex::new(&text).unwrap();
        assert!(re.is_match("a.b/c+(d)|1.2.3"));
        assert!(!re.is_match("aXb/c+(d)|1.2.3"));
        assert!(!re.is_match("1.2.3"));
    }

    #[test]
    fn yaml_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(yaml_string("v"), "\"v\"");
        assert_eq!(yaml_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            yaml_string("\u{7f}\u{85}\u{feff}é"),
            "\"\\u007F\\u0085\\uFEFFé\""
        );
    }

    #[test]
    fn shell_words_survive_single_quotes() {
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn key_paths_are_relative_to_the_project_root() {
        let cases = [
            ("keys/cosign.key", "", "keys/cosign.key"),
            ("../keys/cosign.key", "", "../keys/cosign.key"),
            ("proj/../keys/cosign.key", "proj", "../keys/cosign.key"),
            ("proj/member/./cosign.key", "proj", "member/cosign.key"),
            ("other/cosign.key", "proj", "../other/cosign.key"),
            ("/abs/cosign.key", "proj", "/abs/cosign.key"),
        ];
        for (key, root, expected) in cases {
            assert_eq!(
                relative_to(Path::new(key), Path::new(root)),
                Path::new(expected),
                "{key} from {root}"
            );
        }
    }

    #[test]
    fn no_members_is_an_error() {
        assert!(matches!(
            render(Provider::GitHub, &[], &install(), "0.1.0", ""),
            Err(CiError::NoMembers)
        ));
    }

    #[test]
    fn github_expressions_in_values_are_refused() {
        let m = member("a", "${{ secrets.X }}", GHCR);
        assert!(matches!(
            render(
                Provider::GitHub,
                std::slice::from_ref(&m),
                &install(),
                "0.1.0",
                ""
            ),
            Err(CiError::Expression {
                key: "release-tag-prefix",
                ..
            })
        ));
        // GitLab does not evaluate it: the regex takes it literally.
        assert!(render(Provider::GitLab, &[m], &install(), "0.1.0", "").is_ok());
    }

    /// `[store] submit`: the job gets the server account's secrets, and the steps say so.
    #[test]
    fn an_algorithm_that_submits_gets_the_server_account() {
        let github = |m: &Member| {
            render(
                Provider::GitHub,
                std::slice::from_ref(m),
                &install(),
                "0.1.0",
                "",
            )
            .unwrap()
        };
        let mut m = member("a", "v", GHCR);
        let plain = github(&m);
        assert!(!plain.contains("V6_SERVER_USERNAME"), "{plain}");
        m.submits = true;
        let text = github(&m);
        assert!(
            text.contains("V6_SERVER_USERNAME: ${{ secrets.V6_SERVER_USERNAME }}"),
            "{text}"
        );
        assert!(
            text.contains("V6_SERVER_PASSWORD: ${{ secrets.V6_SERVER_PASSWORD }}"),
            "{text}"
        );
        parse(&text);
        for provider in [Provider::GitHub, Provider::GitLab] {
            let steps = next_steps(provider, std::slice::from_ref(&m), &BTreeMap::new());
            assert!(
                steps.iter().any(|s| s.contains("V6_SERVER_PASSWORD")),
                "{steps:?}"
            );
        }
    }

    #[test]
    fn one_trigger_per_distinct_prefix() {
        let members = [
            member("a", "a-v", GHCR),
            member("b", "b-v", GHCR),
            member("c", "a-v", GHCR),
        ];
        let text = render(Provider::GitHub, &members, &install(), "0.1.0", "").unwrap();
        assert_eq!(text.matches("[0-9]+.[0-9]+*\"").count(), 2, "{text}");
    }

    fn parse(text: &str) -> yaml_rust2::Yaml {
        yaml_rust2::YamlLoader::load_from_str(text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .remove(0)
    }

    /// A workspace whose members push to ghcr.io and to another registry: one login for both,
    /// from secrets (the job token cannot push elsewhere), and the file says so.
    #[test]
    fn members_on_several_registries_share_the_secrets() {
        let members = [member("a", "a-v", GHCR), member("b", "b-v", "docker.io")];
        let text = render(Provider::GitHub, &members, &install(), "0.1.0", "").unwrap();
        let workflow = parse(&text);
        assert!(workflow["permissions"]["packages"].is_badvalue(), "{text}");
        assert!(text.contains("V6_REGISTRY_USERNAME: ${{ secrets.V6_REGISTRY_USERNAME }}"));
        assert!(text.contains("more than one registry"), "{text}");
        let steps = next_steps(Provider::GitHub, &members, &BTreeMap::new()).join("\n");
        assert!(steps.contains("push to docker.io, ghcr.io"), "{steps}");

        let text = render(Provider::GitLab, &members, &install(), "0.1.0", "").unwrap();
        let ci = parse(&text);
        assert!(ci["v6-publish"]["variables"]["V6_IMAGE_REGISTRY"].is_badvalue());
        assert!(!text.contains("CI_REGISTRY_USER"), "{text}");
        assert!(text.contains("more than one registry"), "{text}");
        assert_eq!(
            ci["v6-publish"]["rules"][0]["if"].as_str(),
            Some("$CI_COMMIT_TAG =~ /^(?:a\\-v|b\\-v)[0-9]+\\.[0-9]+/")
        );
    }

    #[test]
    fn the_templates_name_the_key_secret_that_next_steps_asks_for() {
        for (_, text) in [GITHUB_TEMPLATE, GITLAB_TEMPLATE] {
            assert!(text.contains(&format!("\"${KEY_SECRET}\"")));
        }
        let mut signed = member("a", "v", GHCR);
        signed.sign_key = Some("cosign.key".into());
        for provider in [Provider::GitHub, Provider::GitLab] {
            let steps =
                next_steps(provider, std::slice::from_ref(&signed), &BTreeMap::new()).join("\n");
            assert!(steps.contains(KEY_SECRET), "{steps}");
        }
    }

    #[test]
    fn every_file_in_the_ci_templates_directory_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/ci");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| format!("ci/{}", entry.unwrap().file_name().into_string().unwrap()))
            .collect();
        files.sort();
        assert_eq!(files, [GITHUB_TEMPLATE.0, GITLAB_TEMPLATE.0]);
    }
}
