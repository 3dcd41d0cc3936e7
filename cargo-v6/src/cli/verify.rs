//! `cargo v6 verify`: does an image carry a valid signature by this key, and (`--rebuild`)
//! does the work tree assemble to its digest?

use std::path::PathBuf;

use crate::error::Error;
use crate::report::Reporter;
use crate::sign::{self, PublicKey, Subject};

use super::sign::{RegistryArgs, SubjectArgs};

/// Verify that an image has a valid cosign signature by a public key, or (`--rebuild`) that
/// the work tree assembles to its digest.
///
/// Valid means: for exactly its digest (a tag is resolved first) and its repository, in the
/// `.sig` layout or as a bundle referrer. Exit 0 and print IMAGE@DIGEST only then; otherwise
/// exit 1 saying why (no signature, another key, another digest, a changed payload).
///
/// `--rebuild` assembles the image again from the work tree (an image of `[build]
/// platforms`), with the version, base digest and time the published image records, and
/// compares digests: the same only if the work tree holds what was published.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  cargo v6 verify ghcr.io/org/algo@sha256:5f0c... --key cosign.pub
  cargo v6 verify ghcr.io/org/algo:1.2.0 --key cosign.pub   verifies the digest 1.2.0 points at
  cargo v6 verify --workspace --key cosign.pub   every member's current version
  git checkout v1.2.0 && cargo v6 verify --rebuild ghcr.io/org/algo@sha256:5f0c...
The same check with cosign: cosign verify --key cosign.pub --insecure-ignore-tlog=true IMAGE")]
pub struct Args {
    #[command(flatten)]
    subjects: SubjectArgs,
    /// The public key (cosign.pub).
    #[arg(long, value_name = "PATH", required_unless_present = "rebuild")]
    key: Option<PathBuf>,
    /// Assemble the image again from the work tree and check that the digest is the same.
    #[arg(long)]
    rebuild: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Runs `cargo v6 verify`.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let subjects = args.subjects.subjects(&args.registry)?;
    let key = args.key.as_deref().map(PublicKey::load).transpose()?;
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
                if args.rebuild {
                    rebuild(&args, &registry, reference, &digest, reporter).await?;
                }
                let Some(key) = &key else {
                    return crate::report::stdout(&format!("{}@{digest}\n", reference.name));
                };
                let checked = Subject {
                    registry: &registry,
                    image: &reference.name,
                    digest: &digest,
                };
                let verified = sign::verify(checked, key).await;
                crate::report::retries(&registry, reporter);
                let verified = verified?;
                crate::report::verified(&reference.name, &verified, key.id(), reporter);
                crate::report::stdout(&format!("{}@{}\n", reference.name, verified.digest))
            })
        },
    )
}

/// Assembles `reference`'s algorithm again from the work tree and fails unless the digest is
/// `digest`.
async fn rebuild(
    args: &Args,
    registry: &crate::registry::Registry,
    reference: &crate::oci::reference::ImageRef,
    digest: &crate::oci::reference::Digest,
    reporter: &Reporter,
) -> Result<(), Error> {
    use crate::assemble::{self, rebuild};
    let published = rebuild::published(registry, &reference.name, digest).await?;
    let workspace = args.subjects.workspace()?;
    let manifest = workspace
        .members()
        .iter()
        .find(|m| m.image == reference.name)
        .ok_or_else(|| {
            Error::input(
                format!("no algorithm of this work tree publishes {}", reference.name),
                Some("run it in a clone of the repository the image was published from, at its release".to_string()),
            )
        })?;
    let inputs = args.subjects.inputs_at(manifest, &published.version)?;
    let plan = crate::plan::Plan::new(manifest, inputs, crate::plan::RegistryTags::offline())?;
    let base_registry =
        assemble::base_registry(&plan.base_image, manifest, manifest.publish.stall_timeout)?;
    let uv = assemble::uv_program();
    let tools = assemble::Tools {
        base_registry: &base_registry,
        uv: &uv,
        cache: assemble::cache_dir().map(|d| d.join("layers")),
        epoch: None,
        base_digest: None,
    };
    let verdict = rebuild::rebuild(&plan, &tools, registry, published).await?;
    rebuilt(&reference.name, &verdict, reporter);
    match verdict.matches() {
        true => Ok(()),
        false => Err(Error::Failed {
            message: format!(
                "the work tree assembles to {}, not {}: {} differ",
                verdict.rebuilt,
                verdict.published.digest,
                verdict.differences.join(", ")
            ),
            help: Some("check out the commit the image was published from; without a lock (uv.lock, or requirements with hashes) the dependencies are today's newest releases".to_string()),
        }),
    }
}

/// What `verify --rebuild` found: the digests side by side, per platform.
fn rebuilt(
    image: &crate::oci::reference::ImageName,
    verdict: &crate::assemble::rebuild::Verdict,
    reporter: &Reporter,
) {
    let platforms = verdict
        .published
        .platforms
        .iter()
        .zip(&verdict.rebuilt_platforms);
    for (published, rebuilt) in platforms {
        let same = if published == rebuilt {
            "same"
        } else {
            "DIFFERENT"
        };
        reporter.detail(format!(
            "      Rebuilt {rebuilt} ({same}; published {published})"
        ));
    }
    match verdict.matches() {
        true => reporter.status(
            "Reproduced",
            format!("{image}@{} from the work tree", verdict.rebuilt),
        ),
        false => reporter.warn(format!(
            "{image}@{} is not what the work tree assembles to ({})",
            verdict.published.digest, verdict.rebuilt
        )),
    }
}
