//! `cargo v6 plan`: what would be built and pushed, without doing it.

use crate::error::Error;
use crate::manifest::Manifest;
use crate::plan::{Plan, RegistryTags, RegistryView};
use crate::record::{self, Record};
use crate::report::Reporter;

use super::{FormatArgs, MessageFormat, VersionArgs, WorkspaceArgs};

/// Show the image, tags, labels, Dockerfile and context that a publish would use.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 plan
  cargo v6 plan --set-version 1.3.0-rc.1 --offline
  cargo v6 plan --message-format json | jq .tags
  cargo v6 plan --workspace --offline     every algorithm of the workspace")]
pub struct Args {
    #[command(flatten)]
    manifest: WorkspaceArgs,
    #[command(flatten)]
    version: VersionArgs,
    #[command(flatten)]
    platforms: super::PlatformArgs,
    /// Do not read the registry's tags; plan as if it were empty.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    pub(super) format: FormatArgs,
}

/// Runs `cargo v6 plan`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let workspace = args.manifest.load()?;
    let members = workspace.select(&args.manifest.selection())?;
    let overridden = args.platforms.apply(&members);
    let members: Vec<&Manifest> = overridden.iter().collect();
    let json = args.format.message_format == MessageFormat::Json;
    let record_path = workspace.root_dir().join(record::FILE_NAME);
    // Only compared with the registry: offline, or unreadable, it is not needed to plan.
    let record = match args.offline {
        true => Record::default(),
        false => Record::load(&record_path).unwrap_or_else(|e| {
            reporter.warn(format!("{e}; not compared with the registry"));
            Record::default()
        }),
    };
    let runtime = super::runtime()?;
    super::each_member(
        &members,
        |m| &m.name,
        json,
        reporter,
        |manifest| {
            let inputs = args.version.inputs(manifest)?;
            let registry = match args.offline {
                true => RegistryTags::offline(),
                false => runtime.block_on(read_registry(manifest, &record, &record_path, reporter)),
            };
            let plan = Plan::new(manifest, inputs, registry)?;
            for warning in &plan.warnings {
                reporter.warn(warning);
            }
            if let Some(step) = &plan.unused_dockerfile {
                reporter.warn(format!(
                    "the project's own `Dockerfile` is not the one built, and the rendered one lacks its {step} (see `cargo v6 dockerfile`); set `build.dockerfile = \"Dockerfile\"` to build yours instead"
                ));
            }
            match json {
                true => crate::report::json_line("plan", &plan),
                false => {
                    crate::report::plan(&plan, reporter);
                    Ok(())
                }
            }
        },
    )
}

/// The registry's tags for `manifest`'s image (as if empty, with a warning, when it cannot be
/// read), and a warning for each release in the record that the registry no longer holds as
/// recorded.
async fn read_registry(
    manifest: &Manifest,
    record: &Record,
    record_path: &std::path::Path,
    reporter: &Reporter,
) -> RegistryTags {
    let target = match crate::publish::Target::for_manifest(manifest, None) {
        Ok(target) => target,
        Err(e) => return unreachable(manifest, &e.to_string(), reporter),
    };
    let tags = match target.tags(&manifest.image).await {
        Ok(tags) => tags,
        Err(e) => return unreachable(manifest, &e.to_string(), reporter),
    };
    let shown = crate::diagnostic::display(record_path);
    for release in record.of(&manifest.name) {
        let Some((tagged, recorded)) = release.checkable() else {
            reporter.warn(format!(
                "{shown} records version {} of `{}` with an image or digest that is none; it is kept as written and not checked",
                release.version, release.algorithm
            ));
            continue;
        };
        let held = match tags.iter().any(|t| t == tagged.tag.as_str()) {
            true => target.digest(tagged).await.map(Some),
            false => Ok(None),
        };
        match held {
            Ok(Some(digest)) if digest == *recorded => {}
            Ok(Some(digest)) => reporter.warn(format!(
                "{shown} records {tagged} as {recorded}, but the registry's tag now holds {digest}"
            )),
            Ok(None) => reporter.warn(format!(
                "{shown} records {tagged} as {recorded}, but the registry has no such tag"
            )),
            Err(e) => reporter.warn(format!("cannot check {tagged} against {shown}: {e}")),
        }
    }
    RegistryTags {
        tags,
        view: RegistryView::Read,
    }
}

fn unreachable(manifest: &Manifest, error: &str, reporter: &Reporter) -> RegistryTags {
    reporter.warn(format!(
        "cannot read the tags of {}: {error}; planning as if the registry were empty (--offline skips this)",
        manifest.image
    ));
    RegistryTags {
        tags: Vec::new(),
        view: RegistryView::Unreachable,
    }
}
