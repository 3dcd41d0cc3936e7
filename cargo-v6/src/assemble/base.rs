//! What an assembled image needs to know of its base, read from the base's own layers: the
//! Python its command runs (version, executable), where pip would install into it, the
//! distributions it already has, and its C library (for the wheels' platform tag).
//!
//! Read, not guessed from the image's name: the real vantage6 4.x base is
//! `python:3.10-slim-bookworm` (`/usr/local/lib/python3.10/site-packages`), the 5.x base a
//! Python 3.13 in `/usr/local`, and a Debian-packaged Python installs into
//! `/usr/local/lib/python3.X/dist-packages`. Pure: [`LayerFacts::read`] takes a layer's tar
//! stream, [`BaseFacts::of`] combines the layers in order, whiteouts applied.

use std::collections::BTreeMap;
use std::io::Read;

/// The facts one layer contributes, small enough to cache per layer digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerFacts {
    /// Paths that matter (interpreters, site folders, installed distributions), each with
    /// its symlink target when it is a link.
    pub paths: BTreeMap<String, Option<String>>,
    /// Paths this layer deletes from the layers below (`.wh.NAME`).
    pub whiteouts: Vec<String>,
    /// Folders this layer makes opaque (`.wh..wh..opq`): the lower layers' content is hidden.
    pub opaque: Vec<String>,
    /// The `libc6` package's version from `var/lib/dpkg/status`, when this layer writes it.
    pub libc6: Option<String>,
    /// glibc's version as its `libc.so.6` says (`release version 2.36`, or the link's
    /// `libc-2.31.so`): for bases whose packages were unpacked without dpkg's record.
    #[serde(default)]
    pub glibc: Option<String>,
}

/// Why a base cannot be assembled on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BaseError {
    /// A layer is not a tar stream.
    #[error("a layer of the base is not a tar stream: {0}")]
    Unreadable(String),
    /// No `python` on the image's `PATH`.
    #[error("the base has no `python` or `python3` on its PATH ({0})")]
    NoPython(String),
    /// The C library is not glibc from a Debian package.
    #[error(
        "cannot tell the base's C library (no glibc `libc.so.6`, no libc6 in var/lib/dpkg/status): only glibc bases (python:3.x-slim, vantage6's algorithm-base) are assembled"
    )]
    UnknownLibc,
}

/// The base's Python as pip sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseFacts {
    /// The interpreter `python` resolves to, absolute (`/usr/local/bin/python3.10`): the
    /// shebang pip writes into scripts.
    pub executable: String,
    /// `(3, 10)`.
    pub version: (u32, u32),
    /// Where pip installs, relative to the root (`usr/local/lib/python3.10/site-packages`).
    pub site: String,
    /// Where pip puts scripts, relative to the root.
    pub scripts: String,
    /// Distributions already installed where this Python sees them: normalized name ->
    /// (name as installed, version).
    pub installed: BTreeMap<String, (String, String)>,
    /// glibc's `(major, minor)`.
    pub glibc: (u32, u32),
}

impl LayerFacts {
    /// The facts of one layer, from its (uncompressed) tar stream.
    pub fn read(tar: impl Read) -> Result<LayerFacts, BaseError> {
        let unreadable = |e: std::io::Error| BaseError::Unreadable(e.to_string());
        let mut facts = LayerFacts::default();
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries().map_err(unreadable)? {
            let mut entry = entry.map_err(unreadable)?;
            let path = entry.path().map_err(unreadable)?;
            let path = path.to_string_lossy().trim_start_matches("./").to_string();
            let path = path.trim_end_matches('/').to_string();
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", &path));
            if name == ".wh..wh..opq" {
                facts.opaque.push(parent.to_string());
                continue;
            }
            if let Some(hidden) = name.strip_prefix(".wh.") {
                facts.whiteouts.push(join(parent, hidden));
                continue;
            }
            if LIBC.is_match(&path) {
                facts.glibc = match entry.header().entry_type() {
                    tar::EntryType::Symlink => entry
                        .link_name()
                        .map_err(unreadable)?
                        .and_then(|l| glibc_of_name(&l.to_string_lossy())),
                    _ => glibc_in_binary(&mut entry).map_err(unreadable)?,
                };
                continue;
            }
            if path == "var/lib/dpkg/status" {
                let mut text = String::new();
                // The status file of a slim image is a few hundred KiB.
                (&mut entry)
                    .take(64 << 20)
                    .read_to_string(&mut text)
                    .map_err(unreadable)?;
                facts.libc6 = libc6_version(&text);
                continue;
            }
            for key in interesting(&path) {
                let link = match (key == path, entry.header().entry_type()) {
                    (true, tar::EntryType::Symlink) => entry
                        .link_name()
                        .map_err(unreadable)?
                        .map(|l| l.to_string_lossy().into_owned()),
                    _ => None,
                };
                facts.paths.entry(key).or_insert(link);
            }
        }
        Ok(facts)
    }
}

