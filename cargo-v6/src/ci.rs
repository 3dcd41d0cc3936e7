//! Release workflows for CI: the GitHub Actions workflow and the GitLab CI job that run
//! `cargo v6 publish --from-tag` when a release tag is pushed (`cargo v6 ci github|gitlab`).
//!
//! Pure: [`render`] turns the members to release (one algorithm, or the selected members of a
//! workspace, each a [`Member`]) into the file's text, from the templates under
//! `cargo-v6/templates/ci/`, rendered in strict mode by [`crate::render::render_text`]. The
//! caller writes it.
//!
//! Invariants:
//! - Every value from v6.toml reaches the YAML through [`yaml_string`] (a double-quoted
//!   scalar with every character outside YAML's printable set escaped), inside a `run:` or
//!   `script:` block through [`shell_quote`] on a line of its own, or in a comment (the values
//!   are single lines, validated by [`crate::manifest`], and a comment ends with its line):
//!   neither a prefix nor a key path can end a string, start a YAML node or a shell command.
//! - GitHub evaluates `${{ ... }}` anywhere in a workflow's values, so a prefix or key path
//!   containing `${{` is refused ([`CiError::Expression`]) rather than written.
//! - A trigger accepts exactly the tags `{prefix}MAJOR.MINOR...` of the members' prefixes:
//!   [`github_tag_pattern`] escapes GitHub's glob characters, [`gitlab_tag_regex`] the regex
//!   characters and the `/` that would end GitLab's regex literal.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use serde::Serialize;

use crate::manifest::Manifest;
use crate::render::RenderError;

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
    include_str!("../templates/ci/github.yml.hbs"),
);
const GITLAB_TEMPLATE: (&str, &str) = (
    "ci/gitlab.yml.hbs",
    include_str!("../templates/ci/gitlab.yml.hbs"),
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
    /// The template failed to render.
    #[error(transparent)]
    Render(#[from] RenderError),
}

impl CiError {
    /// 2 when v6.toml holds what cannot go into the file (the user's input), else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            CiError::NonUtf8Path { .. } | CiError::Expression { .. } => 2,
            CiError::NoMembers | CiError::Render(_) => 1,
        }
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
    /// The files the job keeps as an artifact (as written: lines of a YAML block).
    kept: Vec<String>,
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
    /// The files the job keeps as an artifact (YAML strings).
    kept: Vec<String>,
}

