//! `cargo v6 publish`: check, build, push, tag, and print the digest.

use std::path::PathBuf;

use crate::error::Error;
use crate::publish::{self, Algorithm, Options, Outcome};
use crate::report::{self, PublishProgress, Reporter};

use super::{FormatArgs, ManifestArgs, MessageFormat, VersionArgs};

/// Build the image, push its tags, and print `IMAGE@sha256:...` (the reference nodes pin).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 publish --dry-run          every check, and what would be pushed, without pushing
  cargo v6 publish                    build, push, and print IMAGE@sha256:...
  cargo v6 publish --message-format json
  V6_REGISTRY_USERNAME=me V6_REGISTRY_PASSWORD=... cargo v6 publish   credentials for CI
  cargo v6 publish --sign-key ../keys/cosign.key   also sign the release (cosign's format)
  cargo v6 publish --smoke partial_sum --kwargs '{\"column\": \"a\"}' --data default=test/data.csv
                                      run the built image as a node does before pushing")]
pub struct Args {
    #[command(flatten)]
    manifest: ManifestArgs,
    #[command(flatten)]
    version: VersionArgs,
    /// Run every check and show what would be pushed; build and push nothing.
    #[arg(long)]
    dry_run: bool,
    /// Overwrite a published version tag that holds a different image.
    #[arg(long)]
    force: bool,
    /// Publish from a work tree with uncommitted changes.
    #[arg(long)]
    allow_dirty: bool,
    /// Give up when the registry or a push makes no progress for this long [default: v6.toml's
    /// `stall-timeout`, else 120].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    stall_timeout: Option<u64>,
    /// Send the registry credentials to a Docker engine reached over plain TCP off this
    /// machine (DOCKER_HOST=tcp://... without TLS), where they cross the network in clear text.
    #[arg(long)]
    allow_insecure_engine: bool,
    /// Before pushing anything, run the built image as a vantage6 node runs it, calling this
    /// (partial) function with the task options below; a failure pushes nothing.
    #[arg(long, value_name = "METHOD")]
    smoke: Option<String>,
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
    let manifest = args.manifest.load()?;
    // Local input first: a wrong version or context is exit 2 before any network call.
    let inputs = args.version.inputs(&manifest)?;
    // The smoke run's task is checked before anything is built (exit 2 on bad input).
    let smoke = match &args.smoke {
        Some(method) => {
            let request = args.task.request(method, manifest.vantage6.clone())?;
            crate::run::check(&request).map_err(super::run::run_error)?;
            Some(request)
        }
        None if args.task.given() => {
            return Err(Error::input(
                "`--kwargs`, `--args`, `--data`, `--env`, `--step`, `--extract` and `--timeout` describe the `--smoke` run",
                Some("add `--smoke METHOD`, or leave them out".to_string()),
            ));
        }
        None => None,
    };
    let options = Options {
        force: args.force,
        allow_dirty: args.allow_dirty,
        dry_run: args.dry_run,
        stall_timeout: args.stall_timeout.map(std::time::Duration::from_secs),
        allow_insecure_engine: args.allow_insecure_engine,
        smoke,
        sign_key: args.sign_key,
        signature_format: args.signature_format,
    };
    let json = args.format.message_format == MessageFormat::Json;
    let progress = PublishProgress::new(reporter);
    let algorithms = vec![Algorithm {
        manifest: &manifest,
        inputs,
    }];
    let outcomes = super::runtime()?.block_on(publish::publish(algorithms, options, &progress));
    for outcome in outcomes {
        match outcome? {
            Outcome::DryRun { plan, decision } => {
                report::dry_run(&plan, &decision, json, reporter)?
            }
            Outcome::Published(published) => report::published(&published, json, reporter)?,
        }
    }
    Ok(())
}