/// glibc's shared object, whose name every glibc system loads.
static LIBC: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^(?:usr/)?lib(?:64)?/(?:[a-z0-9_]+-linux-gnu/)?libc\.so\.6$")
        .expect("valid regex")
});

/// `libc-2.31.so` -> `2.31`.
fn glibc_of_name(name: &str) -> Option<String> {
    let name = name.rsplit('/').next()?;
    Some(name.strip_prefix("libc-")?.strip_suffix(".so")?.to_string())
}

/// The version in glibc's banner (`... stable release version 2.36.`), read from the shared
/// object itself (a few MiB, read once per layer that has it).
fn glibc_in_binary(binary: &mut impl Read) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    binary.take(32 << 20).read_to_end(&mut bytes)?;
    const BANNER: &[u8] = b"release version ";
    let found = bytes.windows(BANNER.len()).position(|w| w == BANNER);
    Ok(found.map(|at| {
        bytes[at + BANNER.len()..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .map(|b| *b as char)
            .collect::<String>()
            .trim_end_matches('.')
            .to_string()
    }))
}

/// The paths to remember for `path`: the interpreter itself, the site folder it is in, and
/// the distribution's metadata folder (not every file in it).
fn interesting(path: &str) -> Vec<String> {
    static PYTHON: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^(?:usr/local/bin|usr/bin|bin)/python(?:3(?:\.\d+)?)?$")
            .expect("valid regex")
    });
    static SITE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^(usr/(?:local/)?lib/python3(?:\.\d+)?/(?:site|dist)-packages)(?:/([^/]+\.(?:dist|egg)-info))?",
        )
        .expect("valid regex")
    });
    if PYTHON.is_match(path) {
        return vec![path.to_string()];
    }
    let Some(found) = SITE.captures(path) else {
        return Vec::new();
    };
    let mut keys = vec![found[1].to_string()];
    keys.extend(found.get(2).map(|dist| join(&found[1], dist.as_str())));
    keys
}

fn join(parent: &str, name: &str) -> String {
    match parent.is_empty() {
        true => name.to_string(),
        false => format!("{parent}/{name}"),
    }
}

/// `Version:` of the `Package: libc6` stanza.
fn libc6_version(status: &str) -> Option<String> {
    status.split("\n\n").find_map(|stanza| {
        let mut lines = stanza.lines();
        lines
            .clone()
            .any(|l| l.trim() == "Package: libc6")
            .then(|| {
                lines
                    .find_map(|l| l.strip_prefix("Version: "))
                    .map(|v| v.trim().to_string())
            })?
    })
}

