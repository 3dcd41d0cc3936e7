//! The input fingerprint: a digest over everything that determines the image, computed before
//! building, so that a release already in the registry can be recognised as unchanged without
//! building it again, on any machine.
//!
//! Covered: the rendered Dockerfile, build arguments, labels (except the fingerprint label
//! itself), the base image reference *as written* (a pinned digest counts; a moving tag is
//! taken by name, since resolving it would need the network and differ between machines), and
//! every selected context path with its permission bits and content hash (a symlink by its
//! target). The encoding is length-prefixed, so no two different inputs share a preimage.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::LazyLock;

use sha2::{Digest, Sha256};

/// The image label that carries the fingerprint.
pub const LABEL: &str = "io.cargo-v6.fingerprint";

/// What the fingerprint covers besides the context files.
#[derive(Debug, Clone, Copy)]
pub struct Recipe<'a> {
    /// The rendered Dockerfile.
    pub dockerfile: &'a str,
    /// The base image reference as written (normalized).
    pub base_image: &'a str,
    /// Build arguments.
    pub build_args: &'a BTreeMap<String, String>,
    /// Labels; [`LABEL`] is skipped if present.
    pub labels: &'a BTreeMap<String, String>,
    /// Target platform, if set.
    pub platform: Option<&'a str>,
    /// The platforms of an assembled image; empty for an engine build. When set, file modes
    /// count as git records them (0644 or 0755), so that a umask does not change the
    /// fingerprint, which is a label of the image and so part of its digest.
    pub platforms: &'a [crate::oci::platform::Platform],
}

/// A context file could not be read while fingerprinting.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct FingerprintError {
    /// The file, relative to the context.
    pub path: String,
    /// Why.
    pub source: std::io::Error,
}

/// One context file as the fingerprint sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Relative, `/`-separated.
    pub path: String,
    /// Permission bits (COPY keeps them, and its cache notices them).
    pub mode: u32,
    /// SHA-256 of the content, or of the target for a symlink.
    pub content: [u8; 32],
    /// Whether it is a symlink (not followed).
    pub symlink: bool,
}

/// Hashes the context files (relative, `/`-separated) under `root`, streaming each file, on
/// every core: this pass runs before every build and republish, so it is on the critical path.
pub fn digest_files(root: &Path, files: &[String]) -> Result<Vec<FileDigest>, FingerprintError> {
    // A thread costs more than hashing a handful of small files (a workspace of 200 small
    // algorithms would start 400 of them).
    const FILES_PER_THREAD: usize = 32;
    /// The cores, asked once per run: the standard library reads the cgroup's files for it
    /// on every call, and this runs once per member of a workspace.
    static CORES: LazyLock<usize> =
        LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let wanted = files.len().div_ceil(FILES_PER_THREAD);
    let threads = match wanted {
        0 | 1 => 1,
        _ => wanted.min(*CORES),
    };
    if threads <= 1 {
        return files.iter().map(|f| digest_file(root, f)).collect();
    }
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|f| digest_file(root, f))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut digests = Vec::with_capacity(files.len());
        for worker in workers {
            for digest in worker.join().expect("hashing threads do not panic") {
                digests.push(digest?);
            }
        }
        Ok(digests)
    })
}

