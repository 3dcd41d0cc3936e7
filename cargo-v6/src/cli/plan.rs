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
            let (registry, _) = super::registry_for(&manifest)?;
            Ok::<_, Error>(registry.list_tags(manifest.image.path()).await?)
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
    match args.format.message_format {
        MessageFormat::Json => crate::report::json_line("plan", &plan),
        MessageFormat::Human => {
            print_human(&plan, reporter);
            Ok(())
        }
    }
}

/// The plan as status lines on stderr (also used by `publish --dry-run`).
pub(super) fn print_human(plan: &Plan, reporter: &Reporter) {
    let source = match &plan.version_source {
        crate::plan::VersionSource::CommandLine => "--set-version".to_string(),
        crate::plan::VersionSource::Manifest => "v6.toml".to_string(),
        crate::plan::VersionSource::File(file) => file.clone(),
    };
    let stability = if plan.stable { "" } else { ", pre-release" };
    reporter.status(
        "Planning",
        format!("{} {} (from {source}{stability})", plan.name, plan.version),
    );
    reporter.status("Image", &plan.image);
    reporter.status("Base", &plan.base_image);
    for tag in &plan.tags {
        let why = if plan.exact_tags.contains(tag) {
            "exact version tag"
        } else {
            "alias: the highest stable version in its range"
        };
        reporter.status("Tag", format!("{tag} ({why})"));
    }
    for held in &plan.tags_held {
        reporter.status("Hold", format!("{} (owned by {})", held.tag, held.by));
    }
    reporter.status("Fingerprint", &plan.fingerprint);
    reporter.status(
        "Context",
        format!(
            "{} ({} files)",
            plan.context.display(),
            plan.context_files.len()
        ),
    );
    for (key, value) in &plan.labels {
        reporter.detail(format!("       label {key}={value}"));
    }
    reporter.detail(&plan.dockerfile);
}
