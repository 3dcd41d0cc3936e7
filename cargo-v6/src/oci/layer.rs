//! A layer as cargo v6 writes it itself: a gzip'd tar whose bytes depend only on what is put in
//! it, so that the same files give the same layer digest on any machine (part 13's
//! reproducible images). Streaming, in O(1) memory: entries go through the tar writer, the
//! hash of the tar (the layer's diff id), gzip and the hash of the gzip (its digest) to the
//! caller's writer, and nothing is kept.
//!
//! What makes it reproducible, as ko's `pkg/build/tar.go` does it:
//! - nothing is read from the host's metadata: every entry has owner 0:0 with no user or group
//!   name, the one `mtime` given for the layer, and the mode the caller gives (the modes git
//!   records, 0o644 or 0o755, not the umask of the clone);
//! - the caller adds entries in byte order of their paths, and the writer refuses any other
//!   order, so two walks of the same tree cannot give two layers;
//! - long names use the tar crate's GNU `././@LongLink` entries, whose own header is fixed
//!   (mode 0o644, owner 0, mtime 0);
//! - gzip by flate2's pure-Rust backend (miniz_oxide, the same code on every machine) at a
//!   fixed level, with no file name and mtime 0 in its header.
//!
//! A layer writer that failed (an I/O error, a file that changed size while read) has written
//! a partial entry: every later call fails with [`LayerError::Broken`], and its output must be
//! dropped.

use std::io::{self, Read, Write};

use flate2::{Compression, GzBuilder, write::GzEncoder};
use sha2::{Digest as _, Sha256};

use super::reference::Digest;

/// The gzip level: 6, zlib's default and what `docker push` writes (Go's default level).
/// Measured on this machine (2 shared cores, release build, miniz_oxide) on 32 MiB of a Python
/// installation's files (`.py`, `.so`, `.json`): level 1 (`fast`) 0.24 s to 34.2% of the size,
/// level 6 1.37 s to 25.6%, level 9 3.71 s to 25.4%; on 32 MiB of random bytes (the
/// benchmark's data) 0.22 s, 1.06 s and 1.11 s, all to 100%. A layer is written once per
/// build but pulled by every node of a collaboration, so a third less to transfer is worth
/// the second; 9 buys nothing more. Changing it changes every layer digest.
const LEVEL: u32 = 6;

/// A refused entry, or a failed write.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The path is not relative, `/`-separated, with no empty, `.` or `..` part.
    #[error("`{path}` is not a path inside a layer: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// Why, completing "... is not a path inside a layer: ".
        reason: &'static str,
    },
    /// An entry came after one whose path sorts after it, or the same path came twice.
    #[error(
        "`{path}` comes after `{previous}`: entries are added once each, in byte order of their paths"
    )]
    Order {
        /// The entry refused.
        path: String,
        /// The entry before it.
        previous: String,
    },
    /// A mode with bits beyond the permission bits (file type bits belong to the entry type).
    #[error("`{path}` has mode {mode:#o}; a layer entry's mode has only permission bits (0o7777)")]
    Mode {
        /// The entry.
        path: String,
        /// The mode given.
        mode: u32,
    },
    /// A symlink target that is empty or holds a NUL byte.
    #[error("the symlink `{path}` has an empty target or one with a NUL byte")]
    Target {
        /// The symlink.
        path: String,
    },
    /// A file gave other than the length announced: it changed while it was read.
    #[error("`{path}` changed while it was read: {expected} bytes announced, {found}")]
    Length {
        /// The file.
        path: String,
        /// The length announced.
        expected: u64,
        /// What was read: "only N read" or "more to read".
        found: String,
    },
    /// Reading a file or writing the layer failed.
    #[error("writing `{path}` into the layer: {source}")]
    Io {
        /// The entry being written, or `the end of the layer`.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// An earlier call failed: the layer holds a partial entry.
    #[error("the layer is unusable after an earlier error")]
    Broken,
}

/// What a finished layer is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDigests {
    /// The sha256 of the gzip bytes: the blob's digest in the manifest.
    pub digest: Digest,
    /// The sha256 of the uncompressed tar: its entry in the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// The size of the gzip bytes.
    pub size: u64,
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, and the digest of what went through.
    fn finish(self) -> (W, Digest, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hash.finalize()));
        let digest = Digest::parse(&digest).expect("a sha256 digest is a valid digest");
        (self.inner, digest, self.size)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader giving exactly `left` bytes of `inner`, and an error when `inner` has more: a