impl BaseFacts {
    /// The facts of a base whose layers (in order, lowest first) have `layers`, and whose
    /// configuration's `PATH` is `path`.
    pub fn of(layers: &[LayerFacts], path: &str) -> Result<BaseFacts, BaseError> {
        let mut paths: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut libc6 = None;
        let mut glibc = None;
        for layer in layers {
            let under = |dir: &str, p: &str| p == dir || p.starts_with(&format!("{dir}/"));
            for dir in &layer.opaque {
                paths.retain(|p, _| !(p.starts_with(&format!("{dir}/"))));
            }
            for gone in &layer.whiteouts {
                paths.retain(|p, _| !under(gone, p));
            }
            paths.extend(layer.paths.clone());
            if layer.libc6.is_some() {
                libc6 = layer.libc6.clone();
            }
            if layer.glibc.is_some() {
                glibc = layer.glibc.clone();
            }
        }
        let (executable, version) = python(&paths, path)?;
        let in_local = executable.starts_with("/usr/local/");
        let own_site = format!(
            "usr/local/lib/python{}.{}/site-packages",
            version.0, version.1
        );
        let local_dist = format!(
            "usr/local/lib/python{}.{}/dist-packages",
            version.0, version.1
        );
        // A Python built into /usr/local (python:3.x images, pyenv) installs into its own
        // site-packages; Debian's /usr/bin/python3 has pip install into dist-packages.
        let (site, visible) = match in_local && paths.contains_key(&own_site) {
            true => (own_site.clone(), vec![own_site]),
            false => (
                local_dist.clone(),
                vec![
                    local_dist,
                    "usr/lib/python3/dist-packages".to_string(),
                    format!("usr/lib/python{}.{}/dist-packages", version.0, version.1),
                ],
            ),
        };
        let mut installed = BTreeMap::new();
        for key in paths.keys() {
            let Some((dir, meta)) = key.rsplit_once('/') else {
                continue;
            };
            if !visible.iter().any(|v| v == dir) {
                continue;
            }
            if let Some((name, version)) = distribution(meta) {
                installed.insert(normalize(&name), (name, version));
            }
        }
        let glibc = libc6
            .as_deref()
            .or(glibc.as_deref())
            .and_then(glibc_of)
            .ok_or(BaseError::UnknownLibc)?;
        Ok(BaseFacts {
            executable,
            version,
            site,
            scripts: "usr/local/bin".to_string(),
            installed,
            glibc,
        })
    }
}

/// The interpreter `python` (else `python3`) names on `path`, symlinks followed inside the
/// image, and its version from the name it resolves to (`python3.10`).
fn python(
    paths: &BTreeMap<String, Option<String>>,
    path: &str,
) -> Result<(String, (u32, u32)), BaseError> {
    let dirs: Vec<&str> = path
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| d.trim_matches('/'))
        .collect();
    // Images without a `python` or `python3` link still name their interpreter `python3.X`.
    let versioned = dirs.iter().find_map(|dir| {
        paths
            .range(format!("{dir}/python3.")..)
            .map(|(p, _)| p)
            .take_while(|p| p.starts_with(&format!("{dir}/python3.")))
            .filter(|p| p.rsplit('/').next().and_then(version_of).is_some())
            .max_by_key(|p| p.rsplit('/').next().and_then(version_of))
            .and_then(|p| p.rsplit('/').next().map(str::to_string))
    });
    let programs = ["python".to_string(), "python3".to_string()];
    for program in programs.iter().chain(versioned.as_ref()) {
        for dir in &dirs {
            let mut at = format!("{dir}/{program}");
            for _ in 0..16 {
                let Some(link) = paths.get(&at) else {
                    break;
                };
                match link {
                    Some(target) if target.starts_with('/') => {
                        at = target.trim_start_matches('/').to_string();
                    }
                    Some(target) => {
                        let parent = at.rsplit_once('/').map_or("", |(p, _)| p);
                        at = join(parent, target);
                    }
                    None => {
                        let name = at.rsplit('/').next().unwrap_or_default();
                        if let Some(version) = version_of(name) {
                            return Ok((format!("/{at}"), version));
                        }
                        break;
                    }
                }
            }
        }
    }
    Err(BaseError::NoPython(path.to_string()))
}

