//! A run without the engine, for an image of another architecture (`--platform linux/arm64`
//! on an amd64 machine): the image is read from its registry (an index resolved to the
//! platform's manifest), its layers unpacked into a root file system cached under the user's
//! cache folder, and each task runs as one process, the image's program under Debian's
//! `qemu-<arch>-static -L ROOTFS`, which needs no binfmt_misc.
//!
//! What differs from a container, and why:
//! - **No mounts.** qemu-user has none: the node's mount targets (4.x `/mnt/data/...`, 5.x
//!   `/app/vantage6/task/input`) do not exist in the root. The environment's values name the
//!   work folder's host paths instead (qemu's `-L` looks a path up in the root first and falls
//!   back to the host's when the root has none; the work folder is under a name no image has),
//!   and a mount inside another (a 5.x dataframe in the session folder) is a copy there.
//! - **No network isolation.** qemu-user cannot take the network away: the process gets
//!   `HOST` and `PORT` as a node gives them, and nothing answers there, but it could reach the
//!   network. Run only images you would run on your machine.
//! - **No shell, one program.** A program the process starts (`execve`) is run by the host's
//!   kernel, outside the emulator: the image's command is started directly ([`command`]).
//! - **The root is shared.** The cached root is the image's, not a container's writable copy:
//!   Python writes no bytecode into it (`PYTHONDONTWRITEBYTECODE`) and temporary files go to
//!   the work folder (`TMPDIR`), but other writes outside the work folder land in the cache.
//!   The process runs as the invoking user, whatever the image's `User`.

mod command;
mod platform;
mod rootfs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use super::task::{Exited, Limits, Log, Task, binds, stopped, supervise};
use super::workdir::WorkDir;
use super::{RunError, RunEvent, RunObserver};
use crate::engine::LogLine;
use crate::oci::manifest::{ManifestKind, Platform, manifest_for, platform_text};
use crate::oci::reference::{Digest, ImageName, ImageRef, Tag, TaggedImage};
use crate::registry::{ManifestInfo, Registry, RegistryError};
use crate::vantage6::{NodeRun, encode_env_value};

pub use platform::TargetPlatform;
pub use rootfs::{UnpackError, resolve, unpack_layer};

/// Why an emulated run could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulationError {
    /// The qemu-user binary for the platform is not installed.
    #[error("`{binary}` is not on PATH: it runs {platform} programs on this machine")]
    QemuMissing {
        /// `qemu-aarch64-static`.
        binary: String,
        /// The platform.
        platform: String,
    },
    /// The image is not a registry reference.
    #[error("`{image}` is no image reference to read from a registry: {reason}")]
    Reference {
        /// As given.
        image: String,
        /// Why.
        reason: String,
    },
    /// The registry's credentials could not be read.
    #[error("{0}")]
    Credentials(String),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The registry has no such image.
    #[error("{image} does not exist")]
    NotFound {
        /// The reference.
        image: String,
    },
    /// The index has no image for the platform.
    #[error("{image} has no image for {platform}; it has {available}")]
    PlatformMissing {
        /// The reference.
        image: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has.
        available: String,
    },
    /// A single-platform image of another platform.
    #[error("{image} is a single-platform image for {actual}, not {platform}")]
    WrongPlatform {
        /// The reference.
        image: String,
        /// The platform asked for.
        platform: String,
        /// The image's.
        actual: String,
    },
    /// What the registry holds is not an image this can run.
    #[error("{image}: {message}")]
    Image {
        /// The reference.
        image: String,
        /// What is wrong.
        message: String,
    },
    /// A layer could not be unpacked.
    #[error("cannot unpack layer {layer} of {image}: {source}")]
    Unpack {
        /// The reference.
        image: String,
        /// The layer's digest.
        layer: String,
        /// Why.
        source: UnpackError,
    },
    /// The cache or the process could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl EmulationError {
    /// How to fix it.
    pub fn help(&self) -> Option<String> {
        match self {
            EmulationError::QemuMissing { .. } => Some(
                "install Debian's qemu-user-static (`apt-get install qemu-user-static`) or your \
                 distribution's equivalent; binfmt_misc is not needed"
                    .to_owned(),
            ),
            EmulationError::PlatformMissing { .. } | EmulationError::WrongPlatform { .. } => {
                Some("publish the image for that platform, or run another --platform".to_owned())
            }
            _ => None,
        }
    }
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmulationError {
    let what = what.into();
    move |source| EmulationError::Io { what, source }
}

