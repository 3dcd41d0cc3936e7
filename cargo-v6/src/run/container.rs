//! A task as a container of the engine: the node's mounts and environment, no network, the
//! log followed live, the container removed whatever happens.

use std::collections::BTreeMap;
use std::path::Path;

use super::task::{Exited, Limits, Log, Task, binds, stopped, supervise};
use super::{RunError, RunEvent};
use crate::engine::{ContainerSpec, Engine};
use crate::vantage6::NodeRun;

/// Runs `task` (prepared in `work` for `node`) as a container of `image` to its end, and
/// removes the container.
pub(super) async fn execute(
    engine: &Engine,
    image: &str,
    node: &NodeRun,
    task: &Task<'_>,
    work: &Path,
    limits: Limits<'_>,
    started: RunEvent<'_>,
) -> Result<Exited, RunError> {
    let binds = binds(node, work, task.databases);
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
        // A task of a federated run reaches the run's server on this machine's loopback.
        network: if task.proxy.is_some() { "host" } else { "none" },
        labels: &labels,
        tty: node.tty,
    };
    let id = engine.create_container(&spec).await?;
    limits.observer.event(started);
    let waits_for_server = tokio::sync::Notify::new();
    let mut log = Log::new(limits.observer, &waits_for_server);
    let follow = async {
        engine.start_container(&id).await?;
        engine.follow_logs(&id, &mut |line| log.line(&line)).await?;
        engine.wait_container(&id).await
    };
    let ended = supervise(&limits, &waits_for_server, follow).await;
    // Whatever happened, the container goes.
    let removed = engine.remove_container(&id).await;
    let code = stopped(ended, task.method, limits.timeout)??;
    removed?;
    Ok(Exited {
        code,
        lines: log.into_lines(),
    })
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
