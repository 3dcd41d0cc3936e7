//! Workspaces: a root v6.toml whose `[workspace]` lists member directories (globs allowed,
//! `exclude` taken out), each with its own v6.toml that inherits the root's defaults (see
//! [`crate::manifest::Defaults`]). This module finds the workspace around a manifest, loads its
//! members, and chooses the ones a command acts on, the way cargo does: `--workspace`,
//! `-p NAME`, `--exclude NAME`, else the member the command runs in, else (at the root) all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::diagnostic::{Location, display};
use crate::manifest::{Defaults, FILE_NAME, INHERITABLE, Manifest, ManifestError};

/// A workspace's members, or the one manifest outside any workspace.
#[derive(Debug)]
pub struct Workspace {
    /// The root manifest, when there is a workspace.
    pub root: Option<Defaults>,
    /// The members (or the one standalone manifest), in the order of their directories.
    pub members: Vec<Manifest>,
    /// The member the command was started in, or that `--manifest-path` names.
    current: Option<usize>,
}

/// Which members a command acts on.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--workspace`: all of them.
    pub all: bool,
    /// `-p NAME`: these (by `algorithm.name`).
    pub packages: Vec<String>,
    /// `--exclude NAME`: all but these.
    pub exclude: Vec<String>,
}

/// A selection that names no member.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// A manifest of the workspace could not be read or is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// `-p`/`--exclude` names no member.
    #[error("package `{name}` is not {}", if *.in_workspace { "a member of the workspace" } else { "the algorithm of this v6.toml" })]
    NoSuchMember {
        /// The name given.
        name: String,
        /// The names there are.
        members: Vec<String>,
        /// Whether there is a workspace.
        in_workspace: bool,
    },
    /// Everything selected was excluded (the command names its flag).
    #[error("no member of the workspace is left after the exclusions")]
    NothingSelected,
}

impl WorkspaceError {
    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        match self {
            WorkspaceError::Manifest(_) | WorkspaceError::NothingSelected => None,
            WorkspaceError::NoSuchMember { name, members, .. } => {
                let names: Vec<&str> = members.iter().map(String::as_str).collect();
                let close = crate::diagnostic::closest(name, &names)
                    .map(|m| format!("did you mean `{m}`? "))
                    .unwrap_or_default();
                let listed: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                Some(format!("{close}the algorithms are: {}", listed.join(", ")))
            }
        }
    }
}

impl Workspace {
    /// Finds and loads the workspace around the manifest at `manifest_path`, or the one found
    /// upward from `cwd`: a root loads all its members; a member loads its workspace (when a
    /// root above it lists it), else it stands alone.
    pub fn load(manifest_path: Option<&Path>, cwd: &Path) -> Result<Workspace, ManifestError> {
        let path = Manifest::locate(manifest_path, cwd)?;
        let source = read(&path)?;
        if let Some(root) = Root::parse(&path, &source)? {
            let members = root.load_members()?;
            // `--manifest-path` naming the root means the whole workspace, as in cargo.
            let current = match manifest_path {
                Some(_) => None,
                None => current_member(&members, cwd),
            };
            return Ok(Workspace {
                root: Some(root.defaults),
                members,
                current,
            });
        }
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Some(root) = Root::find_above(&dir, cwd)? {
            let mut members = root.load_members()?;
            let this = std::fs::canonicalize(&dir).ok();
            let current = members
                .iter()
                .position(|m| std::fs::canonicalize(&m.dir).ok() == this);
            if let Some(i) = current {
                // This member's paths as the user typed them (`v6.toml`, not
                // `../../algorithms/a/v6.toml`): what its messages show.
                members[i] = Manifest::parse_member(&path, source, Some(&root.defaults))?;
                return Ok(Workspace {
                    root: Some(root.defaults),
                    members,
                    current,
                });
            }
        }
        Ok(Workspace {
            root: None,
            members: vec![Manifest::parse(&path, source)?],
            current: Some(0),
        })
    }

