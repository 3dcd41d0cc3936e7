//! What `cargo v6 run` shows: the containers' status lines and logs, the federated run's
//! tasks, and the output.

use super::{Reporter, Verbosity, say, stdout};
use crate::error::Error;

/// Shows a run like a node's: status lines, and the container's log live on stderr, line by
/// line as the algorithm writes it (nothing with `-q`).
pub struct RunProgress {
    reporter: Reporter,
    /// `--message-format json`: each task of a federated run as a JSON line on stdout.
    json: bool,
}

impl RunProgress {
    /// Progress for `reporter`'s verbosity.
    pub fn new(reporter: &Reporter) -> Self {
        RunProgress {
            reporter: *reporter,
            json: false,
        }
    }

    /// Progress that also writes each ended task of a federated run as a JSON line
    /// (`"reason": "task"`) on stdout.
    pub fn with_json(reporter: &Reporter) -> Self {
        RunProgress {
            reporter: *reporter,
            json: true,
        }
    }

    fn task(&self, task: &crate::run::TaskEvent<'_>) {
        let parent = match task.parent {
            Some(parent) => format!(", subtask of {parent}"),
            None => " (central)".to_owned(),
        };
        let what = format!(
            "task {} `{}` at organization {}{parent}",
            task.task, task.method, task.organization
        );
        let Some(elapsed) = task.state.elapsed() else {
            self.reporter.status("Started", what);
            return;
        };
        let verb = match task.state {
            crate::run::TaskState::Completed(_) => "Completed",
            crate::run::TaskState::Failed(_) => "Failed",
            _ => "Stopped",
        };
        self.reporter
            .status(verb, format!("{what} in {:.2} s", elapsed.as_secs_f64()));
        if self.json {
            // stdout closed: the run goes on, as it would without the line.
            let _ = super::json_line(
                "task",
                &serde_json::json!({
                    "task_id": task.task,
                    "run_id": task.run,
                    "parent_id": task.parent,
                    "organization_id": task.organization,
                    "method": task.method,
                    "status": task.state.as_str(),
                    "seconds": elapsed.as_secs_f64(),
                }),
            );
        }
    }
}

impl crate::run::RunObserver for RunProgress {
    fn event(&self, event: crate::run::RunEvent<'_>) {
        use crate::run::RunEvent;
        let reporter = &self.reporter;
        match event {
            RunEvent::Pulling { reference } => reporter.status("Pulling", reference),
            RunEvent::PullStatus(status) => reporter.detail(format!("      {status}")),
            RunEvent::Started {
                method,
                step,
                image,
                env,
                emulator,
            } => {
                let hex = image.strip_prefix("sha256:").unwrap_or(image);
                let shown = if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    &hex[..12]
                } else {
                    image
                };
                let step = step.map(|s| format!(" ({s})")).unwrap_or_default();
                let how = match emulator {
                    Some(qemu) => format!(" under {qemu} (the network is not taken away)"),
                    None => " (no network)".to_owned(),
                };
                reporter.status(
                    "Running",
                    format!("{method}{step} in {shown}, as a vantage6 node does{how}"),
                );
                for (key, value) in env {
                    reporter.detail(format!("         env {key}={value}"));
                }
            }
            RunEvent::Log(line) => {
                if reporter.verbosity >= Verbosity::Normal {
                    say(format_args!("{}\n", line.text()));
                }
            }
            RunEvent::Exited { method, code } => {
                reporter.detail(format!("      Exited {method}: status {code}"))
            }
            RunEvent::Task(task) => self.task(&task),
            RunEvent::Warning(message) => reporter.warn(message),
            RunEvent::EnvSkipped(skipped) => reporter.warn(env_skipped(skipped)),
        }
    }
}

/// The warning for an `--env` variable the node does not set.
fn env_skipped(skipped: &crate::vantage6::SkippedEnv) -> String {
    format!(
        "--env {} is not set: a vantage6 {} node sets {} itself, and skips an `algorithm_env` variable of that name",
        skipped.name,
        skipped.version,
        skipped.name.to_uppercase()
    )
}

/// A finished run: a status line on stderr, and the output as one line of JSON on stdout (the
/// last line).
pub fn run_output(outcome: &crate::run::RunOutcome, reporter: &Reporter) -> Result<(), Error> {
    let what = match &outcome.output {
        crate::run::RunOutput::Json(_) => "the wrapper wrote its output",
        crate::run::RunOutput::Table { .. } => "the wrapper wrote a parquet table",
    };
    reporter.status("Finished", what);
    stdout(&format!("{}\n", outcome.output.json_line()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node's contract says which variable is skipped; the warning names `--env`.
    #[test]
    fn a_skipped_env_variable_is_worded_with_the_flag() {
        let skipped = crate::vantage6::SkippedEnv {
            name: "task_id".into(),
            version: "5.1".into(),
        };
        assert_eq!(
            env_skipped(&skipped),
            "--env task_id is not set: a vantage6 5.1 node sets TASK_ID itself, and skips an `algorithm_env` variable of that name"
        );
    }
}
