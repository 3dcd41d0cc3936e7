//! The local part of an assembly: the context copied for uv, the project's wheel, each
//! platform's install, and the layers written to files. No registry; every core used: the
//! context's layer is compressed while the wheel is built, and the platforms install at once.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use super::{AssembleError, Base, io, python, write_error};
use crate::oci::layer::{LayerDigests, LayerWriter};
use crate::plan::Plan;
use crate::plan::recipe::Lock;

/// A layer written to a file, and the file.
pub(super) type LayerFile = (LayerDigests, PathBuf);

/// The local part of an assembly: files, uv, layers; no registry.
pub(super) struct Local<'a> {
    pub(super) plan: &'a Plan,
    pub(super) tools: &'a super::Tools<'a>,
    pub(super) work: &'a Path,
    pub(super) app_dir: String,
    pub(super) epoch: u64,
}

impl Local<'_> {
    /// The context's layer, and each base's install layer (in `bases`' order). The context's
    /// layer is written while the project's wheel is built (once: a pure-Python wheel is the
    /// same for every platform), then every platform installs at once.
    pub(super) fn layers(
        &self,
        bases: &[Base],
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(LayerFile, Vec<LayerFile>), AssembleError> {
        let project = copy_context(self.plan, &self.work.join("project"))?;
        std::thread::scope(|scope| {
            let app = scope.spawn(|| {
                let file = self.work.join("app.tar.gz");
                app_layer(self.plan, &self.app_dir, self.epoch, &file)
            });
            let installs = self.installs(&project, bases, progress, scope);
            let app = app.join().unwrap_or_else(|_| Err(panicked()))?;
            Ok((app, installs?))
        })
    }

    /// The wheel, the constraints, then one thread per platform.
    fn installs<'scope>(
        &'scope self,
        project: &'scope Path,
        bases: &'scope [Base],
        progress: &'scope (dyn Fn(&str) + Sync),
        scope: &'scope std::thread::Scope<'scope, '_>,
    ) -> Result<Vec<LayerFile>, AssembleError> {
        let uv = self.tools.uv;
        // The wheel once; failing that (no host Python the project accepts), each install
        // builds the project from a copy of its own, against the base's Python version.
        let wheel = match python::build_wheel(uv, project, &self.work.join("wheel")) {
            Ok(wheel) => Some(wheel),
            Err(compiled @ python::InstallError::Compiled(_)) => return Err(compiled.into()),
            Err(_) => None,
        };
        let constraints = match &self.plan.lock {
            Some(Lock::Requirements(file)) => Some(project.join(file)),
            Some(Lock::UvLock(_)) => Some(python::export_uv_lock(
                uv,
                project,
                &self.work.join("constraints.txt"),
            )?),
            None => None,
        };
        let threads: Vec<_> = bases
            .iter()
            .map(|base| {
                let (wheel, constraints) = (wheel.clone(), constraints.clone());
                scope.spawn(move || {
                    progress(&base.platform.to_string());
                    let folder = self.work.join(base.platform.architecture());
                    std::fs::create_dir_all(&folder)
                        .map_err(io("cannot create the work folder"))?;
                    let source = match wheel {
                        Some(wheel) => wheel,
                        None => copy_context(self.plan, &folder.join("project"))?,
                    };
                    let files = python::install(&python::Install {
                        uv,
                        project: &source,
                        app_dir: &self.app_dir,
                        base: &base.python,
                        architecture: base.platform.architecture(),
                        constraints: constraints.as_deref(),
                        work: &folder,
                    })?;
                    let file = folder.join("install.tar.gz");
                    install_layer(&files, self.epoch, &file).map(|d| (d, file))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap_or_else(|_| Err(panicked())))
            .collect()
    }
}

/// A worker thread that panicked: said, not propagated as a panic.
fn panicked() -> AssembleError {
    AssembleError::Write("a worker thread stopped unexpectedly".to_string())
}

/// Copies the context's files (as the plan lists them) to `to`: uv builds the project there,
/// leaving `build/` and `*.egg-info` in the copy, not in the user's work tree.
fn copy_context(plan: &Plan, to: &Path) -> Result<PathBuf, AssembleError> {
    for file in &plan.context_files {
        let from = plan.context.join(file);
        let dest = to.join(file);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io("cannot copy the context"))?;
        }
        let meta = std::fs::symlink_metadata(&from).map_err(io(format!("cannot read {file}")))?;
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&from).map_err(io(format!("cannot read {file}")))?;
            let target_text = target.to_string_lossy();
            if leaves_context(file, &target_text) {
                return Err(AssembleError::Write(format!(
                    "the build context's `{file}` links outside it (`{target_text}`): an engine's build could not read that, but uv builds the project on this machine and would put what it points at into the image; make it a file, or keep it out of the context (.dockerignore)"
                )));
            }
            std::os::unix::fs::symlink(target, &dest).map_err(io("cannot copy the context"))?;
        } else {
            std::fs::copy(&from, &dest).map_err(io(format!("cannot copy {file}")))?;
        }
    }
    std::fs::create_dir_all(to).map_err(io("cannot copy the context"))?;
    Ok(to.to_path_buf())
}

