//! A federated run on one machine: the central function's container, a stand-in for the
//! vantage6 server (and each node's proxy) that cargo v6 serves itself ([`server`], answering
//! with [`api`]), and each subtask the central function creates run as its organization's
//! node would run it: the partial function in its own container of the same image, with that
//! organization's data, its own token and task id, up to `jobs` at once. Each organization is
//! a node with its own work folder (and, in 5.x, its own session). Encryption is off, as in an
//! unencrypted collaboration.
//!
//! Invariants:
//! - The run ends with the central function: its output is the run's. A subtask that fails,
//!   a task the server refuses, or a request for an endpoint it does not serve ends the run at
//!   once, naming why; the containers still running are stopped and removed.
//! - Every container's log is written to a folder of its own, kept (and pointed to) when the
//!   run fails, removed with the work folders otherwise.

mod api;
mod server;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;

use super::container::image_pkg_name;
use super::request::checked_databases;
use super::task::{Executor, Run, Task};
use super::workdir::WorkDir;
use super::{
    DataArg, Hint, RunError, RunEvent, RunObserver, RunOutcome, RunOutput, RunRequest, TaskEvent,
    TaskState,
};
use crate::engine::{Engine, LogLine};
use crate::vantage6::{FunctionStep, NodeDatabase, NodeIds, Proxy};
use api::{Api, Call, Effect};

/// What makes a run federated: the organizations, where the central function runs, and how
/// many subtasks run at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    /// The organizations and their databases.
    pub organizations: Vec<Organization>,
    /// The organization the central function runs at.
    pub central: u64,
    /// How many subtasks run at once.
    pub jobs: usize,
}

/// One organization of a federated run: its node's databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Its id.
    pub id: u64,
    /// Its databases, by label.
    pub data: Vec<DataArg>,
}

/// One organization's node: its databases and work folder.
struct Node {
    request: RunRequest,
    databases: Vec<(NodeDatabase, Option<PathBuf>)>,
    work: WorkDir,
    next_run: std::cell::Cell<u32>,
}

/// Checks `request` (the central function's task) as each organization's node would, before
/// anything starts.
pub fn check(request: &RunRequest, federation: &Federation) -> Result<(), RunError> {
    node_requests(request, federation)?
        .iter()
        .try_for_each(|(_, r)| checked_databases(r).map(drop))
}

/// Each organization's node's request: the central task's environment, timeout and version,
/// the organization's data and ids.
fn node_requests(
    request: &RunRequest,
    federation: &Federation,
) -> Result<Vec<(u64, RunRequest)>, RunError> {
    if !federation
        .organizations
        .iter()
        .any(|o| o.id == federation.central)
    {
        return Err(RunError::Input {
            message: format!(
                "the central function runs at organization {}, which no --org names",
                federation.central
            ),
            help: None,
        });
    }
    Ok(federation
        .organizations
        .iter()
        .map(|org| {
            let node = RunRequest {
                data: org.data.clone(),
                step: None,
                ids: NodeIds {
                    task: 1,
                    node: org.id,
                    organization: org.id,
                    collaboration: request.ids.collaboration,
                },
                federation: None,
                ..request.clone()
            };
            (org.id, node)
        })
        .collect())
}

/// Runs `request` with `image` (one the engine has): the central function, and every task it
/// creates. Returns the central function's output.
pub(super) async fn run_federation(
    engine: &Engine,
    image: &str,
    request: &RunRequest,
    federation: &Federation,
    observer: &dyn RunObserver,
) -> Result<RunOutcome, RunError> {
    let module = image_pkg_name(engine, image).await?;
    let mut nodes = BTreeMap::new();
    for (id, node_request) in node_requests(request, federation)? {
        let databases = checked_databases(&node_request)?;
        nodes.insert(
            id,
            Node {
                request: node_request,
                databases,
                work: WorkDir::create()?,
                next_run: std::cell::Cell::new(1),
            },
        );
    }
    let logs = WorkDir::create()?;
    let result = Federated {
        engine,
        image,
        request,
        federation,
        module: module.as_deref(),
        nodes: &nodes,
        logs: &logs.path,
        observer,
    }
    .run()
    .await;
    for node in nodes.into_values() {
        super::finish(node.work, observer);
    }
    match &result {
        Ok(_) => super::finish(logs, observer),
        Err(_) => observer.event(RunEvent::Warning(format!(
            "the logs of the run's containers are kept in {}",
            logs.keep().display()
        ))),
    }
    result
}

