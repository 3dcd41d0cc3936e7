//! An image's root file system on this machine: its layers unpacked in order, as the engine
//! does, into a folder that qemu-user's `-L` then treats as `/`; and paths resolved inside
//! it as the kernel would inside the container.
//!
//! Invariants:
//! - Nothing is written outside the root: an entry whose path or hard-link target leaves it
//!   (`..`) is refused, and every path is resolved inside the root (symbolic links followed
//!   there, `..` stopping at the root), as a container sees them.
//! - Whiteouts are applied: `.wh.NAME` removes `NAME` of the layers below, `.wh..wh..opq`
//!   empties its folder of what the layers below put there.
//! - Symbolic links are written with their targets, except that an absolute target is written
//!   relative to the link (`/lib64/ld-linux-x86-64.so.2 -> ../lib/x86_64-linux-gnu/...`):
//!   qemu-user's `-L` lets the host's kernel follow a link, and an absolute target would be
//!   followed on the host (its own loader, its own `/etc`), not in the image. Inside the root
//!   both forms name the same file.
//! - No device nodes or FIFOs are made (an unprivileged user cannot, and nothing an algorithm
//!   does needs them); owners are not kept (the process runs as the invoking user), nor are
//!   set-user-id and set-group-id bits.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// The most symbolic links followed in one resolution (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// An entry's path (or a hard link's target) leaves the root.
    #[error("the entry `{path}` leaves the root file system")]
    Escapes {
        /// As written in the layer.
        path: String,
    },
    /// Symbolic links that lead into each other.
    #[error("too many levels of symbolic links resolving `{path}`")]
    Loop {
        /// The path resolved.
        path: String,
    },
    /// A compression other than gzip (or none).
    #[error("the layer is compressed with {0}, which cargo v6 cannot unpack (gzip or none)")]
    Compression(&'static str),
    /// Reading the layer or writing the file system failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UnpackError {
    let what = what.into();
    move |source| UnpackError::Io { what, source }
}

/// The path inside `root` that `path` (absolute or relative to `/`) names in a container whose
/// root is `root`: each symbolic link on the way is followed inside the root (an absolute
/// target starts again at the root; `..` stops at the root), the last one too when
/// `follow_last`. What does not exist is taken as written.
pub fn resolve(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf, UnpackError> {
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut pending: Vec<std::ffi::OsString> = Vec::new();
    push_reversed(&mut pending, Path::new(path));
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            done.pop();
            continue;
        }
        let here: PathBuf = root
            .iter()
            .chain(done.iter().map(|p| p.as_os_str()))
            .collect();
        let candidate = here.join(&part);
        let is_last = pending.is_empty();
        let is_link =
            std::fs::symlink_metadata(&candidate).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && (follow_last || !is_last) {
            links += 1;
            if links > MAX_LINKS {
                return Err(UnpackError::Loop {
                    path: path.to_owned(),
                });
            }
            let target = std::fs::read_link(&candidate)
                .map_err(io(format!("cannot read the link {}", candidate.display())))?;
            if target.is_absolute() {
                done.clear();
            }
            push_reversed(&mut pending, &target);
        } else {
            done.push(part);
        }
    }
    Ok(root
        .iter()
        .chain(done.iter().map(|p| p.as_os_str()))
        .collect())
}

/// Pushes `path`'s names onto `stack` so that the first is popped first (`.` and `/` left
/// out, `..` kept).
fn push_reversed(stack: &mut Vec<std::ffi::OsString>, path: &Path) {
    let parts: Vec<_> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// An entry's path as the layer writes it, made relative and checked: `None` for the root
/// itself, an error when it leaves the root.
fn entry_path(raw: &Path) -> Result<Option<PathBuf>, UnpackError> {
    let mut clean = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(UnpackError::Escapes {
                    path: raw.display().to_string(),
                });
            }
        }
    }
    Ok((!clean.as_os_str().is_empty()).then_some(clean))
}