/// The largest image config read (as the registry module bounds it).
const MAX_CONFIG: usize = 8 << 20;

/// An image ready to run under qemu-user: its root file system and what its config says.
#[derive(Debug)]
pub struct Emulator {
    /// The reference, for messages.
    image: String,
    /// The qemu-user binary.
    qemu: PathBuf,
    /// The unpacked root file system.
    rootfs: PathBuf,
    /// The config's `Env`.
    env: BTreeMap<String, String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    /// The config's `WorkingDir` (`/` when none).
    working_dir: String,
}

impl Emulator {
    /// Reads `image` (a registry reference) for `platform` from its registry and makes its
    /// root file system (or finds it in the cache). Progress goes to `observer` as a pull's.
    pub async fn prepare(
        image: &str,
        platform: &TargetPlatform,
        observer: &dyn RunObserver,
    ) -> Result<Emulator, EmulationError> {
        // Before any download: without qemu nothing can run.
        let binary = platform.qemu_binary();
        let qemu = on_path(&binary).ok_or_else(|| EmulationError::QemuMissing {
            binary: binary.clone(),
            platform: platform.to_string(),
        })?;
        let reference = ImageRef::parse(image).map_err(|e| EmulationError::Reference {
            image: image.to_owned(),
            reason: e.to_string(),
        })?;
        let credentials = crate::credentials::resolve(reference.name.domain())
            .map_err(|e| EmulationError::Credentials(e.to_string()))?;
        let registry = Registry::new(reference.name.domain(), credentials, false)?;
        observer.event(RunEvent::Pulling { reference: image });
        let manifest = platform_manifest(&registry, &reference, image, platform).await?;
        let invalid = |message: String| EmulationError::Image {
            image: image.to_owned(),
            message,
        };
        let config_digest = manifest
            .image_config()
            .map_err(|m| invalid(format!("the manifest {m}")))?;
        let config = registry
            .blob(&reference.name, &config_digest, MAX_CONFIG)
            .await?;
        let config: Value = serde_json::from_slice(&config)
            .map_err(|e| invalid(format!("the image config is not JSON: {e}")))?;
        let actual = (
            config["os"].as_str().unwrap_or_default(),
            config["architecture"].as_str().unwrap_or_default(),
            config["variant"].as_str(),
        );
        if !platform.matches(actual.0, actual.1, actual.2) {
            return Err(EmulationError::WrongPlatform {
                image: image.to_owned(),
                platform: platform.to_string(),
                actual: [Some(actual.0), Some(actual.1), actual.2]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("/"),
            });
        }
        let rootfs = cached_rootfs(&registry, &reference, image, &manifest, observer).await?;
        let strings = |value: &Value| -> Vec<String> {
            value
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let env = strings(&config["config"]["Env"])
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let working_dir = match config["config"]["WorkingDir"].as_str() {
            Some(dir) if !dir.is_empty() => dir.to_owned(),
            _ => "/".to_owned(),
        };
        Ok(Emulator {
            image: image.to_owned(),
            qemu,
            rootfs,
            env,
            entrypoint: strings(&config["config"]["Entrypoint"]),
            cmd: strings(&config["config"]["Cmd"]),
            working_dir,
        })
    }

    /// The qemu-user binary's name, for messages.
    pub fn qemu_name(&self) -> &str {
        self.qemu
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
    }

    /// PKG_NAME as the image sets it, for messages.
    pub fn pkg_name(&self) -> Option<&str> {
        self.env.get("PKG_NAME").map(String::as_str)
    }

    /// Runs `task` (prepared in `work` for `node`) as one qemu-user process to its end; the
    /// process (and any it started) is killed when the run stops early or is dropped.
    pub(in crate::run) async fn execute(
        &self,
        node: &NodeRun,
        task: &Task<'_>,
        work: &WorkDir,
        limits: Limits<'_>,
        started: RunEvent<'_>,
    ) -> Result<Exited, RunError> {
        let env = self.task_env(node, task, &work.path)?;
        let argv =
            command::command_of(&self.entrypoint, &self.cmd, &env).map_err(|m| self.invalid(m))?;
        let program = self.program(&argv[0], &env)?;
        let cwd = resolve(&self.rootfs, &self.working_dir, true)
            .map_err(|e| self.invalid(e.to_string()))?;
        std::fs::create_dir_all(&cwd)
            .map_err(io_error(format!("cannot create {}", cwd.display())))?;
        let mut command = tokio::process::Command::new(&self.qemu);
        command
            .arg("-L")
            .arg(&self.rootfs)
            .arg("-0")
            .arg(&argv[0])
            .arg(&program)
            .args(&argv[1..])
            .env_clear()
            .envs(&env)
            .current_dir(&cwd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command
            .spawn()
            .map_err(io_error(format!("cannot start {}", self.qemu.display())))?;
        // Whatever ends the task (its end, the timeout, a signal), its processes go.
        let _group = ProcessGroup(child.id());
        limits.observer.event(started);
        let waits_for_server = tokio::sync::Notify::new();
        let mut log = Log::new(limits.observer, &waits_for_server);
        let stdout = lines(child.stdout.take()).map(LogLine::Stdout);
        let stderr = lines(child.stderr.take()).map(LogLine::Stderr);
        let follow = async {
            let mut both = std::pin::pin!(futures_util::stream::select(stdout, stderr));
            while let Some(line) = both.next().await {
                log.line(&line);
            }
            child.wait().await
        };
        let ended = supervise(&limits, &waits_for_server, follow).await;
        let status =
            stopped(ended, task.method, limits.timeout)?.map_err(|source| RunError::Io {
                what: format!("cannot wait for {}", self.qemu.display()),
                source,
            })?;
        Ok(Exited {
            code: exit_code(status),
            lines: log.into_lines(),
        })
    }

    fn invalid(&self, message: String) -> RunError {
        RunError::Emulation(EmulationError::Image {
            image: self.image.clone(),
            message,
        })
    }

    /// The process's environment: the image's, then the node's (values naming mount targets
    /// made host paths of the work folder, then encoded as the node encodes them), and what
    /// keeps the cached root unchanged.
    fn task_env(
        &self,
        node: &NodeRun,
        task: &Task<'_>,
        work: &Path,
    ) -> Result<BTreeMap<String, String>, RunError> {
        let mut mounts: Vec<(String, PathBuf)> = binds(node, work, task.databases)
            .into_iter()
            .map(|bind| (bind.container, bind.host))
            .collect();
        for (index, target) in node.tmpfs.iter().enumerate() {
            let host = work.join(format!("tmpfs-{index}"));
            create_dir(&host)?;
            mounts.push((target.clone(), host));
        }
        // The innermost mount first: it decides for the paths below it.
        mounts.sort_by_key(|(target, _)| std::cmp::Reverse(target.len()));
        for (index, (target, host)) in mounts.iter().enumerate() {
            // A mount inside another one's folder: a copy (or a link, for a folder) there.
            let Some(place) = host_path(&mounts[index + 1..], target) else {
                continue;
            };
            let made = if host.is_dir() {
                symlink_dir(host, &place)
            } else {
                std::fs::copy(host, &place).map(drop)
            };
            made.map_err(|source| RunError::Io {
                what: format!("cannot place {} at {}", host.display(), place.display()),
                source,
            })?;
        }
        // qemu's `-L` takes the root's file where the root has one at the same path: a data
        // file at a path the image has too would be read from the image.
        for (_, host) in &mounts {
            let relative = host.strip_prefix("/").unwrap_or(host);
            if self.rootfs.join(relative).exists() {
                return Err(self.invalid(format!(
                    "{} is also a path in the image, and the process would read the image's: \
                     give a file or folder at another path",
                    host.display()
                )));
            }
        }
        let tmp = work.join("tmp");
        create_dir(&tmp)?;
        let mut env = self.env.clone();
        env.entry("HOME".to_owned())
            .or_insert_with(|| "/root".to_owned());
        for (name, value) in &node.env_plain {
            let value = host_path(&mounts, value)
                .map_or_else(|| value.clone(), |p| p.to_string_lossy().into_owned());
            env.insert(name.clone(), encode_env_value(&value));
        }
        // Not a node's: the log as it is written (as in a container), and nothing written
        // into the shared root by Python itself.
        env.insert("PYTHONUNBUFFERED".to_owned(), "1".to_owned());
        env.insert("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned());
        env.insert("TMPDIR".to_owned(), tmp.to_string_lossy().into_owned());
        Ok(env)
    }

    /// The host path of the program `name` (a path, or a name looked up in the image's
    /// `PATH`), resolved inside the root.
    fn program(&self, name: &str, env: &BTreeMap<String, String>) -> Result<PathBuf, RunError> {
        const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        let candidates: Vec<String> = if name.contains('/') {
            vec![if name.starts_with('/') {
                name.to_owned()
            } else {
                format!("{}/{name}", self.working_dir)
            }]
        } else {
            env.get("PATH")
                .map_or(DEFAULT_PATH, String::as_str)
                .split(':')
                .filter(|dir| !dir.is_empty())
                .map(|dir| format!("{dir}/{name}"))
                .collect()
        };
        for candidate in &candidates {
            let host =
                resolve(&self.rootfs, candidate, true).map_err(|e| self.invalid(e.to_string()))?;
            if is_executable(&host) {
                return Ok(host);
            }
        }
        Err(self.invalid(format!(
            "the image's program `{name}` is not in it (looked for {})",
            candidates.join(", ")
        )))
    }
}

/// The host path that `path` (a path inside the container) has under `mounts` (target, host
/// path), when it lies in one of them.
fn host_path(mounts: &[(String, PathBuf)], path: &str) -> Option<PathBuf> {
    mounts.iter().find_map(|(target, host)| {
        let rest = path.strip_prefix(target.as_str())?;
        match rest.strip_prefix('/') {
            _ if rest.is_empty() => Some(host.clone()),
            Some(below) => Some(host.join(below)),
            None => None,
        }
    })
}

fn create_dir(path: &Path) -> Result<(), RunError> {
    std::fs::create_dir_all(path).map_err(|source| RunError::Io {
        what: format!("cannot create {}", path.display()),
        source,
    })
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink_dir(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("emulated runs need a Unix system"))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// The exit code as a container reports it: 128 + the signal for a process a signal ended.
fn exit_code(status: std::process::ExitStatus) -> i64 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + i64::from(signal);
        }
    }
    status.code().map_or(-1, i64::from)
}

/// The lines of a process's output, without their newlines (lossy UTF-8).
fn lines(
    reader: Option<impl tokio::io::AsyncRead + Unpin>,
) -> impl futures_util::Stream<Item = String> {
    let reader = reader.map(tokio::io::BufReader::new);
    futures_util::stream::unfold(reader, |reader| async move {
        let mut reader = reader?;
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned();
                Some((text, Some(reader)))
            }
        }
    })
}

