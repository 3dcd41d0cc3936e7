//! `cargo v6 plan`: what would be built and pushed, without doing it.

use crate::error::Error;
use crate::plan::{Plan, RegistryTags, RegistryView};
use crate::report::Reporter;

use super::{FormatArgs, ManifestArgs, MessageFormat, VersionArgs};

/// Show the image, tags, labels, Dockerfile and context that a publish would use.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 plan
  cargo v6 plan --set-version 1.3.0-rc.1 --offline
  cargo v6 plan --message-format json | jq .tags")]
pub struct Args {
    #[command(flatten)]
    manifest: ManifestArgs,
    #[command(flatten)]
    version: VersionArgs,
    /// Do not read the registry's tags; plan as if it were empty.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    pub(super) format: FormatArgs,
}

/// Runs `cargo v6 plan`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    let inputs = args.version.inputs(&manifest)?;
    let registry = if args.offline {
        RegistryTags::offline()
    } else {
        let tags = super::runtime()?.block_on(async {
            let target = crate::publish::Target::for_manifest(&manifest, None)?;
            target.tags(&manifest.image).await
        });
        match tags {
            Ok(tags) => RegistryTags {
                tags,
                view: RegistryView::Read,
            },
            Err(e) => {
                reporter.warn(format!(
                    "cannot read the tags of {}: {e}; planning as if the registry were empty (--offline skips this)",
                    manifest.image
                ));
                RegistryTags {
                    tags: Vec::new(),
                    view: RegistryView::Unreachable,
                }
            }
        }
    };
    let plan = Plan::new(&manifest, inputs, registry)?;
    for warning in &plan.warnings {
        reporter.warn(warning);
    }
    if plan.unused_dockerfile {
        reporter.warn(
            "the project's own `Dockerfile` is not the one built: cargo v6 builds the Dockerfile it renders (see `cargo v6 dockerfile`); set `build.dockerfile = \"Dockerfile\"` to build yours instead",
        );
    }
    match args.format.message_format {
        MessageFormat::Json => crate::report::json_line("plan", &plan),
        MessageFormat::Human => {
            crate::report::plan(&plan, reporter);
            Ok(())
        }
    }
}
