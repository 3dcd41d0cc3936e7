//! The install layer: the project and the dependencies the base lacks, resolved and laid out
//! for the image's platform by uv on the host, as `pip install /app` would lay them out in
//! the base.
//!
//! uv, not pip: `uv pip install --target DIR --python-platform aarch64-manylinux_2_36
//! --python-version 3.11` resolves and installs for another platform without running
//! anything of it, building pure-Python sdists (and the project's own wheel) on the host; pip's
//! `--platform` refuses sdists. vantage6 5.x bases already install with uv.
//!
//! The target folder is seeded with the metadata of every distribution the base has, so uv
//! leaves out what is there at a satisfying version, as pip in the base would. What uv writes
//! that pip would not, or that differs per machine, is rewritten: `direct_url.json` names
//! `file:///app` (the project's folder in the image, as pip records it) instead of the host's
//! temporary copy, uv's own `uv_cache.json` (a timestamp) and `uv_build.json` are dropped,
//! scripts get the base's interpreter as shebang, and RECORD says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use super::base::{BaseFacts, normalize};

/// One file of the install layer, its path inside the image (relative to `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerFile {
    /// A folder.
    Dir(String),
    /// A file on disk (under the install's work folder), and whether it is executable.
    File {
        /// Path in the image.
        path: String,
        /// Where its bytes are.
        source: PathBuf,
        /// 0o755 for scripts and shared objects marked executable, else 0o644.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Path in the image.
        path: String,
        /// Its target, as written.
        target: String,
    },
}

impl LayerFile {
    /// Its path in the image.
    pub fn path(&self) -> String {
        match self {
            LayerFile::Dir(path) => path.clone(),
            LayerFile::File { path, .. } | LayerFile::Symlink { path, .. } => path.clone(),
        }
    }
}

/// What to install, for which platform.
#[derive(Debug)]
pub struct Install<'a> {
    /// The uv program.
    pub uv: &'a Path,
    /// What is installed: the project's wheel ([`build_wheel`]), or (when no wheel can be
    /// built here) a copy of the project, which uv builds for this install.
    pub project: &'a Path,
    /// The folder the project lives in inside the image (`/app`).
    pub app_dir: &'a str,
    /// The base's Python.
    pub base: &'a BaseFacts,
    /// The image's CPU architecture as OCI names it (`amd64`, `arm64`).
    pub architecture: &'a str,
    /// Pinned versions every dependency must take (a requirements file, hashes allowed).
    pub constraints: Option<&'a Path>,
    /// A new, empty folder for uv's target.
    pub work: &'a Path,
}

/// Why the install layer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// uv is not there.
    #[error(
        "cannot run `{program}`: {source}; assembling an image needs uv on the host (`pip install uv`, or see https://docs.astral.sh/uv/)"
    )]
    NoUv {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The project (or a local dependency built here) has compiled code, built for this
    /// machine.
    #[error(
        "`{0}` has compiled code, built on this machine for this machine only: an assembled image can hold only pure-Python code built here (dependencies from an index may have C code: their wheels are taken for each platform); remove `[build] platforms` to build with the engine"
    )]
    Compiled(String),
    /// The project needs another version of a distribution the base has.
    #[error(
        "the project needs {name} {wanted}, and the base has {name} {installed}: an assembled image adds layers and cannot take the base's out (pip in the engine's build would replace it); require the base's version, or remove `[build] platforms` to build with the engine"
    )]
    Replaces {
        /// The distribution.
        name: String,
        /// The version the project's dependencies resolve to.
        wanted: String,
        /// The base's version.
        installed: String,
    },
    /// The architecture has no manylinux wheels uv knows.
    #[error("no Python wheels are resolved for the architecture `{0}` (amd64 and arm64 are)")]
    Architecture(String),
    /// uv failed: its own words.
    #[error("uv could not install the project for linux/{architecture}:\n{output}")]
    Uv {
        /// The platform's architecture.
        architecture: String,
        /// What uv printed.
        output: String,
    },
    /// Reading or writing the work folder failed.
    #[error("{what}: {source}")]
    Io {
        /// What was done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> InstallError {
    let what = what.into();
    move |source| InstallError::Io { what, source }
}