/// The process group of a task's process: killed when dropped, so that what the program
/// started (a forked worker) goes with it, as a container's processes go with the container.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) of the group this run created for its own child (setpgid in
            // `process_group(0)`); a group that is gone is ESRCH, which is fine.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// `name` as found in the directories of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The manifest of `reference` for `platform`: the index's entry for it, or the image itself
/// when it is a single-platform image.
async fn platform_manifest(
    registry: &Registry,
    reference: &ImageRef,
    image: &str,
    platform: &TargetPlatform,
) -> Result<ManifestInfo, EmulationError> {
    let found = match &reference.digest {
        Some(digest) => registry.manifest_at(&reference.name, digest).await?,
        None => {
            let tag = Tag::parse(reference.tag.as_deref().unwrap_or("latest")).map_err(|e| {
                EmulationError::Reference {
                    image: image.to_owned(),
                    reason: e.to_string(),
                }
            })?;
            let tagged = TaggedImage {
                image: reference.name.clone(),
                tag,
            };
            registry.manifest(&tagged).await?
        }
    };
    let not_found = || EmulationError::NotFound {
        image: image.to_owned(),
    };
    // What the registry sent must be what was asked for, when a digest asked for it.
    let checked = |info: ManifestInfo, wanted: Option<&Digest>| match wanted {
        Some(wanted) if info.digest != *wanted => Err(EmulationError::Image {
            image: image.to_owned(),
            message: format!(
                "the registry sent a manifest of digest {} for {wanted}",
                info.digest
            ),
        }),
        _ => Ok(info),
    };
    let manifest = checked(found.ok_or_else(not_found)?, reference.digest.as_ref())?;
    let ManifestKind::Index { .. } = manifest.kind else {
        return Ok(manifest);
    };
    let digest =
        manifest_for(&manifest, &platform.oci()).map_err(|_| EmulationError::PlatformMissing {
            image: image.to_owned(),
            platform: platform.to_string(),
            available: platforms_of(manifest.body()),
        })?;
    let chosen = registry
        .manifest_at(&reference.name, &digest)
        .await?
        .ok_or_else(not_found)?;
    checked(chosen, Some(&digest))
}

