//! `cargo v6 verify`: does an image carry a valid signature by this key?

use std::path::PathBuf;

use crate::error::Error;
use crate::report::Reporter;
use crate::sign::{self, PublicKey, Subject};

use super::sign::{RegistryArgs, SubjectArgs};

/// Verify that an image has a valid cosign signature by a public key.
///
/// Valid means: for exactly its digest (a tag is resolved first) and its repository, in the
/// `.sig` layout or as a bundle referrer. Exit 0 and print IMAGE@DIGEST only then; otherwise
/// exit 1 saying why (no signature, another key, another digest, a changed payload).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 verify ghcr.io/org/algo@sha256:5f0c... --key cosign.pub
  cargo v6 verify ghcr.io/org/algo:1.2.0 --key cosign.pub   verifies the digest 1.2.0 points at
  cargo v6 verify --workspace --key cosign.pub   every member's current version
The same check with cosign: cosign verify --key cosign.pub --insecure-ignore-tlog=true IMAGE")]
pub struct Args {
    #[command(flatten)]
    subjects: SubjectArgs,
    /// The public key (cosign.pub).
    #[arg(long, value_name = "PATH")]
    key: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs `cargo v6 verify`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let subjects = args.subjects.subjects(&args.registry)?;
    let key = PublicKey::load(&args.key)?;
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
                let digest = super::sign::resolved(&registry, reference, reporter).await?;
                let checked = Subject {
                    registry: &registry,
                    image: &reference.name,
                    digest: &digest,
                };
                let verified = sign::verify(checked, &key).await;
                crate::report::retries(&registry, reporter);
                let verified = verified?;
                crate::report::verified(&reference.name, &verified, key.id(), reporter);
                crate::report::stdout(&format!("{}@{}\n", reference.name, verified.digest))
            })
        },
    )
}
