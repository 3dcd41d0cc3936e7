//! `cargo v6 publish`: check, build, push, tag, and print the digest.

use crate::error::Error;
use crate::plan::{Plan, RegistryTags, RegistryView};
use crate::publish::{self, Target};
use crate::release::{self, Action, ReleaseError, TagChange, TagStep};
use crate::report::Reporter;

use super::{FormatArgs, ManifestArgs, MessageFormat, VersionArgs};

/// Build the image, push its tags, and print `IMAGE@sha256:...` (the reference nodes pin).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 publish --dry-run          every check, and what would be pushed, without pushing
  cargo v6 publish                    build, push, and print IMAGE@sha256:...
  cargo v6 publish --message-format json
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
    #[command(flatten)]
    pub(super) format: FormatArgs,
}

/// Runs `cargo v6 publish`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    super::runtime()?.block_on(async {
        // Local input first: a wrong version or context is exit 2 before any network call.
        let inputs = args.version.inputs(&manifest)?;
        let (registry, credentials) = super::registry_for(&manifest)?;
        let existing = RegistryTags {
            tags: registry.list_tags(manifest.image.path()).await?,
            view: RegistryView::Read,
        };
        let version = inputs.version.0.clone();
        let git = inputs.git.clone();
        let plan = Plan::new(&manifest, inputs, existing)?;
        for warning in &plan.warnings {
            reporter.warn(warning);
        }
        let problems = release::check_work_tree(
            git.as_ref(),
            &version,
            manifest.wrapper,
            &manifest.publish.release_tag_prefix,
            args.allow_dirty,
        );
        if !problems.is_empty() {
            return Err(ReleaseError::NotReleasable { problems }.into());
        }
        let target = Target {
            image: &manifest.image,
            registry: &registry,
            credentials: credentials.as_ref(),
        };
        let survey = publish::survey(&target, &plan).await?;
        let action = release::decide(&plan.fingerprint, &survey.exact, args.force);
        if let Action::Refuse { reference, digest } = &action {
            return Err(ReleaseError::Refused {
                reference: reference.clone(),
                digest: digest.clone(),
            }
            .into());
        }
        if let Action::Overwrite { references } = &action {
            let verb = if args.dry_run { "would OVERWRITE" } else { "OVERWRITING" };
            reporter.warn(format!(
                "--force: {verb} the published version tag(s) {}; nodes that pull the old image by tag will get a different one",
                references.join(", ")
            ));
        }
        // Preflight: a build needs the engine; find out now, in a dry run too.
        let engine = match action {
            Action::Build | Action::Overwrite { .. } => Some(crate::engine::Engine::connect().await?),
            _ => None,
        };
        let planned = release::PlannedTags {
            tags: &plan.tags,
            exact: &plan.exact_tags,
            held: &plan.tags_held,
        };
        let steps = release::tag_steps(planned, &action, |reference| {
            survey.current.get(reference).cloned().flatten()
        });
        if args.dry_run {
            return dry_run(&plan, &action, &steps, args.format.message_format, reporter);
        }
        let outcome =
            publish::execute(&target, engine.as_ref(), &plan, &action, &steps, reporter).await?;
        reporter.status(
            "Published",
            format!("{}@{}{}", outcome.image, outcome.digest, if outcome.skipped_unchanged { " (unchanged)" } else { "" }),
        );
        match args.format.message_format {
            MessageFormat::Json => crate::report::json_line("published", &outcome),
            MessageFormat::Human => crate::report::stdout(&format!("{}@{}\n", outcome.image, outcome.digest)),
        }
    })
}

/// Prints what would happen to each tag, and why. No digest on stdout: nothing was pushed.
fn dry_run(
    plan: &Plan,
    action: &Action,
    steps: &[TagStep],
    format: MessageFormat,
    reporter: &Reporter,
) -> Result<(), Error> {
    let (verb, why) = match action {
        Action::Build => (
            "build",
            "the version is not in the registry yet".to_string(),
        ),
        Action::Overwrite { references } => (
            "overwrite",
            format!("--force over {}", references.join(", ")),
        ),
        Action::Unchanged { tag, digest } => (
            "skip the build",
            format!("`{tag}` already holds this input ({digest})"),
        ),
        Action::Refuse { .. } => unreachable!("refusals return before the dry run"),
    };
    match format {
        MessageFormat::Json => {
            #[derive(serde::Serialize)]
            struct DryRun<'a> {
                #[serde(flatten)]
                plan: &'a Plan,
                dry_run: bool,
                action: &'a str,
                steps: &'a [TagStep],
            }
            crate::report::json_line(
                "plan",
                &DryRun {
                    plan,
                    dry_run: true,
                    action: verb,
                    steps,
                },
            )
        }
        MessageFormat::Human => {
            super::plan::print_human(plan, reporter);
            reporter.status("Would", format!("{verb}: {why}"));
            for step in steps {
                let (verb, what) = match &step.change {
                    TagChange::Push => ("Would push", step.reference.clone()),
                    TagChange::Point { from } => {
                        ("Would point", format!("{} at {from}", step.reference))
                    }
                    TagChange::Unchanged => ("Unchanged", step.reference.clone()),
                    TagChange::Held { by } => {
                        ("Would hold", format!("{} (owned by {by})", step.reference))
                    }
                };
                reporter.status(verb, what);
            }
            reporter.note("dry run: nothing was built or pushed");
            Ok(())
        }
    }
}
