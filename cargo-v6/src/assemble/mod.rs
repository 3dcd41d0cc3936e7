//! Images assembled instead of built: for each platform, the base's layers as they are, a
//! layer with the build context at `/app` and a layer with what `pip install /app` would add,
//! resolved for that platform on the host. Nothing of the image's platform runs, so arm64
//! images are made on amd64 machines (and back) without emulation, and every byte is fixed
//! by the input: the same commit gives the same digests on any machine.
//!
//! What fixes the bytes: layers are tar streams with sorted entries, owner 0:0, modes as git
//! records them (0644, 0755), every mtime and the config's `created` at `SOURCE_DATE_EPOCH`
//! (default: the commit's time), gzip of one implementation and level; no `.pyc` is
//! written; the base is pinned by the digest its tag names when the image is made (the
//! `org.opencontainers.image.base.digest` label says which); dependency versions are fixed
//! by the project's lock when it has one ([`lock`]).
//!
//! Layout: `crate::plan::recipe` (which Dockerfiles can be assembled, pure), `base` (the
//! base's Python, read from its layers, pure), `python` (the install layer, by uv), `local`
//! (the wheel, the installs and the layers written, on every core), this file (the registry
//! reads, the configs and the manifests), `push` (uploads) and `rebuild` (the check).

pub mod base;
mod local;
pub mod push;
pub mod python;
pub mod rebuild;

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::oci::image::{Instruction, derive_config};
use crate::oci::layer::LayerDigests;
use crate::oci::manifest::{
    LayerBlob, ManifestInfo, ManifestKind, docker_image_manifest, docker_manifest_list,
    manifest_for,
};
use crate::oci::platform::Platform;
use crate::oci::reference::{Digest, ImageName, ImageRef};
use crate::plan::Plan;
use crate::plan::recipe::{Action, Recipe};
use crate::registry::{Registry, RegistryError};
use base::{BaseFacts, LayerFacts};
use local::Local;

/// The version of the cached layer facts' format: a cache written by another version is
/// read again from the registry.
const FACTS_FORMAT: &str = "facts2";

/// The label naming the uv version an image was assembled with.
pub const UV_LABEL: &str = "io.cargo-v6.uv";

/// The largest image config read from a registry (real ones are a few KiB).
const MAX_CONFIG: usize = 4 << 20;

/// An image assembled for every platform of a plan, its new layers in a work folder until
/// they are pushed.
#[derive(Debug)]
pub struct Assembled {
    /// One image per platform, in the plan's order.
    pub images: Vec<PlatformImage>,
    /// The Docker manifest list over them (the one manifest, for one platform): what the
    /// version tag names.
    pub index: ManifestInfo,
    /// The base's repository, where its layers come from.
    pub base: ImageName,
    /// Holds the new layers' files; removed when dropped.
    work: WorkFolder,
}

/// One platform's image.
#[derive(Debug)]
pub struct PlatformImage {
    /// The platform.
    pub platform: Platform,
    /// Its Docker v2 manifest.
    pub manifest: ManifestInfo,
    /// Its config's bytes.
    pub config: Vec<u8>,
    /// The base's layers (mounted or copied, never rewritten).
    pub base_layers: Vec<LayerBlob>,
    /// The layers made here, with the files that hold them.
    pub new_layers: Vec<(LayerBlob, PathBuf)>,
}

/// Why an image could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// The base's registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The base registry's credentials could not be resolved.
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    /// The base is not what an assembled image can build on.
    #[error("the base image {base}: {message}")]
    Base {
        /// The base, as named.
        base: String,
        /// What is wrong with it.
        message: String,
    },
    /// The install layer could not be made.
    #[error(transparent)]
    Install(#[from] python::InstallError),
    /// `verify --rebuild` was given an image that says nothing of its making.
    #[error(
        "{image} {message}: only an image assembled by cargo v6 (`[build] platforms`) can be rebuilt to its digest"
    )]
    NotRebuildable {
        /// The image given.
        image: String,
        /// What it lacks.
        message: String,
    },
    /// A layer, config or manifest could not be written.
    #[error("cannot assemble the image: {0}")]
    Write(String),
    /// The work folder could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AssembleError {
    let what = what.into();
    move |source| AssembleError::Io { what, source }
}

