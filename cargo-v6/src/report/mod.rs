//! The only place that prints. Status, warnings and errors go to stderr in cargo's style;
//! machine output (JSON, lists, rendered files) goes to stdout. A closed stdout (`| head`) is
//! not an error: the program ends quietly.

use std::io::{self, IsTerminal, Write};

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

use crate::error::Error;

mod run;

pub use run::{RunProgress, run_output};

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
            say(format_args!("{verb} {}\n", message.as_ref()));
        }
    }

    /// Detail shown with `-v` only.
    pub fn detail(&self, message: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Verbose {
            say(format_args!("{}\n", message.as_ref()));
        }
    }

    /// `warning: ...`
    pub fn warn(&self, message: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            say(format_args!(
                "{} {}\n",
                self.paint("1;33", "warning:"),
                message.as_ref()
            ));
        }
    }

    /// `note: ...`
    pub fn note(&self, message: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            say(format_args!(
                "{} {}\n",
                self.paint("1;36", "note:"),
                message.as_ref()
            ));
        }
    }

    /// Prints an error, with the place in the file and a hint when there are any. Errors are
    /// printed even with `-q`.
    pub fn error(&self, error: &Error) {
        say(format_args!("{}", render_error(error, self.color)));
    }

    /// An error of one algorithm among several: `error[NAME]: message`, the rest as usual.
    pub fn error_in(&self, name: &str, error: &Error) {
        let text = render_error(error, self.color);
        let text = match text.split_once("error") {
            Some((before, after)) => format!("{before}error[{name}]{after}"),
            None => text,
        };
        say(format_args!("{text}"));
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{style}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Writes to stderr. A closed or failing stderr is ignored: there is nowhere left to report
/// it, and `eprintln!` would panic.
fn say(text: std::fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(text);
}

/// The text of an error as printed: `error: message`, then `--> PATH:LINE:COL` and the line
/// with a marker, then `help: ...`.
pub fn render_error(error: &Error, color: bool) -> String {
    let message = error.to_string();
    let help = error.help();
    let Some(location) = error.location() else {
        // No place in a file: plain lines, as cargo prints them.
        let mut text = format!("error: {message}\n");
        if let Some(help) = help {
            text.push_str(&format!("help: {help}\n"));
        }
        return text;
    };
    let span = location.span.start.min(location.source.len())
        ..location.span.end.min(location.source.len());
    let mut group = Level::ERROR.primary_title(&message).element(
        Snippet::source(&location.source)
            .path(&location.path)
            .annotation(AnnotationKind::Primary.span(span)),
    );
    if let Some(help) = &help {
        group = group.element(Level::HELP.message(help));
    }
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut text = renderer.render(&[group]);
    text.push('\n');
    text
}

/// One JSON line on stdout, tagged with `reason` as cargo tags its messages (`plan`,
/// `published`, `error`), so that a consumer can tell them apart.
pub fn json_line(reason: &str, body: &impl serde::Serialize) -> Result<(), Error> {
    #[derive(serde::Serialize)]
    struct Message<'a, T> {
        reason: &'a str,
        #[serde(flatten)]
        body: &'a T,
    }
    let line = serde_json::to_string(&Message { reason, body }).map_err(|e| Error::Failed {
        message: format!("cannot write JSON output: {e}"),
        help: None,
    })?;
    stdout(&format!("{line}\n"))
}

/// One algorithm's error among several, as a JSON line: [`error_json`] with `algorithm`.
pub fn member_error_json(name: &str, error: &Error) -> Result<(), Error> {
    let mut value: serde_json::Value = serde_json::from_str(&error_json(error)).unwrap_or_default();
    value["algorithm"] = serde_json::Value::from(name);
    stdout(&format!("{value}\n"))
}

