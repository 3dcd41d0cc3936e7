//! The run's work folder: the node's files and folders, made under the system's temporary
//! directory and removed when the run ends.

use std::path::{Path, PathBuf};

use super::RunError;
use super::container::container_name;
use crate::parquet::{self, Column, Values};
use crate::vantage6::{MountSource, NodeDatabase, NodeRun, SessionStateRow};

/// The run's work folder: a new folder under the system's temporary directory, removed when
/// dropped (also when the run fails or is interrupted).
pub(super) struct WorkDir {
    /// The folder.
    pub(super) path: PathBuf,
    /// Set once [`WorkDir::remove`] ran, so that dropping it does not try again.
    removed: std::sync::atomic::AtomicBool,
    /// 5.x: the session's state file and the rows written to it so far (with their times in
    /// microseconds since the epoch); the file is written whole after each new row.
    session: std::sync::Mutex<Option<SessionState>>,
}

/// A 5.x session's state file and its rows, each with its time in microseconds since the epoch.
struct SessionState {
    path: PathBuf,
    rows: Vec<(SessionStateRow, i64)>,
}

impl WorkDir {
    /// Creates a new, empty work folder, readable by any user the image runs as.
    pub(super) fn create() -> Result<WorkDir, RunError> {
        let path = std::env::temp_dir().join(container_name());
        std::fs::create_dir(&path).map_err(|source| RunError::Io {
            what: format!("cannot create the work folder {}", path.display()),
            source,
        })?;
        let work = WorkDir {
            path,
            removed: std::sync::atomic::AtomicBool::new(false),
            session: std::sync::Mutex::new(None),
        };
        // A non-root user in the image must reach the files (the node's volume is open to it).
        set_mode(&work.path, 0o755)?;
        Ok(work)
    }

    /// Creates the node's folders and files, the copies of databases it mounts read-write, and
    /// the session's state file when the session has none yet.
    pub(super) fn prepare(
        &self,
        node: &NodeRun,
        databases: &[(NodeDatabase, Option<PathBuf>)],
    ) -> Result<(), RunError> {
        for dir in &node.dirs {
            let path = self.path.join(dir);
            std::fs::create_dir_all(&path).map_err(|source| RunError::Io {
                what: format!("cannot create {}", path.display()),
                source,
            })?;
            set_mode(&path, 0o755)?;
        }
        for (relative, content) in &node.files {
            let path = self.path.join(relative);
            std::fs::write(&path, content).map_err(|source| RunError::Io {
                what: format!("cannot write {}", path.display()),
                source,
            })?;
            // The output is written by the container, whichever user it runs as.
            let mode = if *relative == node.output {
                0o666
            } else {
                0o644
            };
            set_mode(&path, mode)?;
        }
        for mount in &node.mounts {
            if let MountSource::DatabaseCopy(index, relative) = &mount.source
                && let Some((db, Some(host))) = databases.get(*index)
            {
                let path = self.path.join(relative);
                std::fs::copy(host, &path).map_err(|source| RunError::Io {
                    what: format!("cannot copy database `{}` ({})", db.label, host.display()),
                    source,
                })?;
                // Mounted read-write, as the node mounts it, whichever user the image runs as.
                set_mode(&path, 0o666)?;
            }
        }
        if let Some(relative) = &node.session_state {
            let mut session = self.session_state();
            if session.is_none() {
                *session = Some(SessionState {
                    path: self.path.join(relative),
                    rows: Vec::new(),
                });
                drop(session);
                self.session_changed(SessionStateRow::created())?;
            }
        }
        Ok(())
    }

    /// Adds `row` to the session's state file, as the node does after a run that changed the
    /// session (nothing without a session: 4.x).
    pub(super) fn session_changed(&self, row: SessionStateRow) -> Result<(), RunError> {
        let mut session = self.session_state();
        let Some(SessionState { path, rows }) = session.as_mut() else {
            return Ok(());
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        rows.push((row, now));
        let text = |f: fn(&SessionStateRow) -> &str| {
            Values::Utf8(rows.iter().map(|(r, _)| f(r)).collect())
        };
        let table = parquet::write(&[
            Column {
                name: "action",
                values: text(|r| r.action),
            },
            Column {
                name: "file",
                values: text(|r| &r.file),
            },
            Column {
                name: "timestamp",
                values: Values::TimestampMicros(rows.iter().map(|(_, t)| *t).collect()),
            },
            Column {
                name: "message",
                values: text(|r| r.message),
            },
            Column {
                name: "dataframe",
                values: text(|r| &r.dataframe),
            },
        ]);
        let written = match table {
            Some(bytes) => std::fs::write(&*path, bytes),
            None => Err(std::io::Error::other("the rows do not make one table")),
        };
        written.map_err(|source| RunError::Io {
            what: format!("cannot write {}", path.display()),
            source,
        })?;
        set_mode(path, 0o644)
    }

    fn session_state(&self) -> std::sync::MutexGuard<'_, Option<SessionState>> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps the folder past the run (a failed federated run's logs): returns its path.
    pub(super) fn keep(self) -> PathBuf {
        self.removed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.path.clone()
    }

    /// Removes the folder now, so that a failure to remove it can be reported (dropping it
    /// removes it silently).
    pub(super) fn remove(&self) -> std::io::Result<()> {
        self.removed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        std::fs::remove_dir_all(&self.path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.removed.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), RunError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        RunError::Io {
            what: format!("cannot set the permissions of {}", path.display()),
            source,
        }
    })
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<(), RunError> {
    Ok(())
}
