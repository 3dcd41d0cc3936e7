//! The build context as a tar archive, written to any [`Write`] (the engine module hands it a
//! pipe into the HTTP request body, so the context is never held in memory or on disk).
//!
//! What the archive holds, in this order:
//! 1. `.dockerignore`: the user's file plus one line excluding the rendered Dockerfile, or a
//!    generated one excluding itself and the rendered Dockerfile (see [`dockerignore`]);
//! 2. the rendered Dockerfile, from memory;
//! 3. every selected path, sorted, each preceded by its not-yet-written parent directories:
//!    regular files with their content and permission bits, symlinks as symlinks (never
//!    followed), directories as directory entries.
//!
//! Invariants: owner uid/gid 0 with no user or group names; the order depends only on the
//! selection. Files keep their real mtime: the classic builder's COPY cache ignores mtimes (so
//! real mtimes cost no cache hits), the image is not bit-reproducible anyway (RUN layers,
//! creation times), and a 1970 mtime breaks tools that run in RUN steps (zip-based Python
//! packaging rejects pre-1980 timestamps). The generated entries (Dockerfile, generated
//! `.dockerignore`) have mtime 0, since the engine removes them before COPY sees them.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use ::tar::{Builder, EntryType, Header};
use sha2::{Digest, Sha256};

use crate::context::DOCKERIGNORE;
use crate::fingerprint::FileDigest;

/// Everything the writer needs, owned so that it can move onto a blocking thread.
#[derive(Debug, Clone)]
pub(super) struct ContextSpec {
    /// The context root; `files` are relative to it.
    pub context_dir: PathBuf,
    /// Selected paths, relative and `/`-separated.
    pub files: Vec<String>,
    /// Name of the rendered Dockerfile at the context root (checked by
    /// [`validate_dockerfile_name`]).
    pub dockerfile_name: String,
    /// The rendered Dockerfile.
    pub dockerfile: String,
    /// What the fingerprint saw of each selected path, by path: every byte sent is hashed
    /// again and compared, so that the fingerprint describes exactly what the engine got.
    /// `None`: nothing to compare with (tests of the archive alone).
    pub expected: Option<HashMap<String, FileDigest>>,
}

