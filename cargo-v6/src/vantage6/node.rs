//! The node-run contract: what a vantage6 node prepares for one algorithm container (the work
//! folder's files, the mounts, the encoded environment), per vantage6 major, as pure data.
//!
//! Read from the vantage6 sources, not guessed:
//! - 4.x: vantage6-node 4.15.2 `vantage6/node/docker/task_manager.py` (`_prepare_volumes`,
//!   `_setup_environment_vars`, `_encode_environment_variables`) and `docker_manager.py`
//!   (`_set_database`, `mount_mode`); vantage6-algorithm-tools 4.15.2
//!   `vantage6/algorithm/tools/wrap.py` (reads `INPUT_FILE` as JSON `{method, args, kwargs}`,
//!   calls `method(*args, **kwargs)`, writes `json.dumps(result)` to `OUTPUT_FILE`) and
//!   `util.py` (`get_env_var`: undo `!` -> `=`, base32-decode, plain values kept).
//! - 5.x: vantage6-node 5.0.3 (the release; 5.0.0a26 differed, see `node_run_5`)
//!   `vantage6/node/k8s/container_manager.py` (`run`, `_create_volume_mounts`,
//!   `_encode_environment_variables`), `k8s/session_manager.py` (`SessionFileManager`: the
//!   session folder and its `session_state.parquet`) and `globals.py` (`TASK_JOB_*_PATH`,
//!   `DATABASE_BASE_PATH`, `DEFAULT_PROXY_PORT`); vantage6-algorithm-tools 5.0.3 `wrap.py`
//!   (method from `ALGORITHM_METHOD`, arguments from `INPUT_FILE` as a JSON object,
//!   `method(**arguments)`; data extraction and preprocessing write a parquet table, the compute
//!   steps JSON), `decorator/data.py` (`USER_REQUESTED_DATAFRAMES`: `;` between argument
//!   positions, `,` within one; `SESSION_FOLDER/<name>.parquet`) and `decorator/metadata.py`
//!   (`TASK_ID`, `NODE_ID`, `ORGANIZATION_ID`, `COLLABORATION_ID` read with `os.environ[...]`,
//!   as the node set them: still encoded); vantage6-common 5.0.3 `ContainerEnvNames`.

use std::collections::BTreeMap;

use super::token::container_token;
use super::{FunctionStep, Vantage6Version};

/// `ENV_VAR_EQUALS_REPLACEMENT` in vantage6-common (4.x and 5.x): the node writes `!` for
/// the `=` padding of its base32 values.
pub const ENV_EQUALS_REPLACEMENT: char = '!';

/// Environment variables the image sets and a node refuses to set
/// (`ENV_VARS_NOT_SETTABLE_BY_NODE`).
pub const NOT_SETTABLE_BY_NODE: [&str; 1] = ["PKG_NAME"];

/// Where a database of the run comes from, as far as the container's view depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSource {
    /// A file on this machine, bind-mounted read-only; `extension` is its suffix with the dot
    /// (`.csv`) or empty.
    File {
        /// `.csv`, `.parquet`, or empty.
        extension: String,
    },
    /// A folder on this machine, bind-mounted read-only.
    Directory,
    /// Anything else (`postgresql://...`): passed to the container as written.
    Uri(String),
    /// 5.x: a dataframe already in the session folder (`<label>.parquet`), e.g. the table a
    /// data-extraction run of the same session wrote.
    SessionDataframe,
}

/// One database of the run (`--data LABEL=PATH[:TYPE]`). In 4.x each is a node database; in
/// 5.x the one source of a data extraction, or a dataframe of the session for the other steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDatabase {
    /// The label (4.x `<LABEL>_DATABASE_URI`; 5.x the dataframe name).
    pub label: String,
    /// 5.x: the function argument it belongs to (the task's `position`): the dataframes of one
    /// position reach the function together, as one argument. Non-decreasing along the list.
    pub position: usize,
    /// Where it comes from.
    pub source: DatabaseSource,
    /// `csv`, `parquet`, `sql`, ...
    pub db_type: String,
}

/// What a node is asked to run: the task as the server hands it to the node.
#[derive(Debug, Clone, Copy)]
pub struct NodeTask<'a> {
    /// The vantage6 release the image's wrapper belongs to (picks 4.x or 5.x conventions).
    pub version: &'a Vantage6Version,
    /// The function to call.
    pub method: &'a str,
    /// Positional arguments (4.x only: the 5.x wrapper calls `method(**arguments)`).
    pub args: &'a [serde_json::Value],
    /// Keyword arguments.
    pub kwargs: &'a serde_json::Map<String, serde_json::Value>,
    /// The databases, in the order the user requested them.
    pub databases: &'a [NodeDatabase],
    /// 5.x: the step (`FUNCTION_ACTION`); ignored for 4.x.
    pub step: FunctionStep,
    /// Extra environment variables (a 4.x node's `algorithm_env`), set like the node's own.
    pub extra_env: &'a BTreeMap<String, String>,
    /// The image, for the container token's payload (4.x).
    pub image: &'a str,
    /// A run number: names the run's folder, so that several runs can share one work folder.
    pub run_id: u32,
    /// The identities the node passes on (5.x environment, 4.x container token).
    pub ids: NodeIds,
    /// The input file's bytes as the task's creator encoded them (a federated run's subtask:
    /// 4.x the whole input, 5.x the arguments), written as they came, as a node writes them:
    /// Python's JSON may hold `NaN` or `Infinity`, which `args`/`kwargs` cannot. `None`: the
    /// input is written from `method`, `args` and `kwargs`.
    pub raw_input: Option<&'a [u8]>,
    /// Where the algorithm client finds a server, when one answers (a federated run);
    /// `None`: the node's own proxy address, which nothing answers here.
    pub proxy: Option<Proxy<'a>>,
}