/// uv's name for the manylinux platform of `architecture` with glibc `glibc`: the newest
/// manylinux tag uv knows that the base's glibc satisfies.
fn python_platform(architecture: &str, glibc: (u32, u32)) -> Result<String, InstallError> {
    let arch = match architecture {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => return Err(InstallError::Architecture(other.to_string())),
    };
    const KNOWN: [u32; 12] = [17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40];
    let minor = match glibc.0 {
        2 => KNOWN
            .iter()
            .rev()
            .find(|m| **m <= glibc.1)
            .copied()
            .unwrap_or(17),
        _ => 17,
    };
    Ok(format!("{arch}-manylinux_2_{minor}"))
}

/// Installs the project for the platform and returns the layer's files, sorted by path.
pub fn install(request: &Install<'_>) -> Result<Vec<LayerFile>, InstallError> {
    let target = request.work.join("target");
    let seeded = seed(&target, request.base)?;
    let platform = python_platform(request.architecture, request.base.glibc)?;
    let (major, minor) = request.base.version;
    let mut command = Command::new(request.uv);
    command
        .args(["pip", "install", "--no-progress", "--color", "never"])
        // Copies, not links into uv's cache: scripts are rewritten in place below.
        .args(["--link-mode", "copy", "--python-platform", &platform])
        .arg("--python-version")
        .arg(format!("{major}.{minor}"))
        .arg("--target")
        .arg(&target);
    if let Some(constraints) = request.constraints {
        command.arg("--constraint").arg(constraints);
    }
    command.arg(request.project);
    let output = command.output().map_err(|source| InstallError::NoUv {
        program: request.uv.display().to_string(),
        source,
    })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(InstallError::Uv {
            architecture: request.architecture.to_string(),
            output: text,
        });
    }
    collect(&target, &seeded, request)
}

