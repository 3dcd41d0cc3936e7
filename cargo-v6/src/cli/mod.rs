//! The command line: one module per subcommand, each only wiring the pipeline's modules
//! together (load manifest, plan, check, execute, report).

mod build;
mod ci;
mod context;
mod dockerfile;
mod doctor;
mod init;
mod key;
mod plan;
mod publish;
mod run;
mod sign;
mod store;
mod verify;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::manifest::Manifest;
use crate::report::{Reporter, Verbosity};
use crate::workspace::{Selection, Workspace};

const EXAMPLES: &str = "\
Examples:
  cargo v6 init --image ghcr.io/you/my-algorithm   write v6.toml for this project
  cargo v6 publish                                 build, push, print IMAGE@sha256:...
  cargo v6 publish --dry-run                       every check, nothing pushed
  cargo v6 plan                                    show what would be built and pushed
  cargo v6 plan --offline --message-format json    the plan as JSON, without the registry
  cargo v6 dockerfile -o Dockerfile.rendered       the Dockerfile that will be built
  cargo v6 context --list                          the files the build will see
  cargo v6 run partial_sum --kwargs '{\"column\": \"a\"}' --data default=test/data.csv
                                                   build, and run it as a vantage6 node does
  cargo v6 key generate                            cosign.key and cosign.pub, to sign with
  cargo v6 verify IMAGE@DIGEST --key cosign.pub    is it signed by this key?
  cargo v6 ci github                               a workflow that publishes on a release tag
  cargo v6 store export -o algorithm_store.json    the algorithm store's JSON, with the digest";

/// Package and publish vantage6 algorithms as Docker images, from one v6.toml.
#[derive(Debug, Parser)]
#[command(
    name = "cargo-v6",
    bin_name = "cargo v6",
    version,
    after_help = EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print errors only.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more detail (build output, registry requests).
    #[arg(short, long, global = true)]
    verbose: bool,
}

impl Cli {
    /// Whether machine output was asked for: errors are then also reported as JSON on stdout.
    pub fn json_output(&self) -> bool {
        let format = match &self.command {
            Command::Plan(args) => args.format.message_format,
            Command::Publish(args) => args.format.message_format,
            Command::Run(args) => args.format.message_format,
            _ => MessageFormat::Human,
        };
        format == MessageFormat::Json
    }

