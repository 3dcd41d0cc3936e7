//! The containers of a run: one per task (the `--extract` runs first, then the method), each
//! prepared, run to its end, removed, and its output read back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::diagnose::{Failure, diagnose, without_ansi};
use super::workdir::WorkDir;
use super::{RunError, RunEvent, RunObserver, RunOutcome, RunOutput, RunRequest};
use crate::engine::{Bind, ContainerSpec, Engine};
use crate::vantage6::{
    self, DatabaseSource, FunctionStep, MountSource, NodeDatabase, NodeIds, NodeRun, NodeTask,
    OutputFormat, SERVER_RETRY,
};

/// Runs the containers of `request` in `work`: with `--extract` (5.x), one data extraction per
/// database first, whose tables become the session's dataframes; then the method. Returns the
/// method's output.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_in(
    engine: &Engine,
    image: &str,
    request: &RunRequest,
    databases: &[(NodeDatabase, Option<PathBuf>)],
    module: Option<&str>,
    work: &WorkDir,
    observer: &dyn RunObserver,
) -> Result<RunOutcome, RunError> {
    let is_5 = request.vantage6.major == 5;
    let step = request.step.unwrap_or(FunctionStep::FederatedCompute);
    let empty = Map::new();
    let mut task_databases: Vec<(NodeDatabase, Option<PathBuf>)> = databases.to_vec();
    let mut run_id = 1;
    if let (true, Some(extract)) = (is_5, &request.extract) {
        // Each source becomes a dataframe of the session, named by its label.
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
            };
            run_container(engine, image, request, &task, module, work, observer).await?;
            let from = work.path.join(format!("run-{run_id}/output"));
            let to = work.path.join(format!("session/{}.parquet", db.label));
            std::fs::rename(&from, &to).map_err(|source| RunError::Io {
                what: format!("cannot keep the table of `{extract}` for `{}`", db.label),
                source,
            })?;
            work.session_changed(vantage6::SessionStateRow::dataframe_stored(
                FunctionStep::DataExtraction,
                &db.label,
            ))?;
            run_id += 1;
        }
        task_databases = databases
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
    }
    let task = Task {
        method: &request.method,
        args: &request.args,
        kwargs: &request.kwargs,
        step,
        databases: &task_databases,
        run_id,
        task_id: request.ids.task,
    };
    let output = run_container(engine, image, request, &task, module, work, observer).await?;
    Ok(RunOutcome {
        output,
        image: image.to_owned(),
    })
}

/// One container's task.
struct Task<'a> {
    method: &'a str,
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
    step: FunctionStep,
    databases: &'a [(NodeDatabase, Option<PathBuf>)],
    run_id: u32,
    /// `TASK_ID`: each container is a task of its own.
    task_id: u64,
}