/// A federated run under way.
struct Federated<'a> {
    engine: &'a Engine,
    image: &'a str,
    request: &'a RunRequest,
    federation: &'a Federation,
    module: Option<&'a str>,
    nodes: &'a BTreeMap<u64, Node>,
    logs: &'a std::path::Path,
    observer: &'a dyn RunObserver,
}

/// How one run of a task ended.
struct Ended {
    run: u64,
    result: Result<RunOutput, RunError>,
    elapsed: std::time::Duration,
}

impl Federated<'_> {
    async fn run(&self) -> Result<RunOutcome, RunError> {
        let is_5 = self.request.vantage6.major >= 5;
        // 5.x: each node's session gets its dataframes first, as the data extraction tasks
        // of the session would.
        let mut dataframes: BTreeMap<u64, Vec<(NodeDatabase, Option<PathBuf>)>> = BTreeMap::new();
        for (&id, node) in self.nodes {
            let databases = match (is_5, &self.request.extract) {
                (true, Some(extract)) => {
                    let run = self.node_run(node, self.observer, None);
                    let (frames, next) = run.extract(extract, &node.databases, 1).await?;
                    node.next_run.set(next);
                    frames
                }
                _ => node.databases.clone(),
            };
            dataframes.insert(id, databases);
        }
        let central_labels: Vec<String> = dataframes
            .get(&self.federation.central)
            .into_iter()
            .flatten()
            .map(|(db, _)| db.label.clone())
            .collect();
        let api = Arc::new(Mutex::new(Api::new(
            self.request.vantage6.major,
            self.request.ids.collaboration,
            self.nodes.keys().copied().collect(),
            self.image,
            central_labels.clone(),
            Box::new(nonce),
        )));
        let central = lock(&api).create_user_task(
            self.federation.central,
            Call {
                method: self.request.method.clone(),
                args: self.request.args.clone(),
                kwargs: self.request.kwargs.clone(),
                databases: central_labels,
                action: is_5.then(|| FunctionStep::CentralCompute.as_str().to_owned()),
            },
            self.request.written_input(),
        );
        let (effects_tx, mut effects) = tokio::sync::mpsc::unbounded_channel();
        let changed = Arc::new(tokio::sync::Notify::new());
        let server = server::serve(Arc::clone(&api), effects_tx, Arc::clone(&changed))
            .await
            .map_err(|source| RunError::Io {
                what: "cannot serve the federated run's server on 127.0.0.1".to_owned(),
                source,
            })?;
        let cancel = CancellationToken::new();
        let mut running = FuturesUnordered::new();
        let mut pending: VecDeque<u64> = VecDeque::new();
        let mut subtasks_running = 0;
        running.push(self.start(&api, central, &dataframes, server.port, &cancel));
        let outcome = loop {
            while subtasks_running < self.federation.jobs.max(1)
                && let Some(run) = pending.pop_front()
            {
                subtasks_running += 1;
                running.push(self.start(&api, run, &dataframes, server.port, &cancel));
            }
            tokio::select! {
                Some(ended) = running.next() => {
                    if ended.run != central {
                        subtasks_running -= 1;
                    }
                    let result = self.ended(&api, ended, central);
                    changed.notify_waiters();
                    match result {
                        Ok(Some(output)) => break Ok(output),
                        Ok(None) => {}
                        Err(e) => break Err(e),
                    }
                }
                Some(effect) = effects.recv() => match effect {
                    Effect::Start(runs) => pending.extend(runs),
                    Effect::Stop(reason) => break Err(RunError::Federation {
                        reason,
                        hint: Some(Hint::Say("a local federated run serves what vantage6's algorithm client needs for tasks and their results; report what is missing".to_owned())),
                    }),
                    Effect::None => {}
                },
            }
        };
        // Whatever ended the run, every container still running goes.
        cancel.cancel();
        while let Some(ended) = running.next().await {
            self.task_event(&api, ended.run, TaskState::Stopped(ended.elapsed));
        }
        drop(server);
        outcome.map(|output| RunOutcome {
            output,
            image: self.image.to_owned(),
        })
    }

    /// Records how a run ended; the central function's output ends the run.
    fn ended(
        &self,
        api: &Mutex<Api>,
        ended: Ended,
        central: u64,
    ) -> Result<Option<RunOutput>, RunError> {
        match ended.result {
            Ok(output) => {
                let bytes = match &output {
                    RunOutput::Json(text) => text.clone().into_bytes(),
                    // A table is the session's; the server holds no result for it.
                    RunOutput::Table { .. } => Vec::new(),
                };
                lock(api).finished(ended.run, Some(bytes));
                self.task_event(api, ended.run, TaskState::Completed(ended.elapsed));
                Ok((ended.run == central).then_some(output))
            }
            Err(RunError::Cancelled { .. }) => {
                self.task_event(api, ended.run, TaskState::Stopped(ended.elapsed));
                Ok(None)
            }
            Err(error) => {
                lock(api).finished(ended.run, None);
                self.task_event(api, ended.run, TaskState::Failed(ended.elapsed));
                if ended.run == central {
                    return Err(error);
                }
                let (method, organization) = {
                    let api = lock(api);
                    let run = api.run(ended.run);
                    (
                        run.map(|r| r.call.method.clone()).unwrap_or_default(),
                        run.map_or(0, |r| r.organization),
                    )
                };
                Err(RunError::Federation {
                    reason: format!(
                        "the subtask `{method}` at organization {organization} failed: {error}"
                    ),
                    hint: error.hint(),
                })
            }
        }
    }

    /// Starts run `id` of the server's tasks in a container of its organization's node.
    fn start<'s>(
        &'s self,
        api: &'s Mutex<Api>,
        id: u64,
        dataframes: &'s BTreeMap<u64, Vec<(NodeDatabase, Option<PathBuf>)>>,
        port: u16,
        cancel: &'s CancellationToken,
    ) -> impl std::future::Future<Output = Ended> + 's {
        let record = {
            let mut api = lock(api);
            api.started(id);
            api.run(id).cloned()
        };
        self.task_event(api, id, TaskState::Started);
        async move {
            let started = Instant::now();
            let result = match record {
                Some(record) => self.execute(&record, dataframes, port, cancel).await,
                None => Err(RunError::Federation {
                    reason: format!("no run {id}"),
                    hint: None,
                }),
            };
            Ended {
                run: id,
                result,
                elapsed: started.elapsed(),
            }
        }
    }

    async fn execute(
        &self,
        record: &api::RunRecord,
        dataframes: &BTreeMap<u64, Vec<(NodeDatabase, Option<PathBuf>)>>,
        port: u16,
        cancel: &CancellationToken,
    ) -> Result<RunOutput, RunError> {
        let organization = record.organization;
        let (Some(node), Some(available)) =
            (self.nodes.get(&organization), dataframes.get(&organization))
        else {
            return Err(RunError::Federation {
                reason: format!("organization {organization} is not in this run"),
                hint: None,
            });
        };
        let databases = databases_for(&record.call.databases, available, organization)?;
        let log = TaskLog::create(self.logs, record, self.observer)?;
        let run = self.node_run(node, &log, Some(cancel));
        let run_id = node.next_run.get();
        node.next_run.set(run_id + 1);
        let step = match &record.call.action {
            Some(action) => FunctionStep::parse(action).unwrap_or(FunctionStep::FederatedCompute),
            None => FunctionStep::FederatedCompute,
        };
        let task = Task {
            method: &record.call.method,
            args: &record.call.args,
            kwargs: &record.call.kwargs,
            step,
            databases: &databases,
            run_id,
            task_id: record.task,
            proxy: Some(Proxy {
                host: "http://127.0.0.1",
                port,
                nonce: &record.nonce,
            }),
            raw_input: record.raw.as_deref(),
        };
        run.task(&task).await
    }

    fn node_run<'s>(
        &'s self,
        node: &'s Node,
        observer: &'s dyn RunObserver,
        cancel: Option<&'s CancellationToken>,
    ) -> Run<'s> {
        Run {
            executor: Executor::Engine(self.engine),
            image: self.image,
            request: &node.request,
            module: self.module,
            work: &node.work,
            observer,
            cancel,
        }
    }

    fn task_event(&self, api: &Mutex<Api>, run: u64, state: TaskState) {
        let api = lock(api);
        let Some(record) = api.run(run) else {
            return;
        };
        self.observer.event(RunEvent::Task(TaskEvent {
            task: record.task,
            run,
            parent: api.parent_of(record.task),
            organization: record.organization,
            method: &record.call.method,
            state,
        }));
    }
}