/// `python3.10` -> `(3, 10)`.
fn version_of(name: &str) -> Option<(u32, u32)> {
    let (major, minor) = name.strip_prefix("python")?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// `2.36-9+deb12u7` -> `(2, 36)`.
fn glibc_of(version: &str) -> Option<(u32, u32)> {
    let upstream = version.split(['-', '+', '~']).next()?;
    let (major, minor) = upstream.split_once('.')?;
    let minor: String = minor.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// `pandas-2.2.3.dist-info` -> `("pandas", "2.2.3")`; Debian's
/// `six-1.16.0.egg-info` and `numpy-1.24.2.egg-info` too (the `-py3.11` suffix dropped).
fn distribution(meta: &str) -> Option<(String, String)> {
    let stem = meta
        .strip_suffix(".dist-info")
        .or_else(|| meta.strip_suffix(".egg-info"))?;
    let mut parts = stem.splitn(3, '-');
    let name = parts.next()?.to_string();
    let version = parts.next()?.to_string();
    Some((name, version))
}

/// The name as PEP 503 compares it: lower case, runs of `-`, `_`, `.` as one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        match c {
            '-' | '_' | '.' => {
                if !out.ends_with('-') {
                    out.push('-');
                }
            }
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream of `entries`: (path, Some(link)) for symlinks, (path, None) for files
    /// (with `content` for the dpkg status).
    fn layer(entries: &[(&str, Option<&str>)], status: Option<&str>) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, link) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o755);
            match link {
                Some(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder
                        .append_link(&mut header, path, target)
                        .expect("link");
                }
                None => {
                    header.set_size(0);
                    builder
                        .append_data(&mut header, path, std::io::empty())
                        .expect("file");
                }
            }
        }
        if let Some(status) = status {
            let mut header = tar::Header::new_gnu();
            header.set_size(status.len() as u64);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, "var/lib/dpkg/status", status.as_bytes())
                .expect("status");
        }
        builder.into_inner().expect("tar")
    }

    const STATUS: &str = "Package: base-files\nVersion: 12.4\n\nPackage: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u7\n\n";

    #[test]
    fn a_python_org_base_installs_into_its_site_packages() {
        let bytes = layer(
            &[
                ("usr/local/bin/python", Some("python3")),
                ("usr/local/bin/python3", Some("python3.10")),
                ("usr/local/bin/python3.10", None),
                (
                    "usr/local/lib/python3.10/site-packages/pip-23.0.1.dist-info/METADATA",
                    None,
                ),
                (
                    "usr/local/lib/python3.10/site-packages/pandas/__init__.py",
                    None,
                ),
                (
                    "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
                    None,
                ),
            ],
            Some(STATUS),
        );
        let facts = LayerFacts::read(&bytes[..]).unwrap();
        let base = BaseFacts::of(&[facts], "/usr/local/bin:/usr/bin:/bin").unwrap();
        assert_eq!(base.executable, "/usr/local/bin/python3.10");
        assert_eq!(base.version, (3, 10));
        assert_eq!(base.site, "usr/local/lib/python3.10/site-packages");
        assert_eq!(base.glibc, (2, 36));
        // Debian's own dist-packages is not on a python.org interpreter's path.
        assert_eq!(base.installed.keys().collect::<Vec<_>>(), ["pip"]);
    }

    #[test]
    fn a_debian_python_installs_into_local_dist_packages_and_sees_debian_packages() {
        let bytes = layer(
            &[
                ("usr/bin/python", Some("python3")),
                ("usr/bin/python3", Some("python3.11")),
                ("usr/bin/python3.11", None),
                (
                    "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
                    None,
                ),
                (
                    "usr/local/lib/python3.11/dist-packages/vantage6_algorithm_tools-4.15.2.dist-info/RECORD",
                    None,
                ),
            ],
            Some(STATUS),
        );
        let facts = LayerFacts::read(&bytes[..]).unwrap();
        let base = BaseFacts::of(
            &[facts],
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
        )
        .unwrap();
        assert_eq!(base.executable, "/usr/bin/python3.11");
        assert_eq!(base.site, "usr/local/lib/python3.11/dist-packages");
        assert_eq!(
            base.installed.get("vantage6-algorithm-tools"),
            Some(&("vantage6_algorithm_tools".into(), "4.15.2".into()))
        );
        assert_eq!(
            base.installed.get("six").map(|v| v.1.as_str()),
            Some("1.16.0")
        );
    }

    #[test]
    fn a_later_layer_whiteout_removes_a_distribution() {
        let lower = layer(
            &[
                ("usr/local/bin/python3.10", None),
                (
                    "usr/local/lib/python3.10/site-packages/numpy-1.0.dist-info/METADATA",
                    None,
                ),
                (
                    "usr/local/lib/python3.10/site-packages/six-1.0.dist-info/METADATA",
                    None,
                ),
            ],
            Some(STATUS),
        );
        let upper = layer(
            &[
                (
                    "usr/local/lib/python3.10/site-packages/.wh.numpy-1.0.dist-info",
                    None,
                ),
                (
                    "usr/local/lib/python3.10/site-packages/numpy-2.0.dist-info/METADATA",
                    None,
                ),
            ],
            None,
        );
        let layers = [
            LayerFacts::read(&lower[..]).unwrap(),
            LayerFacts::read(&upper[..]).unwrap(),
        ];
        let base = BaseFacts::of(&layers, "/usr/local/bin").unwrap();
        assert_eq!(base.executable, "/usr/local/bin/python3.10");
        assert_eq!(
            base.installed.get("numpy").map(|v| v.1.as_str()),
            Some("2.0")
        );
        assert_eq!(base.installed.len(), 2);
        // An opaque folder hides everything below it.
        let opaque = layer(
            &[("usr/local/lib/python3.10/site-packages/.wh..wh..opq", None)],
            None,
        );
        let layers = [layers[0].clone(), LayerFacts::read(&opaque[..]).unwrap()];
        assert!(
            BaseFacts::of(&layers, "/usr/local/bin")
                .unwrap()
                .installed
                .is_empty()
        );
    }

    #[test]
    fn no_python_or_no_libc_is_said() {
        let bytes = layer(&[("bin/sh", None)], Some(STATUS));
        let facts = LayerFacts::read(&bytes[..]).unwrap();
        assert!(matches!(
            BaseFacts::of(&[facts], "/bin"),
            Err(BaseError::NoPython(_))
        ));
        let bytes = layer(&[("usr/bin/python3.11", None)], None);
        let facts = LayerFacts::read(&bytes[..]).unwrap();
        assert_eq!(
            BaseFacts::of(&[facts], "/usr/bin"),
            Err(BaseError::UnknownLibc)
        );
    }

    #[test]
    fn glibc_is_read_from_its_shared_object_without_dpkg() {
        let mut builder = tar::Builder::new(Vec::new());
        let binary =
            b"\x7fELF....GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36.\n...";
        let mut header = tar::Header::new_gnu();
        header.set_size(binary.len() as u64);
        header.set_mode(0o755);
        builder
            .append_data(
                &mut header,
                "usr/lib/aarch64-linux-gnu/libc.so.6",
                &binary[..],
            )
            .unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o755);
        builder
            .append_data(&mut header, "usr/bin/python3.11", std::io::empty())
            .unwrap();
        let bytes = builder.into_inner().unwrap();
        let facts = LayerFacts::read(&bytes[..]).unwrap();
        assert_eq!(facts.glibc.as_deref(), Some("2.36"));
        let base = BaseFacts::of(&[facts], "/usr/bin").unwrap();
        assert_eq!(base.glibc, (2, 36));
        assert_eq!(glibc_of_name("libc-2.31.so").as_deref(), Some("2.31"));
    }

    #[test]
    fn names_compare_as_pep_503_says() {
        assert_eq!(
            normalize("Vantage6_Algorithm.Tools"),
            "vantage6-algorithm-tools"
        );
        assert_eq!(glibc_of("2.31-13+deb11u5"), Some((2, 31)));
        assert_eq!(
            distribution("numpy-1.24.2-py3.11.egg-info"),
            Some(("numpy".into(), "1.24.2".into()))
        );
    }
}
