//! The only place that prints. Status, warnings and errors go to stderr in cargo's style;
//! machine output (JSON, lists, rendered files) goes to stdout. A closed stdout (`| head`) is
//! not an error: the program ends quietly.

use std::io::{self, IsTerminal, Write};

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::error::Error;

/// How much to say on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Status lines and warnings.
    #[default]
    Normal,
    /// `-v`: also details (build output).
    Verbose,
}

/// Human output on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Reporter {
    verbosity: Verbosity,
    color: bool,
}

impl Reporter {
    /// A reporter; colors when stderr is a terminal and `NO_COLOR` is unset.
    pub fn new(verbosity: Verbosity) -> Self {
        Reporter {
            verbosity,
            color: io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// The verbosity chosen on the command line.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// `   Verb message`, cargo's status line.
    pub fn status(&self, verb: &str, message: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            let verb = self.paint("1;32", &format!("{verb:>12}"));
            eprintln!("{verb} {}", message.as_ref());
        }
    }

    /// Detail shown with `-v` only.
    pub fn detail(&self, message: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Verbose {
            eprintln!("{}", message.as_ref());
        }
    }

    /// `warning: ...`
    pub fn warn(&self, message: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            eprintln!("{} {}", self.paint("1;33", "warning:"), message.as_ref());
        }
    }

    /// `note: ...`
    pub fn note(&self, message: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            eprintln!("{} {}", self.paint("1;36", "note:"), message.as_ref());
        }
    }

    /// Prints an error, with the place in the file and a hint when there are any. Errors are
    /// printed even with `-q`.
    pub fn error(&self, error: &Error) {
        eprint!("{}", render_error(error, self.color));
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{style}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// The text of an error as printed: `error: message`, then `--> PATH:LINE:COL` and the line
/// with a marker, then `help: ...`.
pub fn render_error(error: &Error, color: bool) -> String {
    let message = error.to_string();
    let help = error.help();
    let mut report: Vec<Group> = Vec::new();
    let title = Level::ERROR.primary_title(&message);
    let group = match error.location() {
        Some(location) => {
            let (line, col) = location.line_col();
            let span = location.span.start.min(location.source.len())
                ..location.span.end.min(location.source.len());
            // annotate-snippets shows the path; cargo-style `PATH:LINE:COL` comes from it.
            let _ = (line, col);
            title.element(
                Snippet::source(&location.source)
                    .path(&location.path)
                    .annotation(AnnotationKind::Primary.span(span)),
            )
        }
        None => Group::with_title(title),
    };
    report.push(group);
    if let Some(help) = &help {
        report.push(Group::with_title(Level::HELP.secondary_title(help)));
    }
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut text = renderer.render(&report);
    text.push('\n');
    text
}

/// Writes machine output to stdout. A closed stdout becomes [`Error::StdoutClosed`], which
/// ends the program quietly.
pub fn stdout(text: &str) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Error::StdoutClosed),
        Err(source) => Err(Error::Write {
            path: "stdout".to_string(),
            source,
        }),
        Ok(()) => Ok(()),
    }
}
