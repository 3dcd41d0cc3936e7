//! The tasks of a run: one per process (the `--extract` runs first, then the method), each
//! prepared in the work folder, executed (a container of the engine, or the image's program
//! under qemu-user), and its output read back and diagnosed the same way.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::container;
use super::diagnose::{Failure, diagnose, without_ansi};
use super::emulated::Emulator;
use super::workdir::WorkDir;
use super::{RunError, RunEvent, RunObserver, RunOutcome, RunOutput, RunRequest};
use crate::engine::{Engine, LogLine};
use crate::vantage6::{
    self, DatabaseSource, FunctionStep, NodeDatabase, NodeIds, NodeRun, NodeTask, OutputFormat,
    SERVER_RETRY,
};

/// Where the tasks of a run execute.
#[derive(Clone, Copy)]
pub(super) enum Executor<'a> {
    /// A container of the engine per task.
    Engine(&'a Engine),
    /// The image's program under qemu-user, in an unpacked root file system.
    Emulated(&'a Emulator),
}

/// Runs the tasks of `request` in `work`: with `--extract` (5.x), one data extraction per
/// database first, whose tables become the session's dataframes; then the method. Returns the
/// method's output.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_in(
    executor: Executor<'_>,
    image: &str,
    request: &RunRequest,
    databases: &[(NodeDatabase, Option<PathBuf>)],
    module: Option<&str>,
    work: &WorkDir,
    observer: &dyn RunObserver,
) -> Result<RunOutcome, RunError> {
    let is_5 = request.vantage6.major == 5;
    let step = request.step.unwrap_or(FunctionStep::FederatedCompute);
    let mut task_databases: Vec<(NodeDatabase, Option<PathBuf>)> = databases.to_vec();
    let mut run_id = 1;
    let run = Run {
        executor,
        image,
        request,
        module,
        work,
        observer,
        cancel: None,
    };
    if let (true, Some(extract)) = (is_5, &request.extract) {
        (task_databases, run_id) = run.extract(extract, databases, run_id).await?;
    }
    let written = request.written_input();
    let task = Task {
        method: &request.method,
        args: &request.args,
        kwargs: &request.kwargs,
        step,
        databases: &task_databases,
        run_id,
        task_id: request.ids.task,
        proxy: None,
        raw_input: written.as_deref(),
    };
    let output = run.task(&task).await?;
    Ok(RunOutcome {
        output,
        image: image.to_owned(),
    })
}

/// What every task of a run (of one node, in a federated run) shares.
pub(super) struct Run<'a> {
    pub(super) executor: Executor<'a>,
    pub(super) image: &'a str,
    /// The environment, timeout and ids of its tasks (the task id aside).
    pub(super) request: &'a RunRequest,
    pub(super) module: Option<&'a str>,
    pub(super) work: &'a WorkDir,
    pub(super) observer: &'a dyn RunObserver,
    /// Stops its tasks early (a federated run that ended otherwise).
    pub(super) cancel: Option<&'a tokio_util::sync::CancellationToken>,
}

/// One task.
pub(super) struct Task<'a> {
    /// The function.
    pub(super) method: &'a str,
    pub(super) args: &'a [Value],
    pub(super) kwargs: &'a Map<String, Value>,
    pub(super) step: FunctionStep,
    /// Its databases, with their host paths.
    pub(super) databases: &'a [(NodeDatabase, Option<PathBuf>)],
    /// Names its folder in the work folder.
    pub(super) run_id: u32,
    /// `TASK_ID`: each task is a task of its own.
    pub(super) task_id: u64,
    /// The federated run's server, which its algorithm client reaches over this machine's
    /// network; `None`: no network.
    pub(super) proxy: Option<vantage6::Proxy<'a>>,
    /// The input file as its creator encoded it (a subtask's), see
    /// [`vantage6::NodeTask::raw_input`].
    pub(super) raw_input: Option<&'a [u8]>,
}

/// How a task's process ended, and what it wrote (without ANSI colours), for [`diagnose`].
pub(super) struct Exited {
    /// Its exit code.
    pub(super) code: i64,
    /// Its log.
    pub(super) lines: Vec<String>,
}