/// The databases a task's run reads at its organization: those its task names, by label, in
/// that order; all of the node's when the task names none.
fn databases_for(
    labels: &[String],
    available: &[(NodeDatabase, Option<PathBuf>)],
    organization: u64,
) -> Result<Vec<(NodeDatabase, Option<PathBuf>)>, RunError> {
    if labels.is_empty() {
        return Ok(available.to_vec());
    }
    labels
        .iter()
        .enumerate()
        .map(|(position, label)| {
            available
                .iter()
                .find(|(db, _)| &db.label == label)
                .map(|(db, host)| {
                    (
                        NodeDatabase {
                            position,
                            ..db.clone()
                        },
                        host.clone(),
                    )
                })
                .ok_or_else(|| RunError::Federation {
                    reason: format!(
                        "a task asks organization {organization} for the database `{label}`, which it does not have"
                    ),
                    hint: Some(Hint::Say(format!("give it with --org {organization}:{label}=PATH"))),
                })
        })
        .collect()
}

/// One run's log: each line shown with the task and organization in front, and written to
/// its file in the run's log folder.
struct TaskLog<'a> {
    prefix: String,
    file: Mutex<std::fs::File>,
    inner: &'a dyn RunObserver,
}

impl<'a> TaskLog<'a> {
    fn create(
        folder: &std::path::Path,
        record: &api::RunRecord,
        inner: &'a dyn RunObserver,
    ) -> Result<TaskLog<'a>, RunError> {
        let path = folder.join(format!(
            "task-{}-organization-{}.log",
            record.task, record.organization
        ));
        let file = std::fs::File::create(&path).map_err(|source| RunError::Io {
            what: format!("cannot create {}", path.display()),
            source,
        })?;
        Ok(TaskLog {
            prefix: format!("[task {} org {}] ", record.task, record.organization),
            file: Mutex::new(file),
            inner,
        })
    }
}

impl RunObserver for TaskLog<'_> {
    fn event(&self, event: RunEvent<'_>) {
        match event {
            RunEvent::Log(line) => {
                use std::io::Write;
                // A log line that cannot be kept is still shown.
                let _ = writeln!(lock(&self.file), "{}", line.text());
                let shown = LogLine::Stderr(format!("{}{}", self.prefix, line.text()));
                self.inner.event(RunEvent::Log(&shown));
            }
            // The run shows its tasks itself.
            RunEvent::Started { .. } | RunEvent::Exited { .. } => {}
            other => self.inner.event(other),
        }
    }
}

/// A secret for one container's token: 128 random bits.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    // Without the system's randomness, the time and a counter: still unique per run.
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ u128::from(N.fetch_add(1, Ordering::Relaxed))).to_le_bytes();
    }
    hex::encode(bytes)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