/// An error as one JSON line for `--message-format json`: `reason` is `error`, with the
/// message, the exit code, the place (`PATH:LINE:COL`) and the hint when there are any.
pub fn error_json(error: &Error) -> String {
    let location = error.location().map(crate::diagnostic::Location::place);
    let value = serde_json::json!({
        "reason": "error",
        "message": error.to_string(),
        "exit_code": error.exit_code(),
        "location": location,
        "help": error.help(),
    });
    format!("{value}\n")
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

/// Progress of long work (build steps, layer pushes): a spinner line on a terminal, plain
/// status lines otherwise (CI logs), nothing with `-q`.
pub struct Progress {
    reporter: Reporter,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Starts reporting progress for `what` (`Building`, `Pushing`): a progress line on a
    /// terminal when `bar` allows it, else a status line.
    pub fn new(reporter: &Reporter, verb: &str, what: &str, bar: bool) -> Self {
        let interactive =
            bar && reporter.verbosity == Verbosity::Normal && io::stderr().is_terminal();
        let bar = interactive.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner:.green} {prefix:>10.bold} {wide_msg}",
                )
                .expect("valid template"),
            );
            bar.set_prefix(verb.to_string());
            bar.set_message(what.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            reporter.status(verb, what);
        }
        Progress {
            reporter: *reporter,
            bar,
        }
    }

    /// A build event: steps are shown; step output only with `-v`.
    pub fn build_event(&self, event: &crate::engine::BuildEvent) {
        use crate::engine::BuildEvent;
        match (event, &self.bar) {
            (
                BuildEvent::Step {
                    number,
                    total,
                    instruction,
                },
                Some(bar),
            ) => {
                bar.set_message(format!("step {number}/{total}: {instruction}"));
            }
            (
                BuildEvent::Step {
                    number,
                    total,
                    instruction,
                },
                None,
            ) => {
                self.reporter
                    .status("Step", format!("{number}/{total}: {instruction}"));
            }
            (BuildEvent::Output(line) | BuildEvent::Status(line), Some(bar)) => {
                if self.reporter.verbosity >= Verbosity::Verbose {
                    bar.println(line);
                }
            }
            (BuildEvent::Output(line) | BuildEvent::Status(line), None) => {
                self.reporter.detail(line)
            }
        }
    }

    /// A push event: byte counts on a terminal; status lines only with `-v`.
    pub fn push_event(&self, event: &crate::engine::PushEvent) {
        use crate::engine::PushEvent;
        match (event, &self.bar) {
            (
                PushEvent::Layer {
                    status,
                    current: Some(current),
                    total: Some(total),
                },
                Some(bar),
            ) => {
                bar.set_message(format!(
                    "{status} {} / {}",
                    indicatif::HumanBytes(*current),
                    indicatif::HumanBytes(*total)
                ));
            }
            (PushEvent::Layer { status, .. } | PushEvent::Status(status), Some(bar)) => {
                bar.set_message(status.clone());
            }
            (PushEvent::Layer { status, .. } | PushEvent::Status(status), None) => {
                self.reporter.detail(status)
            }
        }
    }

    /// Ends the progress line, leaving `message` as a status line.
    pub fn finish(self, verb: &str, message: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.reporter.status(verb, message);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The plan as status lines on stderr (`cargo v6 plan`, and `publish --dry-run`).
pub fn plan(plan: &crate::plan::Plan, reporter: &Reporter) {
    use crate::plan::VersionSource;
    let source = match &plan.version_source {
        VersionSource::CommandLine => "--set-version",
        VersionSource::Manifest => "v6.toml",
        VersionSource::File(file) => file,
        VersionSource::ReleaseTag(tag) => &format!("release tag {tag}"),
    };
    let stability = if plan.stable { "" } else { ", pre-release" };
    reporter.status(
        "Planning",
        format!("{} {} (from {source}{stability})", plan.name, plan.version),
    );
    reporter.status("Image", plan.image.to_string());
    reporter.status("Base", &plan.base_image);
    if let Some(assembly) = plan.assembly() {
        reporter.status("Assembled", assembly);
    }
    for tag in &plan.tags {
        let why = if plan.is_exact(&tag.tag) {
            "exact version tag"
        } else {
            "alias: the highest stable version in its range"
        };
        reporter.status("Tag", format!("{tag} ({why})"));
    }
    for held in &plan.tags_held {
        reporter.status("Hold", format!("{} (owned by {})", held.tag, held.by));
    }
    reporter.status("Fingerprint", &plan.fingerprint);
    reporter.status(
        "Context",
        format!(
            "{} ({} files)",
            plan.context.display(),
            plan.context_files.len()
        ),
    );
    for (key, value) in &plan.labels {
        reporter.detail(format!("       label {key}={value}"));
    }
    reporter.detail(&plan.dockerfile);
}

/// The [`crate::publish::Step::Record`] done: how many releases went into which file.
pub fn recorded(recorded: &crate::publish::Recorded, reporter: &Reporter) {
    reporter.status(
        "Recorded",
        format!(
            "{} in {}",
            releases_count(recorded.count),
            crate::diagnostic::display(&recorded.path)
        ),
    );
}

/// "1 release", "2 releases".
fn releases_count(count: usize) -> String {
    format!("{count} release{}", if count == 1 { "" } else { "s" })
}

/// What `publish --dry-run` would do: the plan, then every step and why. Nothing on stdout in
/// human form (no digest: nothing was pushed); one `plan` line with the steps in JSON.
pub fn dry_run(
    plan: &crate::plan::Plan,
    decision: &crate::publish::Decision,
    json: bool,
    reporter: &Reporter,
) -> Result<(), Error> {
    use crate::publish::{Action, Step};
    let (verb, why) = match &decision.action {
        Action::Build => (
            if plan.is_assembled() {
                "assemble"
            } else {
                "build"
            },
            "the version is not in the registry yet".to_string(),
        ),
        Action::Overwrite { references } => {
            let shown: Vec<String> = references.iter().map(ToString::to_string).collect();
            ("overwrite", format!("--force over {}", shown.join(", ")))
        }
        Action::Unchanged { tag, digest } => (
            "skip the build",
            format!("`{}` already holds this input ({digest})", tag.tag),
        ),
    };
    if json {
        #[derive(serde::Serialize)]
        struct DryRun<'a> {
            #[serde(flatten)]
            plan: &'a crate::plan::Plan,
            dry_run: bool,
            action: &'a str,
            steps: Vec<&'a Step>,
        }
        return json_line(
            "plan",
            &DryRun {
                plan,
                dry_run: true,
                action: verb,
                // The build is the `action`; `steps` lists what happens to each tag, then
                // the signature when a key is configured.
                steps: decision
                    .steps
                    .iter()
                    .filter(|s| !matches!(s, Step::Build))
                    .collect(),
            },
        );
    }
    self::plan(plan, reporter);
    reporter.status("Would", format!("{verb}: {why}"));
    for step in &decision.steps {
        match step {
            Step::Build => {}
            Step::Smoke { request } => reporter.status(
                "Would run",
                format!(
                    "`{}` on the built image as a vantage6 node does, before any push",
                    request.method
                ),
            ),
            Step::PushExact { tag } => reporter.status("Would push", tag.to_string()),
            Step::CompleteExact { tag, from } | Step::PointAlias { tag, from } => {
                reporter.status("Would point", format!("{tag} at {from}"))
            }
            Step::Unchanged { tag, .. } => reporter.status("Unchanged", tag.to_string()),
            Step::HoldAlias { tag, by } => {
                reporter.status("Would hold", format!("{tag} (owned by {by})"))
            }
            Step::Sign {
                reference,
                digest,
                key,
                format,
            } => {
                let what = match digest {
                    Some(digest) => format!("{}@{digest}", reference.image),
                    None => format!("the digest pushed as {reference}"),
                };
                let layouts: Vec<String> =
                    format.layouts().iter().map(ToString::to_string).collect();
                reporter.status(
                    "Would sign",
                    format!(
                        "{what} with {} ({}; unless a valid signature by the key is there)",
                        crate::diagnostic::display(&key.path),
                        layouts.join(" and ")
                    ),
                )
            }
            Step::WriteStore { path } => reporter.status(
                "Would write",
                format!(
                    "{} (the algorithm store's submission, with the digest)",
                    crate::diagnostic::display(path)
                ),
            ),
            Step::SubmitStore { endpoints } => reporter.status(
                "Would submit",
                format!(
                    "the release to the algorithm store at {} ({})",
                    endpoints.store,
                    endpoints.login_place()
                ),
            ),
            Step::Record { path, releases } => reporter.status(
                "Would record",
                format!(
                    "{} in {}",
                    releases_count(releases.len()),
                    crate::diagnostic::display(path)
                ),
            ),
        }
    }
    reporter.note("dry run: nothing was built or pushed");
    Ok(())
}

