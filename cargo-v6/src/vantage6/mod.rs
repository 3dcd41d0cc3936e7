//! What cargo v6 knows about vantage6 itself, in one place: the wrappers that run an algorithm
//! inside its image, the releases the tool knows, the default base image per wrapper and
//! release, and the Dockerfile template that fits them (`catalog`); what a node prepares for an
//! algorithm container and what that container writes in its log (`node`).
//!
//! A leaf module: everyone may use it, it uses nobody. When vantage6 publishes a new release or
//! moves its images, `catalog` is the file to change; when a node runs algorithms differently,
//! `node`. A `MAJOR.MINOR` the user writes is taken as written, even when it is newer than
//! [`NEWEST`]: the tool never replaces a version it does not know with one it does.

mod catalog;
mod node;
mod token;

pub use catalog::{
    ALGORITHM_BASE, BaseRegistry, DATABASE_TYPES, FunctionStep, NEWEST, SAMPLE,
    STORE_MANIFEST_ACCEPT, SUPPORTED_MAJORS, Vantage6Version, Wrapper, algorithm_base,
    default_base, newest_of_major, no_default_base, same_base, template_name,
};
pub use node::{
    DatabaseSource, ENV_EQUALS_REPLACEMENT, LOG_ERROR, LOG_INFO, LOG_WARN, MountSource,
    NOT_SETTABLE_BY_NODE, NodeDatabase, NodeIds, NodeMount, NodeRun, NodeRunError, NodeTask,
    OutputFormat, Proxy, SERVER_CONTACT, SERVER_RETRY, SESSION_STATE_FILE, SessionStateRow,
    SkippedEnv, check_env_name, encode_env, encode_env_value, node_run,
};
