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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::engine::{Bind, ContainerSpec, Engine, EngineError, LogLine};
use crate::vantage6::{
    self, DatabaseSource, FunctionStep, MountSource, NodeDatabase, NodeIds, NodeRun, NodeRunError,
    NodeTask, OutputFormat, Vantage6Version,
};

/// What to run: the task as a node would get it, and how long to wait.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The vantage6 release of the image's wrapper (picks the node's conventions).
    pub vantage6: Vantage6Version,
    /// The function to call.
    pub method: String,
    /// Positional arguments (4.x only).
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    /// The databases, in the order the function takes them.
    pub data: Vec<DataArg>,
    /// Extra environment variables, set (and encoded) like the node's own.
    pub env: BTreeMap<String, String>,
    /// 5.x: the function's step (default `federated_compute`).
    pub step: Option<FunctionStep>,
    /// 5.x: a data-extraction function run first on each `data`, whose tables become the
    /// session's dataframes for `method`.
    pub extract: Option<String>,
    /// Give up (and remove the container) after this long.
    pub timeout: Option<Duration>,
    /// The ids the node passes on for `method`; the `extract` runs before it get the task
    /// ids 1, 2, ... (their run numbers).
    pub ids: NodeIds,
}

/// `--data [+]LABEL=PATH[:TYPE]`: one database of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataArg {
    /// Written with a leading `+`: part of the previous `--data`'s argument position (5.x:
    /// several dataframes as one argument), not a position of its own.
    pub joins_previous: bool,
    /// The label.
    pub label: String,
    /// A path on this machine, or a URI passed as written.
    pub location: String,
    /// The database type; `csv` when not given (the wrapper's default).
    pub db_type: String,
}

