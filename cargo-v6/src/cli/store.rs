//! `cargo v6 store`: the vantage6 algorithm store's JSON from v6.toml, and back.

use std::path::PathBuf;

use clap::Subcommand;

use crate::error::Error;
use crate::oci::reference::Digest;
use crate::plan::{Plan, RegistryTags};
use crate::report::Reporter;
use crate::store::{self, StoreError};

use super::{ManifestArgs, VersionArgs};

/// Write the algorithm store's submission from v6.toml's [store], or import an existing
/// algorithm_store.json into it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 store export -o algorithm_store.json   image pinned to the digest in the registry
  cargo v6 store export --offline                 without a digest (nothing read from the registry)
  cargo v6 store import algorithm_store.json      move an existing file into v6.toml
  cargo v6 store import algorithm_store.json --dry-run
  cargo v6 store submit --dry-run                 show the request for the published version
  V6_SERVER_USERNAME=me V6_SERVER_PASSWORD=... cargo v6 store submit")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Export(ExportArgs),
    Import(ImportArgs),
    Submit(SubmitArgs),
}

/// Submit this version to the algorithm store of `[store] store-url`, logged in at `[store]
/// server-url` with V6_SERVER_USERNAME and V6_SERVER_PASSWORD (V6_SERVER_MFA_CODE when the
/// server asks for a two-factor code), or V6_SERVER_TOKEN. An algorithm the store has with
/// this image and digest is left as it is.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 store submit --dry-run
  V6_SERVER_USERNAME=me V6_SERVER_PASSWORD=... cargo v6 store submit
  cargo v6 store submit --set-version 1.2.0 --digest sha256:<64 hex digits>")]
struct SubmitArgs {
    #[command(flatten)]
    manifest: ManifestArgs,
    #[command(flatten)]
    version: VersionArgs,
    /// The image's digest (`sha256:...`), instead of reading it from the registry.
    #[arg(long, value_name = "DIGEST")]
    digest: Option<String>,
    /// Show the request (without its token) and send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Write the store's JSON for this version: `image` is the exact version tag, with the digest
/// the registry has for it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 store export -o algorithm_store.json
  cargo v6 store export --set-version 1.2.0 --digest sha256:<64 hex digits>
  cargo v6 store export --offline")]
struct ExportArgs {
    #[command(flatten)]
    manifest: ManifestArgs,
    #[command(flatten)]
    version: VersionArgs,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The image's digest (`sha256:...`), instead of reading it from the registry.
    #[arg(long, value_name = "DIGEST", conflicts_with = "offline")]
    digest: Option<String>,
    /// Do not read the registry: `image` carries the tag only.
    #[arg(long)]
    offline: bool,
}

/// Turn an algorithm_store.json into v6.toml's [store], keeping the rest of v6.toml and its
/// comments as they are; says what it changed for the store's schema.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 store import algorithm_store.json
  cargo v6 store import ../old/algorithm_store.json --dry-run")]
struct ImportArgs {
    /// The algorithm_store.json to import.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    manifest: ManifestArgs,
    /// Print the new v6.toml instead of writing it.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `cargo v6 store`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    match args.command {
        Command::Export(args) => export(args, reporter),
        Command::Import(args) => import(args, reporter),
        Command::Submit(args) => submit(args, reporter),
    }
}