    /// The members `selection` names; without flags, the current member, or all of them at
    /// a workspace's root.
    pub fn select(&self, selection: &Selection) -> Result<Vec<&Manifest>, WorkspaceError> {
        for name in selection.packages.iter().chain(&selection.exclude) {
            if !self.members.iter().any(|m| &m.name == name) {
                return Err(WorkspaceError::NoSuchMember {
                    name: name.clone(),
                    members: self.members.iter().map(|m| m.name.clone()).collect(),
                    in_workspace: self.root.is_some(),
                });
            }
        }
        let chosen: Vec<&Manifest> = if !selection.packages.is_empty() {
            self.members
                .iter()
                .filter(|m| selection.packages.contains(&m.name))
                .collect()
        } else if selection.all {
            self.members
                .iter()
                .filter(|m| !selection.exclude.contains(&m.name))
                .collect()
        } else {
            match self.current {
                Some(i) => vec![&self.members[i]],
                None => self.members.iter().collect(),
            }
        };
        if chosen.is_empty() {
            return Err(WorkspaceError::NothingSelected);
        }
        Ok(chosen)
    }

    /// Every member, selected or not (`verify --rebuild IMAGE` finds the one that publishes
    /// IMAGE).
    pub fn members(&self) -> &[Manifest] {
        &self.members
    }

    /// The directory of the workspace's root, or of the one manifest: where the record of
    /// releases is kept.
    pub fn root_dir(&self) -> PathBuf {
        match &self.root {
            Some(root) => root.dir.clone(),
            None => self.members[0].dir.clone(),
        }
    }
}

/// The member `cwd` is inside, if any.
/// The member `cwd` is inside, if any: the innermost, when members nest.
fn current_member(members: &[Manifest], cwd: &Path) -> Option<usize> {
    let cwd = std::fs::canonicalize(cwd).ok()?;
    members
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let dir = std::fs::canonicalize(or_dot(&m.dir)).ok()?;
            cwd.starts_with(&dir).then(|| (dir.components().count(), i))
        })
        .max()
        .map(|(_, i)| i)
}