/// A finished publish: a status line on stderr, and `IMAGE@DIGEST` (or one `published` JSON
/// line) on stdout, the last line a CI job reads.
pub fn published(
    published: &crate::publish::Published,
    json: bool,
    reporter: &Reporter,
) -> Result<(), Error> {
    let unchanged = if published.skipped_unchanged {
        " (unchanged)"
    } else {
        ""
    };
    reporter.status(
        "Published",
        format!("{}@{}{unchanged}", published.image, published.digest),
    );
    if json {
        json_line("published", published)
    } else {
        stdout(&format!("{}@{}\n", published.image, published.digest))
    }
}

/// `Resolved IMAGE:TAG -> DIGEST` when a tag was given to `sign` or `verify`: what is signed
/// or verified is the digest, and the user sees which.
pub fn resolved(
    reference: &crate::oci::reference::ImageRef,
    digest: &crate::oci::reference::Digest,
    reporter: &Reporter,
) {
    if reference.digest.is_none() {
        let tag = reference.tag.as_deref().unwrap_or("latest");
        reporter.status("Resolved", format!("{}:{tag} -> {digest}", reference.name));
    }
}

/// A signature written (or found already there, for `publish`).
pub fn signed(
    image: &crate::oci::reference::ImageName,
    digest: &crate::oci::reference::Digest,
    placed: &crate::sign::Placed,
    key: &crate::sign::KeyId,
    reporter: &Reporter,
) {
    let (verb, how) = if placed.added {
        ("Signed", "added to")
    } else {
        ("Signed", "already in")
    };
    reporter.status(
        verb,
        format!(
            "{image}@{digest} with key {key} ({}, {how} {})",
            placed.layout, placed.location
        ),
    );
}