/// Builds the project's wheel into `out` (uv's build: the project's own backend in an
/// isolated environment) and returns it. Once for every platform: a pure-Python wheel is the
/// same for all; a wheel with compiled code is built for this machine only, and refused
/// ([`InstallError::Compiled`]). Any other failure (no host Python its `requires-python`
/// accepts, say) is the caller's cue to let each install build the project instead.
pub fn build_wheel(uv: &Path, project: &Path, out: &Path) -> Result<PathBuf, InstallError> {
    let output = Command::new(uv)
        .args([
            "build",
            "--wheel",
            "--no-progress",
            "--color",
            "never",
            "--out-dir",
        ])
        .arg(out)
        .arg(project)
        .output()
        .map_err(|source| InstallError::NoUv {
            program: uv.display().to_string(),
            source,
        })?;
    if !output.status.success() {
        return Err(InstallError::Uv {
            architecture: "any platform (the project's wheel)".to_string(),
            output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let wheel = read_dir(out)?
        .into_iter()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| InstallError::Uv {
            architecture: "any platform (the project's wheel)".to_string(),
            output: format!("uv build wrote no wheel into {}", out.display()),
        })?;
    let name = wheel
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    match is_pure(&name) {
        true => Ok(wheel),
        false => Err(InstallError::Compiled(name)),
    }
}

/// The project's installed wheel must be pure Python: its `WHEEL` file's tags say so (a
/// project built on this machine with compiled code would put this machine's binaries into
/// another platform's image).
fn check_pure(dist_info: &Path) -> Result<(), InstallError> {
    let text = std::fs::read_to_string(dist_info.join("WHEEL")).unwrap_or_default();
    let compiled = text
        .lines()
        .filter_map(|line| line.strip_prefix("Tag:"))
        .map(str::trim)
        .find(|tag| !tag.ends_with("-none-any"));
    match compiled {
        Some(tag) => Err(InstallError::Compiled(format!(
            "{} (tag {tag})",
            dist_info.file_name().unwrap_or_default().to_string_lossy()
        ))),
        None => Ok(()),
    }
}

/// Whether a wheel's file name says it runs anywhere (`py3-none-any`): no compiled code, no
/// ABI.
fn is_pure(wheel: &str) -> bool {
    wheel.ends_with("-none-any.whl")
}

/// `uv.lock` of `project` as a constraints file at `to` (`uv export --frozen`): the versions
/// the lock pins, with their hashes; the project itself left out.
pub fn export_uv_lock(uv: &Path, project: &Path, to: &Path) -> Result<PathBuf, InstallError> {
    let output = Command::new(uv)
        .args([
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-header",
        ])
        .args([
            "--format",
            "requirements-txt",
            "--color",
            "never",
            "--output-file",
        ])
        .arg(to)
        .current_dir(project)
        .output()
        .map_err(|source| InstallError::NoUv {
            program: uv.display().to_string(),
            source,
        })?;
    match output.status.success() {
        true => Ok(to.to_path_buf()),
        false => Err(InstallError::Uv {
            architecture: "any platform (uv export of uv.lock)".to_string(),
            output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        }),
    }
}

/// Writes the metadata of the base's distributions into `target`; returns the folder names.
fn seed(target: &Path, base: &BaseFacts) -> Result<BTreeMap<String, String>, InstallError> {
    let mut seeded = BTreeMap::new();
    for (name, version) in base.installed.values() {
        let folder = format!("{}-{version}.dist-info", name.replace('-', "_"));
        let dir = target.join(&folder);
        std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
        std::fs::write(dir.join("METADATA"), metadata).map_err(io("cannot write METADATA"))?;
        // Empty: should uv replace it, it removes no file of ours.
        std::fs::write(dir.join("RECORD"), "").map_err(io("cannot write RECORD"))?;
        seeded.insert(folder, normalize(name));
    }
    Ok(seeded)
}

/// The layer's files from uv's `target`: everything but the seeds, rewritten as pip writes it.
fn collect(
    target: &Path,
    seeded: &BTreeMap<String, String>,
    request: &Install<'_>,
) -> Result<Vec<LayerFile>, InstallError> {
    let site = &request.base.site;
    let scripts = &request.base.scripts;
    let mut files = Vec::new();
    let scripts_from = target.join("bin");
    if scripts_from.is_dir() {
        for entry in read_dir(&scripts_from)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            shebang(&path, &request.base.executable)?;
            files.push(LayerFile::File {
                path: format!("{scripts}/{name}"),
                source: path,
                mode: 0o755,
            });
        }
    }
    let mut records = Vec::new();
    for entry in read_dir(target)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        // uv's own lock file of the target folder: pip writes none, and its mode differs
        // between uv versions.
        if name == "bin" || name == ".lock" || seeded.contains_key(&name) {
            continue;
        }
        let path = entry.path();
        if let Some(stem) = name.strip_suffix(".dist-info") {
            // A distribution of the base at another version: uv installs it beside the
            // base's, which it does not remove from a `--target` (its files are not known
            // here either), so the image would hold both. pip in the base would replace it;
            // refused instead.
            let (dist, version) = stem.split_once('-').unwrap_or((stem, ""));
            if let Some((_, installed)) = request.base.installed.get(&normalize(dist)) {
                return Err(InstallError::Replaces {
                    name: dist.to_string(),
                    wanted: version.to_string(),
                    installed: installed.clone(),
                });
            }
            records.push(path.clone());
        }
        walk(&path, &format!("{site}/{name}"), &mut files)?;
    }
    let up = relative(site, scripts);
    for dist_info in records {
        rewrite_dist_info(&dist_info, request.app_dir, &up)?;
    }
    files.retain(|f| !is_uv_only(&f.path()));
    // The folders above them (`usr/local/...`) are the layer writer's to add.
    files.sort_by_key(LayerFile::path);
    files.dedup_by_key(|f| f.path());
    Ok(files)
}