/// The platforms an index (its JSON) names images for, for a message ("none" when none):
/// attestation manifests (`unknown/unknown`) are no platform.
fn platforms_of(index: &[u8]) -> String {
    let index: Value = serde_json::from_slice(index).unwrap_or_default();
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| serde_json::from_value::<Platform>(entry["platform"].clone()).ok())
        .filter(|p| p.os().to_string() != "unknown")
        .map(|p| platform_text(&p))
        .collect();
    if platforms.is_empty() {
        "none".to_owned()
    } else {
        platforms.join(", ")
    }
}

/// The root file system of `manifest`, from the cache, or made: its layers downloaded
/// (digest-checked) and unpacked in a new folder beside the cache's entry, renamed into place
/// when complete, so that an interrupted unpack leaves no half root at the entry.
async fn cached_rootfs(
    registry: &Registry,
    reference: &ImageRef,
    image: &str,
    manifest: &ManifestInfo,
    observer: &dyn RunObserver,
) -> Result<PathBuf, EmulationError> {
    let cache = cache_folder().ok_or_else(|| EmulationError::Io {
        what: "cannot find a cache folder".to_owned(),
        source: std::io::Error::other("neither XDG_CACHE_HOME nor HOME is set"),
    })?;
    let entry = cache.join(manifest.digest.as_str().replace(':', "-"));
    if entry.is_dir() {
        return Ok(entry);
    }
    std::fs::create_dir_all(&cache)
        .map_err(io_error(format!("cannot create {}", cache.display())))?;
    sweep_partial(&cache);
    let staging = Staging {
        root: cache.join(format!(
            ".partial-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        )),
    };
    std::fs::create_dir(&staging.root).map_err(io_error(format!(
        "cannot create {}",
        staging.root.display()
    )))?;
    let layers = manifest.image().map_err(|m| EmulationError::Image {
        image: image.to_owned(),
        message: format!("the manifest {m}"),
    })?;
    let count = layers.layers().len();
    for (number, layer) in layers.layers().iter().enumerate() {
        let text = layer.digest().to_string();
        let digest = Digest::parse(&text).map_err(|e| EmulationError::Image {
            image: image.to_owned(),
            message: format!("a layer has an invalid digest `{text}`: {e}"),
        })?;
        observer.event(RunEvent::PullStatus(&format!(
            "layer {}/{count} {text}: downloading {} MB",
            number + 1,
            layer.size().div_ceil(1 << 20)
        )));
        let file = download(
            registry,
            &reference.name,
            &digest,
            layer.size(),
            &staging.layer(),
        )
        .await?;
        let root = staging.root.clone();
        let unpacked = tokio::task::spawn_blocking(move || unpack_layer(&root, file))
            .await
            .map_err(|e| EmulationError::Io {
                what: "the unpacking thread failed".to_owned(),
                source: std::io::Error::other(e.to_string()),
            })?;
        unpacked.map_err(|source| EmulationError::Unpack {
            image: image.to_owned(),
            layer: text.clone(),
            source,
        })?;
    }
    match std::fs::rename(&staging.root, &entry) {
        Ok(()) => Ok(entry),
        // Another run made it meanwhile: the same content.
        Err(_) if entry.is_dir() => Ok(entry),
        Err(source) => Err(EmulationError::Io {
            what: format!("cannot move the root file system to {}", entry.display()),
            source,
        }),
    }
}

/// The cache of root file systems: `$XDG_CACHE_HOME/cargo-v6/rootfs`, or
/// `~/.cache/cargo-v6/rootfs`.
fn cache_folder() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("cargo-v6").join("rootfs"))
}