    /// How much the user asked to see.
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (_, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    Publish(publish::Args),
    Build(build::Args),
    Run(run::Args),
    Plan(plan::Args),
    Dockerfile(dockerfile::Args),
    Context(context::Args),
    Init(init::Args),
    Doctor(doctor::Args),
    Key(key::Args),
    Sign(sign::Args),
    Verify(verify::Args),
    Ci(ci::Args),
    Store(store::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli, reporter: &Reporter) -> Result<(), Error> {
    match cli.command {
        Command::Publish(args) => publish::run(args, reporter),
        Command::Build(args) => build::run(args, reporter),
        Command::Plan(args) => plan::run(args, reporter),
        Command::Dockerfile(args) => dockerfile::run(args, reporter),
        Command::Context(args) => context::run(args, reporter),
        Command::Init(args) => init::run(args, reporter),
        Command::Doctor(args) => doctor::run(args, reporter),
        Command::Run(args) => run::run(args, reporter),
        Command::Key(args) => key::run(args, reporter),
        Command::Sign(args) => sign::run(args, reporter),
        Command::Verify(args) => verify::run(args, reporter),
        Command::Ci(args) => ci::run(args, reporter),
        Command::Store(args) => store::run(args, reporter),
    }
}

/// `--manifest-path` and `-p`, as cargo has them, for the commands that act on one algorithm.
#[derive(Debug, clap::Args)]
struct ManifestArgs {
    /// Path to v6.toml (default: searched upward from the current directory).
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// The workspace member to act on (default: the one the current directory is in).
    #[arg(short, long, value_name = "NAME")]
    package: Option<String>,
}

impl ManifestArgs {
    /// The one algorithm meant: the manifest, the `-p` member, or the member the current
    /// directory is in; at a workspace's root with several members, an error listing them.
    fn load(&self) -> Result<Manifest, Error> {
        let workspace = load_workspace(self.manifest_path.as_deref())?;
        let selection = Selection {
            packages: self.package.iter().cloned().collect(),
            ..Selection::default()
        };
        let mut chosen = workspace.select(&selection)?;
        match chosen.len() {
            1 => Ok(chosen.remove(0).clone()),
            _ => {
                let names: Vec<String> = chosen.iter().map(|m| format!("`{}`", m.name)).collect();
                Err(Error::input(
                    format!(
                        "this command acts on one algorithm, and the workspace has {}",
                        chosen.len()
                    ),
                    Some(format!(
                        "pass `-p NAME` (one of {}), or run it in the algorithm's directory",
                        names.join(", ")
                    )),
                ))
            }
        }
    }
}

/// `--manifest-path`, `--workspace`, `-p` and `--exclude`, as cargo has them, for the
/// commands that act on several algorithms at once.
#[derive(Debug, clap::Args)]
struct WorkspaceArgs {
    /// Path to v6.toml (default: searched upward from the current directory).
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Every member of the workspace (the default at its root).
    #[arg(long)]
    workspace: bool,
    /// Only this member (repeatable; default: the one the current directory is in).
    #[arg(short, long = "package", value_name = "NAME")]
    packages: Vec<String>,
    /// Leave this member out of `--workspace` (repeatable).
    #[arg(
        long,
        value_name = "NAME",
        requires = "workspace",
        conflicts_with = "packages"
    )]
    exclude: Vec<String>,
}

impl WorkspaceArgs {
    fn selection(&self) -> Selection {
        Selection {
            all: self.workspace,
            packages: self.packages.clone(),
            exclude: self.exclude.clone(),
        }
    }

    fn load(&self) -> Result<Workspace, Error> {
        load_workspace(self.manifest_path.as_deref())
    }
}

/// Runs `act` on each item (a member, or what a member released) in turn; one failure does
/// not stop the others. With one item, its error is the command's; with several, see
/// [`Failures`].
fn each_member<T>(
    items: &[T],
    name: impl Fn(&T) -> &str,
    json: bool,
    reporter: &Reporter,
    mut act: impl FnMut(&T) -> Result<(), Error>,
) -> Result<(), Error> {
    if let [one] = items {
        return act(one);
    }
    let mut failures = Failures::default();
    for item in items {
        if let Err(error) = act(item) {
            failures.report(name(item), error, json, reporter)?;
        }
    }
    failures.into_result(items.len())
}

/// The members of a workspace that failed: each is reported as it happens (with the member's
/// name, and as a JSON line when `json`), and the command then fails naming them all.
#[derive(Debug, Default)]
struct Failures {
    names: Vec<String>,
    /// Some failure is not wrong input: the exit code is 1, not 2.
    not_input: bool,
}

impl Failures {
    /// Reports `error` of member `name`; a closed stdout ends the command.
    fn report(
        &mut self,
        name: &str,
        error: Error,
        json: bool,
        reporter: &Reporter,
    ) -> Result<(), Error> {
        if matches!(error, Error::StdoutClosed) {
            return Err(error);
        }
        reporter.error_in(name, &error);
        if json {
            crate::report::member_error_json(name, &error)?;
        }
        self.not_input |= error.exit_code() != 2;
        self.names.push(name.to_string());
        Ok(())
    }

    /// The command's result, out of `total` members.
    fn into_result(self, total: usize) -> Result<(), Error> {
        match self.names.is_empty() {
            true => Ok(()),
            false => Err(Error::Members {
                failed: self.names,
                total,
                exit_code: if self.not_input { 1 } else { 2 },
            }),
        }
    }
}

fn load_workspace(manifest_path: Option<&Path>) -> Result<Workspace, Error> {
    let cwd = current_dir()?;
    Ok(Workspace::load(manifest_path, &cwd)?)
}