fn write_error(e: impl std::fmt::Display) -> AssembleError {
    AssembleError::Write(e.to_string())
}

/// What an assembly needs besides the plan.
pub struct Tools<'a> {
    /// A client of the base's registry.
    pub base_registry: &'a Registry,
    /// The uv program.
    pub uv: &'a Path,
    /// Where the facts of base layers are kept between runs (`None`: not kept).
    pub cache: Option<PathBuf>,
    /// The time instead of `SOURCE_DATE_EPOCH` or the commit's (a rebuild takes the
    /// published image's).
    pub epoch: Option<u64>,
    /// The base's digest instead of the one its tag names now (a rebuild takes the one the
    /// published image was made on).
    pub base_digest: Option<Digest>,
}

/// Assembles `plan`'s image (its recipe `recipe`) for each of its platforms. `progress` hears
/// of each platform as it starts.
pub async fn assemble(
    plan: &Plan,
    recipe: &Recipe,
    tools: &Tools<'_>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Assembled, AssembleError> {
    let mut base_ref = parse_base(&plan.base_image)?;
    // The base's name as written goes into the label; the digest pins what is read.
    let base_name = base_ref.to_string();
    if let Some(digest) = &tools.base_digest {
        base_ref.digest = Some(digest.clone());
    }
    let base_error = |message: String| AssembleError::Base {
        base: plan.base_image.clone(),
        message,
    };
    let registry = tools.base_registry;
    let top = base_manifest(registry, &base_ref)
        .await?
        .ok_or_else(|| base_error("is not in its registry".into()))?;
    let work = WorkFolder::new()?;
    // The registry's part first, per platform: the base's manifest, config and Python.
    let mut bases = Vec::new();
    for &platform in &plan.platforms {
        let manifest = match &top.kind {
            ManifestKind::Index { .. } => {
                let digest = manifest_for(&top, &oci_platform(platform)).map_err(|m| {
                    base_error(format!(
                        "{m}: it must be built for every platform in `[build] platforms`"
                    ))
                })?;
                registry
                    .manifest_at(&base_ref.name, &digest)
                    .await?
                    .ok_or_else(|| base_error(format!("lacks its manifest {digest}")))?
            }
            _ => top.clone(),
        };
        let config_digest = manifest.image_config().map_err(base_error)?;
        let config = registry
            .blob(&base_ref.name, &config_digest, MAX_CONFIG)
            .await?;
        check_platform(&config, platform).map_err(base_error)?;
        let layers = manifest
            .image()
            .map_err(base_error)?
            .layers()
            .iter()
            .map(LayerBlob::of_base)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| base_error(e.to_string()))?;
        let mut facts = Vec::new();
        for layer in &layers {
            facts.push(layer_facts(registry, &base_ref.name, layer, tools, &work).await?);
        }
        let path = config_env(&config, "PATH").unwrap_or_default();
        let python = BaseFacts::of(&facts, &path).map_err(|e| base_error(e.to_string()))?;
        bases.push(Base {
            platform,
            config,
            layers,
            python,
        });
    }
    // Then the local part, on every core: the context's layer (gzip of the data) beside the
    // project's wheel, then each platform's install at once (uv's resolution and downloads).
    let uv = uv_version(tools.uv).map_err(|why| {
        AssembleError::Install(python::InstallError::NoUv {
            program: tools.uv.display().to_string(),
            source: std::io::Error::other(why),
        })
    })?;
    let epoch = tools.epoch.unwrap_or_else(|| source_date_epoch(plan));
    let local = Local {
        plan,
        tools,
        work: &work.path,
        app_dir: recipe_app_dir(recipe),
        epoch,
    };
    let (app, installs) = tokio::task::block_in_place(|| local.layers(&bases, progress))?;
    let (app_layer, app_file) = app;
    let created = crate::time::rfc3339(epoch);
    let mut images = Vec::new();
    for (base, (install_layer, install_file)) in bases.into_iter().zip(installs) {
        let steps = config_steps(
            plan,
            recipe,
            (&app_layer, &install_layer),
            &base_name,
            &top,
            &uv,
        );
        let config = derive_config(&base.config, &oci_platform(base.platform), &created, &steps)
            .map_err(write_error)?;
        let mut all = base.layers.clone();
        all.push(blob(&app_layer));
        all.push(blob(&install_layer));
        images.push(PlatformImage {
            platform: base.platform,
            manifest: docker_image_manifest(&config, &all),
            config,
            base_layers: base.layers,
            new_layers: vec![
                (blob(&app_layer), app_file.clone()),
                (blob(&install_layer), install_file),
            ],
        });
    }
    let platforms: Vec<oci_spec::image::Platform> = images
        .iter()
        .map(|image| oci_platform(image.platform))
        .collect();
    let entries: Vec<(&ManifestInfo, &oci_spec::image::Platform)> = images
        .iter()
        .zip(&platforms)
        .map(|(image, platform)| (&image.manifest, platform))
        .collect();
    // One platform: its manifest is what the tag names, so that a client asking for a
    // single-platform Docker manifest (the algorithm store) gets it by tag too.
    let index = match images.as_slice() {
        [only] => only.manifest.clone(),
        _ => docker_manifest_list(&entries).map_err(write_error)?,
    };
    Ok(Assembled {
        images,
        index,
        base: base_ref.name,
        work,
    })
}