fn submit(args: SubmitArgs, reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    let store = store::load(&manifest)?.ok_or_else(|| StoreError::NoSection {
        path: crate::diagnostic::display(&manifest.path),
    })?;
    let Some(endpoints) = store.endpoints.clone() else {
        return Err(Error::input(
            format!(
                "[store] of {} names no store to submit to",
                crate::diagnostic::display(&manifest.path)
            ),
            Some("add `store-url` and `server-url`: the store's and the vantage6 server's API, e.g. \"https://store.example.org/api\"".to_string()),
        ));
    };
    let image = image_of(&manifest, &args.version)?;
    let digest = digest_of(&manifest, &image, args.digest.as_deref())?;
    let export = store::export::document(&manifest, &store, &image, Some(&digest));
    for note in &export.notes {
        reporter.note(note);
    }
    if args.dry_run {
        reporter.status(
            "Would submit",
            format!(
                "POST {}/algorithm (Authorization: Bearer <the token>{})",
                endpoints.store.trim_end_matches('/'),
                endpoints
                    .server
                    .as_ref()
                    .map(|s| format!(", Server-Url: {s}"))
                    .unwrap_or_default()
            ),
        );
        return crate::report::stdout(&export.json);
    }
    let login = store::submit::Login::from_env().map_err(submit_error)?;
    let submitted = super::runtime()?
        .block_on(store::submit::submit(&endpoints, &login, &export, &digest))
        .map_err(|e| match e.placed(&store, &manifest) {
            Ok(refused) => Error::Store(refused),
            Err(other) => submit_error(other),
        })?;
    crate::report::submitted(&submitted, &endpoints, &export.image, reporter);
    Ok(())
}

fn submit_error(error: store::submit::SubmitError) -> Error {
    Error::Failed {
        help: error.help(),
        message: error.to_string(),
    }
}

/// The exact version tag of this version (it does not depend on the registry's tags).
fn image_of(
    manifest: &crate::manifest::Manifest,
    version: &VersionArgs,
) -> Result<crate::oci::reference::TaggedImage, Error> {
    let plan = Plan::new(manifest, version.inputs(manifest)?, RegistryTags::offline())?;
    Ok(plan.primary_tag().clone())
}

/// `--digest`, or the digest the registry has for `image`.
fn digest_of(
    manifest: &crate::manifest::Manifest,
    image: &crate::oci::reference::TaggedImage,
    given: Option<&str>,
) -> Result<Digest, Error> {
    if let Some(digest) = given {
        return Digest::parse(digest).map_err(|e| {
            Error::input(
                format!("`--digest {digest}`: {e}"),
                Some("a digest is `sha256:` and 64 lowercase hex digits".to_string()),
            )
        });
    }
    super::runtime()?
        .block_on(async {
            crate::publish::Target::for_manifest(manifest, None)?
                .digest(image)
                .await
        })
        .map_err(|e| Error::Failed {
            message: format!("cannot read the digest of {image}: {e}"),
            help: Some(
                "publish the version first, or pass `--digest` (`store export --offline` writes the JSON without one)".to_string(),
            ),
        })
}

fn export(args: ExportArgs, reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    let store = store::load(&manifest)?.ok_or_else(|| StoreError::NoSection {
        path: crate::diagnostic::display(&manifest.path),
    })?;
    let image = image_of(&manifest, &args.version)?;
    let digest = match args.offline {
        true => None,
        false => Some(digest_of(&manifest, &image, args.digest.as_deref())?),
    };
    let export = store::export::document(&manifest, &store, &image, digest.as_ref());
    for note in &export.notes {
        reporter.note(note);
    }
    super::write_output(args.output.as_deref(), &export.json)?;
    if let Some(path) = &args.output {
        reporter.status("Wrote", crate::diagnostic::display(path));
    }
    Ok(())
}

fn import(args: ImportArgs, reporter: &Reporter) -> Result<(), Error> {
    let manifest = args.manifest.load()?;
    let shown = crate::diagnostic::display(&args.file);
    let json = crate::files::read_regular_text(&args.file, crate::files::SMALL_FILE_MAX).map_err(
        |source| StoreError::Read {
            path: shown.clone(),
            source,
        },
    )?;
    let imported = store::import::import(&manifest, &json, &shown)?;
    for note in &imported.notes {
        reporter.note(format!("{shown}: {note}"));
    }
    let target = crate::diagnostic::display(&manifest.path);
    if args.dry_run {
        crate::report::stdout(&imported.manifest)?;
    } else {
        crate::files::write_whole(&manifest.path, imported.manifest.as_bytes()).map_err(
            |source| Error::Write {
                path: target.clone(),
                source,
            },
        )?;
        reporter.status("Imported", format!("{shown} into [store] of {target}"));
    }
    imported.verdict.map_err(Error::from)
}