/// Why the archive could not be completed.
#[derive(Debug, thiserror::Error)]
pub(super) enum TarError {
    /// A selected path could not be read or is not acceptable in a context: the user's problem,
    /// reported with its path.
    #[error("cannot add {} to the build context: {source}", path.display())]
    Source {
        /// The offending path (context dir joined with the selected path).
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// A path differs from what the fingerprint saw: it changed after it was hashed or while
    /// it was being sent.
    #[error("{path} changed while the build context was being sent ({what})")]
    Changed {
        /// The path, relative to the context.
        path: String,
        /// What differs.
        what: &'static str,
    },
    /// Writing to the destination failed. For the engine's pipe this means the request was
    /// already abandoned, so the request's own error is the one worth reporting.
    #[error("cannot write the build context: {0}")]
    Sink(#[source] io::Error),
}

/// Checks that `name` can sit at the context root and be excluded by one literal
/// `.dockerignore` line: no directories, no pattern syntax (`*?[\`, a leading `!` or `#`), no
/// surrounding whitespace (the engine trims lines).
pub(super) fn validate_dockerfile_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name == DOCKERIGNORE
        || name.contains(['/', '\\', '*', '?', '[', '\n', '\r'])
        || name.starts_with(['!', '#'])
        || name.trim() != name;
    if bad {
        Err(format!(
            "`{name}` cannot be the name of the rendered Dockerfile: it must be a plain file name \
             at the context root, other than {DOCKERIGNORE}, without pattern characters"
        ))
    } else {
        Ok(())
    }
}

/// The `.dockerignore` to send. The engine (classic builder) does not filter the context with
/// it (the caller already selected the files); it only uses it to delete `.dockerignore` and
/// the Dockerfile from the context before COPY runs, and only when the rules exclude them.
/// Without that, `COPY . /app` would copy the rendered Dockerfile into the image.
///
/// - `user`: the user's own file. It is sent unchanged except for ONE appended line naming the
///   rendered Dockerfile (after a newline if the file lacks a final one). That line is the
///   only difference a user can observe, and only when their rules do not exclude
///   `.dockerignore` itself (then it is copied into the image with that extra line).
/// - none: a generated file excluding itself and the rendered Dockerfile, so neither reaches
///   the image.
pub(super) fn dockerignore(user: Option<Vec<u8>>, dockerfile_name: &str) -> Vec<u8> {
    match user {
        Some(mut content) => {
            if !content.is_empty() && !content.ends_with(b"\n") {
                content.push(b'\n');
            }
            content.extend_from_slice(format!("{dockerfile_name}\n").as_bytes());
            content
        }
        None => format!("{DOCKERIGNORE}\n{dockerfile_name}\n").into_bytes(),
    }
}

/// Writes the whole archive to `out` and returns it (so the caller can shut a pipe down).
pub(super) fn write_context<W: Write>(spec: &ContextSpec, out: W) -> Result<W, TarError> {
    let mut builder = Builder::new(out);
    let root = &spec.context_dir;

    let ignore_path = root.join(DOCKERIGNORE);
    let ignore_selected = spec.files.iter().any(|f| f == DOCKERIGNORE);
    let ignore_is_link = ignore_selected
        && fs::symlink_metadata(&ignore_path).is_ok_and(|m| m.file_type().is_symlink());
    let user_ignore = if ignore_selected && !ignore_is_link {
        let meta = fs::symlink_metadata(&ignore_path)
            .map_err(|source| source_error(&ignore_path, source))?;
        if !meta.is_file() || meta.len() > crate::context::DOCKERIGNORE_MAX_BYTES {
            let source = io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file of a readable size",
            );
            return Err(source_error(&ignore_path, source));
        }
        let content =
            fs::read(&ignore_path).map_err(|source| source_error(&ignore_path, source))?;
        check_expected(
            spec,
            DOCKERIGNORE,
            Sha256::digest(&content).into(),
            mode_of(&meta),
            false,
        )?;
        Some((content, mode_of(&meta), mtime_of(&meta)))
    } else {
        None
    };
    let (ignore_mode, ignore_mtime) = user_ignore
        .as_ref()
        .map_or((0o644, 0), |(_, mode, mtime)| (*mode, *mtime));
    if ignore_is_link {
        // Sent as the link it is, as the docker CLI sends it: never the content of a file
        // it points at, which may lie outside the project.
        append_symlink(&mut builder, spec, DOCKERIGNORE, &ignore_path)?;
    } else {
        let ignore = dockerignore(user_ignore.map(|(c, _, _)| c), &spec.dockerfile_name);
        append_memory(
            &mut builder,
            DOCKERIGNORE,
            &ignore,
            ignore_mode,
            ignore_mtime,
        )?;
    }
    append_memory(
        &mut builder,
        &spec.dockerfile_name,
        spec.dockerfile.as_bytes(),
        0o644,
        0,
    )?;

    let mut files: Vec<&str> = spec
        .files
        .iter()
        .map(String::as_str)
        .filter(|f| *f != DOCKERIGNORE && *f != spec.dockerfile_name)
        .collect();
    files.sort_unstable();
    files.dedup();
    let mut written_dirs = BTreeSet::new();
    for rel in files {
        let path = root.join(rel);
        check_relative(rel).map_err(|source| source_error(&path, source))?;
        let mut parent = 0;
        while let Some(offset) = rel[parent..].find('/') {
            let dir = &rel[..parent + offset];
            parent += offset + 1;
            if written_dirs.insert(dir.to_owned()) {
                append_parent(&mut builder, root, dir)?;
            }
        }
        let meta = fs::symlink_metadata(&path).map_err(|source| source_error(&path, source))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            if written_dirs.insert(rel.to_owned()) {
                append_empty(&mut builder, rel, EntryType::Directory, &meta)?;
            }
        } else if kind.is_symlink() {
            append_symlink(&mut builder, spec, rel, &path)?;
        } else if kind.is_file() {
            append_file(&mut builder, spec, rel, &path)?;
        } else {
            let source = io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file, directory or symlink",
            );
            return Err(source_error(&path, source));
        }
    }
    builder.into_inner().map_err(TarError::Sink)
}