/// The stand-in server of a federated run, as one container sees it.
#[derive(Debug, Clone, Copy)]
pub struct Proxy<'a> {
    /// `HOST`, with its scheme (`http://127.0.0.1`).
    pub host: &'a str,
    /// `PORT`.
    pub port: u16,
    /// A secret of this container alone, carried in its token (`jti`): how the server knows
    /// the caller, and why no other program on this machine can call it as one.
    pub nonce: &'a str,
}

/// Who runs the task, as a node tells the algorithm: vantage6-node 5.0.3 sets them as
/// `TASK_ID`, `NODE_ID`, `ORGANIZATION_ID` and `COLLABORATION_ID` (`ContainerManager.run`); 4.x
/// puts them in the container token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeIds {
    /// The task (the server's id; one per function run).
    pub task: u64,
    /// The node.
    pub node: u64,
    /// The node's organization.
    pub organization: u64,
    /// The collaboration.
    pub collaboration: u64,
}

impl Default for NodeIds {
    /// The first of each: a fresh server numbers from 1.
    fn default() -> Self {
        NodeIds {
            task: 1,
            node: 1,
            organization: 1,
            collaboration: 1,
        }
    }
}

/// What a host path of a mount is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A path relative to the work folder the caller creates (`""`: the folder itself).
    Work(String),
    /// The database with this index in [`NodeTask::databases`].
    Database(usize),
    /// A copy of the database file with this index, made at this path relative to the work
    /// folder: the node mounts a 5.x extraction's source read-write, and the user's file must
    /// not change.
    DatabaseCopy(usize, String),
}

/// One bind mount of the algorithm container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMount {
    /// What is mounted.
    pub source: MountSource,
    /// Where, inside the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The format of the output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// `json.dumps(result)`, UTF-8.
    Json,
    /// A parquet table (5.x data extraction and preprocessing).
    Parquet,
}

/// Everything a node prepares for one algorithm container: the files of the work folder, the
/// mounts and the environment. Pure data; the caller creates the folder and the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRun {
    /// The environment exactly as the container gets it (values encoded as the node does).
    pub env: BTreeMap<String, String>,
    /// The same environment before encoding, for showing.
    pub env_plain: BTreeMap<String, String>,
    /// Folders to create in the work folder, relative, parents first.
    pub dirs: Vec<String>,
    /// Files to create in the work folder before the run: relative path and content. The
    /// output file is among them, empty, as the node creates it.
    pub files: Vec<(String, Vec<u8>)>,
    /// Bind mounts.
    pub mounts: Vec<NodeMount>,
    /// Paths mounted as an empty tmpfs (the node's per-job temporary volume).
    pub tmpfs: Vec<String>,
    /// The output file, relative to the work folder.
    pub output: String,
    /// What the output file holds when the wrapper wrote it.
    pub output_format: OutputFormat,
    /// 5.x: the session's state file, relative to the work folder, created with
    /// [`SessionStateRow::created`] when it does not exist yet (the node creates it once per
    /// session, before the session's first run).
    pub session_state: Option<String>,
    /// The `algorithm_env` variables the node would skip, logging a warning, and go on.
    pub skipped_env: Vec<SkippedEnv>,
    /// The container runs with a tty (5.x `V1Container(tty=True)`; 4.x: Docker's default, none).
    pub tty: bool,
}

/// An extra environment variable of the task that the node does not set: it sets one of that
/// name (upper-cased) itself, and skips an `algorithm_env` variable of that name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEnv {
    /// The name as given.
    pub name: String,
    /// The node's vantage6 version.
    pub version: String,
}

/// A task no node of this vantage6 version could run as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeRunError {
    /// The version's wrapper is not one this knows how to feed.
    #[error(
        "running like a node needs vantage6 4.x or 5.x; {version} is not supported (the 3.x wrapper reads another input format)"
    )]
    UnsupportedVersion {
        /// As written.
        version: String,
    },
    /// An environment variable name a node would refuse.
    #[error("environment variable `{name}` {why}")]
    InvalidEnv {
        /// The name.
        name: String,
        /// Why.
        why: &'static str,
    },
    /// A database label that cannot name environment variables.
    #[error(
        "database label `{label}` must be letters, digits and `_`, not starting with a digit (it names `{upper}_DATABASE_URI`)"
    )]
    InvalidLabel {
        /// The label.
        label: String,
        /// Upper case.
        upper: String,
    },
    /// Two databases with one label.
    #[error("database label `{label}` is given twice")]
    DuplicateLabel {
        /// The label.
        label: String,
    },
    /// 5.x takes keyword arguments only.
    #[error(
        "vantage6 {version} functions take keyword arguments only (the wrapper calls `method(**arguments)`): pass them with --kwargs, not --args"
    )]
    PositionalArguments {
        /// The version.
        version: String,
    },
    /// A 5.x data extraction reads exactly one source database.
    #[error("a 5.x data extraction reads exactly one database; {count} given (--data)")]
    ExtractionSources {
        /// How many.
        count: usize,
    },
    /// 4.x has no argument positions: one database per label.
    #[error(
        "`{label}` joins the previous --data as one argument (`+`): several dataframes as one argument are vantage6 5.x; this image is for {version}"
    )]
    GroupIn4x {
        /// The label.
        label: String,
        /// The version.
        version: String,
    },
    /// A 5.x dataframe must be a parquet file or already in the session.
    #[error(
        "`{label}`: a 5.x {step} function reads dataframes of the session, which are parquet tables; give a .parquet file, or a data-extraction function to make it (--extract)"
    )]
    NotADataframe {
        /// The label.
        label: String,
        /// The step.
        step: FunctionStep,
    },
}