/// A verified image: what was checked, on stderr.
pub fn verified(
    image: &crate::oci::reference::ImageName,
    verified: &crate::sign::Verified,
    key: &crate::sign::KeyId,
    reporter: &Reporter,
) {
    let layouts: Vec<String> = verified.layouts.iter().map(ToString::to_string).collect();
    let count = match verified.count {
        1 => "1 valid signature".to_string(),
        n => format!("{n} valid signatures"),
    };
    reporter.status(
        "Verified",
        format!(
            "{image}@{}: {count} by key {key} ({})",
            verified.digest,
            layouts.join(", ")
        ),
    );
}

/// Shows a publish's progress: build and push progress lines, status lines for each step.
pub struct PublishProgress {
    reporter: Reporter,
    current: std::sync::Mutex<Option<Progress>>,
    /// Progress lines may be drawn: only one algorithm is at work.
    bars: bool,
}

impl PublishProgress {
    /// Progress for `reporter`'s verbosity and terminal.
    pub fn new(reporter: &Reporter) -> Self {
        PublishProgress {
            reporter: *reporter,
            current: std::sync::Mutex::new(None),
            bars: true,
        }
    }

    /// Progress for each of `count` algorithms published `jobs` at a time: when several
    /// work at once, plain status lines (each naming its image), never progress lines that
    /// would draw over each other.
    pub fn for_members(reporter: &Reporter, count: usize, jobs: usize) -> Vec<Self> {
        let bars = count <= 1 || jobs <= 1;
        (0..count)
            .map(|_| PublishProgress {
                bars,
                ..PublishProgress::new(reporter)
            })
            .collect()
    }

    fn with_current(&self, f: impl FnOnce(&mut Option<Progress>)) {
        // A poisoned lock only means an earlier event panicked; progress is best effort.
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut current);
    }
}