/// Prepares the work folder for `task`, runs its container to the end, removes it, and reads
/// the output.
#[allow(clippy::too_many_arguments)]
async fn run_container(
    engine: &Engine,
    image: &str,
    request: &RunRequest,
    task: &Task<'_>,
    module: Option<&str>,
    work: &WorkDir,
    observer: &dyn RunObserver,
) -> Result<RunOutput, RunError> {
    let node_databases: Vec<NodeDatabase> = task.databases.iter().map(|(d, _)| d.clone()).collect();
    let node = vantage6::node_run(&NodeTask {
        version: &request.vantage6,
        method: task.method,
        args: task.args,
        kwargs: task.kwargs,
        databases: &node_databases,
        step: task.step,
        extra_env: &request.env,
        image,
        run_id: task.run_id,
        ids: NodeIds {
            task: task.task_id,
            ..request.ids
        },
    })?;
    for skipped in &node.skipped_env {
        observer.event(RunEvent::EnvSkipped(skipped));
    }
    work.prepare(&node, task.databases)?;
    let binds = binds(&node, &work.path, task.databases);
    let mut env = node.env.clone();
    // Not a node's: Python's output unbuffered, so that the log arrives as it is written.
    env.insert("PYTHONUNBUFFERED".to_owned(), "1".to_owned());
    let name = container_name();
    let labels = BTreeMap::from([("io.cargo-v6.run".to_owned(), task.method.to_owned())]);
    let spec = ContainerSpec {
        image,
        name: &name,
        env: &env,
        binds: &binds,
        tmpfs: &node.tmpfs,
        network: "none",
        labels: &labels,
        tty: node.tty,
    };
    let id = engine.create_container(&spec).await?;
    let is_5 = request.vantage6.major == 5;
    observer.event(RunEvent::Started {
        method: task.method,
        step: is_5.then_some(task.step),
        image,
        env: &node.env_plain,
    });
    let mut lines = Vec::new();
    let waits_for_server = tokio::sync::Notify::new();
    let outcome = {
        let follow = async {
            engine.start_container(&id).await?;
            engine
                .follow_logs(&id, &mut |line| {
                    observer.event(RunEvent::Log(&line));
                    if line.text().contains(SERVER_RETRY) {
                        waits_for_server.notify_one();
                    }
                    lines.push(without_ansi(line.text()));
                })
                .await?;
            engine.wait_container(&id).await
        };
        let timed = async {
            match request.timeout {
                Some(limit) => tokio::time::timeout(limit, follow).await.ok(),
                None => Some(follow.await),
            }
        };
        tokio::select! {
            exited = timed => exited,
            // It would retry once a second for good: no server is reachable from here.
            () = waits_for_server.notified() => {
                engine.remove_container(&id).await?;
                return Err(RunError::NeedsServer {
                    method: task.method.to_owned(),
                });
            }
        }
    };
    // Whatever happened, the container goes.
    let removed = engine.remove_container(&id).await;
    let code = match outcome {
        None => {
            return Err(RunError::TimedOut {
                method: task.method.to_owned(),
                after: request.timeout.unwrap_or_default(),
            });
        }
        Some(code) => code?,
    };
    removed?;
    observer.event(RunEvent::Exited {
        method: task.method,
        code,
    });
    let output_path = work.path.join(&node.output);
    let written = std::fs::metadata(&output_path)
        .map(|m| m.len())
        .unwrap_or(0);
    if code != 0 || written == 0 {
        let failure = if code == 0 {
            Failure::NoOutput
        } else {
            diagnose(&lines, module, task.method)
        };
        return Err(RunError::Failed {
            method: task.method.to_owned(),
            failure,
            code,
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

/// The node's mounts with their host paths.
fn binds(node: &NodeRun, work: &Path, databases: &[(NodeDatabase, Option<PathBuf>)]) -> Vec<Bind> {
    node.mounts
        .iter()
        .filter_map(|mount| {
            let host = match &mount.source {
                MountSource::Work(relative) if relative.is_empty() => work.to_owned(),
                MountSource::Work(relative) => work.join(relative),
                MountSource::Database(index) => databases.get(*index)?.1.clone()?,
                MountSource::DatabaseCopy(_, relative) => work.join(relative),
            };
            Some(Bind {
                host,
                container: mount.target.clone(),
                read_only: mount.read_only,
            })
        })
        .collect()
}

/// PKG_NAME as the image sets it, for messages; `None` when the image does not say.
pub(super) async fn image_pkg_name(
    engine: &Engine,
    image: &str,
) -> Result<Option<String>, RunError> {
    let Some(env) = engine.image_env(image).await? else {
        return Err(RunError::Input {
            message: format!("no image `{image}` in the engine"),
            help: Some(
                "build it first (`cargo v6 build`), or name one the engine has or can pull"
                    .to_owned(),
            ),
        });
    };
    Ok(env
        .iter()
        .find_map(|kv| kv.strip_prefix("PKG_NAME=").map(str::to_owned)))
}

/// A container name no other run shares.
pub(super) fn container_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "cargo-v6-run-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