/// The node's work-folder layout and environment for `task`, per vantage6 major.
pub fn node_run(task: &NodeTask<'_>) -> Result<NodeRun, NodeRunError> {
    check_labels(task.databases)?;
    if task.version.major == 4
        && let Some(pair) = task
            .databases
            .windows(2)
            .find(|pair| pair[0].position == pair[1].position)
    {
        return Err(NodeRunError::GroupIn4x {
            label: pair[1].label.clone(),
            version: task.version.text.clone(),
        });
    }
    for name in task.extra_env.keys() {
        check_env_name(name)?;
    }
    match task.version.major {
        4 => Ok(node_run_4(task)),
        5 => node_run_5(task),
        _ => Err(NodeRunError::UnsupportedVersion {
            version: task.version.text.clone(),
        }),
    }
}

/// 4.x (`DockerTaskManager`): the node's task folder `task-<run id, 9 digits>` with `input`,
/// `output` (empty) and `token` sits in the data volume, mounted at `/mnt/data`; a per-job
/// volume at `/mnt/tmp`; file databases in the node's read-only mount mode at
/// `/mnt/<label><suffix>`, folders at `/mnt/<label>`, other URIs as written.
fn node_run_4(task: &NodeTask<'_>) -> NodeRun {
    const DATA_FOLDER: &str = "/mnt/data";
    const TMP_FOLDER: &str = "/mnt/tmp";
    let folder = format!("task-{:09}", task.run_id);
    let file = |name: &str| format!("{DATA_FOLDER}/{folder}/{name}");
    let input = serde_json::json!({
        "method": task.method,
        "args": task.args,
        "kwargs": task.kwargs,
    });
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    set("INPUT_FILE", file("input"));
    set("OUTPUT_FILE", file("output"));
    set("TOKEN_FILE", file("token"));
    set("TEMPORARY_FOLDER", TMP_FOLDER.to_owned());
    // The node's proxy to the server (PROXY_SERVER_HOST, default host.docker.internal, port
    // 8080). Nothing answers there unless a federated run serves it.
    set_proxy(&mut set, task.proxy, 8080);
    let labels: Vec<&str> = task.databases.iter().map(|d| d.label.as_str()).collect();
    set("USER_REQUESTED_DATABASE_LABELS", labels.join(","));
    let mut mounts = vec![NodeMount {
        source: MountSource::Work(String::new()),
        target: DATA_FOLDER.to_owned(),
        read_only: false,
    }];
    for (index, db) in task.databases.iter().enumerate() {
        let upper = db.label.to_uppercase();
        let uri = match &db.source {
            DatabaseSource::File { extension } => format!("/mnt/{}{extension}", db.label),
            DatabaseSource::Directory => format!("/mnt/{}", db.label),
            DatabaseSource::Uri(uri) => uri.clone(),
            // Not a 4.x notion; a file in the data folder is the nearest.
            DatabaseSource::SessionDataframe => format!("{DATA_FOLDER}/{}.parquet", db.label),
        };
        if matches!(
            db.source,
            DatabaseSource::File { .. } | DatabaseSource::Directory
        ) {
            mounts.push(NodeMount {
                source: MountSource::Database(index),
                target: uri.clone(),
                read_only: true,
            });
        }
        set(&format!("{upper}_DATABASE_URI"), uri);
        set(&format!("{upper}_DATABASE_TYPE"), db.db_type.clone());
    }
    set("DB_LABELS", labels.join(","));
    // 4.15.2 `_setup_environment_vars`: `{**environment_variables, **algorithm_env}`, so in
    // 4.x the node's `algorithm_env` does override its own variables (5.x skips them).
    for (k, v) in task.extra_env {
        set(k, v.clone());
    }
    let token = container_token(task);
    NodeRun {
        env: encode_env(&env),
        env_plain: env,
        dirs: vec![folder.clone()],
        files: vec![
            (
                format!("{folder}/input"),
                task.raw_input
                    .map_or_else(|| input.to_string().into_bytes(), <[u8]>::to_vec),
            ),
            (format!("{folder}/output"), Vec::new()),
            (format!("{folder}/token"), token.into_bytes()),
        ],
        mounts,
        tmpfs: vec![TMP_FOLDER.to_owned()],
        output: format!("{folder}/output"),
        output_format: OutputFormat::Json,
        session_state: None,
        skipped_env: Vec::new(),
        tty: false,
    }
}

