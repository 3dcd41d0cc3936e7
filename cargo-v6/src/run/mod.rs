//! Runs an algorithm image on this machine the way a vantage6 node runs it: the node's work
//! folder, mounts and environment ([`crate::vantage6::node_run`]) in a temporary folder, a
//! container with no network, the log followed live, and the output file read back.
//!
//! Invariants:
//! - Nothing is written into the project: the work folder is a new folder under the system's
//!   temporary directory, removed when the run ends, whatever the outcome; data files are
//!   mounted read-only from where they are.
//! - Every container is removed when its run ends (success, failure, timeout, a function
//!   that waits for the server); when a signal ends the process, by
//!   [`crate::engine::remove_leftovers`].
//! - Success means the wrapper wrote an output: the container exited 0 and the output file,
//!   which is created empty as a node does, is no longer empty.
//! - A failure says what failed, read from the wrapper's log ([`diagnose`]): the module
//!   (PKG_NAME), the method, a missing dependency, the data, the output.
//!
//! Only partial (data-station) functions can run here: a central function creates subtasks
//! through the server (the algorithm client), and no server is reachable.
//!
//! Layout: this file holds the entry points ([`run()`], [`run_emulated`], [`ensure_image`]),
//! the outcome, the events and the errors; `request` the request and the checks a node makes
//! before starting anything ([`check`]); `task` the tasks of a run (the `--extract` runs, then
//! the method), each prepared, executed and its output read back the same way, whichever way
//! it executes: `container` as a container of the engine, [`emulated`] as the image's program
//! under qemu-user (another architecture, no engine); `workdir` the temporary work folder;
//! `diagnose` what failed, read from the wrapper's log.

mod container;
mod diagnose;
pub mod emulated;
pub mod federation;
mod request;
mod task;
mod workdir;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::engine::{Engine, EngineError, LogLine};
use crate::vantage6::{FunctionStep, NodeRunError, SERVER_RETRY, SkippedEnv};
use container::image_pkg_name;
use diagnose::CENTRAL_HELP;
use emulated::{EmulationError, Emulator, TargetPlatform};
use request::checked_databases;
use task::{Executor, run_in};
use workdir::WorkDir;

pub use diagnose::{Failure, diagnose};
pub use request::{DataArg, RunRequest, Written, check};

/// What the run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The output file.
    pub output: RunOutput,
    /// The image that ran.
    pub image: String,
}

/// The output file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutput {
    /// The result, as the wrapper serialized it (`json.dumps`: one line).
    Json(String),
    /// A parquet table (5.x data extraction and preprocessing), its size in bytes.
    Table {
        /// Size of the file.
        bytes: u64,
    },
}

impl RunOutput {
    /// The output as one line of JSON: the result itself, or `{"parquet_bytes": N}` for a
    /// table. A multi-line JSON text is compacted; anything else is shown as the wrapper wrote
    /// it (Python writes `NaN` for a float NaN, which strict JSON lacks).
    pub fn json_line(&self) -> String {
        match self {
            RunOutput::Json(text) if text.contains('\n') => serde_json::from_str::<Value>(text)
                .map(|value| value.to_string())
                .unwrap_or_else(|_| text.replace(['\n', '\r'], " ")),
            RunOutput::Json(text) => text.clone(),
            RunOutput::Table { bytes } => serde_json::json!({ "parquet_bytes": bytes }).to_string(),
        }
    }
}

