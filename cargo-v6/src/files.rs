//! Reading the user's small files (v6.toml, metadata, `.dockerignore`, templates) without
//! trusting what the path is: a FIFO would block the read forever and a link to `/dev/zero`
//! would fill memory, so only regular files (links followed) are opened, and no more than a
//! stated number of bytes is read. A leaf module: std only.

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
