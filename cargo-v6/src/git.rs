//! What the git repository around the manifest says about the release: the commit, its
//! time (for a reproducible `created` label), the source URL, a clean work tree and the tag on
//! HEAD. Read with the `git` command so that users' own configuration (safe.directory,
//! worktrees, includes) applies exactly as in their shell.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// The repository state that goes into labels and release checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GitInfo {
    /// The repository's top directory, absolute (what `dirty` paths are relative to).
    pub top: PathBuf,
    /// The full commit id of HEAD.
    pub revision: String,
    /// HEAD's commit time, RFC 3339 in UTC.
    pub created: String,
    /// The same time in seconds since 1970 (an assembled image's default
    /// `SOURCE_DATE_EPOCH`).
    pub time: u64,
    /// The remote URL with any userinfo removed, if there is a remote.
    pub source: Option<String>,
    /// Tags pointing at HEAD.
    pub head_tags: Vec<String>,
    /// Modified or untracked files (as `git status --porcelain` lists them, relative to the
    /// repository's top directory).
    pub dirty: Vec<String>,
}

/// Reads the repository containing `dir`; `None` outside a repository (or without git, or in a
/// repository with no commit yet).
/// `context` is the build context: its uncommitted changes count as dirty too, since they go
/// into the image even when it lies outside the manifest's directory.
pub fn read(dir: &Path, context: &Path) -> Option<GitInfo> {
    Cache::default().read(dir, &[context])
}

/// The repositories read so far, for the algorithms of a workspace that share one: the git
/// commands run once per repository, not once per algorithm (200 members plan in well under
/// a second, not in seconds).
#[derive(Debug, Default)]
pub struct Cache {
    repositories: Mutex<Vec<(PathBuf, Option<Repository>)>>,
    /// The real paths asked for so far: every member of a workspace names the root's
    /// v6.toml.
    real_paths: Mutex<HashMap<PathBuf, Option<PathBuf>>>,
}

/// What git says of one repository, read from its top directory.
#[derive(Debug, Clone)]
struct Repository {
    revision: String,
    created: String,
    time: u64,
    source: Option<String>,
    head_tags: Vec<String>,
    /// `git status --porcelain` paths, relative to the top directory.
    changed: Vec<String>,
}

impl Cache {
    /// [`read`], with the repository's state read once for all the algorithms in it; changes
    /// under `dir` or any of `inputs` (the build context, a workspace's root v6.toml, a
    /// templates directory: files or directories) make the tree dirty.
    pub fn read(&self, dir: &Path, inputs: &[&Path]) -> Option<GitInfo> {
        let absolute = |p: &Path| {
            let p = if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            };
            self.real_paths
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(p.to_path_buf())
                .or_insert_with(|| std::fs::canonicalize(p).ok())
                .clone()
        };
        let dir = absolute(dir)?;
        // `.git` is a directory, or a file in worktrees and submodules.
        let top = dir
            .ancestors()
            .find(|a| a.join(".git").exists())?
            .to_path_buf();
        let repository = {
            let mut repositories = self
                .repositories
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match repositories.iter().find(|(t, _)| *t == top) {
                Some((_, repository)) => repository.clone(),
                None => {
                    let repository = Repository::read(&top);
                    repositories.push((top.clone(), repository.clone()));
                    repository
                }
            }
        }?;
        // Each path separately: a context outside the repository is simply not checked.
        let watched: Vec<PathBuf> = std::iter::once(Some(dir))
            .chain(inputs.iter().map(|p| absolute(p)))
            .flatten()
            .filter_map(|p| p.strip_prefix(&top).ok().map(Path::to_path_buf))
            .collect();
        let dirty = repository
            .changed
            .iter()
            .filter(|entry| watched.iter().any(|w| touches(entry, w)))
            .cloned()
            .collect();
        Some(GitInfo {
            top,
            revision: repository.revision,
            created: repository.created,
            time: repository.time,
            source: repository.source,
            head_tags: repository.head_tags,
            dirty,
        })
    }
}

/// Whether a `git status` entry (a path, `old -> new` for a rename, `dir/` for an untracked
/// directory) lies in `watched`, or is an untracked directory holding it.
fn touches(entry: &str, watched: &Path) -> bool {
    let watched = watched.to_string_lossy();
    if watched.is_empty() {
        return true;
    }
    let watched_dir = format!("{watched}/");
    entry.split(" -> ").any(|path| {
        path == watched
            || path.starts_with(&watched_dir)
            || (path.ends_with('/') && watched_dir.starts_with(path))
    })
}

impl Repository {
    fn read(top: &Path) -> Option<Repository> {
        // The reads are independent: started together, they take about the time of the
        // slowest (`status`) instead of the sum, and every plan waits for them.
        let head = start(
            top,
            &[
                "log",
                "-1",
                "--format=%H %ct %cd",
                "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
            ],
        );
        let head_tags = start(top, &["tag", "--points-at", "HEAD"]);
        let status = start(top, &["status", "--porcelain", "--untracked-files=normal"]);
        let source = remote_source(top);
        let (head, head_tags, status) = (finish(head), finish(head_tags), finish(status));
        let head = head?;
        let (revision, rest) = head.trim().split_once(' ')?;
        let (time, created) = rest.split_once(' ')?;
        let time = time.parse().ok()?;
        let head_tags = head_tags
            .map(|t| t.lines().map(str::to_string).collect())
            .unwrap_or_default();
        let mut changed: Vec<String> = status
            .map(|s| {
                s.lines()
                    .map(|l| l.get(3..).unwrap_or(l).to_string())
                    .collect()
            })
            .unwrap_or_default();
        changed.sort();
        changed.dedup();
        Some(Repository {
            revision: revision.to_string(),
            created: created.to_string(),
            time,
            source,
            head_tags,
            changed,
        })
    }
}

