//! `cargo v6 build`: build and tag the image locally; push nothing.

use crate::error::Error;
use crate::plan::{Inputs, Plan, RegistryTags};
use crate::report::Reporter;

use super::ManifestArgs;

/// Build the image and tag it locally with every planned tag.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 build
  cargo v6 build --set-version 1.0.0-dev.1 -v")]
pub struct Args {
    #[command(flatten)]
    manifest: ManifestArgs,
    /// Use this version instead of the one in v6.toml or the project's metadata.
    #[arg(long, value_name = "VERSION")]
    set_version: Option<String>,
}

/// Runs `cargo v6 build`; prints the exact reference on stdout.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    let inputs = Inputs::read(&manifest, args.set_version.as_deref())?;
    let plan = Plan::new(&manifest, inputs, RegistryTags::offline())?;
    for warning in &plan.warnings {
        reporter.warn(warning);
    }
    super::runtime()?.block_on(async {
        let engine = crate::engine::Engine::connect().await?;
        crate::publish::build(&engine, &plan, &plan.tags, reporter).await?;
        crate::report::stdout(&format!("{}\n", plan.exact_tags[0]))
    })
}
