//! `cargo v6 ci github|gitlab`: write the CI file that publishes on a release tag.

use std::collections::BTreeMap;
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
    // GitHub and GitLab read the file at the repository's top, and the job runs there.
    let (top, dir) = repository_top(&root);
    let selection = output.manifest.selection();
    let chosen = match selection.packages.is_empty() && selection.exclude.is_empty() {
        true => workspace.members.iter().collect(),
        false => workspace.select(&selection)?,
    };
    let chosen_prefixes: BTreeMap<String, crate::vantage6::Wrapper> = chosen
        .iter()
        .map(|m| (m.publish.release_tag_prefix.clone(), m.wrapper))
        .collect();
    let members = chosen
        .into_iter()
        .map(|manifest| Member::from_manifest(manifest, &root))
        .collect::<Result<Vec<_>, _>>()?;
    let install =
        Install::from_options(output.install_git.as_deref(), output.install_rev.as_deref())?;
    let text = ci::render(
        provider,
        &members,
        &install,
        env!("CARGO_PKG_VERSION"),
        &dir,
    )?;
    let path = output
        .output
        .unwrap_or_else(|| top.join(provider.default_path()));
    let workflows = match provider {
        Provider::GitHub => other_workflows(&top.join(".github/workflows"), &path),
        Provider::GitLab => Vec::new(),
    };
    for warning in ci::warnings(provider, &members, &install, &workflows) {
        reporter.warn(warning);
    }
    if output.stdout {
        return crate::report::stdout(&text);
    }
    let replaced = write_new(provider, &path, &text, output.force)?;
    reporter.status(
        if replaced { "Replaced" } else { "Created" },
        crate::diagnostic::display(&path),
    );
    reporter.note(format!(
        "the job installs cargo-v6 from {} at commit {}: that commit must be reachable there; to upgrade, regenerate with `--force --install-rev <newer commit>`",
        install.git(),
        install.rev()
    ));
    // Each prefix's latest release tag, for the example of the next.
    let tags = crate::git::tags(&top);
    let releases: BTreeMap<String, (String, String)> = chosen_prefixes
        .into_iter()
        .filter_map(|(prefix, wrapper)| {
            let next = crate::plan::inputs::next_release(&tags, &prefix, wrapper)?;
            Some((prefix, (next.latest, next.next)))
        })
        .collect();
    for step in ci::next_steps(provider, &members, &releases) {
        reporter.note(step);
    }
    Ok(())
}

/// The top of the git repository `root` (the project's directory, as given) is in, as a path
/// from `root` (`root/../..`, so that it shows as the user would type it), and `root` below it
/// (`/`-separated; empty at the top, outside a repository, or when it cannot be told).
fn repository_top(root: &Path) -> (PathBuf, String) {
    let here = (root.to_path_buf(), String::new());
    let Some(git) = crate::git::read(root, root) else {
        return here;
    };
    let dot = |p: &Path| match p.as_os_str().is_empty() {
        true => PathBuf::from("."),
        false => p.to_path_buf(),
    };
    let (Ok(real_root), Ok(real_top)) = (
        std::fs::canonicalize(dot(root)),
        std::fs::canonicalize(&git.top),
    ) else {
        return here;
    };
    let Some(below) = real_root
        .strip_prefix(&real_top)
        .ok()
        .and_then(Path::to_str)
        .filter(|b| !b.is_empty())
    else {
        return here;
    };
    let top = below
        .split(std::path::MAIN_SEPARATOR)
        .fold(root.to_path_buf(), |up, _| up.join(".."));
    (top, below.replace(std::path::MAIN_SEPARATOR, "/"))
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

/// The first line of every file `ci` writes: what tells a file of its own from the user's.
const GENERATED_MARK: &str = "# Generated by `cargo v6 ci ";

/// Writes `text` to `path`, creating its directory; an existing file only with `force`.
/// Returns whether a file was replaced.
fn write_new(provider: Provider, path: &Path, text: &str, force: bool) -> Result<bool, Error> {
    let shown = crate::diagnostic::display(path);
    let exists = std::fs::symlink_metadata(path).is_ok();
    if exists && !force {
        let generated = crate::files::read_regular_text(path, crate::files::SMALL_FILE_MAX)
            .is_ok_and(|old| old.starts_with(GENERATED_MARK));
        let help = match (generated, provider) {
            (true, _) => "pass `--force` to overwrite it, or `--stdout` to compare".to_string(),
            // A project's own pipeline: one file for all its jobs.
            (false, Provider::GitLab) => format!(
                "it is not one cargo v6 wrote: keep it, write the job to a file of its own with `cargo v6 ci gitlab -o ci/v6-publish.yml` and add `include: [{{local: ci/v6-publish.yml}}]` to `{shown}`; `--force` would replace the whole file"
            ),
            (false, Provider::GitHub) => "it is not one cargo v6 wrote: `-o .github/workflows/OTHER.yml` writes the workflow beside it; `--force` would replace it".to_string(),
        };
        return Err(Error::Failed {
            message: format!("`{shown}` already exists"),
            help: Some(help),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What tells the files `ci` writes from the user's own is in both templates.
    #[test]
    fn every_generated_file_starts_with_the_mark() {
        let member = Member {
            name: "a".into(),
            release_tag_prefix: "v".into(),
            registry: "ghcr.io".into(),
            image: "ghcr.io/o/a".into(),
            sign_key: None,
            store_output: None,
            submits: false,
        };
        let install = Install::new(
            "https://example.org/cargo-v6.git",
            "0123456789abcdef0123456789abcdef01234567",
        )
        .unwrap();
        for provider in [Provider::GitHub, Provider::GitLab] {
            let text = ci::render(
                provider,
                std::slice::from_ref(&member),
                &install,
                "0.1.0",
                "",
            )
            .unwrap();
            assert!(text.starts_with(GENERATED_MARK), "{text}");
        }
    }
}
