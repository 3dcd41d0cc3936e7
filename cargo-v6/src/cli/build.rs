//! `cargo v6 build`: build and tag the image locally; push nothing.

use crate::error::Error;
use crate::plan::{Plan, RegistryTags};
use crate::report::Reporter;

use super::{VersionArgs, WorkspaceArgs};

/// Build the image and tag it locally with every planned tag.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 build
  cargo v6 build --set-version 1.0.0-dev.1 -v
  cargo v6 build --workspace          every algorithm of the workspace, one after another")]
pub struct Args {
    #[command(flatten)]
    manifest: WorkspaceArgs,
    #[command(flatten)]
    version: VersionArgs,
}

/// Runs `cargo v6 build`; prints each exact reference on stdout.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let workspace = args.manifest.load()?;
    let members = workspace.select(&args.manifest.selection())?;
    let runtime = super::runtime()?;
    super::each_member(
        &members,
        |m| &m.name,
        false,
        reporter,
        |manifest| {
            let inputs = args.version.inputs(manifest)?;
            let plan = Plan::new(manifest, inputs, RegistryTags::offline())?;
            for warning in &plan.warnings {
                reporter.warn(warning);
            }
            if let Some(assembly) = plan.assembly() {
                reporter.note(format!(
                    "`build` makes this machine's image with the engine; `publish` assembles the release {assembly}, with another digest"
                ));
            }
            runtime.block_on(async {
                let engine = crate::engine::Engine::connect().await?;
                let progress = crate::report::PublishProgress::new(reporter);
                crate::publish::build(&engine, &plan, &plan.tags, &progress).await?;
                crate::report::stdout(&format!("{}\n", plan.primary_tag()))
            })
        },
    )
}
