//! `cargo v6 dockerfile`: the Dockerfile that will be built.

use std::path::PathBuf;

use crate::error::Error;
use crate::report::Reporter;

use super::ManifestArgs;

/// Print the rendered Dockerfile (it is never written into the project unless you ask).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 dockerfile
  cargo v6 dockerfile -o Dockerfile.rendered")]
pub struct Args {
    #[command(flatten)]
    manifest: ManifestArgs,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Runs `cargo v6 dockerfile`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    // The Dockerfile depends on the manifest alone: no version, context or registry needed.
    let rendered = crate::plan::render_dockerfile(&manifest)?;
    super::write_output(args.output.as_deref(), &rendered.dockerfile)?;
    if let Some(path) = &args.output {
        reporter.status("Wrote", crate::diagnostic::display(path));
    }
    Ok(())
}
