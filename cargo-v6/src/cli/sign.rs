//! `cargo v6 sign`: sign an image that is in a registry, by digest.

use std::path::PathBuf;

use crate::error::Error;
use crate::oci::reference::ImageRef;
use crate::plan::{Plan, RegistryTags};
use crate::registry::Registry;
use crate::report::Reporter;
use crate::sign::{self, Format, Password, SigningKey};

use super::{VersionArgs, WorkspaceArgs};

/// Sign an image in its registry, by digest, in cosign's format.
///
/// Always by digest: a tag is resolved to the digest it points at now, and that digest is what
/// is signed (and printed). Signatures already there are kept; this one is added. The key's password is read from
/// COSIGN_PASSWORD when it is set, else asked for on the terminal.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 sign ghcr.io/org/algo@sha256:5f0c... --key cosign.key
  cargo v6 sign ghcr.io/org/algo:1.2.0 --key cosign.key     signs the digest 1.2.0 points at
  cargo v6 sign IMAGE@DIGEST --key cosign.key --signature-format both
  cargo v6 sign --key cosign.key      this algorithm's current version, as published
  cargo v6 sign --workspace --key cosign.key   every member's current version")]
pub struct Args {
    #[command(flatten)]
    subjects: SubjectArgs,
    /// The private key (cosign.key, from `cargo v6 key generate` or cosign).
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    /// Where the signature goes: `sig`, the `sha256-<hex>.sig` tag every cosign version and
    /// policy engine reads; `bundle`, a Sigstore bundle attached as an OCI referrer, cosign
    /// 3's default; or `both`.
    #[arg(long, value_name = "FORMAT", default_value = "sig", value_parser = parse_format)]
    signature_format: Format,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// An image `sign` or `verify` works on: the one given, or an algorithm's current version.
pub(super) struct Subject {
    /// The algorithm, or the image as given.
    pub(super) name: String,
    /// The image.
    pub(super) reference: ImageRef,
    /// Its registry speaks plain HTTP (`--insecure`, or the manifest's `publish.insecure`).
    pub(super) insecure: bool,
}

/// What `sign` and `verify` work on: IMAGE, or the selected algorithms' current versions.
#[derive(Debug, clap::Args)]
pub(super) struct SubjectArgs {
    /// The image: REGISTRY/REPOSITORY@sha256:DIGEST, or :TAG (resolved to its digest)
    /// [default: the selected algorithms' current versions, as published].
    #[arg(value_name = "IMAGE", conflicts_with_all = ["workspace", "packages", "exclude", "manifest_path", "set_version"])]
    image: Option<String>,
    #[command(flatten)]
    members: WorkspaceArgs,
    #[command(flatten)]
    version: VersionArgs,
}

impl SubjectArgs {
    /// The workspace around the current directory (or `--manifest-path`).
    pub(super) fn workspace(&self) -> Result<crate::workspace::Workspace, Error> {
        self.members.load()
    }

    /// `manifest`'s inputs at `version`, as the image was published.
    pub(super) fn inputs_at(
        &self,
        manifest: &crate::manifest::Manifest,
        version: &str,
    ) -> Result<crate::plan::Inputs, Error> {
        Ok(crate::plan::Inputs::read_shared(
            manifest,
            Some(version),
            &self.version.git,
        )?)
    }

    /// IMAGE if given, else the exact version tag of each selected algorithm's current
    /// version (what `publish` pushed for it).
    pub(super) fn subjects(&self, registry: &RegistryArgs) -> Result<Vec<Subject>, Error> {
        if let Some(image) = &self.image {
            return Ok(vec![Subject {
                name: image.clone(),
                reference: parse_image(image)?,
                insecure: registry.insecure,
            }]);
        }
        let workspace = self.members.load()?;
        workspace
            .select(&self.members.selection())?
            .into_iter()
            .map(|manifest| {
                let inputs = self.version.inputs(manifest)?;
                let plan = Plan::new(manifest, inputs, RegistryTags::offline())?;
                let exact = plan.primary_tag();
                Ok(Subject {
                    name: manifest.name.clone(),
                    reference: ImageRef {
                        name: exact.image.clone(),
                        tag: Some(exact.tag.as_str().to_string()),
                        digest: None,
                    },
                    insecure: registry.insecure || manifest.publish.insecure,
                })
            })
            .collect()
    }
}

/// How to reach the image's registry, for `sign` and `verify`.
#[derive(Debug, clap::Args)]
pub(super) struct RegistryArgs {
    /// Speak plain HTTP to the registry (loopback registries always are).
    #[arg(long)]
    insecure: bool,
}

impl Subject {
    /// A client for the image's registry with the credentials found for it.
    pub(super) fn client(&self) -> Result<Registry, Error> {
        let domain = self.reference.name.domain();
        let credentials = crate::credentials::resolve(domain)?;
        Ok(Registry::new(domain, credentials, self.insecure)?)
    }
}

pub(super) fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
}

/// Parses the IMAGE argument; wrong input is exit 2.
pub(super) fn parse_image(text: &str) -> Result<ImageRef, Error> {
    ImageRef::parse(text).map_err(|e| {
        Error::input(
            format!("invalid image reference `{text}`: {e}"),
            Some("write REGISTRY/REPOSITORY@sha256:DIGEST or REGISTRY/REPOSITORY:TAG".to_string()),
        )
    })
}

/// The digest `reference` names (a tag resolved through `registry`), said on stderr: sign and
/// verify always work on a digest, never on a tag.
pub(super) async fn resolved(
    registry: &crate::registry::Registry,
    reference: &ImageRef,
    reporter: &Reporter,
) -> Result<crate::oci::reference::Digest, Error> {
    let digest = sign::resolve(registry, reference).await?;
    crate::report::resolved(reference, &digest, reporter);
    Ok(digest)
}

/// Runs `cargo v6 sign`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let subjects = args.subjects.subjects(&args.registry)?;
    // The key first: a wrong password fails before anything is asked of the registry.
    let password = Password::obtain(false)?;
    let key = SigningKey::load(&args.key, &password)?;
    drop(password);
    let runtime = super::runtime()?;
    super::each_member(
        &subjects,
        |s| &s.name,
        false,
        reporter,
        |subject| {
            let reference = &subject.reference;
            let registry = subject.client()?;
            runtime.block_on(async {
                let digest = resolved(&registry, reference, reporter).await?;
                let signed = sign::Subject {
                    registry: &registry,
                    image: &reference.name,
                    digest: &digest,
                };
                for &layout in args.signature_format.layouts() {
                    let placed = sign::sign(signed, &key, layout).await?;
                    crate::report::signed(
                        &reference.name,
                        &digest,
                        &placed,
                        key.public().id(),
                        reporter,
                    );
                }
                crate::report::retries(&registry, reporter);
                crate::report::stdout(&format!("{}@{digest}\n", reference.name))
            })
        },
    )
}