/// `--set-version`, for the commands that need the version.
#[derive(Debug, clap::Args)]
struct VersionArgs {
    /// Use this version instead of the one in v6.toml or the project's metadata.
    #[arg(long, value_name = "VERSION")]
    set_version: Option<String>,
    /// The repositories read so far: members of a workspace share their git state.
    #[arg(skip)]
    git: crate::git::Cache,
}

impl VersionArgs {
    /// Reads the version, git state and build context for `manifest`.
    fn inputs(&self, manifest: &Manifest) -> Result<crate::plan::Inputs, Error> {
        Ok(crate::plan::Inputs::read_shared(
            manifest,
            self.set_version.as_deref(),
            &self.git,
        )?)
    }

    /// [`VersionArgs::inputs`] for `publish --from-tag TAG`: when the algorithm takes its
    /// version from release tags, the version is TAG's (HEAD may carry others, such as an
    /// earlier release candidate's); otherwise as usual, for the caller to compare.
    fn inputs_at_tag(&self, manifest: &Manifest, tag: &str) -> Result<crate::plan::Inputs, Error> {
        let Some(version) = manifest
            .publish
            .version_from_tag
            .then(|| crate::release_tag::version_in(manifest, tag))
            .flatten()
        else {
            return self.inputs(manifest);
        };
        let mut inputs =
            crate::plan::Inputs::read_shared(manifest, Some(version.raw()), &self.git)?;
        inputs.version.1 = crate::plan::VersionSource::ReleaseTag(tag.to_string());
        Ok(inputs)
    }
}

/// `--platform`, for the commands that plan: overrides `[build] platforms` of every selected
/// algorithm.
#[derive(Debug, clap::Args)]
struct PlatformArgs {
    /// Assemble the image for these platforms, instead of v6.toml's `[build] platforms`
    /// (repeat it or separate with commas: linux/amd64,linux/arm64).
    #[arg(long = "platform", value_name = "OS/ARCH", value_delimiter = ',', value_parser = parse_platform)]
    platforms: Vec<crate::oci::platform::Platform>,
}

impl PlatformArgs {
    /// `members` with `--platform` applied (as they are without it).
    fn apply(&self, members: &[&Manifest]) -> Vec<Manifest> {
        members
            .iter()
            .map(|member| {
                let mut member = (*member).clone();
                if !self.platforms.is_empty() {
                    // A platform named twice is the same platform.
                    let mut platforms = self.platforms.clone();
                    platforms.sort();
                    platforms.dedup();
                    member.override_platforms(platforms);
                }
                member
            })
            .collect()
    }
}

/// `linux/amd64` or `linux/arm64`; anything else is exit 2 with the platforms there are.
fn parse_platform(text: &str) -> Result<crate::oci::platform::Platform, String> {
    crate::oci::platform::Platform::parse(text)
}

/// `-j`'s default: one per CPU.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `--message-format`, as cargo has it.
#[derive(Debug, clap::Args)]
struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    message_format: MessageFormat,
}

/// The values of `--message-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
enum MessageFormat {
    /// Readable summary on stderr.
    #[default]
    Human,
    /// One JSON object per line on stdout.
    Json,
}

/// The current directory as the shell has it (`$PWD`, through symlinks, when it is this
/// directory), else the real one: a member directory linked into a workspace finds the
/// workspace that links it.
fn current_dir() -> Result<PathBuf, Error> {
    let real = std::env::current_dir().map_err(|e| Error::Failed {
        message: format!("cannot read the current directory: {e}"),
        help: None,
    })?;
    let logical = std::env::var_os("PWD")
        .map(PathBuf::from)
        .filter(|pwd| pwd.is_absolute())
        .filter(|pwd| std::fs::canonicalize(pwd).ok() == std::fs::canonicalize(&real).ok());
    Ok(logical.unwrap_or(real))
}