/// The [`source_url`] of the repository around `dir`'s remote (`origin`, else the first),
/// read even before the first commit (a fresh clone of an empty repository has one).
pub fn remote_source(dir: &Path) -> Option<String> {
    git(dir, &["remote"])
        .and_then(|remotes| {
            let names: Vec<&str> = remotes.lines().collect();
            let name = names
                .iter()
                .find(|n| **n == "origin")
                .or(names.first())?
                .to_string();
            git(dir, &["remote", "get-url", &name])
        })
        .and_then(|url| source_url(url.trim()))
}

/// Every tag of the repository around `dir` (`git tag --list`); none outside a repository.
pub fn tags(dir: &Path) -> Vec<String> {
    git(dir, &["tag", "--list"])
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    finish(start(dir, args))
}

/// `git -C dir args...` started, its output captured (as [`Command::output`] would); `None`
/// when git cannot be started.
fn start(dir: &Path, args: &[&str]) -> Option<Child> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("TZ", "UTC")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()
}

/// What a command [`start`]ed printed, once it has ended; `None` when it failed.
fn finish(child: Option<Child>) -> Option<String> {
    let output = child?.wait_with_output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A browsable URL for the `source` label, if the remote is a network URL. CI remotes embed
/// credentials (`https://gitlab-ci-token:TOKEN@host/...`): userinfo is dropped so no secret
/// reaches a label. ssh and scp-like remotes (`git@host:owner/repo.git`) become
/// `https://host/owner/repo`; local paths and `file://` remotes give nothing.
pub fn source_url(remote: &str) -> Option<String> {
    if let Some((scheme, rest)) = remote.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let path = path.strip_suffix(".git").unwrap_or(path);
        return match scheme {
            "http" | "https" => Some(format!("{scheme}://{host}/{path}")),
            // The ssh port says nothing about where the web pages are.
            "ssh" | "git" => {
                let host = host.split(':').next().unwrap_or(host);
                Some(format!("https://{host}/{path}"))
            }
            _ => None,
        };
    }
    let (userhost, path) = remote.split_once(':').filter(|(h, _)| !h.contains('/'))?;
    let host = userhost.rsplit_once('@').map_or(userhost, |(_, host)| host);
    let path = path.strip_suffix(".git").unwrap_or(path);
    Some(format!("https://{host}/{}", path.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_never_reaches_the_source_url() {
        assert_eq!(
            source_url("https://gitlab-ci-token:s3cr3t@gitlab.example.com/group/algo.git")
                .as_deref(),
            Some("https://gitlab.example.com/group/algo")
        );
        assert_eq!(
            source_url("https://u:p@git.example.org:8443/a/b").as_deref(),
            Some("https://git.example.org:8443/a/b"),
            "an https port is part of the address"
        );
        assert_eq!(source_url("file:///srv/git/algo.git"), None);
        assert_eq!(
            source_url("https://x-access-token:ghp_abc@github.com/org/algo").as_deref(),
            Some("https://github.com/org/algo")
        );
        assert_eq!(
            source_url("git@github.com:org/algo.git").as_deref(),
            Some("https://github.com/org/algo")
        );
        assert_eq!(
            source_url("ssh://git@github.com:22/org/algo.git").as_deref(),
            Some("https://github.com/org/algo")
        );
        assert_eq!(source_url("/srv/git/algo"), None);
    }

    fn run(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_AUTHOR_DATE", "2024-05-01T10:00:00+02:00")
            .env("GIT_COMMITTER_DATE", "2024-05-01T10:00:00+02:00")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn reads_commit_time_in_utc_remote_tags_and_dirt() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(d, &["init", "-q", "-b", "main"]);
        run(d, &["config", "user.email", "t@example.org"]);
        run(d, &["config", "user.name", "t"]);
        std::fs::write(d.join("a.txt"), "a").unwrap();
        run(d, &["add", "."]);
        run(d, &["commit", "-qm", "one"]);
        run(d, &["tag", "v1.0.0"]);
        run(
            d,
            &["remote", "add", "origin", "https://u:p@example.org/x/y.git"],
        );
        std::fs::write(d.join("b.txt"), "b").unwrap();
        let info = read(d, d).unwrap();
        assert_eq!(info.created, "2024-05-01T08:00:00Z");
        assert_eq!(info.revision.len(), 40);
        assert_eq!(info.source.as_deref(), Some("https://example.org/x/y"));
        assert_eq!(info.head_tags, vec!["v1.0.0"]);
        assert_eq!(info.dirty, vec!["b.txt"]);
        assert_eq!(tags(d), vec!["v1.0.0"]);
    }

    /// `status` and `tag` run alongside `log`: without a commit the repository still reads
    /// as nothing, whatever they say.
    #[test]
    fn a_repository_without_a_commit_is_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(d, &["init", "-q", "-b", "main"]);
        std::fs::write(d.join("a.txt"), "a").unwrap();
        assert_eq!(read(d, d), None);
        assert_eq!(Cache::default().read(d, &[d]), None);
    }

    #[test]
    fn outside_a_repository_there_is_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path(), dir.path()), None);
    }
}