/// Progress of a run, for the caller to show.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// The image is not in the engine and is pulled.
    Pulling {
        /// The reference.
        reference: &'a str,
    },
    /// A pull status line.
    PullStatus(&'a str),
    /// A container starts.
    Started {
        /// The function.
        method: &'a str,
        /// 5.x: its step.
        step: Option<FunctionStep>,
        /// The image.
        image: &'a str,
        /// The environment before encoding.
        env: &'a BTreeMap<String, String>,
        /// The qemu-user binary it runs under (no engine, the network not taken away), or
        /// `None` for a container of the engine (no network).
        emulator: Option<&'a str>,
    },
    /// One line of the container's log.
    Log(&'a LogLine),
    /// The container ended.
    Exited {
        /// The function.
        method: &'a str,
        /// The exit code.
        code: i64,
    },
    /// A task of a federated run started or ended.
    Task(TaskEvent<'a>),
    /// Something the user should know; the run goes on.
    Warning(String),
    /// An extra environment variable the node does not set (it sets its own); the run goes on.
    EnvSkipped(&'a SkippedEnv),
}

/// A task of a federated run: the central function's or a subtask.
#[derive(Debug, Clone, Copy)]
pub struct TaskEvent<'a> {
    /// The task's id (`TASK_ID`).
    pub task: u64,
    /// The run's id (one per organization of the task).
    pub run: u64,
    /// The task that created it; `None` for the central function's.
    pub parent: Option<u64>,
    /// Where it runs.
    pub organization: u64,
    /// The function.
    pub method: &'a str,
    /// What happened.
    pub state: TaskState,
}

/// What happened to a task of a federated run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Its container started.
    Started,
    /// It wrote its output, after this long.
    Completed(Duration),
    /// It failed, after this long.
    Failed(Duration),
    /// The run ended before it did, after this long.
    Stopped(Duration),
}

impl TaskState {
    /// `started`, `completed`, `failed`, `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Started => "started",
            TaskState::Completed(_) => "completed",
            TaskState::Failed(_) => "failed",
            TaskState::Stopped(_) => "stopped",
        }
    }

    /// How long it ran, once it ended.
    pub fn elapsed(self) -> Option<Duration> {
        match self {
            TaskState::Started => None,
            TaskState::Completed(d) | TaskState::Failed(d) | TaskState::Stopped(d) => Some(d),
        }
    }
}

/// Receives [`RunEvent`]s. `Sync`: engine callbacks may run on the runtime's threads.
pub trait RunObserver: Sync {
    /// Called for each event, in order.
    fn event(&self, event: RunEvent<'_>);
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The request is wrong (arguments, data, environment): nothing was started.
    #[error("{message}")]
    Input {
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: Option<String>,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The work folder could not be made or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The algorithm failed: what failed, read from the wrapper's log.
    #[error("`{method}` failed: {failure}")]
    Failed {
        /// The function.
        method: String,
        /// What failed.
        failure: Failure,
        /// The container's exit code.
        code: i64,
    },
    /// The function waits for the vantage6 server (its algorithm client retries the
    /// connection once a second, for good): a central function.
    #[error(
        "`{method}` tried to reach the vantage6 server (the algorithm client logged \
         `{SERVER_RETRY}` and would retry for good), which a local run has not; it \
         was stopped (its container removed, or its qemu process killed)"
    )]
    NeedsServer {
        /// The function.
        method: String,
    },
    /// The run was stopped before its end: a federated run ended otherwise (a task failed,
    /// or the algorithm asked for something the run's server does not serve).
    #[error("`{method}` was stopped: the federated run ended")]
    Cancelled {
        /// The function.
        method: String,
    },
    /// A federated run ended before its central function did.
    #[error("{reason}")]
    Federation {
        /// Why.
        reason: String,
        /// How to fix it (a failed subtask's own hint).
        hint: Option<Hint>,
    },
    /// The image could not be run under qemu-user.
    #[error(transparent)]
    Emulation(#[from] EmulationError),
    /// The run took longer than the timeout.
    #[error(
        "`{method}` did not finish within {} s; it was stopped (its container removed, or its \
         qemu process killed)",
        .after.as_secs()
    )]
    TimedOut {
        /// The function.
        method: String,
        /// The timeout.
        after: Duration,
    },
}

impl From<NodeRunError> for RunError {
    fn from(error: NodeRunError) -> Self {
        RunError::Input {
            message: error.to_string(),
            help: None,
        }
    }
}

impl RunError {
    /// How to fix it.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            RunError::Input { help, .. } => help.clone().map(Hint::Say),
            RunError::Failed { failure, .. } => failure.hint(),
            RunError::NeedsServer { .. } => Some(Hint::Say(CENTRAL_HELP.to_owned())),
            RunError::TimedOut { .. } => Some(Hint::Timeout),
            RunError::Emulation(e) => e.help().map(Hint::Say),
            RunError::Federation { hint, .. } => hint.clone(),
            _ => None,
        }
    }
}