/// 5.x, as vantage6-node 5.0.3 `k8s/container_manager.py` runs it (`ContainerManager.run`,
/// `_create_volume_mounts`): the run's `input` and `output` files and the session folder are
/// mounted at `/app/vantage6/task/{input,output,session}` (`globals.py` `TASK_JOB_*_PATH`), the
/// session folder holding `session_state.parquet` from the start (`k8s/session_manager.py`).
/// A data extraction gets its one source at `/app/databases/<label>.<type>` (`DATABASE_URI`,
/// `DATABASE_TYPE`), mounted read-write (the node's `_get_database_metadata` gives no mount
/// mode, so `read_only` is false): here a copy of the file, so that the user's file cannot
/// change. The other steps get dataframes of the session (`USER_REQUESTED_DATAFRAMES`).
///
/// Where 5.0.0a26 differed, 5.0.3 is followed: a26 set none of the four ids (a `@metadata`
/// function failed with `KeyError: 'TASK_ID'`), let `algorithm_env` override the node's own
/// variables, and created no `session_state.parquet`.
fn node_run_5(task: &NodeTask<'_>) -> Result<NodeRun, NodeRunError> {
    const TASK: &str = "/app/vantage6/task";
    const DATABASES: &str = "/app/databases";
    if !task.args.is_empty() {
        return Err(NodeRunError::PositionalArguments {
            version: task.version.text.clone(),
        });
    }
    let run = format!("run-{}", task.run_id);
    let session = "session".to_owned();
    let mut env = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_owned(), v);
    };
    // `_create_volume_mounts`: the files and the session.
    set("OUTPUT_FILE", format!("{TASK}/output"));
    set("INPUT_FILE", format!("{TASK}/input"));
    set("SESSION_FOLDER", format!("{TASK}/session"));
    set(
        "SESSION_FILE",
        format!("{TASK}/session/{SESSION_STATE_FILE}"),
    );
    let mut mounts = vec![
        NodeMount {
            source: MountSource::Work(format!("{run}/output")),
            target: format!("{TASK}/output"),
            read_only: false,
        },
        NodeMount {
            source: MountSource::Work(format!("{run}/input")),
            target: format!("{TASK}/input"),
            read_only: false,
        },
        NodeMount {
            source: MountSource::Work(session.clone()),
            target: format!("{TASK}/session"),
            read_only: false,
        },
    ];
    let mut dirs = vec![run.clone(), session.clone()];
    if task.step == FunctionStep::DataExtraction {
        let [db] = task.databases else {
            return Err(NodeRunError::ExtractionSources {
                count: task.databases.len(),
            });
        };
        let uri = match &db.source {
            DatabaseSource::File { .. } => {
                let local = format!("{DATABASES}/{}.{}", db.label, db.db_type);
                let copy = format!("{run}/databases/{}.{}", db.label, db.db_type);
                dirs.push(format!("{run}/databases"));
                mounts.push(NodeMount {
                    source: MountSource::DatabaseCopy(0, copy),
                    target: local.clone(),
                    read_only: false,
                });
                local
            }
            // A folder is not copied (it may be large): mounted read-only.
            DatabaseSource::Directory => {
                let local = format!("{DATABASES}/{}.{}", db.label, db.db_type);
                mounts.push(NodeMount {
                    source: MountSource::Database(0),
                    target: local.clone(),
                    read_only: true,
                });
                local
            }
            DatabaseSource::Uri(uri) => uri.clone(),
            DatabaseSource::SessionDataframe => format!("{TASK}/session/{}.parquet", db.label),
        };
        set("DATABASE_URI", uri);
        set("DATABASE_TYPE", db.db_type.clone());
    } else {
        for (index, db) in task.databases.iter().enumerate() {
            match &db.source {
                DatabaseSource::SessionDataframe => {}
                DatabaseSource::File { extension } if extension == ".parquet" => {
                    mounts.push(NodeMount {
                        source: MountSource::Database(index),
                        target: format!("{TASK}/session/{}.parquet", db.label),
                        read_only: true,
                    });
                }
                _ => {
                    return Err(NodeRunError::NotADataframe {
                        label: db.label.clone(),
                        step: task.step,
                    });
                }
            }
        }
        set(
            "USER_REQUESTED_DATAFRAMES",
            requested_dataframes(task.databases),
        );
    }
    // `run`: the proxy (`V6_PROXY_HOST`, the node's service name in its cluster; port
    // `V6_PROXY_PORT`, `DEFAULT_PROXY_PORT` 7654). Nothing answers there unless a federated
    // run serves it.
    set_proxy(&mut set, task.proxy, 7654);
    set("ALGORITHM_METHOD", task.method.to_owned());
    set("FUNCTION_ACTION", task.step.as_str().to_owned());
    set("TASK_ID", task.ids.task.to_string());
    set("NODE_ID", task.ids.node.to_string());
    set("ORGANIZATION_ID", task.ids.organization.to_string());
    set("COLLABORATION_ID", task.ids.collaboration.to_string());
    // `run`: `algorithm_env` never replaces the node's own (`key in env_vars or key.upper() in
    // env_vars`): skipped, with a warning.
    let mut skipped_env = Vec::new();
    for (k, v) in task.extra_env {
        if env.contains_key(k) || env.contains_key(&k.to_uppercase()) {
            skipped_env.push(SkippedEnv {
                name: k.clone(),
                version: task.version.to_string(),
            });
            continue;
        }
        env.insert(k.clone(), v.clone());
    }
    let input = serde_json::Value::Object(task.kwargs.clone());
    let mut encoded = encode_env(&env);
    // A central step talks to the server: its token is passed as a secret, not encoded.
    if let (Some(_), FunctionStep::CentralCompute) = (task.proxy, task.step) {
        encoded.insert("CONTAINER_TOKEN".to_owned(), container_token(task));
        env.insert(
            "CONTAINER_TOKEN".to_owned(),
            "(the container's token)".to_owned(),
        );
    }
    Ok(NodeRun {
        env: encoded,
        env_plain: env,
        dirs,
        files: vec![
            (
                format!("{run}/input"),
                task.raw_input
                    .map_or_else(|| input.to_string().into_bytes(), <[u8]>::to_vec),
            ),
            (format!("{run}/output"), Vec::new()),
        ],
        mounts,
        tmpfs: Vec::new(),
        output: format!("{run}/output"),
        output_format: if task.step.writes_table() {
            OutputFormat::Parquet
        } else {
            OutputFormat::Json
        },
        session_state: Some(format!("{session}/{SESSION_STATE_FILE}")),
        skipped_env,
        tty: true,
    })
}

