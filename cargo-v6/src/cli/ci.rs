//! `cargo v6 ci github|gitlab`: write the CI file that publishes on a release tag.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::ci::{self, Member, Provider};
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
  cargo v6 ci github -p summary     in a workspace: only `summary`'s tags trigger it")]
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
    let text = ci::render(provider, &members, env!("CARGO_PKG_VERSION"))?;
    if output.stdout {
        return crate::report::stdout(&text);
    }
    let path = output
        .output
        .unwrap_or_else(|| root.join(provider.default_path()));
    let replaced = write_new(&path, &text, output.force)?;
    reporter.status(
        if replaced { "Replaced" } else { "Created" },
        crate::diagnostic::display(&path),
    );
    for step in ci::next_steps(provider, &members) {
        reporter.note(step);
    }
    Ok(())
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
    std::fs::write(path, text).map_err(write_error)?;
    Ok(exists)
}