/// The path from folder `from` to folder `to`, as pip's RECORD writes a script's
/// (`../../../bin` from `usr/local/lib/python3.10/site-packages` to `usr/local/bin`).
fn relative(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').collect();
    let to: Vec<&str> = to.split('/').collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

fn is_uv_only(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    path.contains(".dist-info/") && matches!(name, "uv_cache.json" | "uv_build.json")
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, InstallError> {
    let what = || format!("cannot read {}", dir.display());
    let mut entries = std::fs::read_dir(dir)
        .map_err(io(what()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(what()))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

/// `path` (a file or folder under the target) as layer files under `at`.
fn walk(path: &Path, at: &str, files: &mut Vec<LayerFile>) -> Result<(), InstallError> {
    let meta =
        std::fs::symlink_metadata(path).map_err(io(format!("cannot read {}", path.display())))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(io("cannot read a link"))?;
        files.push(LayerFile::Symlink {
            path: at.to_string(),
            target: target.to_string_lossy().into_owned(),
        });
    } else if meta.is_dir() {
        files.push(LayerFile::Dir(at.to_string()));
        for entry in read_dir(path)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            walk(&entry.path(), &format!("{at}/{name}"), files)?;
        }
    } else {
        use std::os::unix::fs::PermissionsExt as _;
        let executable = meta.permissions().mode() & 0o111 != 0;
        files.push(LayerFile::File {
            path: at.to_string(),
            source: path.to_path_buf(),
            mode: if executable { 0o755 } else { 0o644 },
        });
    }
    Ok(())
}

/// Replaces a script's `#!` line (uv writes the host interpreter's path) with the base's.
fn shebang(path: &Path, executable: &str) -> Result<(), InstallError> {
    let bytes = std::fs::read(path).map_err(io(format!("cannot read {}", path.display())))?;
    if let Some(rest) = bytes.strip_prefix(b"#!") {
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let mut out = format!("#!{executable}").into_bytes();
        out.extend_from_slice(&rest[end..]);
        std::fs::write(path, out).map_err(io(format!("cannot write {}", path.display())))?;
    }
    Ok(())
}

/// A distribution's metadata as pip writes it: `direct_url.json` of a local project names
/// the image's folder, uv's own files leave, and RECORD lists what is in the layer.
fn rewrite_dist_info(
    dist_info: &Path,
    app_dir: &str,
    scripts_up: &str,
) -> Result<(), InstallError> {
    let direct = dist_info.join("direct_url.json");
    if direct.is_file() {
        let text = std::fs::read_to_string(&direct).map_err(io("cannot read direct_url.json"))?;
        // The project, installed from its wheel in a temporary folder: pip's own bytes for
        // `pip install /app` (json.dumps with its default separators).
        if text.contains("file://") {
            check_pure(dist_info)?;
            let pip = format!("{{\"dir_info\": {{}}, \"url\": \"file://{app_dir}\"}}");
            std::fs::write(&direct, pip).map_err(io("cannot write direct_url.json"))?;
        }
    }
    let record = dist_info.join("RECORD");
    let Ok(text) = std::fs::read_to_string(&record) else {
        return Ok(());
    };
    let mut lines = Vec::new();
    for line in text.lines() {
        let Some((path, _)) = line.split_once(',') else {
            continue;
        };
        let name = path.rsplit('/').next().unwrap_or_default();
        if path.contains(".dist-info/") && matches!(name, "uv_cache.json" | "uv_build.json") {
            continue;
        }
        let rewritten = matches!(name, "direct_url.json") || path.starts_with("bin/");
        let (shown, on_disk) = match path.strip_prefix("bin/") {
            Some(script) => (
                format!("{scripts_up}/{script}"),
                dist_info.parent().map(|t| t.join("bin").join(script)),
            ),
            None => (path.to_string(), dist_info.parent().map(|t| t.join(path))),
        };
        match (rewritten, on_disk) {
            (true, Some(file)) if file.is_file() => {
                let bytes = std::fs::read(&file).map_err(io("cannot read a recorded file"))?;
                let hash = base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    Sha256::digest(&bytes),
                );
                lines.push(format!("{shown},sha256={hash},{}", bytes.len()));
            }
            _ => lines.push(format!("{shown}{}", &line[path.len()..])),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(&record, out).map_err(io("cannot write RECORD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_tag_is_the_newest_the_base_glibc_satisfies() {
        assert_eq!(
            python_platform("arm64", (2, 36)).unwrap(),
            "aarch64-manylinux_2_36"
        );
        assert_eq!(
            python_platform("amd64", (2, 30)).unwrap(),
            "x86_64-manylinux_2_28"
        );
        assert_eq!(
            python_platform("amd64", (2, 99)).unwrap(),
            "x86_64-manylinux_2_40"
        );
        assert!(matches!(
            python_platform("s390x", (2, 36)),
            Err(InstallError::Architecture(_))
        ));
    }

    #[test]
    fn only_a_pure_python_wheel_is_installed_for_other_platforms() {
        assert!(is_pure("partial_sum-1.0.0-py3-none-any.whl"));
        assert!(is_pure("x-1.0-py2.py3-none-any.whl"));
        assert!(!is_pure("x-1.0-cp311-cp311-linux_x86_64.whl"));
        assert!(!is_pure("x-1.0-cp311-abi3-manylinux_2_17_x86_64.whl"));
    }

    #[test]
    fn a_project_installed_with_compiled_code_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let info = dir.path().join("x-1.0.dist-info");
        std::fs::create_dir_all(&info).unwrap();
        std::fs::write(
            info.join("WHEEL"),
            "Wheel-Version: 1.0\nTag: py3-none-any\n",
        )
        .unwrap();
        assert!(check_pure(&info).is_ok());
        std::fs::write(
            info.join("WHEEL"),
            "Wheel-Version: 1.0\nTag: cp311-cp311-linux_x86_64\n",
        )
        .unwrap();
        let refused = check_pure(&info).unwrap_err().to_string();
        assert!(refused.contains("cp311-cp311-linux_x86_64"), "{refused}");
    }

    #[test]
    fn scripts_get_the_base_interpreter_and_record_follows() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let info = target.join("x-1.0.dist-info");
        std::fs::create_dir_all(&info).unwrap();
        std::fs::create_dir_all(target.join("bin")).unwrap();
        std::fs::write(
            target.join("bin/x"),
            "#!/root/.pyenv/bin/python\nimport x\n",
        )
        .unwrap();
        std::fs::write(
            info.join("direct_url.json"),
            r#"{"url":"file:///tmp/abc","dir_info":{}}"#,
        )
        .unwrap();
        std::fs::write(info.join("uv_cache.json"), "{\"timestamp\":1}").unwrap();
        std::fs::write(
            info.join("RECORD"),
            "bin/x,sha256=old,30\nx-1.0.dist-info/direct_url.json,sha256=old,40\nx-1.0.dist-info/uv_cache.json,sha256=a,1\nx-1.0.dist-info/RECORD,,\n",
        )
        .unwrap();
        shebang(&target.join("bin/x"), "/usr/local/bin/python3.10").unwrap();
        let up = relative("usr/local/lib/python3.10/site-packages", "usr/local/bin");
        assert_eq!(up, "../../../bin");
        rewrite_dist_info(&info, "/app", &up).unwrap();
        let script = std::fs::read_to_string(target.join("bin/x")).unwrap();
        assert_eq!(script, "#!/usr/local/bin/python3.10\nimport x\n");
        let direct = std::fs::read_to_string(info.join("direct_url.json")).unwrap();
        assert_eq!(direct, r#"{"dir_info": {}, "url": "file:///app"}"#);
        let record = std::fs::read_to_string(info.join("RECORD")).unwrap();
        let lines: Vec<&str> = record.lines().collect();
        assert_eq!(lines.len(), 3, "{record}");
        assert!(lines[0].starts_with("../../../bin/x,sha256="), "{record}");
        assert!(
            lines[0].ends_with(&format!(",{}", script.len())),
            "{record}"
        );
        assert!(
            lines[1].ends_with(&format!(",{}", direct.len())),
            "{record}"
        );
        assert_eq!(lines[2], "x-1.0.dist-info/RECORD,,");
    }
}