fn read(path: &Path) -> Result<String, ManifestError> {
    crate::files::read_regular_text(path, crate::files::SMALL_FILE_MAX).map_err(|source| {
        ManifestError::Read {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// A workspace's root manifest, parsed.
struct Root {
    defaults: Defaults,
    members: Vec<Spanned<String>>,
    /// Where `members` was written.
    members_span: std::ops::Range<usize>,
    exclude: Vec<Spanned<String>>,
}

impl Root {
    /// The workspace root at `path`, or `None` when the file has no `[workspace]`.
    fn parse(path: &Path, source: &str) -> Result<Option<Root>, ManifestError> {
        let error = |span: std::ops::Range<usize>, message: String, help: Option<String>| {
            ManifestError::Invalid {
                message,
                location: Location::new(display(path), source, span),
                help,
            }
        };
        let document = toml::de::DeTable::parse(source).map_err(|e| {
            error(
                e.span().unwrap_or(0..0),
                e.message().trim_end().into(),
                None,
            )
        })?;
        let document = document.get_ref();
        let Some(workspace) = document.get("workspace") else {
            return Ok(None);
        };
        if let Some((key, _)) = document.get_key_value("algorithm") {
            return Err(error(
                key.span(),
                "a workspace's root v6.toml describes no algorithm itself".into(),
                Some(
                    "move [algorithm] into a member's v6.toml; shared values go under [workspace.algorithm]"
                        .into(),
                ),
            ));
        }
        let unknown = |key: &Spanned<toml::de::DeString<'_>>, within: &str| {
            let candidates: Vec<&str> = match within {
                "" => vec!["workspace"],
                "workspace" => ["members", "exclude"]
                    .into_iter()
                    .chain(INHERITABLE.iter().map(|(table, _)| *table))
                    .collect(),
                table => INHERITABLE
                    .iter()
                    .find(|(t, _)| *t == table)
                    .map_or(Vec::new(), |(_, keys)| keys.to_vec()),
            };
            let found = key.get_ref().as_ref();
            let close = crate::diagnostic::closest(found, &candidates)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            let listed: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
            let what = match within {
                "" => "the workspace's root v6.toml".to_string(),
                "workspace" => "[workspace]".to_string(),
                table => format!("[workspace.{table}] (the keys members inherit)"),
            };
            error(
                key.span(),
                format!("unknown key `{found}` in {what}"),
                Some(format!("{close}expected one of {}", listed.join(", "))),
            )
        };
        if let Some((key, _)) = document.iter().find(|(k, _)| k.get_ref() != "workspace") {
            return Err(unknown(key, ""));
        }
        let not_a = |value: &Spanned<toml::de::DeValue<'_>>, what: &str| {
            error(value.span(), format!("expected {what}"), None)
        };
        let Some(table) = workspace.get_ref().as_table() else {
            return Err(not_a(workspace, "a table: [workspace]"));
        };
        let mut members = None;
        let mut exclude = Vec::new();
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "members" => {
                    let list = strings(value).ok_or_else(|| not_a(value, "an array of paths"))?;
                    members = Some((list, value.span()));
                }
                "exclude" => {
                    exclude = strings(value).ok_or_else(|| not_a(value, "an array of paths"))?
                }
                section => {
                    let Some((_, keys)) = INHERITABLE.iter().find(|(t, _)| *t == section) else {
                        return Err(unknown(key, "workspace"));
                    };
                    let Some(defaults) = value.get_ref().as_table() else {
                        return Err(not_a(value, "a table of defaults"));
                    };
                    if let Some((key, _)) = defaults
                        .iter()
                        .find(|(k, _)| !keys.contains(&k.get_ref().as_ref()))
                    {
                        return Err(unknown(key, section));
                    }
                }
            }
        }
        let Some((members, members_span)) = members else {
            return Err(error(
                workspace.span(),
                "[workspace] has no `members`".into(),
                Some("list the algorithms' directories, e.g. members = [\"algorithms/*\"]".into()),
            ));
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Some(Root {
            defaults: Defaults {
                path: path.to_path_buf(),
                dir,
                source: source.to_string(),
            },
            members,
            members_span,
            exclude,
        }))
    }

    /// The nearest workspace root strictly above `dir`, as the user would type its path.
    fn find_above(dir: &Path, cwd: &Path) -> Result<Option<Root>, ManifestError> {
        // Up the path as written (through a symlinked member directory, to the workspace
        // that links it), not up the directory's real path.
        let logical = lexical(&cwd.join(dir));
        // `./..` reads as `..`.
        let mut up = match dir == Path::new(".") {
            true => PathBuf::new(),
            false => dir.to_path_buf(),
        };
        for ancestor in logical.ancestors().skip(1) {
            up.push("..");
            let candidate = ancestor.join(FILE_NAME);
            if !candidate.is_file() {
                continue;
            }
            // `..` goes up the real path: where that is elsewhere, the path as written.
            let same = |a: &Path, b: &Path| {
                std::fs::canonicalize(a)
                    .ok()
                    .is_some_and(|a| std::fs::canonicalize(b).ok() == Some(a))
            };
            let relative = up.join(FILE_NAME);
            let path = match same(&relative, &candidate) {
                true => relative,
                false => candidate.clone(),
            };
            let Ok(source) = read(&candidate) else {
                continue;
            };
            if let Some(root) = Root::parse(&path, &source)? {
                return Ok(Some(root));
            }
        }
        Ok(None)
    }

    /// Every member's manifest, inheriting the root's defaults, in the order of their paths.
    fn load_members(&self) -> Result<Vec<Manifest>, ManifestError> {
        if self.members.is_empty() {
            return Err(ManifestError::Invalid {
                message: "[workspace] `members` is empty".into(),
                location: Location::new(
                    display(&self.defaults.path),
                    &self.defaults.source,
                    self.members_span.clone(),
                ),
                help: Some(
                    "list the algorithms' directories, e.g. members = [\"algorithms/*\"]".into(),
                ),
            });
        }
        let excluded = self.expand(&self.exclude, Expand::Exclude)?;
        let mut members = Vec::new();
        for (real, dir) in self.expand(&self.members, Expand::Members)? {
            if excluded.contains_key(&real) {
                continue;
            }
            let path = dir.join(FILE_NAME);
            let source = read(&path)?;
            members.push(Manifest::parse_member(&path, source, Some(&self.defaults))?);
        }
        if members.is_empty()
            && let Some(first) = self.members.first()
        {
            return Err(ManifestError::Invalid {
                message: "the workspace has no members: no directory listed here has a v6.toml"
                    .into(),
                location: Location::new(
                    display(&self.defaults.path),
                    &self.defaults.source,
                    first.span(),
                ),
                help: Some("`cargo v6 init` in an algorithm's directory writes one".into()),
            });
        }
        for (i, member) in members.iter().enumerate() {
            if let Some(first) = members[..i].iter().find(|m| m.name == member.name) {
                return Err(ManifestError::Invalid {
                    message: format!(
                        "two members of the workspace are named `{}` (`{}` and this one)",
                        member.name,
                        display(&first.path)
                    ),
                    location: member.name_location(),
                    help: Some("`-p NAME` and release tags tell members apart by name".into()),
                });
            }
            if let Some(first) = members[..i].iter().find(|m| m.image == member.image) {
                return Err(ManifestError::Invalid {
                    message: format!(
                        "`{}` and `{}` publish to the same image `{}`: their releases would take each other's tags",
                        first.name, member.name, member.image
                    ),
                    location: member.name_location(),
                    help: Some(
                        "write `{name}` in the workspace's `image` (\"ghcr.io/org/{name}\"), or give each member its own `image`"
                            .into(),
                    ),
                });
            }
        }
        Ok(members)
    }

    /// The member directories `patterns` name (relative to the root; globs allowed), by real
    /// path. Literal members must have a v6.toml; directories a glob matches without one are
    /// not members (except for [`Expand::Listed`]).
    fn expand(
        &self,
        patterns: &[Spanned<String>],
        how: Expand,
    ) -> Result<BTreeMap<PathBuf, PathBuf>, ManifestError> {
        let located = |pattern: &Spanned<String>, message: String, help: Option<String>| {
            ManifestError::Invalid {
                message,
                location: Location::new(
                    display(&self.defaults.path),
                    &self.defaults.source,
                    pattern.span(),
                ),
                help,
            }
        };
        let error = |pattern: &Spanned<String>, message: String| located(pattern, message, None);
        let root = std::fs::canonicalize(or_dot(&self.defaults.dir)).ok();
        // By real path, so that `./a`, `a/` and a glob's `a` are one member.
        let mut dirs = BTreeMap::new();
        let mut add = |pattern: &Spanned<String>, dir: PathBuf| {
            let Ok(real) = std::fs::canonicalize(&dir) else {
                return Ok(());
            };
            if Some(&real) == root.as_ref() {
                return Err(error(
                    pattern,
                    "the workspace's root is not a member: its v6.toml holds [workspace]".into(),
                ));
            }
            // As in cargo, members live under the root (a link to a directory there is
            // fine): one outside, by `..` or a link, would be published from a work tree
            // whose changes and revision the workspace's repository does not see.
            if how != Expand::Exclude && root.as_ref().is_some_and(|root| !real.starts_with(root)) {
                return Err(located(
                    pattern,
                    format!(
                        "workspace member `{}` is outside the workspace: it resolves to `{}`",
                        pattern.get_ref(),
                        display(&real)
                    ),
                    Some(format!(
                        "move it under {} (the workspace's directory), or give it a workspace of its own: a release is checked for uncommitted changes and labelled with its revision only inside the workspace",
                        display(or_dot(&self.defaults.dir))
                    )),
                ));
            }
            dirs.entry(real).or_insert(dir);
            Ok(())
        };
        for pattern in patterns {
            let text = pattern.get_ref().trim_end_matches('/');
            let literal = !text.contains(['*', '?', '[']);
            if literal {
                let relative: PathBuf = Path::new(text)
                    .components()
                    .filter(|c| !matches!(c, std::path::Component::CurDir))
                    .collect();
                let dir = self.defaults.dir.join(relative);
                if how == Expand::Members && !dir.join(FILE_NAME).is_file() {
                    return Err(error(
                        pattern,
                        format!("workspace member `{}` has no {FILE_NAME}", display(&dir)),
                    ));
                }
                add(pattern, dir)?;
                continue;
            }
            let root = glob::Pattern::escape(&self.defaults.dir.to_string_lossy());
            let full = if root.is_empty() {
                text.to_string()
            } else {
                format!("{root}/{text}")
            };
            let matches = glob::glob(&full)
                .map_err(|e| error(pattern, format!("invalid glob pattern: {}", e.msg)))?;
            for entry in matches.flatten() {
                if how == Expand::Listed || entry.join(FILE_NAME).is_file() {
                    add(pattern, entry)?;
                }
            }
        }
        Ok(dirs)
    }
}

