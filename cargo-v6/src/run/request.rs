//! What to run, as the caller asks for it (the task, the databases, the environment), and the
//! checks a node makes before it starts anything.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::RunError;
use crate::vantage6::{
    self, DatabaseSource, FunctionStep, NodeDatabase, NodeIds, NodeTask, Vantage6Version,
};

/// What to run: the task as a node would get it, and how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `--org`: `method` is a central function, run with its subtasks at these organizations
    /// ([`super::federation`]); `data` is then unused.
    pub federation: Option<super::federation::Federation>,
    /// `--args` and `--kwargs` as written: the input file carries them so, their keys in the
    /// user's order (a parsed object's keys are sorted; an algorithm may read a dict's order,
    /// as a node gives it the client's).
    pub written: Written,
}

/// The arguments as the user wrote them (JSON text), when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// `--args`.
    pub args: Option<String>,
    /// `--kwargs`.
    pub kwargs: Option<String>,
}

impl RunRequest {
    /// The input file of `method`'s task as a node writes the user's input: 4.x `{"method",
    /// "args", "kwargs"}`, 5.x the keyword arguments, with the arguments as written. `None`
    /// when nothing was written (the input is made from the parsed arguments).
    pub fn written_input(&self) -> Option<Vec<u8>> {
        let (args, kwargs) = (self.written.args.as_deref(), self.written.kwargs.as_deref());
        if args.is_none() && kwargs.is_none() {
            return None;
        }
        Some(match self.vantage6.major {
            5 => kwargs.unwrap_or("{}").trim().as_bytes().to_vec(),
            _ => format!(
                r#"{{"method": {}, "args": {}, "kwargs": {}}}"#,
                Value::String(self.method.clone()),
                args.unwrap_or("[]").trim(),
                kwargs.unwrap_or("{}").trim()
            )
            .into_bytes(),
        })
    }
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

/// Checks `request` as a node would before starting anything (arguments, labels,
/// environment, data files): a run that fails here starts no container, and a caller that
/// builds first can check before building.
pub fn check(request: &RunRequest) -> Result<(), RunError> {
    match &request.federation {
        Some(federation) => super::federation::check(request, federation),
        None => checked_databases(request).map(drop),
    }
}

/// The request checked, and its databases resolved.
pub(super) fn checked_databases(
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
            message: "a central function creates subtasks through the server (the algorithm client), which a run of one node has not".to_owned(),
            help: Some("run it with its subtasks as a federation: --org ID=PATH per organization".to_owned()),
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
        raw_input: None,
        proxy: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Hint;

    /// A node gives the algorithm the client's dict in its order: the input carries the
    /// arguments as written, not re-serialized with sorted keys.
    #[test]
    fn the_input_keeps_the_arguments_as_written() {
        let kwargs = r#"{"zeta": 1, "alpha": {"b": 2.50, "a": NaN}}"#;
        let mut request = RunRequest {
            vantage6: Vantage6Version::parse("5.0").unwrap(),
            method: "f".into(),
            args: Vec::new(),
            kwargs: Map::new(),
            data: Vec::new(),
            env: BTreeMap::new(),
            step: None,
            extract: None,
            timeout: None,
            ids: NodeIds::default(),
            federation: None,
            written: Written {
                args: None,
                kwargs: Some(format!(" {kwargs}\n")),
            },
        };
        assert_eq!(request.written_input().unwrap(), kwargs.as_bytes());
        request.vantage6 = Vantage6Version::parse("4.15").unwrap();
        assert_eq!(
            String::from_utf8(request.written_input().unwrap()).unwrap(),
            format!(r#"{{"method": "f", "args": [], "kwargs": {kwargs}}}"#)
        );
        request.written = Written::default();
        assert_eq!(request.written_input(), None);
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
        assert!(matches!(err.hint(), Some(Hint::Say(text)) if text.contains("without `+`")));
    }
}