/// Unpacks one layer (a tar stream, gzip-compressed or not) over `root`.
pub fn unpack_layer(root: &Path, layer: impl Read) -> Result<(), UnpackError> {
    let mut reader = BufReader::new(layer);
    let head = reader.fill_buf().map_err(io("cannot read the layer"))?;
    let tar: Box<dyn Read> = match head {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::GzDecoder::new(reader)),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => return Err(UnpackError::Compression("zstd")),
        _ => Box::new(reader),
    };
    let mut archive = tar::Archive::new(tar);
    // Paths this layer wrote: an opaque folder keeps them and loses what the layers below put.
    let mut written = HashSet::new();
    let entries = archive
        .entries()
        .map_err(io("cannot read the layer's entries"))?;
    for entry in entries {
        let mut entry = entry.map_err(io("cannot read the layer's entries"))?;
        let raw = entry
            .path()
            .map_err(io("cannot read an entry's path"))?
            .into_owned();
        let Some(relative) = entry_path(&raw)? else {
            continue;
        };
        let name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = resolve(
            root,
            &relative.parent().unwrap_or(Path::new("")).to_string_lossy(),
            true,
        )?;
        if name == ".wh..wh..opq" {
            empty_opaque(&parent, &written)?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            remove(&parent.join(hidden))?;
            continue;
        }
        std::fs::create_dir_all(&parent)
            .map_err(io(format!("cannot create {}", parent.display())))?;
        let dest = parent.join(&name);
        // No set-user-id or set-group-id bits: qemu-user cannot honour them, and a program
        // owned by the invoking user (root, maybe) that keeps them in a cache folder is a way
        // for others to become that user.
        let mode = entry.header().mode().unwrap_or(0o644) & 0o1777;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => {
                if !std::fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
                    remove(&dest)?;
                    std::fs::create_dir(&dest)
                        .map_err(io(format!("cannot create {}", dest.display())))?;
                }
                // The folder must stay writable for the entries that follow.
                set_mode(&dest, mode | 0o700)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove(&dest)?;
                let mut file = std::fs::File::create(&dest)
                    .map_err(io(format!("cannot create {}", dest.display())))?;
                std::io::copy(&mut entry, &mut file)
                    .map_err(io(format!("cannot write {}", dest.display())))?;
                set_mode(&dest, mode)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(io("cannot read a link's target"))?
                    .unwrap_or_default()
                    .into_owned();
                let names: Vec<std::ffi::OsString> = parent
                    .strip_prefix(root)
                    .map(|p| p.iter().map(ToOwned::to_owned).collect())
                    .unwrap_or_default();
                remove(&dest)?;
                symlink(&within(&target, &names), &dest)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(io("cannot read a link's target"))?
                    .unwrap_or_default();
                let Some(target) = entry_path(&target)? else {
                    return Err(UnpackError::Escapes {
                        path: raw.display().to_string(),
                    });
                };
                let source = resolve(root, &target.to_string_lossy(), false)?;
                remove(&dest)?;
                std::fs::hard_link(&source, &dest).map_err(io(format!(
                    "cannot link {} to {}",
                    dest.display(),
                    source.display()
                )))?;
            }
            // Device nodes and FIFOs are not made; extended headers are the tar reader's.
            _ => continue,
        }
        written.insert(dest);
    }
    Ok(())
}

/// A link target as written in a root, for a link whose folder is `parent` (names below the
/// root): an absolute target, or a relative one whose `..` would climb above the root, is
/// written relative to the link and with `..` stopping at the root (as inside the container),
/// so that the host's kernel, following it, stays in the root. Other targets are kept.
fn within(target: &Path, parent: &[std::ffi::OsString]) -> PathBuf {
    let mut at: Vec<std::ffi::OsString> = if target.is_absolute() {
        Vec::new()
    } else {
        parent.to_vec()
    };
    let mut climbs_out = false;
    for component in target.components() {
        match component {
            Component::ParentDir => climbs_out |= at.pop().is_none(),
            Component::Normal(name) => at.push(name.to_owned()),
            _ => {}
        }
    }
    if !target.is_absolute() && !climbs_out {
        return target.to_owned();
    }
    let common = parent.iter().zip(&at).take_while(|(a, b)| a == b).count();
    let relative: PathBuf = std::iter::repeat_n(std::ffi::OsStr::new(".."), parent.len() - common)
        .chain(at[common..].iter().map(|p| p.as_os_str()))
        .collect();
    if relative.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        relative
    }
}

