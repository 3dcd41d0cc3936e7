//! Reading the user's small files (v6.toml, metadata, `.dockerignore`, templates) without
//! trusting what the path is: a FIFO would block the read forever and a link to `/dev/zero`
//! would fill memory, so only regular files (links followed) are opened, and no more than a
//! stated number of bytes is read. Writing the files cargo v6 makes (v6.toml, v6.lock, the
//! store file, CI files, `-o` outputs) replaces them whole, so that an interrupted or failed
//! write never leaves half a file. A leaf module: std only.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The most any one manifest, metadata file or template may hold.
pub const SMALL_FILE_MAX: u64 = 4 * 1024 * 1024;

/// Reads `path` whole if it is a regular file of at most `max` bytes. The file type is checked
/// before the file is opened (opening a FIFO blocks until a writer appears); a file that grows
/// past `max` while it is read is refused too. Errors keep `NotFound` for a missing file.
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or directory is never read)",
        ));
    }
    if meta.len() > max {
        return Err(too_large(max));
    }
    let mut content = Vec::with_capacity(meta.len() as usize);
    File::open(path)?.take(max + 1).read_to_end(&mut content)?;
    if content.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(content)
}

/// [`read_regular`] as text; invalid UTF-8 is an error.
pub fn read_regular_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))
}

/// Writes `contents` to `path` whole or not at all: into a temporary file beside it (same
/// directory, so the rename cannot cross file systems), flushed to disk, then renamed over it.
/// A reader, a concurrent command or a process stopped half-way (SIGTERM, a full disk) sees
/// the old file or the new one, never a truncated mix; a failed write removes its temporary
/// file. A link at `path` is written through (its target is replaced, the link stays), and
/// the target keeps its permissions. Missing parent directories are an error (`NotFound`):
/// the callers that create them (`-o DIR/FILE`) say so.
pub fn write_whole(path: &Path, contents: &[u8]) -> io::Result<()> {
    // Through a link: replace what it points to, not the link (a workspace member's v6.toml
    // may be linked into the workspace).
    let target = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".cargo-v6-{}.tmp", std::process::id()));
    let temporary = target.with_file_name(temporary_name);
    let written = (|| {
        let mut file = File::create(&temporary)?;
        if let Ok(existing) = std::fs::metadata(&target) {
            file.set_permissions(existing.permissions())?;
        }
        io::Write::write_all(&mut file, contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn too_large(max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "larger than {} MiB, more than this file can sensibly hold",
            max / (1024 * 1024)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_write_replaces_the_file_leaves_no_temporary_and_keeps_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v6.lock");
        write_whole(&file, b"first").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_whole(&file, b"second").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"second");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // Written through a link: the link stays a link.
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        write_whole(&link, b"third").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&file).unwrap(), b"third");
        // A failed write (the target is a directory) leaves the directory and no temporary.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(write_whole(&sub, b"x").is_err());
        assert!(sub.is_dir());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        // A missing directory is an error, not created here.
        let missing = write_whole(&dir.path().join("none/out.json"), b"x").unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn regular_files_are_read_and_others_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, b"hello").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"hello");
        let err = read_regular(&file, 4).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        let missing = read_regular(&dir.path().join("none"), 4).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            read_regular(dir.path(), 4).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // A FIFO: refused before it is opened (opening it would block forever).
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(
            read_regular(&fifo, 4).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // A link to a device: followed, and refused as not regular.
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(
            read_regular(&zero, 4).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