impl DataArg {
    /// Parses `[+]LABEL=PATH[:TYPE]`. `:TYPE` counts only when it is a type the algorithm tools
    /// know (`csv`, `parquet`, `excel`, `sql`, `sparql`, `omop`, `other`), so paths and URIs
    /// with colons stay whole. A label is an identifier, so a leading `+` is never part of it.
    pub fn parse(text: &str) -> Result<DataArg, String> {
        let (joins_previous, text) = match text.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let Some((label, rest)) = text.split_once('=') else {
            return Err(format!("`{text}` is not LABEL=PATH[:TYPE]"));
        };
        if label.is_empty() || rest.is_empty() {
            return Err(format!("`{text}` is not LABEL=PATH[:TYPE]"));
        }
        let (location, db_type) = match rest.rsplit_once(':') {
            Some((location, ty))
                if vantage6::DATABASE_TYPES.contains(&ty) && !location.is_empty() =>
            {
                (location, ty)
            }
            _ => (rest, "csv"),
        };
        Ok(DataArg {
            joins_previous,
            label: label.to_owned(),
            location: location.to_owned(),
            db_type: db_type.to_owned(),
        })
    }
}

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
    /// Something the user should know; the run goes on.
    Warning(String),
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
         `{SERVER_RETRY}` and would retry for good), which a local run has not; the \
         container was removed"
    )]
    NeedsServer {
        /// The function.
        method: String,
    },
    /// The run took longer than the timeout.
    #[error("`{method}` did not finish within {} s; the container was removed", .after.as_secs())]
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
    /// A hint on how to fix it.
    pub fn help(&self) -> Option<String> {
        match self {
            RunError::Input { help, .. } => help.clone(),
            RunError::Failed { failure, .. } => failure.help(),
            RunError::NeedsServer { .. } => Some(CENTRAL_HELP.to_owned()),
            RunError::TimedOut { .. } => Some(
                "if its log shows it still working, a longer --timeout (or none) lets it \
                 finish; a function waiting for what a local run cannot give (the server, \
                 the network: the container has none) never will"
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// What failed, as the wrapper's log tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The image sets no PKG_NAME.
    NoPkgName,
    /// The module PKG_NAME names is not installed in the image.
    ModuleNotFound {
        /// PKG_NAME.
        module: String,
    },
    /// The module is there but imports one that is not.
    MissingDependency {
        /// PKG_NAME.
        module: String,
        /// The module it could not import.
        dependency: String,
    },
    /// Importing the module raised.
    ImportFailed {
        /// PKG_NAME.
        module: String,
        /// The exception.
        error: String,
    },
    /// The module has no such function.
    MethodNotFound {
        /// The function.
        method: String,
        /// PKG_NAME.
        module: String,
    },
    /// 5.x: the function lacks a vantage6 decorator.
    NotDecorated {
        /// The function.
        method: String,
    },
    /// 5.x: the function's decorator is for another step than the one it was run as.
    WrongStep {
        /// The function.
        method: String,
        /// The step its decorator declares.
        declared: String,
        /// The step it was run as (`FUNCTION_ACTION`).
        started: String,
    },
    /// Fewer databases than the function takes.
    NotEnoughData {
        /// The wrapper's message.
        message: String,
    },
    /// The wrapper could not read a database.
    DataUnreadable {
        /// The label, when the log names it.
        label: Option<String>,
        /// The error.
        error: String,
    },
    /// The function raised.
    MethodRaised {
        /// The function.
        method: String,
        /// The exception.
        error: String,
        /// It tried to reach the server: a central function.
        central: bool,
    },
    /// The result could not be written (e.g. not JSON serializable).
    OutputFailed {
        /// The exception.
        error: String,
    },
    /// The container exited 0 without writing the output file.
    NoOutput,
    /// Anything else: the container's last lines.
    Exited {
        /// The exception or last line, when there is one.
        last: Option<String>,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NoPkgName => write!(
                f,
                "the image sets no PKG_NAME: the wrapper does not know which module to import"
            ),
            Failure::ModuleNotFound { module } => {
                write!(f, "module `{module}` not found (PKG_NAME)")
            }
            Failure::MissingDependency { module, dependency } => write!(
                f,
                "module `{module}` (PKG_NAME) imports `{dependency}`, which is not installed in the image"
            ),
            Failure::ImportFailed { module, error } => {
                write!(f, "module `{module}` (PKG_NAME) failed to import: {error}")
            }
            Failure::MethodNotFound { method, module } => {
                write!(f, "method `{method}` not found in module `{module}`")
            }
            Failure::NotDecorated { method } => write!(
                f,
                "method `{method}` has no vantage6 decorator (@federated, @central, @data_extraction, ...), which the 5.x wrapper requires"
            ),
            Failure::WrongStep {
                method,
                declared,
                started,
            } => write!(
                f,
                "method `{method}` is a {declared} function; it was run as {started}"
            ),
            Failure::NotEnoughData { message } => write!(f, "{message}"),
            Failure::DataUnreadable {
                label: Some(label),
                error,
            } => {
                write!(f, "cannot read database `{label}`: {error}")
            }
            Failure::DataUnreadable { label: None, error } => {
                write!(f, "cannot read the data: {error}")
            }
            Failure::MethodRaised { method, error, .. } => {
                write!(f, "method `{method}` raised {error}")
            }
            Failure::OutputFailed { error } => {
                write!(
                    f,
                    "the result could not be written to the output file: {error}"
                )
            }
            Failure::NoOutput => write!(f, "the container exited 0 but wrote no output file"),
            Failure::Exited { last: Some(last) } => write!(f, "the container failed: {last}"),
            Failure::Exited { last: None } => write!(f, "the container failed without a message"),
        }
    }
}

impl Failure {
    /// A hint on how to fix it.
    pub fn help(&self) -> Option<String> {
        let text = match self {
            Failure::NoPkgName | Failure::ModuleNotFound { .. } => {
                "`name` in v6.toml is PKG_NAME, the module the wrapper imports: it must be the import name of the package that `pip install /app` installs (the package folder, e.g. `partial_sum`)"
            }
            Failure::MissingDependency { .. } => {
                "declare the dependency in the project's metadata (pyproject.toml `dependencies`, setup.py `install_requires`) so that the image installs it"
            }
            Failure::MethodNotFound { .. } => {
                "the method must be a function at the top level of the package (defined or imported in its __init__.py)"
            }
            Failure::WrongStep { declared, .. } => {
                return Some(format!("pass --step {declared}"));
            }
            Failure::NotEnoughData { .. } => {
                "give each database the function takes with --data LABEL=PATH[:TYPE]"
            }
            Failure::DataUnreadable { .. } => {
                "check the file and its type (--data LABEL=PATH:TYPE; csv is the default)"
            }
            Failure::MethodRaised { central: true, .. } => CENTRAL_HELP,
            Failure::OutputFailed { .. } => {
                "return plain Python values (dict, list, str, int, float): json.dumps rejects e.g. numpy and pandas scalars (use .item() or int())"
            }
            _ => return None,
        };
        Some(text.to_owned())
    }
}

/// The hint for a function that needs the server: a central function.
const CENTRAL_HELP: &str = "central functions create subtasks through the server (the algorithm client), which a local run cannot reach: run the partial functions here, and test the central one with vantage6's MockAlgorithmClient or a real server";

/// What vantage6's client logs (`common/client/client_base.py`) each time it fails to reach
/// the server and tries again, a second later, with no end.
const SERVER_RETRY: &str = "Connection error... Retrying";

/// Names of the wrapper's log lines (vantage6 `tools.util`: `info > `, `warn > `, `error > `).
const ERROR: &str = "error > ";
const INFO: &str = "info > ";

/// What failed, from the container's log lines (stdout and stderr, in order), the module
/// (PKG_NAME) the image sets and the method asked for.
pub fn diagnose(lines: &[String], module: Option<&str>, method: &str) -> Failure {
    let errors: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix(ERROR)).collect();
    let exception = last_exception(lines);
    let module_name = module.unwrap_or("?").to_owned();
    for message in &errors {
        if message.starts_with("No PKG_NAME specified") {
            return Failure::NoPkgName;
        }
        if let Some(rest) = message.strip_prefix("Module '") {
            let module = rest.split('\'').next().unwrap_or_default().to_owned();
            // The wrapper catches ModuleNotFoundError for the module and anything it imports.
            let missing = lines
                .iter()
                .rev()
                .find_map(|l| quoted_after(l, "ModuleNotFoundError: No module named "));
            return match missing {
                Some(dependency)
                    if dependency != module && !module.starts_with(&format!("{dependency}.")) =>
                {
                    Failure::MissingDependency { module, dependency }
                }
                _ => Failure::ModuleNotFound { module },
            };
        }
        if let Some(rest) = message.strip_prefix("Method '") {
            let name = rest.split('\'').next().unwrap_or(method).to_owned();
            if rest.contains("is not decorated") {
                return Failure::NotDecorated { method: name };
            }
            if rest.contains("not found") {
                return Failure::MethodNotFound {
                    method: name,
                    module: module_name,
                };
            }
        }
        if message.starts_with("Algorithm requires") || message.starts_with("User provided") {
            return Failure::NotEnoughData {
                message: (*message).to_owned(),
            };
        }
        if message.starts_with("Unknown database type") || message.starts_with("Query is required")
        {
            return Failure::DataUnreadable {
                label: None,
                error: (*message).to_owned(),
            };
        }
        if let Some(rest) = message.strip_prefix("Error encountered while calling ") {
            let (name, error) = rest.split_once(": ").unwrap_or((rest, ""));
            let error = exception.clone().unwrap_or_else(|| error.to_owned());
            // 5.x decorators: "Container started as AlgorithmStepType.PREPROCESSING, but user
            // requested AlgorithmStepType.FEDERATED_COMPUTE" (the second is the decorator's).
            if let Some((started, declared)) = step_mismatch(&error) {
                return Failure::WrongStep {
                    method: name.to_owned(),
                    declared,
                    started,
                };
            }
            if let Some(label) = reading_database(lines) {
                return Failure::DataUnreadable {
                    label: Some(label),
                    error,
                };
            }
            let central = lines.iter().any(|l| {
                l.contains("host.docker.internal")
                    || l.contains("AlgorithmClient")
                    || l.contains("CONTAINER_TOKEN")
            });
            return Failure::MethodRaised {
                method: name.to_owned(),
                error,
                central,
            };
        }
    }
    let imported = lines
        .iter()
        .any(|l| l.starts_with(INFO) && l.contains("' imported!"));
    let wrapper_started = lines
        .iter()
        .any(|l| l.starts_with(&format!("{INFO}wrapper for")));
    if let (false, true, Some(error), Some(module)) =
        (imported, wrapper_started, &exception, module)
    {
        return Failure::ImportFailed {
            module: module.to_owned(),
            error: error.clone(),
        };
    }
    let writing = lines
        .iter()
        .any(|l| l.starts_with(INFO) && l.contains("Writing output to"));
    if let (true, Some(error)) = (writing, &exception) {
        return Failure::OutputFailed {
            error: error.clone(),
        };
    }
    Failure::Exited {
        last: exception.or_else(|| {
            lines
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_owned())
        }),
    }
}

