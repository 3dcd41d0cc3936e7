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
  cargo v6 publish --sign-key ../keys/cosign.key   also sign the release (cosign's format)
  V6_REGISTRY_USERNAME=me V6_REGISTRY_PASSWORD=... cargo v6 publish   credentials for CI")]
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
    let options = Options {
        force: args.force,
        allow_dirty: args.allow_dirty,
        dry_run: args.dry_run,
        stall_timeout: args.stall_timeout.map(std::time::Duration::from_secs),
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
