//! `cargo v6 publish`: check, build, push, tag, and print the digest.

use std::path::PathBuf;

use crate::error::Error;
use crate::publish::{self, Algorithm, Options, Outcome, PublishError, preflight};
use crate::record;
use crate::report::{self, PublishProgress, Reporter};

use super::{Failures, FormatArgs, MessageFormat, VersionArgs, WorkspaceArgs};
use crate::release_tag;

/// Build the image, push its tags, and print `IMAGE@sha256:...` (the reference nodes pin).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 publish --dry-run          every check, and what would be pushed, without pushing
  cargo v6 publish                    build, push, and print IMAGE@sha256:...
  cargo v6 publish --message-format json
  cargo v6 publish --workspace -j 2   every algorithm of the workspace, two at a time
  cargo v6 publish -p summary         one member of the workspace
  cargo v6 publish --from-tag         in CI on a tag push: the algorithm the tag names
  cargo v6 publish --from-tag summary-v1.2.0
  V6_REGISTRY_USERNAME=me V6_REGISTRY_PASSWORD=... cargo v6 publish   credentials for CI
  cargo v6 publish --sign-key ../keys/cosign.key   also sign the release (cosign's format)
  cargo v6 publish --smoke partial_sum --kwargs '{\"column\": \"a\"}' --data default=test/data.csv
                                      run the built image as a node does before pushing")]
pub struct Args {
    #[command(flatten)]
    manifest: WorkspaceArgs,
    #[command(flatten)]
    version: VersionArgs,
    #[command(flatten)]
    platforms: super::PlatformArgs,
    /// Publish the algorithm this release tag names, at the tag's version [default TAG: the
    /// CI's tag, from CI_COMMIT_TAG, GITHUB_REF or GITHUB_REF_NAME].
    #[arg(long, value_name = "TAG", num_args = 0..=1, conflicts_with_all = ["set_version", "workspace", "exclude"])]
    from_tag: Option<Option<String>>,
    /// Publish up to N algorithms at once [default: the number of CPUs].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Run every check and show what would be pushed; build and push nothing.
    #[arg(long)]
    dry_run: bool,
    /// Overwrite a published version tag that holds a different image.
    #[arg(long)]
    force: bool,
    /// Publish from a work tree with uncommitted changes.
    #[arg(long)]
    allow_dirty: bool,
    /// Give up when the registry, the engine or a push makes no progress for this long [default: v6.toml's
    /// `stall-timeout`, else 120].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    stall_timeout: Option<u64>,
    /// Send the registry credentials to a Docker engine reached over plain TCP at anything but
    /// a loopback IP address (DOCKER_HOST=tcp://... without TLS; a host name, even `localhost`,
    /// counts as remote), where they may cross the network in clear text.
    #[arg(long)]
    allow_insecure_engine: bool,
    /// Before pushing anything, run the built image as a vantage6 node runs it, calling this
    /// (partial) function with the task options below; a failure pushes nothing.
    #[arg(long, value_name = "METHOD")]
    smoke: Option<String>,
    /// Submit the release to the algorithm store of `[store] store-url` at the end, as `[store]
    /// submit = true` does (credentials: V6_SERVER_USERNAME and V6_SERVER_PASSWORD, or
    /// V6_SERVER_TOKEN).
    #[arg(long)]
    submit: bool,
    #[command(flatten)]
    task: super::run::TaskArgs,
    /// Sign the release with this private key (cosign.key) [default: v6.toml's `sign.key`;
    /// none: not signed]. Its password: COSIGN_PASSWORD, else asked for on the terminal.
    #[arg(long, value_name = "PATH")]
    sign_key: Option<PathBuf>,
    /// Where the signature goes: `sig`, `bundle` or `both` [default: v6.toml's `sign.format`,
    /// else `sig`]; see `cargo v6 sign --help`.
    #[arg(long, value_name = "FORMAT", value_parser = super::sign::parse_format)]
    signature_format: Option<crate::sign::Format>,
    #[command(flatten)]
    pub(super) format: FormatArgs,
}

/// Runs `cargo v6 publish`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let workspace = args.manifest.load()?;
    let json = args.format.message_format == MessageFormat::Json;
    let (members, release_tag) = match &args.from_tag {
        Some(given) => {
            let tag = release_tag::resolve(given.as_deref(), |name| std::env::var(name).ok())?;
            // The tag names the member; `-p` only narrows where it is looked for.
            let candidates = match args.manifest.packages.is_empty() {
                true => workspace.members.iter().collect(),
                false => workspace.select(&args.manifest.selection())?,
            };
            (vec![release_tag::member(&candidates, &tag)?], Some(tag))
        }
        None => (workspace.select(&args.manifest.selection())?, None),
    };
    let overridden = args.platforms.apply(&members);
    let members: Vec<&crate::manifest::Manifest> = overridden.iter().collect();
    // The smoke run's task, read when one algorithm is selected (exit 2 on bad input).
    let smoke = match &args.smoke {
        Some(method) if members.len() == 1 => {
            Some(args.task.request(method, members[0].vantage6.clone())?)
        }
        _ => None,
    };
    let record_path = workspace.root_dir().join(record::FILE_NAME);
    // The problems of the publish as a whole, all at once, before any algorithm's.
    preflight::publish(&preflight::Asked {
        selected: members.len(),
        smoke: args.smoke.is_some(),
        request: smoke.as_ref(),
        task_given: args.task.given(),
        record: &record_path,
    })
    .map_err(|problems| Error::from(PublishError::Preflight(problems)))?;
    let options = Options {
        force: args.force,
        allow_dirty: args.allow_dirty,
        dry_run: args.dry_run,
        stall_timeout: args.stall_timeout.map(std::time::Duration::from_secs),
        allow_insecure_engine: args.allow_insecure_engine,
        smoke,
        submit: args.submit,
        sign_key: args.sign_key,
        signature_format: args.signature_format,
        jobs: args.jobs.map_or_else(super::default_jobs, usize::from),
    };
    // Local input first, for every member: a wrong version or context is that member's
    // failure, before any network call.
    let progress = PublishProgress::for_members(reporter, members.len(), options.jobs);
    let mut results: Vec<(usize, Result<Outcome, Error>)> = Vec::new();
    let (mut prepared, mut algorithms) = (Vec::new(), Vec::new());
    for (i, manifest) in members.iter().enumerate() {
        let inputs = match &release_tag {
            Some(tag) => args.version.inputs_at_tag(manifest, tag),
            None => args.version.inputs(manifest),
        };
        match inputs {
            Ok(inputs) => {
                prepared.push(i);
                algorithms.push(Algorithm {
                    manifest,
                    inputs,
                    release_tag: release_tag.as_deref(),
                    observer: &progress[i],
                });
            }
            Err(e) => results.push((i, Err(e))),
        }
    }
    let publication =
        super::runtime()?.block_on(publish::publish(algorithms, &options, &record_path));
    results.extend(
        prepared.into_iter().zip(
            publication
                .outcomes
                .into_iter()
                .map(|o| o.map_err(Error::from)),
        ),
    );
    results.sort_by_key(|(i, _)| *i);
    let mut failures = Failures::default();
    let mut summary: Vec<(&str, String)> = Vec::new();
    for (i, result) in results {
        let manifest = members[i];
        match result {
            Ok(Outcome::DryRun { plan, decision }) => {
                report::dry_run(&plan, &decision, json, reporter)?;
                let steps = decision.steps.len();
                summary.push((
                    "Would run",
                    format!("{} {}: {steps} steps", plan.name, plan.version),
                ));
            }
            Ok(Outcome::Published(published)) => {
                report::published(&published, json, reporter)?;
                summary.push((
                    if published.skipped_unchanged {
                        "Unchanged"
                    } else {
                        "Published"
                    },
                    format!(
                        "{} {}: {}@{}",
                        published.algorithm, published.version, published.image, published.digest
                    ),
                ));
            }
            Err(error) if members.len() == 1 => return Err(error),
            Err(error) => {
                let message = error.to_string();
                let first_line = message.lines().next().unwrap_or_default();
                summary.push(("Failed", format!("{}: {first_line}", manifest.name)));
                failures.report(&manifest.name, error, json, reporter)?;
            }
        }
    }
    // Every member's outcome together, after the details.
    if members.len() > 1 {
        for (verb, line) in summary {
            reporter.status(verb, line);
        }
    }
    if let Some(recorded) = publication.recorded {
        report::recorded(&recorded?, reporter);
    }
    failures.into_result(members.len())
}