impl Run<'_> {
    /// 5.x: runs `extract` on each of `databases`, as data extractions numbered from
    /// `run_id`, and keeps each table in the session as a dataframe named by its label.
    /// Returns the dataframes, as the databases of the tasks after them, and the next run id.
    pub(super) async fn extract(
        &self,
        extract: &str,
        databases: &[(NodeDatabase, Option<PathBuf>)],
        mut run_id: u32,
    ) -> Result<(Vec<(NodeDatabase, Option<PathBuf>)>, u32), RunError> {
        let empty = Map::new();
        for (db, host) in databases {
            let source = [(db.clone(), host.clone())];
            let task = Task {
                method: extract,
                args: &[],
                kwargs: &empty,
                step: FunctionStep::DataExtraction,
                databases: &source,
                run_id,
                task_id: u64::from(run_id),
                proxy: None,
                raw_input: None,
            };
            self.task(&task).await?;
            let from = self.work.path.join(format!("run-{run_id}/output"));
            let to = self.work.path.join(format!("session/{}.parquet", db.label));
            std::fs::rename(&from, &to).map_err(|source| RunError::Io {
                what: format!("cannot keep the table of `{extract}` for `{}`", db.label),
                source,
            })?;
            self.work
                .session_changed(vantage6::SessionStateRow::dataframe_stored(
                    FunctionStep::DataExtraction,
                    &db.label,
                ))?;
            run_id += 1;
        }
        let dataframes = databases
            .iter()
            .map(|(db, _)| {
                (
                    NodeDatabase {
                        source: DatabaseSource::SessionDataframe,
                        ..db.clone()
                    },
                    None,
                )
            })
            .collect();
        Ok((dataframes, run_id))
    }

    /// Prepares the work folder for `task`, executes it to the end, and reads the output.
    pub(super) async fn task(&self, task: &Task<'_>) -> Result<RunOutput, RunError> {
        let request = self.request;
        let node_databases: Vec<NodeDatabase> =
            task.databases.iter().map(|(d, _)| d.clone()).collect();
        let node = vantage6::node_run(&NodeTask {
            version: &request.vantage6,
            method: task.method,
            args: task.args,
            kwargs: task.kwargs,
            databases: &node_databases,
            step: task.step,
            extra_env: &request.env,
            image: self.image,
            run_id: task.run_id,
            ids: NodeIds {
                task: task.task_id,
                ..request.ids
            },
            raw_input: task.raw_input,
            proxy: task.proxy,
        })?;
        for skipped in &node.skipped_env {
            self.observer.event(RunEvent::EnvSkipped(skipped));
        }
        self.work.prepare(&node, task.databases)?;
        let started = RunEvent::Started {
            method: task.method,
            step: (request.vantage6.major == 5).then_some(task.step),
            image: self.image,
            env: &node.env_plain,
            emulator: match self.executor {
                Executor::Engine(_) => None,
                Executor::Emulated(emulator) => Some(emulator.qemu_name()),
            },
        };
        let exited = match self.executor {
            Executor::Engine(engine) => {
                container::execute(
                    engine,
                    self.image,
                    &node,
                    task,
                    &self.work.path,
                    self.limits(),
                    started,
                )
                .await?
            }
            Executor::Emulated(emulator) => {
                emulator
                    .execute(&node, task, self.work, self.limits(), started)
                    .await?
            }
        };
        self.observer.event(RunEvent::Exited {
            method: task.method,
            code: exited.code,
        });
        let output_path = self.work.path.join(&node.output);
        let written = std::fs::metadata(&output_path)
            .map(|m| m.len())
            .unwrap_or(0);
        if exited.code != 0 || written == 0 {
            let failure = if exited.code == 0 {
                Failure::NoOutput
            } else {
                diagnose(&exited.lines, self.module, task.method)
            };
            return Err(RunError::Failed {
                method: task.method.to_owned(),
                failure,
                code: exited.code,
            });
        }
        match node.output_format {
            OutputFormat::Parquet => Ok(RunOutput::Table { bytes: written }),
            OutputFormat::Json => {
                let bytes = std::fs::read(&output_path).map_err(|source| RunError::Io {
                    what: "cannot read the output file".to_owned(),
                    source,
                })?;
                Ok(RunOutput::Json(
                    String::from_utf8_lossy(&bytes).into_owned(),
                ))
            }
        }
    }

    fn limits(&self) -> Limits<'_> {
        Limits {
            timeout: self.request.timeout,
            observer: self.observer,
            cancel: self.cancel,
        }
    }
}