/// Whether the link at `file` (relative to the context) to `target` points outside the
/// context: absolute, or up past its top.
fn leaves_context(file: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth = file.matches('/').count() as i64;
    for part in target.split('/') {
        match part {
            ".." => depth -= 1,
            "." | "" => {}
            _ => depth += 1,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// The layer of `COPY . DIR`: the context's files under `DIR`, modes as git records them.
fn app_layer(
    plan: &Plan,
    dir: &str,
    epoch: u64,
    to: &Path,
) -> Result<(LayerDigests, PathBuf), AssembleError> {
    let dir = dir.trim_start_matches('/');
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    add_parents(&mut entries, &format!("{dir}/x"));
    for (file, digest) in plan.context_files.iter().zip(&plan.file_digests) {
        let path = format!("{dir}/{file}");
        add_parents(&mut entries, &path);
        let source = plan.context.join(file);
        let entry = match digest.symlink {
            true => Entry::Symlink(
                std::fs::read_link(&source)
                    .map_err(io(format!("cannot read {file}")))?
                    .to_string_lossy()
                    .into_owned(),
            ),
            false => Entry::File(source, crate::fingerprint::git_mode(digest.mode)),
        };
        entries.insert(path, entry);
    }
    let digests = write_layer(&entries, epoch, to)?;
    Ok((digests, to.to_path_buf()))
}

/// The install layer of `files`.
fn install_layer(
    files: &[python::LayerFile],
    epoch: u64,
    to: &Path,
) -> Result<LayerDigests, AssembleError> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for file in files {
        let path = file.path();
        add_parents(&mut entries, &path);
        let entry = match file {
            python::LayerFile::Dir(_) => Entry::Dir,
            python::LayerFile::File { source, mode, .. } => Entry::File(source.clone(), *mode),
            python::LayerFile::Symlink { target, .. } => Entry::Symlink(target.clone()),
        };
        entries.insert(path, entry);
    }
    write_layer(&entries, epoch, to)
}

/// An entry of a layer being written.
enum Entry {
    Dir,
    File(PathBuf, u32),
    Symlink(String),
}

/// Adds the folders above `path` (`usr`, `usr/local`, ...) as entries, as a build's layer has
/// them.
fn add_parents(entries: &mut BTreeMap<String, Entry>, path: &str) {
    let mut at = path;
    while let Some((parent, _)) = at.rsplit_once('/') {
        entries.entry(parent.to_string()).or_insert(Entry::Dir);
        at = parent;
    }
}

/// Writes `entries` (sorted: a BTreeMap) as a layer at `to`.
fn write_layer(
    entries: &BTreeMap<String, Entry>,
    epoch: u64,
    to: &Path,
) -> Result<LayerDigests, AssembleError> {
    let file = std::fs::File::create(to).map_err(io(format!("cannot create {}", to.display())))?;
    let mut writer = LayerWriter::new(BufWriter::new(file), epoch);
    for (path, entry) in entries {
        match entry {
            Entry::Dir => writer.dir(path, 0o755),
            Entry::File(source, mode) => {
                let opened = std::fs::File::open(source)
                    .map_err(io(format!("cannot read {}", source.display())))?;
                let len = opened
                    .metadata()
                    .map_err(io(format!("cannot read {}", source.display())))?
                    .len();
                let mut reader = std::io::BufReader::new(opened);
                writer.file(path, *mode, len, &mut reader as &mut dyn Read)
            }
            Entry::Symlink(target) => writer.symlink(path, target),
        }
        .map_err(write_error)?;
    }
    let (out, digests) = writer.finish().map_err(write_error)?;
    out.into_inner()
        .map_err(|e| write_error(e.error()))?
        .sync_all()
        .map_err(io("cannot write a layer"))?;
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_out_of_the_context_are_found() {
        assert!(leaves_context("key", "/home/me/.ssh/id_rsa"));
        assert!(leaves_context("data/key", "../../secret"));
        assert!(leaves_context("a", "b/../../c"));
        assert!(!leaves_context("data/latest.csv", "../data/2024.csv"));
        assert!(!leaves_context("link", "./pkg/__init__.py"));
    }
}
