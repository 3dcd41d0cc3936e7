//! What failed, read from the wrapper's log: the module (PKG_NAME), the method, a missing
//! dependency, the data, the output.

use super::Hint;
use crate::vantage6::{LOG_ERROR, LOG_INFO, LOG_WARN, SERVER_CONTACT};

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
            Failure::NoOutput => write!(f, "the algorithm exited 0 but wrote no output file"),
            Failure::Exited { last: Some(last) } => write!(f, "the container failed: {last}"),
            Failure::Exited { last: None } => write!(f, "the container failed without a message"),
        }
    }
}

impl Failure {
    /// How to fix it.
    pub fn hint(&self) -> Option<Hint> {
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
            Failure::WrongStep { declared, .. } => return Some(Hint::Step(declared.clone())),
            Failure::NotEnoughData { .. } => return Some(Hint::Data),
            Failure::DataUnreadable { .. } => return Some(Hint::DataType),
            Failure::MethodRaised { central: true, .. } => CENTRAL_HELP,
            Failure::OutputFailed { .. } => {
                "return plain Python values (dict, list, str, int, float): json.dumps rejects e.g. numpy and pandas scalars (use .item() or int())"
            }
            _ => return None,
        };
        Some(Hint::Say(text.to_owned()))
    }
}

/// The hint for a function that needs the server: a central function.
pub(super) const CENTRAL_HELP: &str = "central functions create subtasks through the server (the algorithm client): run one with its subtasks as a federation, giving each organization's data with `--org ID=PATH`";

/// What failed, from the container's log lines (stdout and stderr, in order), the module
/// (PKG_NAME) the image sets and the method asked for.
pub fn diagnose(lines: &[String], module: Option<&str>, method: &str) -> Failure {
    let errors: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix(LOG_ERROR))
        .collect();
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
            let central = lines
                .iter()
                .any(|l| SERVER_CONTACT.iter().any(|word| l.contains(word)));
            return Failure::MethodRaised {
                method: name.to_owned(),
                error,
                central,
            };
        }
    }
    let imported = lines
        .iter()
        .any(|l| l.starts_with(LOG_INFO) && l.contains("' imported!"));
    let wrapper_started = lines
        .iter()
        .any(|l| l.starts_with(&format!("{LOG_INFO}wrapper for")));
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
        .any(|l| l.starts_with(LOG_INFO) && l.contains("Writing output to"));
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
pub(super) fn without_ansi(text: &str) -> String {
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
                && !l.starts_with(LOG_ERROR)
                && !l.starts_with(LOG_INFO)
                && !l.starts_with(LOG_WARN)
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
        l.starts_with(LOG_INFO) && !l.contains("Error encountered") && !l.starts_with(LOG_ERROR)
    })?;
    let rest = last_info.strip_prefix(LOG_INFO)?;
    if rest.starts_with("Using '") && rest.contains("' with label '") {
        return rest
            .split("' with label '")
            .nth(1)
            .and_then(|r| r.split('\'').next())
            .map(str::to_owned);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
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
        assert!(matches!(failure.hint(), Some(Hint::Say(text)) if text.contains("PKG_NAME")));
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
        assert_eq!(failure.hint(), None);
        let log = lines(
            "error > Error encountered while calling central: HTTPConnectionPool(host='host.docker.internal', port=8080): Max retries exceeded
Traceback (most recent call last):
requests.exceptions.ConnectionError: HTTPConnectionPool(host='host.docker.internal', port=8080)",
        );
        let failure = diagnose(&log, Some("p"), "central");
        assert!(
            matches!(failure.hint(), Some(Hint::Say(text)) if text.contains("--org ID=PATH")),
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
        assert_eq!(failure.hint(), Some(Hint::Step("federated_compute".into())));
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