/// file that grew while read. (One that shrank is found by the count read.)
struct Exactly<'a> {
    inner: &'a mut dyn Read,
    left: u64,
    grew: bool,
}

impl Read for Exactly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // The end announced: more from the file means it grew.
            if self.inner.read(&mut [0u8])? > 0 {
                self.grew = true;
                return Err(io::Error::other("the file grew while read"));
            }
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// A deterministic layer being written to `W` (see the module's documentation).
pub struct LayerWriter<W: Write> {
    tar: tar::Builder<Hashing<GzEncoder<Hashing<W>>>>,
    mtime: u64,
    /// The last path added, to keep the order.
    previous: Option<String>,
    broken: bool,
}

impl<W: Write> LayerWriter<W> {
    /// A layer written to `out`, each entry with modification time `mtime` (seconds since the
    /// epoch: `SOURCE_DATE_EPOCH`, the commit's time).
    pub fn new(out: W, mtime: u64) -> Self {
        let gzip = GzBuilder::new()
            .mtime(0)
            .write(Hashing::new(out), Compression::new(LEVEL));
        LayerWriter {
            tar: tar::Builder::new(Hashing::new(gzip)),
            mtime,
            previous: None,
            broken: false,
        }
    }

    /// Adds the directory `path` with `mode` (0o755).
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<(), LayerError> {
        let mut header = self.header(path, tar::EntryType::Directory, mode, 0)?;
        self.write(path, |tar| tar.append_data(&mut header, path, io::empty()))
    }

    /// Adds the regular file `path` with `mode` (0o644 or 0o755) and the `len` bytes of
    /// `contents`; a `contents` of another length is refused ([`LayerError::Length`]).
    pub fn file(
        &mut self,
        path: &str,
        mode: u32,
        len: u64,
        contents: &mut dyn Read,
    ) -> Result<(), LayerError> {
        let mut header = self.header(path, tar::EntryType::Regular, mode, len)?;
        let mut exactly = Exactly {
            inner: contents,
            left: len,
            grew: false,
        };
        let written = self.write(path, |tar| tar.append_data(&mut header, path, &mut exactly));
        let length = |found: String| LayerError::Length {
            path: path.to_owned(),
            expected: len,
            found,
        };
        if exactly.grew {
            return Err(length("more to read".to_owned()));
        }
        written?;
        if exactly.left > 0 {
            // The entry is shorter than its header says: the tar is corrupt from here on.
            self.broken = true;
            return Err(length(format!("only {} read", len - exactly.left)));
        }
        Ok(())
    }

    /// Adds the symbolic link `path` to `target` (mode 0o777, as `ln -s` makes it).
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), LayerError> {
        if target.is_empty() || target.contains('\0') {
            return Err(LayerError::Target {
                path: path.to_owned(),
            });
        }
        let mut header = self.header(path, tar::EntryType::Symlink, 0o777, 0)?;
        self.write(path, |tar| tar.append_link(&mut header, path, target))
    }

    /// Ends the tar and the gzip stream; the writer and the layer's digests.
    pub fn finish(self) -> Result<(W, LayerDigests), LayerError> {
        if self.broken {
            return Err(LayerError::Broken);
        }
        let io = |source| LayerError::Io {
            path: "the end of the layer".to_owned(),
            source,
        };
        let (gzip, diff_id, _) = self.tar.into_inner().map_err(io)?.finish();
        let (out, digest, size) = gzip.finish().map_err(io)?.finish();
        Ok((
            out,
            LayerDigests {
                digest,
                diff_id,
                size,
            },
        ))
    }

    /// The header of an entry, after checking its path, order and mode.
    fn header(
        &mut self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        size: u64,
    ) -> Result<tar::Header, LayerError> {
        if self.broken {
            return Err(LayerError::Broken);
        }
        check_path(path)?;
        if let Some(previous) = &self.previous
            && previous.as_bytes() >= path.as_bytes()
        {
            return Err(LayerError::Order {
                path: path.to_owned(),
                previous: previous.clone(),
            });
        }
        if mode > 0o7777 {
            return Err(LayerError::Mode {
                path: path.to_owned(),
                mode,
            });
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        header.set_size(size);
        Ok(header)
    }

    /// Runs `append` on the tar, marking the writer broken when it fails.
    fn write(
        &mut self,
        path: &str,
        append: impl FnOnce(&mut tar::Builder<Hashing<GzEncoder<Hashing<W>>>>) -> io::Result<()>,
    ) -> Result<(), LayerError> {
        self.previous = Some(path.to_owned());
        append(&mut self.tar).map_err(|source| {
            self.broken = true;
            LayerError::Io {
                path: path.to_owned(),
                source,
            }
        })
    }
}