/// The text of `provider`'s CI file for `members`, installing cargo-v6 `version` (this
/// binary's, so that CI publishes with the tool the file was made with).
pub fn render(provider: Provider, members: &[Member], version: &str) -> Result<String, CiError> {
    if members.is_empty() {
        return Err(CiError::NoMembers);
    }
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
    let kept: Vec<String> = std::iter::once(crate::record::FILE_NAME)
        .chain(members.iter().filter_map(|m| m.store_output.as_deref()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    match provider {
        Provider::GitHub => {
            for m in members {
                refuse_expression(m, "release-tag-prefix", &m.release_tag_prefix)?;
                if let Some(key) = &m.sign_key {
                    refuse_expression(m, "sign.key", key)?;
                }
            }
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
                kept,
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
                kept: kept.iter().map(|path| yaml_string(path)).collect(),
            };
            let (name, text) = GITLAB_TEMPLATE;
            Ok(crate::render::render_text(name, text, &data)?)
        }
    }
}

fn refuse_expression(member: &Member, key: &'static str, value: &str) -> Result<(), CiError> {
    if value.contains("${{") {
        return Err(CiError::Expression {
            name: member.name.clone(),
            key,
            value: value.to_string(),
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

/// The characters GitHub's filter patterns give a meaning (`*`, `?`, `+`, `[`, `]`, `!` at
/// the start, and `\`, which escapes them).
const GLOB_SPECIAL: &[char] = &['*', '?', '+', '[', ']', '!', '\\'];

/// The GitHub `on.push.tags` pattern for release tags under `prefix`: the prefix literally,
/// then a version that starts `MAJOR.MINOR` (`1.2`, `1.2.3`, `1.2.3-rc.1`, `1.2.0rc1`). `*`
/// matches no `/`, and a pattern must match the whole tag, so `v…` never takes `summary-v1.0.0`
/// and the bare prefix takes only tags that start with a digit.
pub fn github_tag_pattern(prefix: &str) -> String {
    let mut pattern = String::new();
    for c in prefix.chars() {
        if GLOB_SPECIAL.contains(&c) {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("[0-9]+.[0-9]+*");
    pattern
}

/// The regex, for GitLab's `$CI_COMMIT_TAG =~ /…/`, that accepts the release tags under any of
/// `prefixes`: anchored at the start, the prefix literally, then `MAJOR.MINOR`, as
/// [`github_tag_pattern`] does.
pub fn gitlab_tag_regex(prefixes: &[&str]) -> String {
    let escaped: Vec<String> = prefixes.iter().map(|p| regex_escape(p)).collect();
    let alternatives = match escaped.as_slice() {
        [one] => one.clone(),
        many => format!("(?:{})", many.join("|")),
    };
    format!("^{alternatives}[0-9]+\\.[0-9]+")
}

/// Escapes regex metacharacters, and `/`, which would end GitLab's `/…/` literal (RE2, which
/// GitLab uses, and Rust's regex both read `\/` as `/`).
fn regex_escape(text: &str) -> String {
    let mut escaped = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~/".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `text` as a YAML double-quoted scalar: `"` and `\` escaped, and every character outside
/// YAML's printable set (controls, DEL, C1 controls, the byte order mark) as `\uXXXX`, so
/// that it reads back as exactly `text` on one line.
pub fn yaml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if yaml_printable(c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// YAML 1.2's `c-printable`, without the line breaks and tab (escaped too, to stay on a line).
fn yaml_printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && c != '\u{FEFF}'
}

/// `text` as one POSIX shell word, single-quoted (`'` written as `'\''`).
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// What the user must set up for the generated file to work: secrets or variables, one
/// sentence each, for the `note:` after `Created`.
pub fn next_steps(provider: Provider, members: &[Member]) -> Vec<String> {
    let mut steps = Vec::new();
    let registries: BTreeSet<&str> = members.iter().map(|m| m.registry.as_str()).collect();
    let signs = members.iter().any(|m| m.sign_key.is_some());
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
            steps.push("protected variables reach only protected tags: protect the release tags (Settings > Repository > Protected tags)".to_string());
        }
    }
    let examples: Vec<String> = prefixes(members)
        .into_iter()
        .map(|p| format!("git tag {p}1.2.3 && git push origin {p}1.2.3"))
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
            name: name.into(),
            release_tag_prefix: prefix.into(),
            registry: registry.into(),
            image: format!("{registry}/org/{name}"),
            sign_key: None,
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
            "\\!rel\\+\\[x\\]\\*\\?\\\\[0-9]+.[0-9]+*"
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
            render(Provider::GitHub, &[], "0.1.0"),
            Err(CiError::NoMembers)
        ));
    }

    #[test]
    fn github_expressions_in_values_are_refused() {
        let m = member("a", "${{ secrets.X }}", GHCR);
        assert!(matches!(
            render(Provider::GitHub, std::slice::from_ref(&m), "0.1.0"),
            Err(CiError::Expression {
                key: "release-tag-prefix",
                ..
            })
        ));
        // GitLab does not evaluate it: the regex takes it literally.
        assert!(render(Provider::GitLab, &[m], "0.1.0").is_ok());
    }

    #[test]
    fn one_trigger_per_distinct_prefix() {
        let members = [
            member("a", "a-v", GHCR),
            member("b", "b-v", GHCR),
            member("c", "a-v", GHCR),
        ];
        let text = render(Provider::GitHub, &members, "0.1.0").unwrap();
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
        let text = render(Provider::GitHub, &members, "0.1.0").unwrap();
        let workflow = parse(&text);
        assert!(workflow["permissions"]["packages"].is_badvalue(), "{text}");
        assert!(text.contains("V6_REGISTRY_USERNAME: ${{ secrets.V6_REGISTRY_USERNAME }}"));
        assert!(text.contains("more than one registry"), "{text}");
        let steps = next_steps(Provider::GitHub, &members).join("\n");
        assert!(steps.contains("push to docker.io, ghcr.io"), "{steps}");

        let text = render(Provider::GitLab, &members, "0.1.0").unwrap();
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
            let steps = next_steps(provider, std::slice::from_ref(&signed)).join("\n");
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