/// `text` without ANSI escape sequences: with the tty a 5.x node gives it, vantage6's logger
/// colours its lines (`\x1b[32minfo\x1b[0m`) and ends with a reset on a line of its own.
fn without_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
        } else if chars.next_if_eq(&'[').is_some() {
            // CSI: parameters and intermediates up to a final byte in `@`..=`~`.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            // A two-character escape (`ESC c`).
            chars.next();
        }
    }
    out
}

/// The last Python exception line of a traceback (`ValueError: ...`), if any.
fn last_exception(lines: &[String]) -> Option<String> {
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("Traceback (most recent call last)"))?;
    lines[start + 1..]
        .iter()
        .rev()
        .find(|l| {
            !l.starts_with(' ')
                && !l.is_empty()
                && !l.starts_with(ERROR)
                && !l.starts_with(INFO)
                && !l.starts_with("warn > ")
        })
        .map(|l| l.trim().to_owned())
}

/// The steps of a 5.x "Container started as X, but user requested Y" error, lower case.
fn step_mismatch(error: &str) -> Option<(String, String)> {
    let rest = &error[error.find("Container started as ")? + "Container started as ".len()..];
    let (started, rest) = rest.split_once(", but user requested ")?;
    let step = |text: &str| {
        let name = text.trim().trim_end_matches('.');
        let name = name.strip_prefix("AlgorithmStepType.").unwrap_or(name);
        name.to_lowercase()
    };
    Some((step(started), step(rest)))
}