/// Empties `folder` of what this layer did not write (an opaque whiteout).
fn empty_opaque(folder: &Path, written: &HashSet<PathBuf>) -> Result<(), UnpackError> {
    let Ok(children) = std::fs::read_dir(folder) else {
        return Ok(());
    };
    for child in children {
        let child = child
            .map_err(io(format!("cannot list {}", folder.display())))?
            .path();
        if !written.contains(&child) {
            remove(&child)?;
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (a folder with its content); nothing there is no error.
fn remove(path: &Path) -> Result<(), UnpackError> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => return Ok(()),
    };
    removed.map_err(io(format!("cannot remove {}", path.display())))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), UnpackError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("cannot set the mode of {}", path.display())))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<(), UnpackError> {
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<(), UnpackError> {
    std::os::unix::fs::symlink(target, link)
        .map_err(io(format!("cannot create the link {}", link.display())))
}

#[cfg(not(unix))]
fn symlink(_: &Path, link: &Path) -> Result<(), UnpackError> {
    Err(UnpackError::Io {
        what: format!("cannot create the link {}", link.display()),
        source: std::io::Error::other("symbolic links need a Unix system"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream of `entries`: (path, kind, content or link target).
    fn layer(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(match kind {
                tar::EntryType::Directory => 0o755,
                _ if path.ends_with("su") => 0o4755,
                _ => 0o644,
            });
            // Written raw: the tar builder itself refuses `..`, and a hostile layer does not.
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    header.set_link_name(data).unwrap();
                    header.set_size(0);
                    header.set_cksum();
                    builder.append(&header, std::io::empty()).unwrap();
                }
                _ => {
                    header.set_size(data.len() as u64);
                    header.set_cksum();
                    builder.append(&header, data.as_bytes()).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn read(root: &Path, path: &str) -> Option<String> {
        std::fs::read_to_string(root.join(path)).ok()
    }

    use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as L};

    #[test]
    fn layers_stack_with_whiteouts_and_opaque_folders() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let base = layer(&[
            ("etc/", D, ""),
            ("etc/a", F, "a"),
            ("etc/b", F, "b"),
            ("opt/", D, ""),
            ("opt/old", F, "old"),
            ("opt/sub/", D, ""),
            ("opt/sub/deep", F, "deep"),
            ("usr/bin/", D, ""),
            ("usr/bin/python3.11", F, "elf"),
            ("usr/bin/python3", L, "python3.11"),
            ("usr/bin/su", F, "setuid"),
        ]);
        unpack_layer(root, &gzip(&base)[..]).unwrap();
        assert_eq!(read(root, "usr/bin/python3").as_deref(), Some("elf"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("usr/bin/su"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "{mode:o}");
        // The second layer, uncompressed: a whiteout, an opaque folder with new content (the
        // marker after the new file, which must stay), a changed file, a hard link.
        let top = layer(&[
            ("etc/.wh.a", F, ""),
            ("etc/b", F, "b2"),
            ("opt/new", F, "new"),
            ("opt/.wh..wh..opq", F, ""),
            ("etc/c", H, "etc/b"),
        ]);
        unpack_layer(root, &top[..]).unwrap();
        assert_eq!(read(root, "etc/a"), None);
        assert_eq!(read(root, "etc/b").as_deref(), Some("b2"));
        assert_eq!(read(root, "etc/c").as_deref(), Some("b2"));
        assert_eq!(read(root, "opt/new").as_deref(), Some("new"));
        assert_eq!(read(root, "opt/old"), None);
        assert!(!root.join("opt/sub").exists());
        assert!(!root.join("etc/.wh.a").exists() && !root.join("opt/.wh..wh..opq").exists());
    }

    #[test]
    fn entries_that_leave_the_root_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let root = outside.path().join("root");
        std::fs::create_dir(&root).unwrap();
        for entries in [
            vec![("../escaped", F, "x")],
            vec![("a/../../escaped", F, "x")],
            vec![("etc/", D, ""), ("etc/link", H, "../escaped")],
        ] {
            let error = unpack_layer(&root, &layer(&entries)[..]).unwrap_err();
            assert!(matches!(error, UnpackError::Escapes { .. }), "{error}");
            assert!(error.to_string().contains("leaves the root"), "{error}");
        }
        // Through a link that points out, a later entry is written inside the root.
        unpack_layer(
            &root,
            &layer(&[("out", L, "/../.."), ("up", L, "../.."), ("up/f", F, "in")])[..],
        )
        .unwrap();
        assert_eq!(read(&root, "f").as_deref(), Some("in"));
        // Written so that the host, following them, stays in the root too.
        assert_eq!(std::fs::read_link(root.join("up")).unwrap(), Path::new("."));
        assert_eq!(
            std::fs::read_link(root.join("out")).unwrap(),
            Path::new(".")
        );
        assert!(!outside.path().join("f").exists() && !outside.path().join("escaped").exists());
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        // Debian's merged /usr: /lib is a link; the loader's link is absolute.
        unpack_layer(
            root,
            &layer(&[
                ("usr/lib/x86_64-linux-gnu/", D, ""),
                ("usr/lib/x86_64-linux-gnu/ld.so", F, "loader"),
                ("lib", L, "usr/lib"),
                ("lib64/", D, ""),
                (
                    "lib64/ld-linux-x86-64.so.2",
                    L,
                    "/lib/x86_64-linux-gnu/ld.so",
                ),
                ("usr/local/bin/", D, ""),
                ("usr/local/bin/python", L, "/usr/local/bin/python3"),
                ("usr/local/bin/python3", L, "../../bin/python3.11"),
                ("usr/bin/", D, ""),
                ("usr/bin/python3.11", F, "python"),
                ("loop", L, "/loop"),
            ])[..],
        )
        .unwrap();
        // Absolute targets are written relative to the link: the host follows them in the root.
        assert_eq!(
            std::fs::read_link(root.join("lib64/ld-linux-x86-64.so.2")).unwrap(),
            Path::new("../lib/x86_64-linux-gnu/ld.so")
        );
        assert_eq!(
            read(root, "lib64/ld-linux-x86-64.so.2").as_deref(),
            Some("loader")
        );
        let python = resolve(root, "/usr/local/bin/python", true).unwrap();
        assert_eq!(python, root.join("usr/bin/python3.11"));
        assert_eq!(
            resolve(root, "/usr/local/bin/python", false).unwrap(),
            root.join("usr/local/bin/python")
        );
        assert_eq!(
            resolve(root, "/lib/../../../lib/x86_64-linux-gnu/ld.so", true).unwrap(),
            root.join("usr/lib/x86_64-linux-gnu/ld.so")
        );
        assert!(matches!(
            resolve(root, "/loop", true),
            Err(UnpackError::Loop { .. })
        ));
        let zstd = [0x28, 0xb5, 0x2f, 0xfd, 0, 0];
        assert!(matches!(
            unpack_layer(root, &zstd[..]),
            Err(UnpackError::Compression("zstd"))
        ));
    }
}