/// `USER_REQUESTED_DATAFRAMES` (vantage6-node 5.0.3 `_create_volume_mounts`): the dataframes
/// grouped by argument position, `,` within a position (`DATAFRAME_WITHIN_GROUP_SEPARATOR`),
/// `;` between positions (`DATAFRAME_BETWEEN_GROUPS_SEPARATOR`).
fn requested_dataframes(databases: &[NodeDatabase]) -> String {
    let mut groups: Vec<(usize, Vec<&str>)> = Vec::new();
    for db in databases {
        match groups.last_mut() {
            Some((position, names)) if *position == db.position => names.push(&db.label),
            _ => groups.push((db.position, vec![&db.label])),
        }
    }
    groups
        .iter()
        .map(|(_, names)| names.join(","))
        .collect::<Vec<_>>()
        .join(";")
}

/// The session's state file (`SESSION_STATE_FILENAME` in vantage6-common 5.0.3, `.parquet`).
pub const SESSION_STATE_FILE: &str = "session_state.parquet";

/// One row of a 5.x session's state file (`action`, `file`, `timestamp`, `message`,
/// `dataframe`), as vantage6-node 5.0.3 writes them (`k8s/session_manager.py`): the first when
/// the session is created, then one each time a run changes the session. The time is the
/// writer's: it is when the row was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStateRow {
    /// The step that changed the session (`FunctionStep`'s name), "" for the first row.
    pub action: &'static str,
    /// The file the step wrote, in the session folder.
    pub file: String,
    /// The node's words for it.
    pub message: &'static str,
    /// The dataframe changed, "" when none.
    pub dataframe: String,
}

impl SessionStateRow {
    /// The first row (`_create_session_state_file`).
    pub fn created() -> SessionStateRow {
        SessionStateRow {
            action: "",
            file: SESSION_STATE_FILE.to_string(),
            message: "Created this session file.",
            dataframe: String::new(),
        }
    }

    /// The row after an extraction or a preprocessing stored its table as the dataframe
    /// `name` (`k8s/run_io.py`, `RunIO._update_session`, after `write_dataframe_file`).
    pub fn dataframe_stored(step: FunctionStep, name: &str) -> SessionStateRow {
        SessionStateRow {
            action: step.as_str(),
            file: format!("{name}.parquet"),
            message: "Session updated.",
            dataframe: name.to_string(),
        }
    }
}

fn check_labels(databases: &[NodeDatabase]) -> Result<(), NodeRunError> {
    let mut seen = std::collections::BTreeSet::new();
    for db in databases {
        if !is_identifier(&db.label) {
            return Err(NodeRunError::InvalidLabel {
                label: db.label.clone(),
                upper: db.label.to_uppercase(),
            });
        }
        if !seen.insert(db.label.as_str()) {
            return Err(NodeRunError::DuplicateLabel {
                label: db.label.clone(),
            });
        }
    }
    Ok(())
}

/// A node refuses names that are not Python identifiers, and `PKG_NAME`.
pub fn check_env_name(name: &str) -> Result<(), NodeRunError> {
    let why = if !is_identifier(name) {
        "is not a valid name: letters, digits and `_`, not starting with a digit"
    } else if NOT_SETTABLE_BY_NODE.contains(&name) {
        "is set by the image's Dockerfile; a node cannot set it"
    } else {
        return Ok(());
    };
    Err(NodeRunError::InvalidEnv {
        name: name.to_owned(),
        why,
    })
}

/// ASCII identifiers (Python's `str.isidentifier` also takes other letters; a shell does not).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Every value base32-encoded (RFC 4648, upper case, `=` padding written as `!`), as the node's
/// `_encode_environment_variables` does; the wrapper decodes them.
pub fn encode_env(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.iter()
        .map(|(k, v)| (k.clone(), encode_env_value(v)))
        .collect()
}

/// One value encoded as the node does: `base64.b32encode(value).replace("=", "!")`.
pub fn encode_env_value(value: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes = value.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    for chunk in bytes.chunks(5) {
        let mut block = [0u8; 5];
        block[..chunk.len()].copy_from_slice(chunk);
        let bits = block.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        // Characters that carry data: ceil(8 * len / 5); the rest of the 8 is padding.
        let used = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            if i < used {
                let index = (bits >> (35 - 5 * i)) & 31;
                out.push(char::from(ALPHABET[index as usize]));
            } else {
                out.push(ENV_EQUALS_REPLACEMENT);
            }
        }
    }
    out
}

/// `HOST`, `PORT` and `API_PATH`: the node's proxy, or the federated run's server.
fn set_proxy(set: &mut impl FnMut(&str, String), proxy: Option<Proxy<'_>>, node_port: u16) {
    match proxy {
        Some(proxy) => {
            set("HOST", proxy.host.to_owned());
            set("PORT", proxy.port.to_string());
        }
        None => {
            set("HOST", "http://host.docker.internal".to_owned());
            set("PORT", node_port.to_string());
        }
    }
    set("API_PATH", String::new());
}