/// Writes `text` to `path` whole (creating its missing directories, as `-o DIR/FILE` users
/// expect), or to stdout when there is no path.
fn write_output(path: Option<&Path>, text: &str) -> Result<(), Error> {
    let Some(path) = path else {
        return crate::report::stdout(text);
    };
    let write_error = |source| Error::Write {
        path: crate::diagnostic::display(path),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    crate::files::write_whole(path, text.as_bytes()).map_err(write_error)
}

/// The async runtime for the commands that talk to the engine or a registry.
fn runtime() -> Result<Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map(Runtime)
        .map_err(|e| Error::Failed {
            message: format!("cannot start the async runtime: {e}"),
            help: None,
        })
}

/// The async runtime, which ends a command that a signal interrupts cleanly.
struct Runtime(tokio::runtime::Runtime);

impl Runtime {
    /// Runs `future` to its end, or until SIGINT, SIGTERM or SIGHUP (what Ctrl-C, CI runners,
    /// `timeout` and a closed terminal send). Then the future is dropped, which cancels its
    /// requests and removes its temporary folders; what it left in the engine (a run's
    /// container, publish's build tag) is removed, each request bounded in time; and the
    /// process ends by the same signal, as it would have without this, so that the caller
    /// sees how it ended. Afterwards the signals have their default action again (a runtime
    /// made later does not listen for them: no command makes two that leave anything).
    fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.0.block_on(async {
            let signal = {
                let future = std::pin::pin!(future);
                tokio::select! {
                    output = future => {
                        // Outside this, a signal ends the process at once, as without it.
                        default_actions();
                        return output;
                    }
                    signal = terminating_signal() => signal,
                }
            };
            // A second signal during the clean-up ends the process at once.
            default_actions();
            let removed = crate::engine::remove_leftovers().await;
            let mut message = format!("interrupted by {}", signal.name);
            if !removed.is_empty() {
                message = format!("{message}; {}", removed.join("; "));
            }
            Reporter::new(Verbosity::Quiet).error(&Error::Failed {
                message,
                help: None,
            });
            signal.reraise()
        })
    }
}

/// A signal that ends the process.
struct Terminating {
    name: &'static str,
    #[cfg(unix)]
    number: i32,
}

/// The signals that end a command, with their names.
#[cfg(unix)]
const TERMINATING: [(i32, &str); 3] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
];

/// Gives the [`TERMINATING`] signals their default action (ending the process) back.
#[cfg(unix)]
fn default_actions() {
    for (number, _) in TERMINATING {
        // SAFETY: signal(2) with a valid signal number and the default action.
        unsafe {
            libc::signal(number, libc::SIG_DFL);
        }
    }
}

#[cfg(not(unix))]
fn default_actions() {}

impl Terminating {
    /// Ends the process by this signal (its default action is restored by then).
    #[cfg(unix)]
    fn reraise(&self) -> ! {
        // SAFETY: raise(2) with a valid signal number.
        unsafe {
            libc::raise(self.number);
        }
        std::process::exit(128 + self.number)
    }

    /// Ends the process as Ctrl-C does.
    #[cfg(not(unix))]
    fn reraise(&self) -> ! {
        std::process::exit(130)
    }
}

/// The first of SIGINT, SIGTERM and SIGHUP to arrive; never, when none can be listened for.
#[cfg(unix)]
async fn terminating_signal() -> Terminating {
    use tokio::signal::unix::{SignalKind, signal};
    let waits = TERMINATING.into_iter().filter_map(|(number, name)| {
        let mut stream = signal(SignalKind::from_raw(number)).ok()?;
        Some(Box::pin(async move {
            stream.recv().await;
            Terminating { name, number }
        }))
    });
    let waits: Vec<_> = waits.collect();
    if waits.is_empty() {
        return std::future::pending().await;
    }
    futures_util::future::select_all(waits).await.0
}

/// Ctrl-C; never, when it cannot be listened for.
#[cfg(not(unix))]
async fn terminating_signal() -> Terminating {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    Terminating { name: "Ctrl-C" }
}