/// `'name'` after `prefix` in `line`.
fn quoted_after(line: &str, prefix: &str) -> Option<String> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    rest[1..].split(quote).next().map(str::to_owned)
}

/// The label of the database the wrapper was reading when the function failed: its last
/// wrapper line before the error is "Using '<uri>' with label '<label>' as database", with no
/// "Applying preprocessing" (which follows a successful read) after it.
fn reading_database(lines: &[String]) -> Option<String> {
    let last_info = lines.iter().rev().find(|l| {
        l.starts_with(INFO) && !l.contains("Error encountered") && !l.starts_with(ERROR)
    })?;
    let rest = last_info.strip_prefix(INFO)?;
    if rest.starts_with("Using '") && rest.contains("' with label '") {
        return rest
            .split("' with label '")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .map(str::to_owned);
    }
    None
}

/// Makes sure `reference` is in the engine: an image id or a reference it has is used as is;
/// otherwise it is pulled (with the credentials for its registry), as a node pulls.
pub async fn ensure_image(
    engine: &Engine,
    reference: &str,
    observer: &dyn RunObserver,
) -> Result<(), RunError> {
    if engine.image_labels(reference).await?.is_some() {
        return Ok(());
    }
    let parsed = crate::reference::ImageRef::parse(reference).map_err(|e| RunError::Input {
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
        .pull(&parsed, credentials.as_ref(), &mut |status| {
            observer.event(RunEvent::PullStatus(&status))
        })
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
    let databases = checked_databases(request)?;
    let module = image_pkg_name(engine, image).await?;
    let work = WorkDir::create()?;
    let result = run_in(
        engine,
        image,
        request,
        &databases,
        module.as_deref(),
        &work,
        observer,
    )
    .await;
    if let Err(e) = work.remove() {
        observer.event(RunEvent::Warning(format!(
            "cannot remove the temporary folder {}: {e}",
            work.path.display()
        )));
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_in(
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
    for warning in &node.warnings {
        observer.event(RunEvent::Warning(warning.clone()));
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

/// Checks `request` as a node would before starting anything (arguments, labels,
/// environment, data files): a run that fails here starts no container, and a caller that
/// builds first can check before building.
pub fn check(request: &RunRequest) -> Result<(), RunError> {
    checked_databases(request).map(drop)
}

/// The request checked, and its databases resolved.
fn checked_databases(
    request: &RunRequest,
) -> Result<Vec<(NodeDatabase, Option<PathBuf>)>, RunError> {
    let is_5 = request.vantage6.major == 5;
    let step = request.step.unwrap_or(FunctionStep::FederatedCompute);
    if !is_5 && (request.step.is_some() || request.extract.is_some()) {
        return Err(RunError::Input {
            message: format!(
                "--step and --extract are vantage6 5.x notions; this image is for vantage6 {}",
                request.vantage6
            ),
            help: None,
        });
    }
    if step == FunctionStep::CentralCompute {
        return Err(RunError::Input {
            message: "a central function creates subtasks through the server (the algorithm client), which a local run cannot reach".to_owned(),
            help: Some("run the partial functions (federated_compute, preprocessing, data_extraction) here; test the central one with vantage6's MockAlgorithmClient or a real server".to_owned()),
        });
    }
    if request.extract.is_some() && step == FunctionStep::DataExtraction {
        return Err(RunError::Input {
            message: "--extract makes the dataframes for a later step; METHOD is the data extraction itself with --step data_extraction".to_owned(),
            help: None,
        });
    }
    let databases = resolve_data(&request.data)?;
    // What the main container would get: the same checks a node makes.
    let main: Vec<NodeDatabase> = databases
        .iter()
        .map(|(db, _)| match request.extract {
            Some(_) => NodeDatabase {
                source: DatabaseSource::SessionDataframe,
                ..db.clone()
            },
            None => db.clone(),
        })
        .collect();
    vantage6::node_run(&NodeTask {
        version: &request.vantage6,
        method: &request.method,
        args: &request.args,
        kwargs: &request.kwargs,
        databases: &main,
        step,
        extra_env: &request.env,
        image: "",
        run_id: 1,
        ids: request.ids,
    })?;
    Ok(databases)
}

/// `--data` resolved: each database with the absolute host path to mount, if it is local.
fn resolve_data(data: &[DataArg]) -> Result<Vec<(NodeDatabase, Option<PathBuf>)>, RunError> {
    if let Some(first) = data.first().filter(|d| d.joins_previous) {
        return Err(RunError::Input {
            message: format!(
                "--data +{}: a leading `+` joins the previous --data's argument, and there is none",
                first.label
            ),
            help: Some("write the first --data of an argument without `+`".to_owned()),
        });
    }
    let mut position = 0;
    data.iter()
        .enumerate()
        .map(|(index, arg)| {
            if index > 0 && !arg.joins_previous {
                position += 1;
            }
            let path = Path::new(&arg.location);
            let (source, host) = match std::fs::metadata(path) {
                Ok(meta) => {
                    let absolute = std::path::absolute(path).map_err(|source| RunError::Io {
                        what: format!("cannot resolve {}", arg.location),
                        source,
                    })?;
                    let source = if meta.is_dir() {
                        DatabaseSource::Directory
                    } else {
                        DatabaseSource::File {
                            extension: path
                                .extension()
                                .map(|e| format!(".{}", e.to_string_lossy()))
                                .unwrap_or_default(),
                        }
                    };
                    (source, Some(absolute))
                }
                Err(_) if arg.location.contains("://") => {
                    (DatabaseSource::Uri(arg.location.clone()), None)
                }
                Err(e) => {
                    return Err(RunError::Input {
                        message: format!("--data {}: cannot read {}: {e}", arg.label, arg.location),
                        help: None,
                    });
                }
            };
            Ok((
                NodeDatabase {
                    label: arg.label.clone(),
                    position,
                    source,
                    db_type: arg.db_type.clone(),
                },
                host,
            ))
        })
        .collect()
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
async fn image_pkg_name(engine: &Engine, image: &str) -> Result<Option<String>, RunError> {
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
fn container_name() -> String {
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

/// The run's work folder: a new folder under the system's temporary directory, removed when
/// dropped (also when the run fails or is interrupted).
struct WorkDir {
    path: PathBuf,
    removed: std::sync::atomic::AtomicBool,
}

impl WorkDir {
    fn create() -> Result<WorkDir, RunError> {
        let path = std::env::temp_dir().join(container_name());
        std::fs::create_dir(&path).map_err(|source| RunError::Io {
            what: format!("cannot create the work folder {}", path.display()),
            source,
        })?;
        let work = WorkDir {
            path,
            removed: std::sync::atomic::AtomicBool::new(false),
        };
        // A non-root user in the image must reach the files (the node's volume is open to it).
        set_mode(&work.path, 0o755)?;
        Ok(work)
    }

    /// Creates the node's folders and files, the copies of databases it mounts read-write, and
    /// the session's state file when the session has none yet.
    fn prepare(
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
            let path = self.path.join(relative);
            if !path.exists() {
                let created = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
                std::fs::write(&path, vantage6::session_state_parquet(created)).map_err(
                    |source| RunError::Io {
                        what: format!("cannot write {}", path.display()),
                        source,
                    },
                )?;
                set_mode(&path, 0o644)?;
            }
        }
        Ok(())
    }

    fn remove(&self) -> std::io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn data_arguments_parse_with_an_optional_known_type() {
        let d = DataArg::parse("default=test/data.csv").unwrap();
        assert_eq!(
            (d.label.as_str(), d.location.as_str(), d.db_type.as_str()),
            ("default", "test/data.csv", "csv")
        );
        let d = DataArg::parse("t=x.parquet:parquet").unwrap();
        assert_eq!(
            (d.location.as_str(), d.db_type.as_str()),
            ("x.parquet", "parquet")
        );
        // A colon that is no known type stays in the path; a URI keeps its own colons.
        let d = DataArg::parse("t=C:dir/a.csv").unwrap();
        assert_eq!(
            (d.location.as_str(), d.db_type.as_str()),
            ("C:dir/a.csv", "csv")
        );
        let d = DataArg::parse("db=postgresql://h:5432/x:sql").unwrap();
        assert_eq!(
            (d.location.as_str(), d.db_type.as_str()),
            ("postgresql://h:5432/x", "sql")
        );
        let d = DataArg::parse("+b=x.parquet").unwrap();
        assert!(d.joins_previous);
        assert_eq!(d.label, "b");
        assert!(!DataArg::parse("b=x.parquet").unwrap().joins_previous);
        assert!(DataArg::parse("+=x").is_err());
        assert!(DataArg::parse("data.csv").is_err());
        assert!(DataArg::parse("=data.csv").is_err());
        assert!(DataArg::parse("a=").is_err());
    }

    #[test]
    fn data_with_a_plus_shares_the_previous_argument_position() {
        let args: Vec<DataArg> = ["a=x://1", "+b=x://2", "c=x://3", "+d=x://4", "+e=x://5"]
            .iter()
            .map(|t| DataArg::parse(t).unwrap())
            .collect();
        let positions: Vec<usize> = resolve_data(&args)
            .unwrap()
            .iter()
            .map(|(db, _)| db.position)
            .collect();
        assert_eq!(positions, [0, 0, 1, 1, 1]);
        let err = resolve_data(&args[1..2]).unwrap_err();
        assert!(err.to_string().contains("no"), "{err}");
        assert!(err.help().unwrap().contains("without `+`"));
    }

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

    // The logs below are the 4.15 wrapper's, abridged, as the container wrote them.

    #[test]
    fn a_pkg_name_that_is_not_installed_is_named() {
        let log = lines(
            "info > wrapper for partial_summ
info > Reading input file /mnt/data/task-000000001/input
info > Dispatching ...
error > Module 'partial_summ' can not be imported! Exiting...
Traceback (most recent call last):
  File \"/usr/local/lib/python3.11/dist-packages/vantage6/algorithm/tools/wrap.py\", line 101, in _run_algorithm_method
ModuleNotFoundError: No module named 'partial_summ'
error > None",
        );
        let failure = diagnose(&log, Some("partial_summ"), "partial_sum");
        assert_eq!(
            failure.to_string(),
            "module `partial_summ` not found (PKG_NAME)"
        );
        assert!(failure.help().unwrap().contains("PKG_NAME"));
    }

    #[test]
    fn a_dependency_missing_from_the_image_is_told_apart_from_pkg_name() {
        let log = lines(
            "info > wrapper for partial_sum
error > Module 'partial_sum' can not be imported! Exiting...
Traceback (most recent call last):
  File \"/app/partial_sum/__init__.py\", line 1, in <module>
    import scipy
ModuleNotFoundError: No module named 'scipy'",
        );
        assert_eq!(
            diagnose(&log, Some("partial_sum"), "partial_sum"),
            Failure::MissingDependency {
                module: "partial_sum".into(),
                dependency: "scipy".into()
            }
        );
        // A submodule of the package itself is the package missing.
        let log = lines(
            "error > Module 'pkg.sub' can not be imported! Exiting...\nModuleNotFoundError: No module named 'pkg'",
        );
        assert_eq!(
            diagnose(&log, None, "m"),
            Failure::ModuleNotFound {
                module: "pkg.sub".into()
            }
        );
    }

    #[test]
    fn a_missing_method_names_method_and_module() {
        let log = lines(
            "info > Module 'partial_sum' imported!
error > Method 'nope' not found!

error > None
Traceback (most recent call last):
AttributeError: module 'partial_sum' has no attribute 'nope'",
        );
        assert_eq!(
            diagnose(&log, Some("partial_sum"), "nope").to_string(),
            "method `nope` not found in module `partial_sum`"
        );
    }

    #[test]
    fn unreadable_data_names_the_database() {
        let log = lines(
            "info > Module 'partial_sum' imported!
info > Reading data from database
info > Using '/mnt/default.csv' with label 'default' as database
error > Error encountered while calling partial_sum: Error tokenizing data. C error: EOF inside string starting at row 2
Traceback (most recent call last):
  File \"pandas/_libs/parsers.pyx\", line 2061, in pandas._libs.parsers.raise_parser_error
pandas.errors.ParserError: Error tokenizing data. C error: EOF inside string starting at row 2
error > None",
        );
        assert_eq!(
            diagnose(&log, Some("partial_sum"), "partial_sum").to_string(),
            "cannot read database `default`: pandas.errors.ParserError: Error tokenizing data. C error: EOF inside string starting at row 2"
        );
    }

    #[test]
    fn an_exception_of_the_function_and_a_central_function_are_told() {
        let log = lines(
            "info > Using '/mnt/default.csv' with label 'default' as database
info > Applying preprocessing for database 'default'
error > Error encountered while calling partial_sum: 'zz'
Traceback (most recent call last):
KeyError: 'zz'",
        );
        let failure = diagnose(&log, Some("partial_sum"), "partial_sum");
        assert_eq!(
            failure.to_string(),
            "method `partial_sum` raised KeyError: 'zz'"
        );
        assert_eq!(failure.help(), None);
        let log = lines(
            "error > Error encountered while calling central: HTTPConnectionPool(host='host.docker.internal', port=8080): Max retries exceeded
Traceback (most recent call last):
requests.exceptions.ConnectionError: HTTPConnectionPool(host='host.docker.internal', port=8080)",
        );
        let failure = diagnose(&log, Some("p"), "central");
        assert!(
            failure.help().unwrap().contains("MockAlgorithmClient"),
            "{failure:?}"
        );
    }

    #[test]
    fn colours_of_a_tty_log_are_not_part_of_the_diagnosis() {
        assert_eq!(without_ansi("\x1b[0m"), "");
        assert_eq!(
            without_ansi("[\x1b[32minfo \x1b[0m] - Validating"),
            "[info ] - Validating"
        );
        assert_eq!(without_ansi("a\x1bcb"), "ab");
        assert_eq!(without_ansi("plain é"), "plain é");
        // vantage6-algorithm-tools 5.0.3 with a tty, a @federated function run as
        // preprocessing: the log ends with a colour reset on its own line.
        let log: Vec<String> = [
            "error > Error encountered while calling sum: Container started as AlgorithmStepType.PREPROCESSING, but user requested AlgorithmStepType.FEDERATED_COMPUTE.",
            "Traceback (most recent call last):",
            "vantage6.algorithm.tools.exceptions.SessionActionMismatchError: Container started as AlgorithmStepType.PREPROCESSING, but user requested AlgorithmStepType.FEDERATED_COMPUTE.",
            "error > None",
            "\x1b[0m",
        ]
        .iter()
        .map(|l| without_ansi(l))
        .collect();
        assert_eq!(
            diagnose(&log, Some("v6-session-basics"), "sum").to_string(),
            "method `sum` is a federated_compute function; it was run as preprocessing"
        );
    }

    // vantage6-algorithm-tools 5.0.0a26, a @federated function run as preprocessing.
    #[test]
    fn a_5x_function_run_as_another_step_says_which_step() {
        let log = lines(
            "[info ] - Validating function action: AlgorithmStepType.PREPROCESSING
error > Error encountered while calling partial_sum: Container started as AlgorithmStepType.PREPROCESSING, but user requested AlgorithmStepType.FEDERATED_COMPUTE.
Traceback (most recent call last):
    raise SessionError(
vantage6.algorithm.tools.exceptions.SessionError: Container started as AlgorithmStepType.PREPROCESSING, but user requested AlgorithmStepType.FEDERATED_COMPUTE.
error > None",
        );
        let failure = diagnose(&log, Some("sum5"), "partial_sum");
        assert_eq!(
            failure.to_string(),
            "method `partial_sum` is a federated_compute function; it was run as preprocessing"
        );
        assert_eq!(failure.help().unwrap(), "pass --step federated_compute");
        let log = lines(
            "error > Method 'f' is not decorated with a vantage6 decorator. All algorithm functions should have a decorator",
        );
        assert_eq!(
            diagnose(&log, None, "f"),
            Failure::NotDecorated { method: "f".into() }
        );
    }

    #[test]
    fn other_failures_show_the_exception_or_last_line() {
        let log = lines(
            "info > Writing output to /mnt/data/task-000000001/output
Traceback (most recent call last):
TypeError: Object of type int64 is not JSON serializable",
        );
        assert!(matches!(
            diagnose(&log, Some("p"), "m"),
            Failure::OutputFailed { .. }
        ));
        let log = lines(
            "info > wrapper for p\nTraceback (most recent call last):\n  File \"/app/p/__init__.py\", line 3\nSyntaxError: invalid syntax",
        );
        assert_eq!(
            diagnose(&log, Some("p"), "m").to_string(),
            "module `p` (PKG_NAME) failed to import: SyntaxError: invalid syntax"
        );
        assert_eq!(
            diagnose(&lines("sh: exec: not found\n"), None, "m").to_string(),
            "the container failed: sh: exec: not found"
        );
    }
}