/// How the wrapper's own log lines start, per level (vantage6 `tools.util`: `info > `,
/// `warn > `, `error > `): what tells them from the function's output when a failure is read
/// from the log.
pub const LOG_INFO: &str = "info > ";
/// See [`LOG_INFO`].
pub const LOG_WARN: &str = "warn > ";
/// See [`LOG_INFO`].
pub const LOG_ERROR: &str = "error > ";

/// What vantage6's algorithm client logs (`common/client/client_base.py`) each time it fails
/// to reach the server and tries again, a second later, with no end: a function that logs it
/// waits for a server.
pub const SERVER_RETRY: &str = "Connection error... Retrying";

/// Words in a log that show a function reaching for the server (a central function's work):
/// the 4.x node's proxy host, the algorithm client's class, the container token's variable.
pub const SERVER_CONTACT: [&str; 3] =
    ["host.docker.internal", "AlgorithmClient", "CONTAINER_TOKEN"];

#[cfg(test)]
mod tests {
    use super::*;

    fn task<'a>(
        version: &'a Vantage6Version,
        databases: &'a [NodeDatabase],
        kwargs: &'a serde_json::Map<String, serde_json::Value>,
        env: &'a BTreeMap<String, String>,
        step: FunctionStep,
    ) -> NodeTask<'a> {
        NodeTask {
            version,
            method: "partial_sum",
            args: &[],
            kwargs,
            databases,
            step,
            extra_env: env,
            image: "img",
            run_id: 1,
            ids: NodeIds::default(),
            raw_input: None,
            proxy: None,
        }
    }

    fn csv(label: &str) -> NodeDatabase {
        NodeDatabase {
            label: label.into(),
            position: 0,
            source: DatabaseSource::File {
                extension: ".csv".into(),
            },
            db_type: "csv".into(),
        }
    }

    #[test]
    fn env_values_are_encoded_as_the_node_encodes_them() {
        // Python: base64.b32encode(s.encode()).decode().replace("=", "!")
        for (plain, encoded) in [
            ("abc", "MFRGG!!!"),
            (
                "/mnt/data/task-000000001/input",
                "F5WW45BPMRQXIYJPORQXG2ZNGAYDAMBQGAYDAMJPNFXHA5LU",
            ),
            ("default", "MRSWMYLVNR2A!!!!"),
            ("partial_sum", "OBQXE5DJMFWF643VNU!!!!!!"),
            ("aaaaa", "MFQWCYLB"),
            ("é", "YOUQ!!!!"),
            ("", ""),
        ] {
            assert_eq!(encode_env_value(plain), encoded, "{plain}");
        }
    }

    #[test]
    fn a_4x_node_sets_files_databases_and_encodes_every_value() {
        let version = Vantage6Version::parse("4.15").unwrap();
        let kwargs = serde_json::json!({"column": "a"})
            .as_object()
            .unwrap()
            .clone();
        let env = BTreeMap::from([("MY_SETTING".to_owned(), "x=1".to_owned())]);
        let dbs = [
            csv("default"),
            NodeDatabase {
                label: "other".into(),
                position: 1,
                source: DatabaseSource::Uri("postgresql://db/x".into()),
                db_type: "sql".into(),
            },
        ];
        let run = node_run(&task(
            &version,
            &dbs,
            &kwargs,
            &env,
            FunctionStep::FederatedCompute,
        ))
        .unwrap();
        let plain = &run.env_plain;
        assert_eq!(plain["INPUT_FILE"], "/mnt/data/task-000000001/input");
        assert_eq!(plain["OUTPUT_FILE"], "/mnt/data/task-000000001/output");
        assert_eq!(plain["TOKEN_FILE"], "/mnt/data/task-000000001/token");
        assert_eq!(plain["TEMPORARY_FOLDER"], "/mnt/tmp");
        assert_eq!(plain["USER_REQUESTED_DATABASE_LABELS"], "default,other");
        assert_eq!(plain["DEFAULT_DATABASE_URI"], "/mnt/default.csv");
        assert_eq!(plain["DEFAULT_DATABASE_TYPE"], "csv");
        assert_eq!(plain["OTHER_DATABASE_URI"], "postgresql://db/x");
        assert_eq!(plain["OTHER_DATABASE_TYPE"], "sql");
        assert_eq!(plain["DB_LABELS"], "default,other");
        assert_eq!(plain["MY_SETTING"], "x=1");
        assert!(!plain.contains_key("PKG_NAME"));
        for (key, value) in plain {
            assert_eq!(run.env[key], encode_env_value(value), "{key}");
        }
        let input: serde_json::Value = serde_json::from_slice(&run.files[0].1).unwrap();
        assert_eq!(
            input,
            serde_json::json!({"method": "partial_sum", "args": [], "kwargs": {"column": "a"}})
        );
        assert_eq!(
            run.files[1],
            ("task-000000001/output".to_owned(), Vec::new())
        );
        assert_eq!(run.output, "task-000000001/output");
        // The data folder, and the file database read-only where the node mounts it.
        assert_eq!(
            run.mounts,
            [
                NodeMount {
                    source: MountSource::Work(String::new()),
                    target: "/mnt/data".into(),
                    read_only: false
                },
                NodeMount {
                    source: MountSource::Database(0),
                    target: "/mnt/default.csv".into(),
                    read_only: true
                },
            ]
        );
        assert_eq!(run.tmpfs, ["/mnt/tmp"]);
        assert!(!run.tty);
        // The token is a JWT whose `sub` holds the container's identity.
        let token = String::from_utf8(run.files[2].1.clone()).unwrap();
        assert_eq!(token.split('.').count(), 3, "{token}");
    }

    #[test]
    fn a_5x_node_sets_the_method_and_step_and_takes_keyword_arguments_only() {
        let version = Vantage6Version::parse("5.0").unwrap();
        let kwargs = serde_json::json!({"column": "a"})
            .as_object()
            .unwrap()
            .clone();
        let env = BTreeMap::new();
        let dbs = [csv("default")];
        let run = node_run(&task(
            &version,
            &dbs,
            &kwargs,
            &env,
            FunctionStep::DataExtraction,
        ))
        .unwrap();
        let plain = &run.env_plain;
        assert_eq!(plain["ALGORITHM_METHOD"], "partial_sum");
        assert_eq!(plain["FUNCTION_ACTION"], "data_extraction");
        assert_eq!(plain["INPUT_FILE"], "/app/vantage6/task/input");
        assert_eq!(plain["OUTPUT_FILE"], "/app/vantage6/task/output");
        assert_eq!(plain["SESSION_FOLDER"], "/app/vantage6/task/session");
        assert_eq!(plain["DATABASE_URI"], "/app/databases/default.csv");
        assert_eq!(plain["DATABASE_TYPE"], "csv");
        assert_eq!(run.output_format, OutputFormat::Parquet);
        assert_eq!(run.files[0].1, br#"{"column":"a"}"#);

        let frames = [
            NodeDatabase {
                source: DatabaseSource::SessionDataframe,
                ..csv("first")
            },
            NodeDatabase {
                source: DatabaseSource::File {
                    extension: ".parquet".into(),
                },
                position: 1,
                ..csv("second")
            },
        ];
        let run = node_run(&task(
            &version,
            &frames,
            &kwargs,
            &env,
            FunctionStep::FederatedCompute,
        ))
        .unwrap();
        assert_eq!(run.env_plain["USER_REQUESTED_DATAFRAMES"], "first;second");
        assert_eq!(run.output_format, OutputFormat::Json);
        assert!(run.mounts.contains(&NodeMount {
            source: MountSource::Database(1),
            target: "/app/vantage6/task/session/second.parquet".into(),
            read_only: true
        }));

        let err = node_run(&task(
            &version,
            &dbs,
            &kwargs,
            &env,
            FunctionStep::FederatedCompute,
        ))
        .unwrap_err();
        assert!(matches!(err, NodeRunError::NotADataframe { .. }), "{err}");
        let args = [serde_json::json!(1)];
        let err = node_run(&NodeTask {
            args: &args,
            ..task(
                &version,
                &frames,
                &kwargs,
                &env,
                FunctionStep::FederatedCompute,
            )
        })
        .unwrap_err();
        assert!(err.to_string().contains("--kwargs"), "{err}");
    }

    /// Every variable vantage6-node 5.0.3 `ContainerManager.run` sets, per kind of step.
    #[test]
    fn a_5x_node_sets_every_variable_of_vantage6_node_5_0_3() {
        let version = Vantage6Version::parse("5.0").unwrap();
        let kwargs = serde_json::Map::new();
        let env = BTreeMap::new();
        let dbs = [csv("default")];
        let ids = NodeIds {
            task: 12,
            node: 3,
            organization: 4,
            collaboration: 5,
        };
        let run = node_run(&NodeTask {
            ids,
            ..task(&version, &dbs, &kwargs, &env, FunctionStep::DataExtraction)
        })
        .unwrap();
        let common = [
            "OUTPUT_FILE",
            "INPUT_FILE",
            "SESSION_FOLDER",
            "SESSION_FILE",
            "HOST",
            "PORT",
            "API_PATH",
            "ALGORITHM_METHOD",
            "FUNCTION_ACTION",
            "TASK_ID",
            "NODE_ID",
            "ORGANIZATION_ID",
            "COLLABORATION_ID",
        ];
        let keys: Vec<&str> = run.env_plain.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = common.to_vec();
        expected.extend(["DATABASE_URI", "DATABASE_TYPE"]);
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(run.env_plain["TASK_ID"], "12");
        assert_eq!(run.env_plain["NODE_ID"], "3");
        assert_eq!(run.env_plain["ORGANIZATION_ID"], "4");
        assert_eq!(run.env_plain["COLLABORATION_ID"], "5");
        assert_eq!(run.env["TASK_ID"], "GEZA!!!!");
        assert_eq!(
            run.env_plain["SESSION_FILE"],
            "/app/vantage6/task/session/session_state.parquet"
        );
        assert_eq!(
            run.session_state.as_deref(),
            Some("session/session_state.parquet")
        );
        // The source, read-write as the node mounts it: a copy of the file.
        assert!(run.mounts.contains(&NodeMount {
            source: MountSource::DatabaseCopy(0, "run-1/databases/default.csv".into()),
            target: "/app/databases/default.csv".into(),
            read_only: false
        }));
        assert!(run.dirs.contains(&"run-1/databases".to_owned()));
        assert!(run.tty, "ContainerManager.run: tty=True");

        let frames = [NodeDatabase {
            source: DatabaseSource::SessionDataframe,
            ..csv("default")
        }];
        let run = node_run(&task(
            &version,
            &frames,
            &kwargs,
            &env,
            FunctionStep::Preprocessing,
        ))
        .unwrap();
        let keys: Vec<&str> = run.env_plain.keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = common.to_vec();
        expected.push("USER_REQUESTED_DATAFRAMES");
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(run.env_plain["TASK_ID"], "1");
        assert!(!run.env.contains_key("TOKEN_FILE"));
    }

    #[test]
    fn a_5x_node_never_lets_extra_env_replace_its_own_variables() {
        let version = Vantage6Version::parse("5.0").unwrap();
        let kwargs = serde_json::Map::new();
        let env = BTreeMap::from([
            ("TASK_ID".to_owned(), "99".to_owned()),
            ("session_file".to_owned(), "x".to_owned()),
            ("USER_REQUESTED_DATAFRAMES".to_owned(), "y".to_owned()),
            ("MY_SETTING".to_owned(), "x=1".to_owned()),
        ]);
        let frames = [NodeDatabase {
            source: DatabaseSource::SessionDataframe,
            ..csv("default")
        }];
        let run = node_run(&task(
            &version,
            &frames,
            &kwargs,
            &env,
            FunctionStep::FederatedCompute,
        ))
        .unwrap();
        assert_eq!(run.env_plain["TASK_ID"], "1");
        assert_eq!(run.env_plain["USER_REQUESTED_DATAFRAMES"], "default");
        assert!(!run.env_plain.contains_key("session_file"));
        assert_eq!(run.env_plain["MY_SETTING"], "x=1");
        assert_eq!(run.skipped_env.len(), 3, "{:?}", run.skipped_env);
        assert!(run.skipped_env.iter().any(|w| w.name == "TASK_ID"));
        // A data extraction gets no USER_REQUESTED_DATAFRAMES from the node: the extra one
        // is set, as the node sets it.
        let dbs = [csv("default")];
        let run = node_run(&task(
            &version,
            &dbs,
            &kwargs,
            &env,
            FunctionStep::DataExtraction,
        ))
        .unwrap();
        assert_eq!(run.env_plain["USER_REQUESTED_DATAFRAMES"], "y");
        // 4.15.2 merges `algorithm_env` over its own variables.
        let v4 = Vantage6Version::parse("4.15").unwrap();
        let run = node_run(&task(
            &v4,
            &dbs,
            &kwargs,
            &env,
            FunctionStep::FederatedCompute,
        ))
        .unwrap();
        assert_eq!(run.env_plain["TASK_ID"], "99");
        assert!(run.skipped_env.is_empty());
    }

    #[test]
    fn dataframes_are_grouped_per_argument_position() {
        let version = Vantage6Version::parse("5.0").unwrap();
        let kwargs = serde_json::Map::new();
        let env = BTreeMap::new();
        let frame = |label: &str, position| NodeDatabase {
            source: DatabaseSource::SessionDataframe,
            position,
            ..csv(label)
        };
        let frames = [frame("a", 0), frame("b", 0), frame("c", 1), frame("d", 2)];
        let run = node_run(&task(
            &version,
            &frames,
            &kwargs,
            &env,
            FunctionStep::FederatedCompute,
        ))
        .unwrap();
        assert_eq!(run.env_plain["USER_REQUESTED_DATAFRAMES"], "a,b;c;d");
        let v4 = Vantage6Version::parse("4.15").unwrap();
        let dbs = [csv("a"), csv("b")];
        let err = node_run(&task(
            &v4,
            &dbs,
            &kwargs,
            &env,
            FunctionStep::FederatedCompute,
        ))
        .unwrap_err();
        assert!(
            matches!(err, NodeRunError::GroupIn4x { ref label, .. } if label == "b"),
            "{err}"
        );
    }

    #[test]
    fn the_session_state_rows_are_the_nodes() {
        let created = SessionStateRow::created();
        assert_eq!(
            (created.action, created.file.as_str(), created.message),
            ("", "session_state.parquet", "Created this session file.")
        );
        let stored = SessionStateRow::dataframe_stored(FunctionStep::DataExtraction, "default");
        assert_eq!(
            (stored.action, stored.file.as_str(), stored.message),
            ("data_extraction", "default.parquet", "Session updated.")
        );
        assert_eq!(stored.dataframe, "default");
    }

    #[test]
    fn what_a_node_refuses_is_refused() {
        let v4 = Vantage6Version::parse("4.15").unwrap();
        let kwargs = serde_json::Map::new();
        let none = BTreeMap::new();
        let bad_label = [csv("my-data")];
        let err = node_run(&task(
            &v4,
            &bad_label,
            &kwargs,
            &none,
            FunctionStep::FederatedCompute,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("MY-DATA_DATABASE_URI"), "{err}");
        let twice = [csv("a"), csv("a")];
        assert!(matches!(
            node_run(&task(
                &v4,
                &twice,
                &kwargs,
                &none,
                FunctionStep::FederatedCompute
            )),
            Err(NodeRunError::DuplicateLabel { .. })
        ));
        let pkg = BTreeMap::from([("PKG_NAME".to_owned(), "x".to_owned())]);
        let err = node_run(&task(
            &v4,
            &[],
            &kwargs,
            &pkg,
            FunctionStep::FederatedCompute,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("Dockerfile"), "{err}");
        assert!(check_env_name("1X").is_err());
        assert!(check_env_name("MY_VAR_2").is_ok());
        let v3 = Vantage6Version::parse("3.11").unwrap();
        assert!(matches!(
            node_run(&task(
                &v3,
                &[],
                &kwargs,
                &none,
                FunctionStep::FederatedCompute
            )),
            Err(NodeRunError::UnsupportedVersion { .. })
        ));
    }
}