/// What [`Root::expand`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expand {
    /// `members`: each must have a v6.toml.
    Members,
    /// `exclude`.
    Exclude,
    /// The directories the patterns name, v6.toml or not (for `init`, before there is one).
    Listed,
}

/// The workspace whose `members` list `dir` (a directory that may have no v6.toml yet, as
/// for `cargo v6 init`), when there is one above it.
pub fn enclosing_root(dir: &Path, cwd: &Path) -> Result<Option<Defaults>, ManifestError> {
    let Some(root) = Root::find_above(dir, cwd)? else {
        return Ok(None);
    };
    let Ok(real) = std::fs::canonicalize(or_dot(dir)) else {
        return Ok(None);
    };
    let listed = root
        .expand(&root.members, Expand::Listed)?
        .contains_key(&real)
        && !root
            .expand(&root.exclude, Expand::Listed)?
            .contains_key(&real);
    Ok(listed.then_some(root.defaults))
}

/// `path` without `.` components, and `..` taken off the part before it (as a shell's `cd`
/// does with its logical directory).
fn lexical(path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
}

/// `.` for the empty path (a manifest in the current directory has the parent ``).
fn or_dot(path: &Path) -> &Path {
    match path.as_os_str().is_empty() {
        true => Path::new("."),
        false => path,
    }
}