/// A selected path must stay inside the context: relative, no empty, `.` or `..` components.
fn check_relative(rel: &str) -> io::Result<()> {
    if rel
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a normalized path inside the context",
        ));
    }
    Ok(())
}

/// A parent directory entry, with the directory's own mode. A parent that is a symlink is
/// refused: writing `link/file` would make the engine create a real directory `link`.
fn append_parent<W: Write>(
    builder: &mut Builder<W>,
    root: &Path,
    dir: &str,
) -> Result<(), TarError> {
    let path = root.join(dir);
    let meta = fs::symlink_metadata(&path).map_err(|source| source_error(&path, source))?;
    if !meta.is_dir() {
        let source = io::Error::new(
            io::ErrorKind::InvalidInput,
            "a selected file's parent is not a directory",
        );
        return Err(source_error(&path, source));
    }
    append_empty(builder, dir, EntryType::Directory, &meta)
}

fn append_empty<W: Write>(
    builder: &mut Builder<W>,
    rel: &str,
    kind: EntryType,
    meta: &Metadata,
) -> Result<(), TarError> {
    let mut header = header(kind, meta, 0);
    builder
        .append_data(&mut header, rel, io::empty())
        .map_err(TarError::Sink)
}

/// A regular file, streamed. The size is taken from the open handle; [`ExactReader`] makes a
/// file that shrinks meanwhile an error, so the entry always matches its header. The bytes
/// sent are hashed on the way and compared with what the fingerprint saw, and a file whose
/// size changed while it was read is refused: the image holds what the fingerprint names.
fn append_file<W: Write>(
    builder: &mut Builder<W>,
    spec: &ContextSpec,
    rel: &str,
    path: &Path,
) -> Result<(), TarError> {
    let file = File::open(path).map_err(|source| source_error(path, source))?;
    let meta = file
        .metadata()
        .map_err(|source| source_error(path, source))?;
    let mut header = header(EntryType::Regular, &meta, meta.len());
    let mut reader = ExactReader {
        file,
        remaining: meta.len(),
        read_error: None,
        hash: Sha256::new(),
    };
    if let Err(err) = builder.append_data(&mut header, rel, &mut reader) {
        return Err(match reader.read_error.take() {
            Some(source) if source.kind() == io::ErrorKind::UnexpectedEof => TarError::Changed {
                path: rel.to_owned(),
                what: "it shrank",
            },
            Some(source) => source_error(path, source),
            None => TarError::Sink(err),
        });
    }
    let now = reader
        .file
        .metadata()
        .map_err(|source| source_error(path, source))?;
    if now.len() != meta.len() {
        return Err(TarError::Changed {
            path: rel.to_owned(),
            what: "its size changed",
        });
    }
    check_expected(
        spec,
        rel,
        reader.hash.finalize().into(),
        mode_of(&meta),
        false,
    )
}

/// A symlink as a symlink, never followed.
fn append_symlink<W: Write>(
    builder: &mut Builder<W>,
    spec: &ContextSpec,
    rel: &str,
    path: &Path,
) -> Result<(), TarError> {
    let meta = fs::symlink_metadata(path).map_err(|source| source_error(path, source))?;
    let target = fs::read_link(path).map_err(|source| source_error(path, source))?;
    let mut header = header(EntryType::Symlink, &meta, 0);
    builder
        .append_link(&mut header, rel, &target)
        .map_err(|source| source_error(path, source))?;
    let hash = Sha256::digest(target.as_os_str().as_encoded_bytes()).into();
    check_expected(spec, rel, hash, mode_of(&meta), true)
}