/// What one platform's image builds on, read from the registry.
struct Base {
    platform: Platform,
    /// The base's config.
    config: Vec<u8>,
    /// The base's layers.
    layers: Vec<LayerBlob>,
    /// Its Python.
    python: BaseFacts,
}

fn blob(layer: &LayerDigests) -> LayerBlob {
    LayerBlob {
        digest: layer.digest.clone(),
        size: layer.size,
    }
}

/// oci-spec's platform for `platform`.
pub fn oci_platform(platform: Platform) -> oci_spec::image::Platform {
    let text = format!(
        r#"{{"os": "{}", "architecture": "{}"}}"#,
        platform.os(),
        platform.architecture()
    );
    serde_json::from_str(&text).expect("a platform oci-spec reads")
}

/// The folder the recipe copies the context to (`/app` in every template).
fn recipe_app_dir(recipe: &Recipe) -> String {
    recipe
        .steps
        .iter()
        .find_map(|step| match &step.action {
            Action::CopyContext { dir } => Some(dir.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "/app".to_string())
}

/// The config's instructions: the recipe's in order (the `COPY` and the install as the two
/// layers), then the plan's labels and the base's name and digest, as the engine build adds
/// them with its `LABEL` line.
fn config_steps(
    plan: &Plan,
    recipe: &Recipe,
    (app, install): (&LayerDigests, &LayerDigests),
    base_name: &str,
    base_manifest: &ManifestInfo,
    uv: &str,
) -> Vec<(String, Instruction)> {
    let mut steps = Vec::new();
    for step in &recipe.steps {
        let by = step.created_by.clone();
        match &step.action {
            Action::Env(pairs) => {
                for (name, value) in pairs {
                    steps.push((by.clone(), Instruction::Env(name.clone(), value.clone())));
                }
            }
            Action::Label(pairs) => {
                for (name, value) in pairs {
                    steps.push((by.clone(), Instruction::Label(name.clone(), value.clone())));
                }
            }
            Action::Cmd(command) => steps.push((by, Instruction::Cmd(command.clone()))),
            Action::Entrypoint(command) => {
                steps.push((by, Instruction::Entrypoint(command.clone())));
            }
            Action::Workdir(dir) => steps.push((by, Instruction::Workdir(dir.clone()))),
            Action::Expose(ports) => {
                for port in ports {
                    steps.push((by.clone(), Instruction::Expose(port.clone())));
                }
            }
            Action::User(user) => steps.push((by, Instruction::User(user.clone()))),
            Action::CopyContext { .. } => steps.push((
                by,
                Instruction::Layer {
                    diff_id: app.diff_id.clone(),
                },
            )),
            Action::Install { .. } => steps.push((
                by,
                Instruction::Layer {
                    diff_id: install.diff_id.clone(),
                },
            )),
        }
    }
    let mut labels = plan.labels.clone();
    labels.insert(
        "org.opencontainers.image.base.name".to_string(),
        base_name.to_string(),
    );
    labels.insert(
        "org.opencontainers.image.base.digest".to_string(),
        base_manifest.digest.to_string(),
    );
    // Which uv laid the install layer out (its scripts' template is uv's): what a rebuild
    // needs to match the digest.
    labels.insert(UV_LABEL.to_string(), uv.to_string());
    for (name, value) in labels {
        let by = format!("LABEL {name}");
        steps.push((by, Instruction::Label(name, value)));
    }
    steps
}

/// The seconds since 1970 every layer entry and the config are dated at: `SOURCE_DATE_EPOCH`
/// (the reproducible-builds convention), else the commit's time, else 0.
fn source_date_epoch(plan: &Plan) -> u64 {
    if let Some(seconds) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return seconds;
    }
    plan.commit_time.unwrap_or(0)
}

/// The base config's `config.Env` value of `name`.
fn config_env(config: &[u8], name: &str) -> Option<String> {
    let config: serde_json::Value = serde_json::from_slice(config).ok()?;
    config
        .get("config")?
        .get("Env")?
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .find_map(|entry| entry.strip_prefix(&format!("{name}=")).map(str::to_string))
}

/// The base config must be for `platform`: a single-platform base of another architecture
/// would give an image that says arm64 and holds amd64 programs.
fn check_platform(config: &[u8], platform: Platform) -> Result<(), String> {
    let config: serde_json::Value = serde_json::from_slice(config)
        .map_err(|e| format!("has a config that is not JSON: {e}"))?;
    let architecture = config
        .get("architecture")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    match architecture == platform.architecture() {
        true => Ok(()),
        false => Err(format!(
            "is for linux/{architecture}, not {platform}: name a base built for every platform in `[build] platforms` (vantage6's algorithm-base images are built for linux/amd64 and linux/arm64)"
        )),
    }
}

/// The facts of one base layer: from the cache, else read from the registry (streamed to a
/// file, then read) and cached.
async fn layer_facts(
    registry: &Registry,
    image: &ImageName,
    layer: &LayerBlob,
    tools: &Tools<'_>,
    work: &WorkFolder,
) -> Result<LayerFacts, AssembleError> {
    let cached = tools.cache.as_ref().map(|dir| {
        dir.join(format!(
            "{FACTS_FORMAT}-{}.json",
            layer.digest.as_str().replace(':', "-")
        ))
    });
    if let Some(text) = cached.as_ref().and_then(|p| std::fs::read(p).ok())
        && let Ok(facts) = serde_json::from_slice::<LayerFacts>(&text)
    {
        return Ok(facts);
    }
    let file = work.path.join("layer.download");
    {
        let out = std::fs::File::create(&file).map_err(io("cannot create a download file"))?;
        let mut out = BufWriter::new(out);
        registry
            .pull_blob_to(image, &layer.digest, layer.size, &mut out)
            .await?;
        std::io::Write::flush(&mut out).map_err(io("cannot write a download file"))?;
    }
    let read = std::fs::File::open(&file).map_err(io("cannot read a download file"))?;
    let facts = LayerFacts::read(flate2::read::GzDecoder::new(std::io::BufReader::new(read)))
        .map_err(|e| AssembleError::Base {
            base: image.to_string(),
            message: e.to_string(),
        })?;
    let _ = std::fs::remove_file(&file);
    if let Some(path) = cached {
        // A cache that cannot be written only costs the next run a download.
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&temporary, serde_json::to_vec(&facts).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(&temporary, &path);
        }
    }
    Ok(facts)
}