/// The strings of an array, with their places; `None` when it is not an array of strings.
fn strings(value: &Spanned<toml::de::DeValue<'_>>) -> Option<Vec<Spanned<String>>> {
    value
        .get_ref()
        .as_array()?
        .iter()
        .map(|item| {
            Some(Spanned::new(
                item.span(),
                item.get_ref().as_str()?.to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, text: &str) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn member(name: &str) -> String {
        format!("[algorithm]\nname = \"{name}\"\n")
    }

    const ROOT: &str = r#"[workspace]
members = ["algorithms/*"]
exclude = ["algorithms/draft"]

[workspace.algorithm]
wrapper = "python"
vantage6 = "4.15"
image = "ghcr.io/org/{name}"
"#;

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "v6.toml", ROOT);
        for name in ["alpha", "beta", "gamma", "draft"] {
            write(
                dir.path(),
                &format!("algorithms/{name}/v6.toml"),
                &member(name),
            );
        }
        std::fs::create_dir_all(dir.path().join("algorithms/not-an-algorithm")).unwrap();
        dir
    }

    fn names(members: &[&Manifest]) -> Vec<String> {
        members.iter().map(|m| m.name.clone()).collect()
    }

    #[test]
    fn at_the_root_every_member_is_selected_and_inherits() {
        let dir = fixture();
        let ws = Workspace::load(Some(&dir.path().join("v6.toml")), dir.path()).unwrap();
        let all = ws.select(&Selection::default()).unwrap();
        assert_eq!(names(&all), ["alpha", "beta", "gamma"]);
        assert_eq!(all[1].image.to_string(), "ghcr.io/org/beta");
        assert_eq!(all[1].publish.release_tag_prefix, "beta-v");
    }

    #[test]
    fn inside_a_member_the_member_is_selected() {
        let dir = fixture();
        let cwd = dir.path().join("algorithms/beta");
        let ws = Workspace::load(Some(&cwd.join("v6.toml")), &cwd).unwrap();
        assert_eq!(names(&ws.select(&Selection::default()).unwrap()), ["beta"]);
        let others = Selection {
            packages: vec!["gamma".into()],
            ..Selection::default()
        };
        assert_eq!(names(&ws.select(&others).unwrap()), ["gamma"]);
        assert_eq!(ws.root.as_ref().unwrap().path, cwd.join("../../v6.toml"));
    }

    #[test]
    fn exclude_and_unknown_names() {
        let dir = fixture();
        let ws = Workspace::load(Some(&dir.path().join("v6.toml")), dir.path()).unwrap();
        let selection = Selection {
            all: true,
            exclude: vec!["alpha".into()],
            ..Selection::default()
        };
        assert_eq!(names(&ws.select(&selection).unwrap()), ["beta", "gamma"]);
        let unknown = Selection {
            packages: vec!["betta".into()],
            ..Selection::default()
        };
        let error = ws.select(&unknown).unwrap_err();
        assert_eq!(
            error.to_string(),
            "package `betta` is not a member of the workspace"
        );
        let help = error.help().unwrap();
        assert!(help.contains("did you mean `beta`?"), "{help}");
        assert!(help.contains("`alpha`, `beta`, `gamma`"), "{help}");
    }

    #[test]
    fn an_error_in_an_inherited_value_points_at_the_root() {
        let dir = fixture();
        write(dir.path(), "v6.toml", &ROOT.replace("4.15", "four"));
        let error = Workspace::load(Some(&dir.path().join("v6.toml")), dir.path()).unwrap_err();
        let ManifestError::Invalid { location, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(location.path, display(&dir.path().join("v6.toml")));
        assert_eq!(location.line_col(), (7, 12), "{error}");
    }

    #[test]
    fn an_error_in_a_member_points_at_the_member() {
        let dir = fixture();
        write(
            dir.path(),
            "algorithms/beta/v6.toml",
            "[algorithm]\nname = \"beta\"\n[build]\nnetwork = \"a b\"\n",
        );
        let error = Workspace::load(Some(&dir.path().join("v6.toml")), dir.path()).unwrap_err();
        let ManifestError::Invalid { location, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(
            location.path,
            display(&dir.path().join("algorithms/beta/v6.toml"))
        );
        assert_eq!(location.line_col(), (4, 11));
    }

    /// The workspace at `dir/ws` failing to load, its message and help.
    fn refused(dir: &Path, cwd: &Path) -> (String, String) {
        let error = Workspace::load(Some(&dir.join("ws/v6.toml")), cwd).unwrap_err();
        let ManifestError::Invalid { message, help, .. } = error else {
            panic!("{error:?}")
        };
        (message, help.unwrap_or_default())
    }

    #[test]
    fn members_outside_the_workspace_root_are_refused_like_cargo() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "outside/b/v6.toml", &member("b"));
        write(dir.path(), "ws/algorithms/a/v6.toml", &member("a"));
        let real = std::fs::canonicalize(dir.path().join("outside/b")).unwrap();
        // `..` in a literal member.
        write(
            dir.path(),
            "ws/v6.toml",
            &ROOT.replace("\"algorithms/*\"]", "\"algorithms/*\", \"../outside/b\"]"),
        );
        let (message, help) = refused(dir.path(), dir.path());
        assert_eq!(
            message,
            format!(
                "workspace member `../outside/b` is outside the workspace: it resolves to `{}`",
                display(&real)
            )
        );
        assert!(help.contains("move it under"), "{help}");
        // A glob reaching out.
        write(
            dir.path(),
            "ws/v6.toml",
            &ROOT.replace("algorithms/*", "../outside/*"),
        );
        let (message, _) = refused(dir.path(), dir.path());
        assert!(message.contains("`../outside/*`"), "{message}");
        // A link inside the root to a directory outside it, from the root and from the link.
        write(dir.path(), "ws/v6.toml", ROOT);
        #[cfg(unix)]
        {
            let link = dir.path().join("ws/algorithms/b");
            std::os::unix::fs::symlink(dir.path().join("outside/b"), &link).unwrap();
            let (message, _) = refused(dir.path(), dir.path());
            assert_eq!(
                message,
                format!(
                    "workspace member `algorithms/*` is outside the workspace: it resolves to `{}`",
                    display(&real)
                )
            );
            assert!(Workspace::load(Some(&link.join("v6.toml")), &link).is_err());
            // A link to a directory inside the root is a member like any other.
            std::fs::remove_file(&link).unwrap();
            write(dir.path(), "ws/shared/b/v6.toml", &member("b"));
            std::os::unix::fs::symlink(dir.path().join("ws/shared/b"), &link).unwrap();
            let ws = Workspace::load(Some(&dir.path().join("ws/v6.toml")), dir.path()).unwrap();
            assert_eq!(
                names(&ws.select(&Selection::default()).unwrap()),
                ["a", "b"]
            );
        }
    }

    #[test]
    fn a_typo_in_the_root_is_named() {
        let dir = fixture();
        write(
            dir.path(),
            "v6.toml",
            &ROOT.replace("vantage6 =", "vantag6 ="),
        );
        let error = Workspace::load(Some(&dir.path().join("v6.toml")), dir.path()).unwrap_err();
        let ManifestError::Invalid { message, help, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!(
            message,
            "unknown key `vantag6` in [workspace.algorithm] (the keys members inherit)"
        );
        assert!(
            help.as_deref()
                .unwrap()
                .starts_with("did you mean `vantage6`?")
        );
    }

    #[test]
    fn duplicate_names_and_missing_literal_members_are_errors() {
        let dir = fixture();
        write(dir.path(), "algorithms/gamma/v6.toml", &member("beta"));
        let error = Workspace::load(Some(&dir.path().join("v6.toml")), dir.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("two members of the workspace are named `beta`")
        );

        let dir = fixture();
        write(
            dir.path(),
            "v6.toml",
            &ROOT.replace("algorithms/*", "algorithms/zeta"),
        );
        let error = Workspace::load(Some(&dir.path().join("v6.toml")), dir.path()).unwrap_err();
        assert!(error.to_string().contains("has no v6.toml"), "{error}");
    }

    #[test]
    fn members_on_one_image_and_an_empty_workspace_are_errors() {
        let dir = fixture();
        write(dir.path(), "v6.toml", &ROOT.replace("{name}", "shared"));
        let error = Workspace::load(Some(&dir.path().join("v6.toml")), dir.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`alpha` and `beta` publish to the same image"),
            "{error}"
        );

        let dir = fixture();
        write(
            dir.path(),
            "v6.toml",
            &ROOT.replace("algorithms/*", "nothing/*"),
        );
        let error = Workspace::load(Some(&dir.path().join("v6.toml")), dir.path()).unwrap_err();
        assert!(
            error.to_string().contains("the workspace has no members"),
            "{error}"
        );
    }

    #[test]
    fn member_paths_are_one_whatever_their_spelling() {
        let dir = fixture();
        let root = dir.path().join("v6.toml");
        write(
            dir.path(),
            "v6.toml",
            &ROOT
                .replace(
                    "[\"algorithms/*\"]",
                    "[\"algorithms/*\", \"./algorithms/alpha/\"]",
                )
                .replace(
                    "[\"algorithms/draft\"]",
                    "[\"./algorithms/draft\", \"algorithms/beta/\"]",
                ),
        );
        let ws = Workspace::load(Some(&root), dir.path()).unwrap();
        assert_eq!(
            names(&ws.select(&Selection::default()).unwrap()),
            ["alpha", "gamma"]
        );

        for (members, message) in [
            ("[]", "[workspace] `members` is empty"),
            ("[\".\"]", "the workspace's root is not a member"),
        ] {
            write(
                dir.path(),
                "v6.toml",
                &ROOT.replace("[\"algorithms/*\"]", members),
            );
            let error = Workspace::load(Some(&root), dir.path()).unwrap_err();
            assert!(error.to_string().contains(message), "{error}");
        }
    }

    #[test]
    fn an_inherited_templates_directory_is_placed_in_the_root() {
        let dir = fixture();
        write(
            dir.path(),
            "v6.toml",
            &format!("{ROOT}\n[workspace.build]\ntemplates = \"tpl\"\n"),
        );
        let root = dir.path().join("v6.toml");
        let ws = Workspace::load(Some(&root), dir.path()).unwrap();
        let alpha = &ws.members[0];
        assert_eq!(
            alpha.build.templates.as_deref(),
            Some(dir.path().join("tpl").as_path())
        );
        let location = alpha.templates_location();
        assert_eq!(location.path, display(&root));
        assert_eq!(location.line_col(), (11, 13));
        assert_eq!(alpha.workspace_root.as_deref(), Some(root.as_path()));
    }

    #[test]
    fn a_symlinked_member_finds_its_workspace_from_inside() {
        let dir = fixture();
        // Linked from elsewhere under the root (a link out of it is refused, see above).
        write(dir.path(), "shared/delta/v6.toml", &member("delta"));
        std::os::unix::fs::symlink(
            dir.path().join("shared/delta"),
            dir.path().join("algorithms/delta"),
        )
        .unwrap();
        // The manifest's path as written, through the link (as `$PWD` gives it to the CLI).
        let inside = dir.path().join("algorithms/delta");
        let ws = Workspace::load(Some(&inside.join("v6.toml")), &inside).unwrap();
        assert!(ws.root.is_some());
        let selected = ws.select(&Selection::default()).unwrap();
        assert_eq!(names(&selected), ["delta"]);
        assert_eq!(selected[0].image.to_string(), "ghcr.io/org/delta");
    }

    #[test]
    fn the_root_named_by_manifest_path_means_every_member() {
        let dir = fixture();
        let cwd = dir.path().join("algorithms/beta");
        let ws = Workspace::load(Some(&dir.path().join("v6.toml")), &cwd).unwrap();
        assert_eq!(
            names(&ws.select(&Selection::default()).unwrap()),
            ["alpha", "beta", "gamma"]
        );
    }

    #[test]
    fn a_manifest_outside_the_members_stands_alone() {
        let dir = fixture();
        write(
            dir.path(),
            "tools/v6.toml",
            "[algorithm]\nname = \"tool\"\nwrapper = \"python\"\nvantage6 = \"4.15\"\nimage = \"r.example/tool\"\n",
        );
        let tools = dir.path().join("tools");
        let ws = Workspace::load(Some(&tools.join("v6.toml")), &tools).unwrap();
        assert!(ws.root.is_none());
        let selected = ws.select(&Selection::default()).unwrap();
        assert_eq!(names(&selected), ["tool"]);
        assert_eq!(selected[0].publish.release_tag_prefix, "v");
    }
}
