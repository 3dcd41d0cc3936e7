//! The build context: which files of the project the build sees, by Docker's exact
//! `.dockerignore` semantics.
//!
//! [`select`] walks the project and keeps what `docker build` (BuildKit) would send; the
//! engine's tar writer reuses [`DockerIgnore`] so both always agree. Invariants:
//!
//! - Listed are regular files and symlinks, never directories. Symlinks are listed as
//!   themselves and never followed, whether they point to a file, a directory or nothing.
//!   Other file types (sockets, FIFOs, devices) are left out.
//! - Paths are relative to the context root, `/`-separated, sorted bytewise.
//! - A path is excluded when the last `.dockerignore` pattern matching it or one of its parent
//!   directories is not an exception (`!pattern`); see [`DockerIgnore`] for the syntax.
//! - An excluded directory is still walked when an exception could re-include something
//!   below it, with BuildKit's (fsutil's) rule; the result is exactly the files for which
//!   [`DockerIgnore::is_excluded`] is false.
//! - `.dockerignore` and `v6.toml` are listed like any other file unless a pattern excludes
//!   them.
//!
//! One deliberate difference from Docker: `.git` at the context root is left out by default,
//! because images should not carry repository history. It is an implicit first pattern
//! `.git`, so the usual last-match-wins applies and an exception in `.dockerignore` (`!.git`,
//! `!.git/**`, ...) brings it back.

mod ignore;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use ignore::DockerIgnore;