/// Whether `path` names something inside a layer: relative, `/`-separated, each part a name.
fn check_path(path: &str) -> Result<(), LayerError> {
    let refuse = |reason| {
        Err(LayerError::Path {
            path: path.to_owned(),
            reason,
        })
    };
    if path.starts_with('/') {
        return refuse("it is absolute");
    }
    if path.contains('\0') {
        return refuse("it holds a NUL byte");
    }
    for part in path.split('/') {
        match part {
            "" => return refuse("it has an empty part"),
            "." | ".." => return refuse("it has a `.` or `..` part"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry of a test layer.
    enum Entry<'a> {
        Dir(&'a str, u32),
        File(&'a str, u32, &'a [u8]),
        Link(&'a str, &'a str),
    }

    fn layer(mtime: u64, entries: &[Entry]) -> (Vec<u8>, LayerDigests) {
        let mut writer = LayerWriter::new(Vec::new(), mtime);
        for entry in entries {
            match entry {
                Entry::Dir(path, mode) => writer.dir(path, *mode),
                Entry::File(path, mode, data) => {
                    writer.file(path, *mode, data.len() as u64, &mut &data[..])
                }
                Entry::Link(path, target) => writer.symlink(path, target),
            }
            .unwrap();
        }
        writer.finish().unwrap()
    }

    const LONG: &str = "usr/local/lib/python3.10/site-packages/a_package_with_a_long_name/and_a/deeply/nested/module_of_its_own.py";

    fn sample() -> Vec<Entry<'static>> {
        vec![
            Entry::Dir("app", 0o755),
            Entry::File("app/run.sh", 0o755, b"#!/bin/sh\necho hi\n"),
            Entry::File("app/v6.toml", 0o644, b"[algorithm]\n"),
            Entry::Link("bin", "usr/bin"),
            Entry::File(LONG, 0o644, b"x = 1\n"),
        ]
    }

    #[test]
    fn the_same_entries_give_the_same_layer() {
        let (bytes, digests) = layer(1_700_000_000, &sample());
        let (again, digests_again) = layer(1_700_000_000, &sample());
        assert_eq!(bytes, again);
        assert_eq!(digests, digests_again);
        assert_eq!(digests.size, bytes.len() as u64);
        assert_eq!(digests.digest, super::super::manifest::digest_of(&bytes));
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(digests.diff_id, super::super::manifest::digest_of(&tar));
        // The gzip header: no file name, mtime 0 (bytes 4..8), so nothing of the host.
        assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
    }

    /// The digests of one layer, fixed: the promise is the same digest on any machine and
    /// with any later build of cargo v6, so a change of the tar crate's headers or of
    /// miniz_oxide's output (a dependency update) must show here, not in users' digests.
    #[test]
    fn a_known_layer_keeps_its_digests() {
        let (_, digests) = layer(1_700_000_000, &sample());
        assert_eq!(
            digests.diff_id.as_str(),
            "sha256:d5cb9c0fb6c7577f02a2a10844cf91fffe3dffacc9fa32a6a8e6e2035f767091"
        );
        assert_eq!(
            digests.digest.as_str(),
            "sha256:e17a1f0315c4bd2940899f2678e45c6e63991b910baf0b17e7c3f2390c22396e"
        );
    }

    #[test]
    fn mtime_mode_content_and_order_each_change_the_digest() {
        let (_, base) = layer(1_700_000_000, &sample());
        let (_, later) = layer(1_700_000_001, &sample());
        assert_ne!(base.digest, later.digest);
        assert_ne!(base.diff_id, later.diff_id);

        let mut mode = sample();
        mode[2] = Entry::File("app/v6.toml", 0o755, b"[algorithm]\n");
        assert_ne!(layer(1_700_000_000, &mode).1.diff_id, base.diff_id);

        let mut content = sample();
        content[2] = Entry::File("app/v6.toml", 0o644, b"[algorithm]\r");
        assert_ne!(layer(1_700_000_000, &content).1.diff_id, base.diff_id);

        // Another set of names in order: another layer. (The same names out of order are
        // refused: see `refusals`.)
        let mut renamed = sample();
        renamed[1] = Entry::File("app/run.bash", 0o755, b"#!/bin/sh\necho hi\n");
        assert_ne!(layer(1_700_000_000, &renamed).1.diff_id, base.diff_id);
    }

    #[test]
    fn the_tar_reads_back_with_the_names_modes_times_and_owners_given() {
        let (bytes, _) = layer(1_234_567_890, &sample());
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), 1_234_567_890);
            assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
            assert_eq!(header.username().unwrap(), Some(""));
            assert_eq!(header.groupname().unwrap(), Some(""));
            let kind = header.entry_type();
            let mode = header.mode().unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let link = entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            seen.push((path, kind, mode, link, data));
        }
        let expected = vec![
            ("app".into(), tar::EntryType::Directory, 0o755, None, vec![]),
            (
                "app/run.sh".into(),
                tar::EntryType::Regular,
                0o755,
                None,
                b"#!/bin/sh\necho hi\n".to_vec(),
            ),
            (
                "app/v6.toml".into(),
                tar::EntryType::Regular,
                0o644,
                None,
                b"[algorithm]\n".to_vec(),
            ),
            (
                "bin".into(),
                tar::EntryType::Symlink,
                0o777,
                Some("usr/bin".into()),
                vec![],
            ),
            (
                LONG.into(),
                tar::EntryType::Regular,
                0o644,
                None,
                b"x = 1\n".to_vec(),
            ),
        ];
        assert_eq!(seen, expected);
    }

    #[test]
    fn refusals() {
        let mut writer = LayerWriter::new(Vec::new(), 0);
        for (path, reason) in [
            ("/etc/passwd", "it is absolute"),
            ("a//b", "it has an empty part"),
            ("a/", "it has an empty part"),
            ("", "it has an empty part"),
            ("a/../b", "it has a `.` or `..` part"),
            ("./a", "it has a `.` or `..` part"),
            ("a\0b", "it holds a NUL byte"),
        ] {
            match writer.dir(path, 0o755) {
                Err(LayerError::Path { reason: r, .. }) => assert_eq!(r, reason, "{path:?}"),
                other => panic!("{path:?}: {other:?}"),
            }
        }
        assert!(matches!(
            writer.dir("a", 0o40755),
            Err(LayerError::Mode { mode: 0o40755, .. })
        ));
        assert!(matches!(
            writer.symlink("a", ""),
            Err(LayerError::Target { .. })
        ));
        writer.dir("b", 0o755).unwrap();
        // Out of order, and twice.
        for path in ["a", "b"] {
            match writer.dir(path, 0o755) {
                Err(LayerError::Order { previous, .. }) => assert_eq!(previous, "b"),
                other => panic!("{path}: {other:?}"),
            }
        }
        // Refusals write nothing: the layer is still whole.
        writer.file("c", 0o644, 1, &mut &b"c"[..]).unwrap();
        let (bytes, _) = writer.finish().unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b", "c"]);
    }

    #[test]
    fn a_file_that_changed_size_while_read_is_refused_and_breaks_the_layer() {
        let mut grew = LayerWriter::new(Vec::new(), 0);
        match grew.file("f", 0o644, 3, &mut &b"four"[..]) {
            Err(LayerError::Length {
                expected: 3, found, ..
            }) => assert_eq!(found, "more to read"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(grew.dir("g", 0o755), Err(LayerError::Broken)));
        assert!(matches!(grew.finish(), Err(LayerError::Broken)));

        let mut shrank = LayerWriter::new(Vec::new(), 0);
        match shrank.file("f", 0o644, 5, &mut &b"four"[..]) {
            Err(LayerError::Length {
                expected: 5, found, ..
            }) => assert_eq!(found, "only 4 read"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(shrank.finish(), Err(LayerError::Broken)));
    }
}
