//! `cargo v6 sign`: sign an image that is in a registry, by digest.

use std::path::PathBuf;

use crate::error::Error;
use crate::reference::ImageRef;
use crate::registry::Registry;
use crate::report::Reporter;
use crate::sign::{self, Format, Password, SigningKey, Subject};

/// Sign an image in its registry, by digest, in cosign's format.
///
/// Always by digest: a tag is resolved to the digest it points at now, and that digest is what
/// is signed (and printed). Signatures already there are kept; this one is added. The key's password is read from
/// COSIGN_PASSWORD when it is set, else asked for on the terminal.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 sign ghcr.io/org/algo@sha256:5f0c... --key cosign.key
  cargo v6 sign ghcr.io/org/algo:1.2.0 --key cosign.key     signs the digest 1.2.0 points at
  cargo v6 sign IMAGE@DIGEST --key cosign.key --signature-format both")]
pub struct Args {
    /// The image: REGISTRY/REPOSITORY@sha256:DIGEST, or :TAG (resolved to its digest).
    #[arg(value_name = "IMAGE")]
    image: String,
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

/// How to reach the image's registry, for `sign` and `verify`.
#[derive(Debug, clap::Args)]
pub(super) struct RegistryArgs {
    /// Speak plain HTTP to the registry (loopback registries always are).
    #[arg(long)]
    insecure: bool,
}

impl RegistryArgs {
    /// A client for `reference`'s registry with the credentials found for it.
    pub(super) fn client(&self, reference: &ImageRef) -> Result<Registry, Error> {
        let domain = reference.name.domain();
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
) -> Result<crate::reference::Digest, Error> {
    let digest = sign::resolve(registry, reference).await?;
    crate::report::resolved(reference, &digest, reporter);
    Ok(digest)
}

/// Runs `cargo v6 sign`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let reference = parse_image(&args.image)?;
    // The key first: a wrong password fails before anything is asked of the registry.
    let password = Password::obtain(false)?;
    let key = SigningKey::load(&args.key, &password)?;
    drop(password);
    let registry = args.registry.client(&reference)?;
    super::runtime()?.block_on(async {
        let digest = resolved(&registry, &reference, reporter).await?;
        let subject = Subject {
            registry: &registry,
            image: &reference.name,
            digest: &digest,
        };
        for &layout in args.signature_format.layouts() {
            let placed = sign::sign(subject, &key, layout).await?;
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
}