/// The file, at the context root, whose patterns exclude paths from the context.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// The most a `.dockerignore` may hold (a 100,000-line file is a few MiB).
pub const DOCKERIGNORE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The context could not be read, or its `.dockerignore` is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A file or directory of the context could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed, as given (rooted at the `root` passed to [`select`]).
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A `.dockerignore` line is not a valid pattern; Docker would refuse the build too.
    #[error(".dockerignore:{line}: invalid pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The 1-based line number in `.dockerignore`, to point at it.
        line: usize,
        /// The line as written, trimmed.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ContextError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl DockerIgnore {
    /// Reads `root/.dockerignore`; a missing file means no patterns besides the implicit
    /// `.git`. Invalid UTF-8 in it is replaced, not rejected, as Go would not reject it.
    pub fn load(root: &Path) -> Result<Self, ContextError> {
        let path = root.join(DOCKERIGNORE);
        match crate::files::read_regular(&path, DOCKERIGNORE_MAX_BYTES) {
            Ok(bytes) => Self::parse(&String::from_utf8_lossy(&bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::parse(""),
            Err(e) => Err(ContextError::io(&path, e)),
        }
    }
}

/// A directory still to be read during the walk.
struct PendingDir {
    /// Relative path, empty for the root.
    rel: String,
    path: PathBuf,
    /// The last pattern matching it or a parent, see [`DockerIgnore::enter_dir`].
    state: ignore::DirState,
    /// Walked only because an exception may re-include something below it; if it cannot be
    /// read for lack of permission it is skipped, as BuildKit does.
    excluded: bool,
    /// `rel` is the real name, not a lossy rendering of a non-UTF-8 one.
    exact_name: bool,
}

/// Lists the files (regular files and symlinks, not followed) that the build will see, relative
/// and `/`-separated, sorted bytewise. `.git` is left out unless `.dockerignore` says `!.git`.
///
/// A file that would be sent but whose path is not valid UTF-8 is an error, since the list
/// could not name it; excluded ones are fine.
pub fn select(root: &Path) -> Result<Vec<String>, ContextError> {
    let metadata = fs::metadata(root).map_err(|e| ContextError::io(root, e))?;
    if !metadata.is_dir() {
        let not_dir = io::Error::new(io::ErrorKind::NotADirectory, "not a directory");
        return Err(ContextError::io(root, not_dir));
    }
    let ignore = DockerIgnore::load(root)?;
    let mut files = Vec::new();
    let mut pending = vec![PendingDir {
        rel: String::new(),
        path: root.to_path_buf(),
        state: ignore.root_state(),
        excluded: false,
        exact_name: true,
    }];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir.path) {
            Ok(entries) => entries,
            Err(e) if dir.excluded && e.kind() == io::ErrorKind::PermissionDenied => continue,
            Err(e) => return Err(ContextError::io(&dir.path, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| ContextError::io(&dir.path, e))?;
            let name = entry.file_name();
            let exact_name = dir.exact_name && name.to_str().is_some();
            let rel = if dir.rel.is_empty() {
                name.to_string_lossy().into_owned()
            } else {
                format!("{}/{}", dir.rel, name.to_string_lossy())
            };
            // `DirEntry::file_type` does not follow symlinks.
            let file_type = entry
                .file_type()
                .map_err(|e| ContextError::io(&entry.path(), e))?;
            if file_type.is_dir() {
                let state = ignore.enter_dir(&dir.state, &rel);
                let excluded = ignore.state_excluded(&state);
                if !excluded || ignore.may_reinclude_under(&rel) {
                    pending.push(PendingDir {
                        rel,
                        path: entry.path(),
                        state,
                        excluded,
                        exact_name,
                    });
                }
            } else if (file_type.is_file() || file_type.is_symlink())
                && !ignore.excluded_in(&dir.state, &rel)
            {
                if !exact_name {
                    let not_utf8 = io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the path is not valid UTF-8 and cannot be sent",
                    );
                    return Err(ContextError::io(&entry.path(), not_utf8));
                }
                files.push(rel);
            }
        }
    }
    files.sort_unstable();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tempfile::TempDir;

    /// A context with the given files (parents created, content = path).
    fn context(files: &[&str]) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, file).unwrap();
        }
        dir
    }

    fn with_ignore(files: &[&str], dockerignore: &str) -> TempDir {
        let dir = context(files);
        fs::write(dir.path().join(DOCKERIGNORE), dockerignore).unwrap();
        dir
    }

    fn listed(dir: &TempDir) -> Vec<String> {
        select(dir.path()).unwrap()
    }

    #[test]
    fn lists_files_sorted_bytewise_without_directories() {
        let dir = context(&[
            "v6.toml",
            "src/main.rs",
            "src/a/b/c.txt",
            "B.txt",
            "a.txt",
            "with space.txt",
            "ünïcødé/ß.txt",
            "src-x",
        ]);
        fs::create_dir(dir.path().join("empty")).unwrap();
        assert_eq!(
            listed(&dir),
            [
                "B.txt",
                "a.txt",
                "src-x",
                "src/a/b/c.txt",
                "src/main.rs",
                "v6.toml",
                "with space.txt",
                "ünïcødé/ß.txt",
            ]
        );
    }

    #[test]
    fn dockerignore_and_manifest_are_listed_unless_excluded() {
        let dir = with_ignore(&["v6.toml", "x"], "x\n");
        assert_eq!(listed(&dir), [".dockerignore", "v6.toml"]);
        let dir = with_ignore(&["v6.toml"], ".dockerignore\nv6.toml\n");
        assert!(listed(&dir).is_empty());
    }

    #[test]
    fn git_is_left_out_unless_re_included() {
        let files = [
            ".git/HEAD",
            ".git/refs/x",
            ".github/ci.yml",
            "sub/.git/HEAD",
        ];
        assert_eq!(
            listed(&context(&files)),
            [".github/ci.yml", "sub/.git/HEAD"]
        );
        for exception in ["!.git", "!.git/**", "!/.git/"] {
            let dir = with_ignore(&files, exception);
            assert_eq!(
                listed(&dir),
                [
                    ".dockerignore",
                    ".git/HEAD",
                    ".git/refs/x",
                    ".github/ci.yml",
                    "sub/.git/HEAD"
                ],
                "{exception}"
            );
        }
        // A worktree's `.git` is a file: left out too.
        assert_eq!(listed(&context(&[".git", "a"])), ["a"]);
    }

    #[test]
    fn nested_patterns_and_last_match_wins() {
        let dir = with_ignore(
            &[
                "target/debug/x",
                "src/lib.rs",
                "src/gen/out.rs",
                "docs/a.md",
                "docs/b.md",
                "notes.md",
                "deep/er/notes.md",
            ],
            "# build output\ntarget\nsrc/gen/\n*.md\n!docs/a.md\n**/er/*.md\n",
        );
        // `*.md` is anchored at the root: it leaves `docs/*.md` alone.
        assert_eq!(
            listed(&dir),
            [".dockerignore", "docs/a.md", "docs/b.md", "src/lib.rs"]
        );
    }

    #[test]
    fn exceptions_reach_into_excluded_directories() {
        let files = [
            "docs/README.md",
            "docs/api/index.md",
            "docs/api/other.md",
            "docs/guide/x.md",
            "vendor/lib/a.go",
            "vendor/lib/a.c",
            "main.go",
        ];
        let dir = with_ignore(&files, "docs\n!docs/api/index.md\nvendor\n!**/*.go\n");
        assert_eq!(
            listed(&dir),
            [
                ".dockerignore",
                "docs/api/index.md",
                "main.go",
                "vendor/lib/a.go"
            ]
        );
        // `*` then an exception for a whole directory.
        let dir = with_ignore(&files, "*\n!docs/api\n");
        assert_eq!(listed(&dir), ["docs/api/index.md", "docs/api/other.md"]);
        // Re-excluded after the exception: the last match wins.
        let dir = with_ignore(&files, "docs\n!docs/api\ndocs/api/other.md\n");
        assert!(listed(&dir).contains(&"docs/api/index.md".to_owned()));
        assert!(!listed(&dir).contains(&"docs/api/other.md".to_owned()));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_listed_never_followed() {
        use std::os::unix::fs::symlink;
        let dir = with_ignore(&["real/file", "other/x"], "other\n");
        let root = dir.path();
        symlink("real/file", root.join("to-file")).unwrap();
        symlink("real", root.join("to-dir")).unwrap();
        symlink("nowhere", root.join("dangling")).unwrap();
        symlink("other", root.join("to-excluded")).unwrap();
        symlink(".", root.join("real/loop")).unwrap();
        assert_eq!(
            listed(&dir),
            [
                ".dockerignore",
                "dangling",
                "real/file",
                "real/loop",
                "to-dir",
                "to-excluded",
                "to-file"
            ]
        );
        // A pattern excludes a symlink by its own path, whatever it points to.
        let dir2 = with_ignore(&[], "to-*\n");
        symlink(".", dir2.path().join("to-root")).unwrap();
        assert_eq!(listed(&dir2), [".dockerignore"]);
    }

    #[test]
    fn io_errors_name_the_path() {
        let dir = context(&[]);
        let missing = dir.path().join("missing");
        let err = select(&missing).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("cannot read {}: ", missing.display())),
            "{err}"
        );
        let file = context(&["f"]);
        let err = select(&file.path().join("f")).unwrap_err();
        assert!(matches!(err, ContextError::Io { .. }), "{err}");
        // `.dockerignore` that cannot be read (a directory here).
        let dir = context(&[".dockerignore/x"]);
        let err = select(dir.path()).unwrap_err();
        assert!(err.to_string().contains(DOCKERIGNORE), "{err}");
    }

    #[test]
    fn invalid_pattern_fails_with_its_line() {
        let dir = with_ignore(&["a"], "a\n# ok\nsrc/[oops\n");
        match select(dir.path()) {
            Err(ContextError::InvalidPattern { line, pattern, .. }) => {
                assert_eq!((line, pattern.as_str()), (3, "src/[oops"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_fail_only_when_sent() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = with_ignore(&["ok"], "junk\n");
        let bad = OsStr::from_bytes(b"caf\xe9");
        fs::create_dir(dir.path().join("junk")).unwrap();
        fs::write(dir.path().join("junk").join(bad), "").unwrap();
        assert_eq!(listed(&dir), [".dockerignore", "ok"]);
        fs::write(dir.path().join(bad), "").unwrap();
        let err = select(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    }

    /// What `select` returns is exactly the files `is_excluded` keeps: skipping excluded
    /// directories is only a shortcut.
    #[test]
    fn walk_agrees_with_is_excluded() {
        let files = [
            "a/a/a",
            "a/a/b",
            "a/b/a",
            "a/b.x",
            "b/a/b.x",
            "b/b",
            "a.x",
            "b.x",
            "c/a/a/a.x",
        ];
        let dir = context(&files);
        let dockerignores = [
            "a\n!a/a/b",
            "a\n!a/*/a",
            "*\n!*/a",
            "**/a\n!b",
            "**\n!**/*.x",
            "a/**\n!a/b/**",
            "*/a\n!c/a/a\nc/a/a/a.x",
            "b\n!b/a\n!b/b\nb/a",
        ];
        for text in dockerignores {
            fs::write(dir.path().join(DOCKERIGNORE), text).unwrap();
            let ignore = DockerIgnore::parse(text).unwrap();
            let mut expected: Vec<String> = files
                .iter()
                .chain(&[DOCKERIGNORE])
                .filter(|f| !ignore.is_excluded(f))
                .map(|f| f.to_string())
                .collect();
            expected.sort();
            assert_eq!(listed(&dir), expected, "{text:?}");
        }
    }

    #[test]
    fn ten_thousand_files_in_milliseconds() {
        let dir = tempfile::tempdir().unwrap();
        for d in 0..100 {
            let sub = dir.path().join(format!("pkg{d}/src"));
            fs::create_dir_all(&sub).unwrap();
            for f in 0..100 {
                fs::write(sub.join(format!("f{f}.py")), "").unwrap();
            }
        }
        fs::write(
            dir.path().join(DOCKERIGNORE),
            "**/__pycache__\n*.pyc\npkg1*/src/f1*.py\n!pkg1/src/f1.py\n",
        )
        .unwrap();
        let start = Instant::now();
        let files = listed(&dir);
        let elapsed = start.elapsed();
        assert_eq!(files.len(), 10_000 - 11 * 11 + 1 + 1);
        // Generous for a shared debug build; the point is no quadratic blow-up.
        assert!(elapsed.as_millis() < 2_000, "{elapsed:?}");
    }
}