/// Compares what was sent of `rel` with what the fingerprint saw of it.
fn check_expected(
    spec: &ContextSpec,
    rel: &str,
    content: [u8; 32],
    mode: u32,
    symlink: bool,
) -> Result<(), TarError> {
    let Some(expected) = &spec.expected else {
        return Ok(());
    };
    let changed = |what| {
        Err(TarError::Changed {
            path: rel.to_owned(),
            what,
        })
    };
    match expected.get(rel) {
        None => changed("it appeared after the context was fingerprinted"),
        Some(seen) if seen.symlink != symlink => changed("its type changed"),
        Some(seen) if seen.content != content => changed("its content changed"),
        Some(seen) if seen.mode != mode => changed("its permissions changed"),
        Some(_) => Ok(()),
    }
}

fn append_memory<W: Write>(
    builder: &mut Builder<W>,
    name: &str,
    content: &[u8],
    mode: u32,
    mtime: u64,
) -> Result<(), TarError> {
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(mode);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(content.len() as u64);
    builder
        .append_data(&mut header, name, content)
        .map_err(TarError::Sink)
}

fn header(kind: EntryType, meta: &Metadata, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode_of(meta));
    header.set_mtime(mtime_of(meta));
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(size);
    header
}

/// Permission bits (including setuid/setgid/sticky); COPY keeps them and its cache sees them.
#[cfg(unix)]
fn mode_of(meta: &Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Without Unix modes, the conventional ones (directories searchable, files read-only or not).
#[cfg(not(unix))]
fn mode_of(meta: &Metadata) -> u32 {
    match (meta.is_dir(), meta.permissions().readonly()) {
        (true, _) => 0o755,
        (false, true) => 0o444,
        (false, false) => 0o644,
    }
}

/// Seconds since the epoch; 0 for times before it or unknown.
fn mtime_of(meta: &Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

fn source_error(path: &Path, source: io::Error) -> TarError {
    TarError::Source {
        path: path.to_owned(),
        source,
    }
}

/// Yields exactly `remaining` bytes of `file`. Keeps a read error aside so the caller can tell
/// it (the user's file) from a write error (the destination), which `tar` reports alike.
struct ExactReader {
    file: File,
    remaining: u64,
    read_error: Option<io::Error>,
    hash: Sha256,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let result = match self.file.read(&mut buf[..max]) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being sent",
            )),
            other => other,
        };
        match result {
            Ok(n) => {
                self.remaining -= n as u64;
                self.hash.update(&buf[..n]);
                Ok(n)
            }
            Err(err) => {
                let kind = err.kind();
                self.read_error = Some(err);
                Err(io::Error::new(kind, "reading a context file failed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq)]
    struct Entry {
        kind: EntryType,
        mode: u32,
        uid: u64,
        gid: u64,
        content: Vec<u8>,
        link: Option<String>,
    }

    fn read_back(bytes: &[u8]) -> Vec<(String, Entry)> {
        let mut archive = ::tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut content = Vec::new();
                e.read_to_end(&mut content).unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                let entry = Entry {
                    kind: h.entry_type(),
                    mode: h.mode().unwrap(),
                    uid: h.uid().unwrap(),
                    gid: h.gid().unwrap(),
                    content,
                    link,
                };
                (name, entry)
            })
            .collect()
    }

    fn spec(dir: &Path, files: &[&str]) -> ContextSpec {
        ContextSpec {
            context_dir: dir.to_owned(),
            files: files.iter().map(|s| s.to_string()).collect(),
            dockerfile_name: ".cargo-v6.Dockerfile".into(),
            dockerfile: "FROM scratch\n".into(),
            expected: None,
        }
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A project with nested directories, modes and a symlink.
    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("pkg/sub")).unwrap();
        fs::write(root.join("pkg/__init__.py"), "x = 1\n").unwrap();
        fs::write(root.join("pkg/sub/run.sh"), "#!/bin/sh\n").unwrap();
        fs::write(root.join("setup.py"), "setup()\n").unwrap();
        #[cfg(unix)]
        {
            set_mode(&root.join("pkg/sub/run.sh"), 0o755);
            set_mode(&root.join("pkg/sub"), 0o700);
            set_mode(&root.join("setup.py"), 0o600);
            std::os::unix::fs::symlink("pkg/__init__.py", root.join("link.py")).unwrap();
        }
        dir
    }

    #[cfg(unix)]
    #[test]
    fn writes_files_dirs_symlinks_with_modes_and_generated_entries() {
        let dir = project();
        let files = ["link.py", "pkg/__init__.py", "pkg/sub/run.sh", "setup.py"];
        let bytes = write_context(&spec(dir.path(), &files), Vec::new()).unwrap();
        let entries = read_back(&bytes);
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                ".cargo-v6.Dockerfile",
                "link.py",
                "pkg",
                "pkg/__init__.py",
                "pkg/sub",
                "pkg/sub/run.sh",
                "setup.py"
            ]
        );
        let by_name: BTreeMap<_, _> = entries.into_iter().collect();
        for e in by_name.values() {
            assert_eq!((e.uid, e.gid), (0, 0));
        }
        assert_eq!(
            by_name[".dockerignore"].content,
            b".dockerignore\n.cargo-v6.Dockerfile\n"
        );
        assert_eq!(by_name[".cargo-v6.Dockerfile"].content, b"FROM scratch\n");
        let link = &by_name["link.py"];
        assert_eq!(link.kind, EntryType::Symlink);
        assert_eq!(link.link.as_deref(), Some("pkg/__init__.py"));
        assert!(link.content.is_empty(), "a symlink is never followed");
        assert_eq!(by_name["pkg"].kind, EntryType::Directory);
        assert_eq!(by_name["pkg/sub"].kind, EntryType::Directory);
        assert_eq!(by_name["pkg/sub"].mode, 0o700);
        assert_eq!(by_name["pkg/sub/run.sh"].mode, 0o755);
        assert_eq!(by_name["pkg/sub/run.sh"].content, b"#!/bin/sh\n");
        assert_eq!(by_name["setup.py"].mode, 0o600);
        assert_eq!(by_name["pkg/__init__.py"].content, b"x = 1\n");
    }

    #[test]
    fn output_depends_only_on_the_selection() {
        let dir = project();
        let sorted = ["pkg/__init__.py", "pkg/sub/run.sh", "setup.py"];
        let shuffled = ["setup.py", "pkg/sub/run.sh", "pkg/__init__.py", "setup.py"];
        let a = write_context(&spec(dir.path(), &sorted), Vec::new()).unwrap();
        let b = write_context(&spec(dir.path(), &shuffled), Vec::new()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn user_dockerignore_gets_exactly_one_line_appended() {
        let dir = project();
        fs::write(dir.path().join(".dockerignore"), "*.pyc\n# keep\n!keep.pyc").unwrap();
        let bytes = write_context(
            &spec(dir.path(), &[".dockerignore", "setup.py"]),
            Vec::new(),
        )
        .unwrap();
        let entries = read_back(&bytes);
        let ignores: Vec<_> = entries
            .iter()
            .filter(|(n, _)| n == ".dockerignore")
            .collect();
        assert_eq!(
            ignores.len(),
            1,
            "the user's file replaces the generated one"
        );
        assert_eq!(
            ignores[0].1.content,
            b"*.pyc\n# keep\n!keep.pyc\n.cargo-v6.Dockerfile\n"
        );
    }

    #[test]
    fn selected_rendered_dockerfile_is_not_sent_twice() {
        let dir = project();
        fs::write(dir.path().join(".cargo-v6.Dockerfile"), "stale").unwrap();
        let s = spec(dir.path(), &[".cargo-v6.Dockerfile", "setup.py"]);
        let entries = read_back(&write_context(&s, Vec::new()).unwrap());
        let dockerfiles: Vec<_> = entries
            .iter()
            .filter(|(n, _)| n == ".cargo-v6.Dockerfile")
            .collect();
        assert_eq!(dockerfiles.len(), 1);
        assert_eq!(dockerfiles[0].1.content, b"FROM scratch\n");
    }

    /// A spec that checks every file against the digests taken now.
    fn fingerprinted(dir: &Path, files: &[&str]) -> ContextSpec {
        let owned: Vec<String> = files.iter().map(|s| s.to_string()).collect();
        let digests = crate::fingerprint::digest_files(dir, &owned).unwrap();
        ContextSpec {
            expected: Some(digests.into_iter().map(|d| (d.path.clone(), d)).collect()),
            ..spec(dir, files)
        }
    }

    #[cfg(unix)]
    #[test]
    fn what_is_sent_is_what_was_fingerprinted() {
        let dir = project();
        let files = ["link.py", "pkg/__init__.py", "setup.py"];
        write_context(&fingerprinted(dir.path(), &files), Vec::new()).unwrap();

        // Changed after fingerprinting, same size: the content check catches it.
        let spec = fingerprinted(dir.path(), &files);
        fs::write(dir.path().join("pkg/__init__.py"), "x = 2\n").unwrap();
        let err = write_context(&spec, Vec::new()).unwrap_err();
        assert!(
            matches!(&err, TarError::Changed { path, what: "its content changed" } if path == "pkg/__init__.py"),
            "{err:?}"
        );
        // A link re-pointed, a mode changed.
        let spec = fingerprinted(dir.path(), &files);
        fs::remove_file(dir.path().join("link.py")).unwrap();
        std::os::unix::fs::symlink("setup.py", dir.path().join("link.py")).unwrap();
        let err = write_context(&spec, Vec::new()).unwrap_err();
        assert!(
            matches!(&err, TarError::Changed { path, .. } if path == "link.py"),
            "{err:?}"
        );
        let spec = fingerprinted(dir.path(), &files);
        set_mode(&dir.path().join("setup.py"), 0o644);
        let err = write_context(&spec, Vec::new()).unwrap_err();
        assert!(
            matches!(
                &err,
                TarError::Changed {
                    what: "its permissions changed",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_dockerignore_is_sent_as_the_link() {
        let dir = project();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "TOKEN=do-not-ship\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join(DOCKERIGNORE))
            .unwrap();
        let bytes = write_context(
            &fingerprinted(dir.path(), &[DOCKERIGNORE, "setup.py"]),
            Vec::new(),
        )
        .unwrap();
        let entries = read_back(&bytes);
        let (_, ignore) = entries.iter().find(|(n, _)| n == DOCKERIGNORE).unwrap();
        assert_eq!(ignore.kind, EntryType::Symlink);
        assert_eq!(
            ignore.link.as_deref(),
            Some(outside.path().join("secret").to_str().unwrap())
        );
        assert!(!String::from_utf8_lossy(&bytes).contains("do-not-ship"));
    }

    #[test]
    fn missing_file_is_a_source_error_naming_it() {
        let dir = project();
        let err =
            write_context(&spec(dir.path(), &["gone.py", "setup.py"]), Vec::new()).unwrap_err();
        match err {
            TarError::Source { path, source } => {
                assert_eq!(path, dir.path().join("gone.py"));
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_leaving_the_context_are_refused() {
        let dir = project();
        for bad in ["../etc/passwd", "pkg//x", "./setup.py", "/etc/passwd"] {
            let err = write_context(&spec(dir.path(), &[bad]), Vec::new()).unwrap_err();
            assert!(matches!(err, TarError::Source { .. }), "{bad}: {err:?}");
        }
    }

    #[test]
    fn dockerfile_names_must_be_literal_root_files() {
        assert!(validate_dockerfile_name(".cargo-v6.Dockerfile").is_ok());
        for bad in [
            "",
            "a/b",
            "*.Dockerfile",
            "!x",
            "#x",
            " x",
            ".dockerignore",
            "..",
        ] {
            assert!(validate_dockerfile_name(bad).is_err(), "{bad:?}");
        }
    }

    /// A writer that fails like a closed pipe.
    #[derive(Debug)]
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_destination_is_a_sink_error() {
        let dir = project();
        let err = write_context(&spec(dir.path(), &["setup.py"]), Closed).unwrap_err();
        assert!(matches!(err, TarError::Sink(_)), "{err:?}");
    }
}