/// A root file system being made, and the file its layer is downloaded to; removed when
/// dropped (a failure, an interruption) unless the root was moved into place.
struct Staging {
    root: PathBuf,
}

impl Staging {
    /// Where a layer is downloaded before it is unpacked (beside the root).
    fn layer(&self) -> PathBuf {
        self.root.with_extension("layer")
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_file(self.layer());
    }
}

/// Downloads the layer `digest` of `image` (of `size` bytes, as its descriptor says) to `path`
/// as it arrives, in constant memory, checked against its digest, and opens it for reading.
async fn download(
    registry: &Registry,
    image: &ImageName,
    digest: &Digest,
    size: u64,
    path: &Path,
) -> Result<std::fs::File, EmulationError> {
    let mut file = std::fs::File::create(path)
        .map_err(io_error(format!("cannot write {}", path.display())))?;
    registry
        .pull_blob_to(image, digest, size, &mut file)
        .await?;
    std::fs::File::open(path).map_err(io_error(format!("cannot read {}", path.display())))
}

/// Removes the partial roots of runs that ended without removing them (a process killed
/// mid-unpack): those whose process is gone.
fn sweep_partial(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(".partial-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_names_the_platforms_it_has() {
        let index = br#"{"manifests": [
            {"digest": "sha256:aa", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:bb", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:cc", "platform": {"os": "unknown", "architecture": "unknown"}}
        ]}"#;
        assert_eq!(platforms_of(index), "linux/amd64, linux/arm64/v8");
        assert_eq!(platforms_of(br#"{"manifests": []}"#), "none");
    }

    #[test]
    fn mount_targets_become_host_paths() {
        let mounts = vec![
            (
                "/app/vantage6/task/session".to_owned(),
                PathBuf::from("/w/session"),
            ),
            ("/mnt/data".to_owned(), PathBuf::from("/w")),
        ];
        assert_eq!(
            host_path(&mounts, "/mnt/data/task-000000001/input"),
            Some(PathBuf::from("/w/task-000000001/input"))
        );
        assert_eq!(
            host_path(&mounts, "/app/vantage6/task/session"),
            Some(PathBuf::from("/w/session"))
        );
        assert_eq!(host_path(&mounts, "/mnt/database"), None);
        assert_eq!(host_path(&mounts, "postgresql://h/x"), None);
    }
}