fn digest_file(root: &Path, file: &str) -> Result<FileDigest, FingerprintError> {
    let path = root.join(file);
    let error = |source| FingerprintError {
        path: file.to_string(),
        source,
    };
    let meta = std::fs::symlink_metadata(&path).map_err(error)?;
    let symlink = meta.file_type().is_symlink();
    let content = if symlink {
        let target = std::fs::read_link(&path).map_err(error)?;
        Sha256::digest(target.as_os_str().as_encoded_bytes()).into()
    } else if !meta.is_file() {
        // Replaced by a FIFO or device since the context was listed: opening it could block.
        return Err(error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    } else {
        content_hash(&path, meta.len()).map_err(error)?
    };
    Ok(FileDigest {
        path: file.to_string(),
        mode: meta.permissions().mode() & 0o7777,
        content,
        symlink,
    })
}

/// `sha256:HEX` over the recipe and the context files. Pure: the same inputs give the same
/// fingerprint on every machine.
pub fn compute(recipe: Recipe<'_>, files: &[FileDigest]) -> String {
    let mut hash = Sha256::new();
    let mut field = |name: &str, value: &[u8]| {
        hash.update(name.as_bytes());
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value);
    };
    field("format", b"cargo-v6 fingerprint 1");
    field("dockerfile", recipe.dockerfile.as_bytes());
    field("base", recipe.base_image.as_bytes());
    field("platform", recipe.platform.unwrap_or_default().as_bytes());
    for (key, value) in recipe.build_args {
        field("arg", key.as_bytes());
        field("value", value.as_bytes());
    }
    for (key, value) in recipe.labels.iter().filter(|(k, _)| *k != LABEL) {
        field("label", key.as_bytes());
        field("value", value.as_bytes());
    }
    // Only when set: the fingerprint of an engine build stays what it was.
    for platform in recipe.platforms {
        field("assembled for", platform.to_string().as_bytes());
    }
    let assembled = !recipe.platforms.is_empty();
    for file in files {
        field("path", file.path.as_bytes());
        let mode = match assembled {
            true => git_mode(file.mode),
            false => file.mode,
        };
        field("mode", &mode.to_le_bytes());
        field(
            if file.symlink { "symlink" } else { "content" },
            &file.content,
        );
    }
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// The mode git records for a file of mode `mode`: executable or not; what an assembled
/// image's layer gives it.
pub fn git_mode(mode: u32) -> u32 {
    match mode & 0o111 {
        0 => 0o644,
        _ => 0o755,
    }
}

/// Streams a file through SHA-256, so that large contexts are never held in memory; `len` is
/// its size when listed.
fn content_hash(path: &Path, len: u64) -> std::io::Result<[u8; 32]> {
    // No bigger than the file: zeroing 256 KiB for each of a workspace's many small files
    // costs more than hashing them.
    const SMALL: usize = 8 * 1024;
    const LARGE: usize = 256 * 1024;
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0; usize::try_from(len).map_or(LARGE, |n| n.clamp(SMALL, LARGE))];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hash.update(&buffer[..n]);
    }
    Ok(hash.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe<'a>(
        dockerfile: &'a str,
        args: &'a BTreeMap<String, String>,
        labels: &'a BTreeMap<String, String>,
    ) -> Recipe<'a> {
        Recipe {
            dockerfile,
            base_image: "docker.io/library/busybox:1",
            build_args: args,
            labels,
            platform: None,
            platforms: &[],
        }
    }

    fn fp(recipe: Recipe<'_>, root: &Path, files: &[String]) -> Result<String, FingerprintError> {
        Ok(compute(recipe, &digest_files(root, files)?))
    }

    #[test]
    fn every_input_changes_it_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        let files = vec!["a.txt".to_string()];
        let empty = BTreeMap::new();
        let base = fp(recipe("FROM x\n", &empty, &empty), dir.path(), &files).unwrap();
        assert!(base.starts_with("sha256:") && base.len() == 71);
        assert_eq!(
            base,
            fp(recipe("FROM x\n", &empty, &empty), dir.path(), &files).unwrap(),
            "deterministic"
        );
        assert_ne!(
            base,
            fp(recipe("FROM y\n", &empty, &empty), dir.path(), &files).unwrap()
        );
        let args = BTreeMap::from([("A".to_string(), "1".to_string())]);
        assert_ne!(
            base,
            fp(recipe("FROM x\n", &args, &empty), dir.path(), &files).unwrap()
        );
        let own = BTreeMap::from([(LABEL.to_string(), "sha256:old".to_string())]);
        assert_eq!(
            base,
            fp(recipe("FROM x\n", &empty, &own), dir.path(), &files).unwrap(),
            "the fingerprint label itself does not count"
        );
        std::fs::write(dir.path().join("a.txt"), "b").unwrap();
        let changed = fp(recipe("FROM x\n", &empty, &empty), dir.path(), &files).unwrap();
        assert_ne!(base, changed);
        std::fs::set_permissions(
            dir.path().join("a.txt"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(
            changed,
            fp(recipe("FROM x\n", &empty, &empty), dir.path(), &files).unwrap()
        );
    }

    #[test]
    fn symlinks_count_by_target_and_missing_files_name_their_path() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("nowhere", dir.path().join("link")).unwrap();
        let empty = BTreeMap::new();
        let files = vec!["link".to_string()];
        assert!(fp(recipe("", &empty, &empty), dir.path(), &files).is_ok());
        let err = digest_files(dir.path(), &["gone".to_string()]).unwrap_err();
        assert_eq!(err.path, "gone");
    }

    /// The read buffer follows the file's size: every size, below, at and above its bounds,
    /// hashes to the SHA-256 of the whole content, on one thread or several (over 32 files).
    #[test]
    fn every_size_hashes_its_whole_content() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = [
            0,
            1,
            8 * 1024 - 1,
            8 * 1024,
            8 * 1024 + 1,
            256 * 1024,
            300 * 1024 + 7,
        ];
        let files: Vec<(String, Vec<u8>)> = (0..40)
            .map(|i| {
                let size = sizes[i % sizes.len()];
                let content: Vec<u8> = (0..size).map(|b| (b * 31 + i) as u8).collect();
                (format!("f{i:02}"), content)
            })
            .collect();
        for (name, content) in &files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        for count in [sizes.len(), files.len()] {
            let names: Vec<String> = files[..count].iter().map(|(n, _)| n.clone()).collect();
            let digests = digest_files(dir.path(), &names).unwrap();
            for ((name, content), digest) in files.iter().zip(&digests) {
                assert_eq!(&digest.path, name);
                assert_eq!(
                    digest.content,
                    <[u8; 32]>::from(Sha256::digest(content)),
                    "{name}"
                );
            }
            assert_eq!(digests.len(), count);
        }
    }
}