/// A folder under the system's temporary folder, removed with what it holds when dropped.
#[derive(Debug)]
struct WorkFolder {
    path: PathBuf,
}

impl WorkFolder {
    /// A new work folder; those of processes that are gone (killed before they could remove
    /// theirs) are removed first.
    fn new() -> Result<WorkFolder, AssembleError> {
        sweep_dead(&std::env::temp_dir());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("{WORK_PREFIX}{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).map_err(io(format!("cannot create {}", path.display())))?;
        Ok(WorkFolder { path })
    }
}

/// Removes `cargo-v6-assemble-PID-*` folders under `dir` whose process is gone.
fn sweep_dead(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(WORK_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The name every work folder starts with, then the process id.
const WORK_PREFIX: &str = "cargo-v6-assemble-";

impl Drop for WorkFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A client of the registry the base `base_image` is read from (with `manifest`'s
/// `publish.insecure` when it is the manifest's own registry), with the credentials
/// configured for it.
pub fn base_registry(
    base_image: &str,
    manifest: &crate::manifest::Manifest,
    stall_timeout: std::time::Duration,
) -> Result<Registry, AssembleError> {
    let base = parse_base(base_image)?;
    let domain = base.name.domain();
    let insecure = manifest.publish.insecure && domain == manifest.image.domain();
    client(domain, insecure, stall_timeout)
}

/// The platforms a base's manifest list has (in its order; those cargo v6 assembles for);
/// empty for a single-platform base.
pub async fn platforms_of(base_image: &str) -> Result<Vec<Platform>, AssembleError> {
    let base = parse_base(base_image)?;
    let registry = client(
        base.name.domain(),
        false,
        std::time::Duration::from_secs(15),
    )?;
    let found = base_manifest(&registry, &base).await?;
    let Some(found) = found.filter(|m| matches!(m.kind, ManifestKind::Index { .. })) else {
        return Ok(Vec::new());
    };
    Ok(Platform::ALL
        .into_iter()
        .filter(|platform| manifest_for(&found, &oci_platform(*platform)).is_ok())
        .collect())
}

/// The base image as named, or why it names none.
fn parse_base(base_image: &str) -> Result<ImageRef, AssembleError> {
    ImageRef::parse(base_image).map_err(|e| AssembleError::Base {
        base: base_image.to_string(),
        message: format!("is no image reference: {e}"),
    })
}

/// A client of `domain` with the credentials configured for it.
fn client(
    domain: &str,
    insecure: bool,
    stall_timeout: std::time::Duration,
) -> Result<Registry, AssembleError> {
    let credentials = crate::credentials::resolve(domain)?;
    Ok(Registry::with_stall_timeout(
        domain,
        credentials,
        insecure,
        stall_timeout,
    )?)
}

/// The base's manifest as it names it: by digest when pinned, else by tag.
async fn base_manifest(
    registry: &Registry,
    base: &ImageRef,
) -> Result<Option<ManifestInfo>, RegistryError> {
    match &base.digest {
        Some(digest) => registry.manifest_at(&base.name, digest).await,
        None => {
            registry
                .manifest(&base.name.with_tag(&base.tag_or_latest()))
                .await
        }
    }
}

/// The oldest uv whose `--python-platform` names every manylinux tag used here (0.5 lacks
/// `x86_64-manylinux_2_36`; 0.9 has it).
const UV_MIN: (u64, u64) = (0, 9);

/// uv's version (`0.13.10`), or why it cannot be used: not runnable, or older than
/// [`UV_MIN`]. Only the version: the rest of uv's line names the host's architecture, which
/// must not reach a label of a reproducible image.
pub fn uv_version(uv: &Path) -> Result<String, String> {
    let out = match std::process::Command::new(uv).arg("--version").output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            return Err(format!(
                "`{} --version` failed: {}",
                uv.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Err(e) => return Err(format!("`{}` cannot be run: {e}", uv.display())),
    };
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let version = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    match found >= UV_MIN {
        true => Ok(version),
        false => Err(format!(
            "`{}` is {line}, older than uv {}.{} that assembling needs",
            uv.display(),
            UV_MIN.0,
            UV_MIN.1
        )),
    }
}

/// The uv program: `CARGO_V6_UV` when set (a uv outside PATH), else `uv` from PATH.
pub fn uv_program() -> PathBuf {
    std::env::var_os("CARGO_V6_UV")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("uv"), PathBuf::from)
}

/// Where cargo v6 keeps what it may compute again (`$XDG_CACHE_HOME/cargo-v6`, else
/// `~/.cache/cargo-v6`), `None` without a home.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("cargo-v6"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_for_another_architecture_is_refused() {
        let config = br#"{"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}}"#;
        assert!(check_platform(config, Platform::LinuxAmd64).is_ok());
        let refused = check_platform(config, Platform::LinuxArm64).unwrap_err();
        assert!(refused.contains("not linux/arm64"), "{refused}");
    }
}
