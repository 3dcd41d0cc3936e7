//! `cargo v6 ci github|gitlab`: write the CI file that publishes on a release tag.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::ci::{self, Install, Member, Provider};
use crate::error::Error;
use crate::report::Reporter;

use super::WorkspaceArgs;

/// Generate the CI configuration that publishes the image when a release tag is pushed.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 ci github                write .github/workflows/v6-publish.yml
  cargo v6 ci gitlab                write .gitlab-ci.yml
  cargo v6 ci github --stdout       print it instead
  cargo v6 ci github --force        overwrite the file (after changing v6.toml)
  cargo v6 ci github -p summary     in a workspace: only `summary`'s tags trigger it
  cargo v6 ci github --force --install-rev SHA
                                    upgrade: install another commit of cargo-v6")]
pub struct Args {
    #[command(subcommand)]
    provider: ProviderArgs,
}

#[derive(Debug, Subcommand)]
enum ProviderArgs {
    /// Write the GitHub Actions workflow .github/workflows/v6-publish.yml.
    #[command(after_help = "Examples:
  cargo v6 ci github
  cargo v6 ci github --stdout
  cargo v6 ci github --force")]
    Github(Output),
    /// Write the GitLab CI job .gitlab-ci.yml.
    #[command(after_help = "Examples:
  cargo v6 ci gitlab
  cargo v6 ci gitlab -o ci/v6-publish.yml   a file to `include:` from .gitlab-ci.yml")]
    Gitlab(Output),
}

/// Which algorithms, and where the file goes.
#[derive(Debug, clap::Args)]
struct Output {
    /// In a workspace, the job releases every member (as `publish --from-tag` looks among
    /// them all); `-p`/`--exclude` narrow which members' tags trigger it.
    #[command(flatten)]
    manifest: WorkspaceArgs,
    /// Overwrite the file if it exists.
    #[arg(long)]
    force: bool,
    /// Print the file on stdout instead of writing it.
    #[arg(long, conflicts_with_all = ["output", "force"])]
    stdout: bool,
    /// Write to FILE (relative to the current directory) instead of the provider's path in
    /// the project root.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The git repository the job installs cargo-v6 from (https://, ssh:// or user@host:path)
    /// [default: the one this cargo-v6 was built from, when known]
    #[arg(long, value_name = "URL")]
    install_git: Option<String>,
    /// The exact commit of that repository to install (40 hex digits) [default: the commit
    /// this cargo-v6 was built from]
    #[arg(long, value_name = "SHA")]
    install_rev: Option<String>,
}

/// Runs `cargo v6 ci`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let (provider, output) = match args.provider {
        ProviderArgs::Github(output) => (Provider::GitHub, output),
        ProviderArgs::Gitlab(output) => (Provider::GitLab, output),
    };
    let workspace = output.manifest.load()?;
    let root = workspace.root_dir();
    let selection = output.manifest.selection();
    let chosen = match selection.packages.is_empty() && selection.exclude.is_empty() {
        true => workspace.members.iter().collect(),
        false => workspace.select(&selection)?,
    };
    let members = chosen
        .into_iter()
        .map(|manifest| Member::from_manifest(manifest, &root))
        .collect::<Result<Vec<_>, _>>()?;
    let install =
        Install::from_options(output.install_git.as_deref(), output.install_rev.as_deref())?;
    let text = ci::render(provider, &members, &install, env!("CARGO_PKG_VERSION"))?;
    let path = output
        .output
        .unwrap_or_else(|| root.join(provider.default_path()));
    let workflows = match provider {
        Provider::GitHub => other_workflows(&root.join(".github/workflows"), &path),
        Provider::GitLab => Vec::new(),
    };
    for warning in ci::warnings(provider, &members, &workflows) {
        reporter.warn(warning);
    }
    if output.stdout {
        return crate::report::stdout(&text);
    }
    let replaced = write_new(&path, &text, output.force)?;
    reporter.status(
        if replaced { "Replaced" } else { "Created" },
        crate::diagnostic::display(&path),
    );
    reporter.note(format!(
        "the job installs cargo-v6 from {} at commit {}: that commit must be reachable there; to upgrade, regenerate with `--force --install-rev <newer commit>`",
        install.git(),
        install.rev()
    ));
    for step in ci::next_steps(provider, &members) {
        reporter.note(step);
    }
    Ok(())
}

/// The workflows in `dir` (`.github/workflows`) other than `written`, each as its path as
/// shown and its text; unreadable files are left out (GitHub could not read them either).
fn other_workflows(dir: &Path, written: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let written = std::fs::canonicalize(written).ok();
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .filter(|path| written.is_none() || std::fs::canonicalize(path).ok() != written)
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let text = crate::files::read_regular_text(&path, crate::files::SMALL_FILE_MAX).ok()?;
            Some((crate::diagnostic::display(&path), text))
        })
        .collect()
}

/// Writes `text` to `path`, creating its directory; an existing file only with `force`.
/// Returns whether a file was replaced.
fn write_new(path: &Path, text: &str, force: bool) -> Result<bool, Error> {
    let shown = crate::diagnostic::display(path);
    let exists = std::fs::symlink_metadata(path).is_ok();
    if exists && !force {
        return Err(Error::Failed {
            message: format!("`{shown}` already exists"),
            help: Some("pass `--force` to overwrite it, or `--stdout` to compare".to_string()),
        });
    }
    let write_error = |source| Error::Write {
        path: shown.clone(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    crate::files::write_whole(path, text.as_bytes()).map_err(write_error)?;
    Ok(exists)
}