impl crate::publish::Observer for PublishProgress {
    fn event(&self, event: crate::publish::Event<'_>) {
        use crate::publish::Event;
        let reporter = &self.reporter;
        match event {
            Event::Warning(message) => reporter.warn(message),
            Event::InsecureEngine { endpoint } => reporter.warn(format!(
                "--allow-insecure-engine: the registry credentials go to the Docker engine at {endpoint} in clear text"
            )),
            Event::Overwriting {
                references,
                dry_run,
            } => {
                let verb = if dry_run {
                    "would OVERWRITE"
                } else {
                    "OVERWRITING"
                };
                let shown: Vec<String> = references.iter().map(ToString::to_string).collect();
                reporter.warn(format!(
                    "--force: {verb} the published version tag(s) {}; nodes that pull the old image by tag will get a different one",
                    shown.join(", ")
                ))
            }
            Event::Retry(message) => reporter.detail(format!("      Retry {message}")),
            Event::Smoke(event) => {
                crate::run::RunObserver::event(&RunProgress::new(reporter), event)
            }
            Event::BuildStarted { plan, assembled } => self.with_current(|c| {
                *c = Some(Progress::new(
                    reporter,
                    if assembled { "Assembling" } else { "Building" },
                    &format!("{} {}", plan.name, plan.version),
                    self.bars,
                ))
            }),
            Event::Assembling { platform } => reporter.detail(format!("  Assembling {platform}")),
            Event::Build(event) => self.with_current(|c| {
                if let Some(progress) = c {
                    progress.build_event(event);
                }
            }),
            Event::Built { tag, image_id } => {
                let hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
                let short = &hex[..hex.len().min(12)];
                let what = tag.to_string();
                self.with_current(|c| match c.take() {
                    Some(progress) => progress.finish("Built", format!("{what} ({short})")),
                    None => reporter.status("Built", format!("{what} ({short})")),
                })
            }
            Event::PushStarted { tag } => self.with_current(|c| {
                *c = Some(Progress::new(
                    reporter,
                    "Pushing",
                    &tag.to_string(),
                    self.bars,
                ))
            }),
            Event::Push(event) => self.with_current(|c| {
                if let Some(progress) = c {
                    progress.push_event(event);
                }
            }),
            Event::Pushed { tag } => self.with_current(|c| match c.take() {
                Some(progress) => progress.finish("Pushed", tag.to_string()),
                None => reporter.status("Pushed", tag.to_string()),
            }),
            Event::Held { tag, by } => reporter.status(
                "Held",
                format!("{tag} (owned by {by}, published meanwhile)"),
            ),
            Event::Repaired { tag, by } => reporter.status(
                "Repaired",
                format!("{tag} -> {by} (a higher version published meanwhile)"),
            ),
            Event::Pointed { tag, digest } => {
                reporter.status("Tagged", format!("{tag} -> {digest}"))
            }
            Event::Unchanged { tag, digest } => reporter.status(
                "Unchanged",
                format!("{tag} already holds this input ({digest})"),
            ),
            Event::Signed {
                image,
                digest,
                placed,
                key,
            } => signed(image, digest, placed, key, reporter),
            Event::Submitted {
                submitted: done,
                endpoints,
                image,
            } => submitted(done, endpoints, image, reporter),
            Event::WroteStore { path } => reporter.status(
                "Wrote",
                format!(
                    "{} (the algorithm store's submission)",
                    crate::diagnostic::display(path)
                ),
            ),
        }
    }
}

/// What the algorithm store holds after `store submit`.
pub fn submitted(
    submitted: &crate::store::submit::Submitted,
    endpoints: &crate::store::submit::Endpoints,
    image: &str,
    reporter: &Reporter,
) {
    let (verb, to) = match submitted.unchanged {
        true => ("Unchanged", "in"),
        false => ("Submitted", "to"),
    };
    reporter.status(
        verb,
        format!(
            "{image} {to} {} as algorithm {} ({})",
            endpoints.store, submitted.id, submitted.status
        ),
    );
}

/// The retries a registry client made (`cargo v6 sign`, `verify`), as `publish` shows them:
/// with `-v`.
pub fn retries(registry: &crate::registry::Registry, reporter: &Reporter) {
    for retry in registry.take_retries() {
        reporter.detail(format!("      Retry {retry}"));
    }
}