/// How to fix a failed run: advice in the project's terms, or a change to the request, which
/// the command words with its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Advice that names no flag.
    Say(String),
    /// Run the function as the step its decorator declares.
    Step(String),
    /// Give the function every database it takes.
    Data,
    /// Check the database's file and its type.
    DataType,
    /// Let the function run longer, or without a limit.
    Timeout,
}

/// Makes sure `reference` is in the engine: an image id or a reference it has is used as is;
/// otherwise it is pulled (with the credentials for its registry), as a node pulls: the
/// image for `platform` when given (the engine's own platform, an index resolved to it,
/// otherwise).
pub async fn ensure_image(
    engine: &Engine,
    reference: &str,
    platform: Option<&TargetPlatform>,
    observer: &dyn RunObserver,
) -> Result<(), RunError> {
    if engine.image_labels(reference).await?.is_some() {
        return Ok(());
    }
    let parsed =
        crate::oci::reference::ImageRef::parse(reference).map_err(|e| RunError::Input {
            message: format!(
                "no image `{reference}` in the engine, and it is no reference to pull: {e}"
            ),
            help: None,
        })?;
    let credentials =
        crate::credentials::resolve(parsed.name.domain()).map_err(|e| RunError::Input {
            message: e.to_string(),
            help: None,
        })?;
    observer.event(RunEvent::Pulling { reference });
    engine
        .pull(
            &parsed,
            platform.map(ToString::to_string).as_deref(),
            credentials.as_ref(),
            &mut |status| observer.event(RunEvent::PullStatus(&status)),
        )
        .await?;
    Ok(())
}

/// Runs `request` in `image` (an image id or a reference the engine has) as a node would,
/// and returns the output. Dropped before its end (a signal), it leaves its container to
/// [`crate::engine::remove_leftovers`] and removes its work folder.
pub async fn run(
    engine: &Engine,
    image: &str,
    request: &RunRequest,
    observer: &dyn RunObserver,
) -> Result<RunOutcome, RunError> {
    if let Some(federation) = &request.federation {
        return federation::run_federation(engine, image, request, federation, observer).await;
    }
    let databases = checked_databases(request)?;
    let module = image_pkg_name(engine, image).await?;
    let work = WorkDir::create()?;
    let result = run_in(
        Executor::Engine(engine),
        image,
        request,
        &databases,
        module.as_deref(),
        &work,
        observer,
    )
    .await;
    finish(work, observer);
    result
}

/// Runs `request` in `image` (a registry reference) for `platform` without the engine: the
/// image's program under qemu-user, in its root file system (read from the registry and
/// cached), with the node's files and environment ([`emulated`] says what differs from a
/// container). Dropped before its end (a signal), it kills its process and removes its work
/// folder.
pub async fn run_emulated(
    image: &str,
    platform: &TargetPlatform,
    request: &RunRequest,
    observer: &dyn RunObserver,
) -> Result<RunOutcome, RunError> {
    if request.federation.is_some() {
        return Err(RunError::Input {
            message: "a federated run (--org) runs its containers in the engine; it cannot run under qemu-user".to_owned(),
            help: None,
        });
    }
    let databases = checked_databases(request)?;
    let emulator = Emulator::prepare(image, platform, observer).await?;
    let work = WorkDir::create()?;
    let result = run_in(
        Executor::Emulated(&emulator),
        image,
        request,
        &databases,
        emulator.pkg_name(),
        &work,
        observer,
    )
    .await;
    finish(work, observer);
    result
}

/// Removes the work folder at the run's end, saying so when it cannot.
fn finish(work: WorkDir, observer: &dyn RunObserver) {
    if let Err(e) = work.remove() {
        observer.event(RunEvent::Warning(format!(
            "cannot remove the temporary folder {}: {e}",
            work.path.display()
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_one_line_of_json() {
        assert_eq!(
            RunOutput::Json(r#"{"sum": 6, "count": 3}"#.into()).json_line(),
            r#"{"sum": 6, "count": 3}"#
        );
        assert_eq!(
            RunOutput::Json("{\n \"a\": 1\n}".into()).json_line(),
            r#"{"a":1}"#
        );
        assert_eq!(RunOutput::Json("[NaN,\n1]".into()).json_line(), "[NaN, 1]");
        assert_eq!(
            RunOutput::Table { bytes: 42 }.json_line(),
            r#"{"parquet_bytes":42}"#
        );
    }
}