/// What watches a task's process: how long it may take, and who sees its log.
#[derive(Clone, Copy)]
pub(super) struct Limits<'a> {
    /// `--timeout`.
    pub(super) timeout: Option<Duration>,
    /// Shown each line.
    pub(super) observer: &'a dyn RunObserver,
    /// Ends it early.
    pub(super) cancel: Option<&'a tokio_util::sync::CancellationToken>,
}

/// How following a task's process ended.
pub(super) enum Ended<T> {
    /// It ran to its end.
    Exited(T),
    /// The timeout passed first.
    TimedOut,
    /// Its algorithm client started retrying the server.
    NeedsServer,
    /// It was cancelled.
    Cancelled,
}

/// A task's log as it arrives: each line shown, kept for [`diagnose`], and watched for the
/// algorithm client's retries of the server.
pub(super) struct Log<'a> {
    observer: &'a dyn RunObserver,
    lines: Vec<String>,
    /// Notified at the first retry, for [`supervise`].
    waits_for_server: &'a tokio::sync::Notify,
}

impl<'a> Log<'a> {
    pub(super) fn new(
        observer: &'a dyn RunObserver,
        waits_for_server: &'a tokio::sync::Notify,
    ) -> Self {
        Log {
            observer,
            lines: Vec::new(),
            waits_for_server,
        }
    }

    /// One line the process wrote.
    pub(super) fn line(&mut self, line: &LogLine) {
        self.observer.event(RunEvent::Log(line));
        if line.text().contains(SERVER_RETRY) {
            self.waits_for_server.notify_one();
        }
        self.lines.push(without_ansi(line.text()));
    }

    /// The lines, once the process ended.
    pub(super) fn into_lines(self) -> Vec<String> {
        self.lines
    }
}

/// Follows a task's process (`follow` writes its lines to `log`) until it ends, `timeout`
/// passes, or its algorithm client starts retrying the server (it would retry once a second
/// for good: no server is reachable from here). The caller removes the process in the two
/// latter cases.
pub(super) async fn supervise<T>(
    limits: &Limits<'_>,
    waits_for_server: &tokio::sync::Notify,
    follow: impl Future<Output = T>,
) -> Ended<T> {
    let timeout = limits.timeout;
    let cancelled = async {
        match limits.cancel {
            Some(cancel) => cancel.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let timed = async {
        match timeout {
            Some(limit) => tokio::time::timeout(limit, follow).await.ok(),
            None => Some(follow.await),
        }
    };
    tokio::select! {
        exited = timed => exited.map_or(Ended::TimedOut, Ended::Exited),
        () = waits_for_server.notified() => Ended::NeedsServer,
        () = cancelled => Ended::Cancelled,
    }
}

/// The error of a task that [`supervise`] stopped.
pub(super) fn stopped<T>(
    ended: Ended<T>,
    method: &str,
    timeout: Option<Duration>,
) -> Result<T, RunError> {
    match ended {
        Ended::Exited(value) => Ok(value),
        Ended::TimedOut => Err(RunError::TimedOut {
            method: method.to_owned(),
            after: timeout.unwrap_or_default(),
        }),
        Ended::NeedsServer => Err(RunError::NeedsServer {
            method: method.to_owned(),
        }),
        Ended::Cancelled => Err(RunError::Cancelled {
            method: method.to_owned(),
        }),
    }
}

/// The node's mounts with their host paths.
pub(super) fn binds(
    node: &NodeRun,
    work: &std::path::Path,
    databases: &[(NodeDatabase, Option<PathBuf>)],
) -> Vec<crate::engine::Bind> {
    use crate::vantage6::MountSource;
    node.mounts
        .iter()
        .filter_map(|mount| {
            let host = match &mount.source {
                MountSource::Work(relative) if relative.is_empty() => work.to_owned(),
                MountSource::Work(relative) => work.join(relative),
                MountSource::Database(index) => databases.get(*index)?.1.clone()?,
                MountSource::DatabaseCopy(_, relative) => work.join(relative),
            };
            Some(crate::engine::Bind {
                host,
                container: mount.target.clone(),
                read_only: mount.read_only,
            })
        })
        .collect()
}
