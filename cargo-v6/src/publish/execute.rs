//! Executes the decided steps, in order, with one match over them, verifying each write.
//!
//! Order matters for "nothing lost": layers and the manifest are pushed under the exact tags
//! first (the engine uploads every blob before it writes the tag, so an interrupted push leaves
//! no tag on a partial image); aliases are moved only afterwards, by manifest writes that
//! upload nothing.
//!
//! What publish prints is true when another publish runs at the same time:
//! - the image is built under a local tag of its own, and tagged with the exact tag only
//!   right before its push;
//! - each exact tag is read again right before it is written, and after: it must hold this
//!   run's input (its fingerprint), or the run fails naming what is there;
//! - aliases are decided again from the registry's tags right before they are written, and
//!   after writing, an alias that a higher version now owns is pointed at that version, so
//!   that any interleaving ends with every alias on the highest version present.
//!
//! Signing comes last: only a digest that the exact tags are verified to hold (this run's
//! input, still there at the end) is signed, and a valid signature by the key that is already
//! there is kept instead of adding another (an unchanged republish completes a release whose
//! run ended between push and sign).
//!
//! A registry has no compare-and-swap on tags: between the last check and a write, another
//! writer can still slip in. The checks after each write catch that and say so (exit 1); the
//! README's "Guarantees" section says what remains.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::{BuildRequest, Engine};
use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::reference::{Digest, Tag, TaggedImage};
use crate::registry::ManifestInfo;
use crate::run::{RunEvent, RunObserver, RunRequest};
use crate::sign::{self, Format, Placed, SigningKey, Subject};

use super::decide::{Action, Decision};
use super::step::Step;
use super::survey::{self, Survey};
use super::{Event, Observer, PublishError, Published, Target};

/// Builds the plan's image with the engine and tags it locally with `tags`. Returns the image
/// id. Also `cargo v6 build`'s whole job.
pub async fn build(
    engine: &Engine,
    plan: &Plan,
    tags: &[TaggedImage],
    observer: &dyn Observer,
) -> Result<String, PublishError> {
    observer.event(Event::BuildStarted { plan });
    let request = BuildRequest {
        context_dir: &plan.context,
        files: &plan.context_files,
        dockerfile_name: &plan.dockerfile_name,
        dockerfile: &plan.dockerfile,
        tags,
        build_args: &plan.build_args,
        labels: &plan.build_labels,
        network: plan.network.as_deref(),
        platform: plan.platform.as_deref(),
        expected: Some(&plan.file_digests),
    };
    let image_id = engine
        .build(&request, &mut |event| observer.event(Event::Build(&event)))
        .await?;
    observer.event(Event::Built {
        tag: plan.primary_tag(),
        image_id: &image_id,
    });
    Ok(image_id)
}

/// A local tag no other run shares: the build is tagged with it, so that a concurrent build of
/// the same version cannot move the tag between this build and its push.
fn build_tag(plan: &Plan) -> TaggedImage {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let unique = format!("cargo-v6-build-{}-{nanos}", std::process::id());
    let tag = Tag::parse(&unique).unwrap_or_else(|_| plan.primary_tag().tag.clone());
    plan.image.with_tag(&tag)
}

/// What the `Smoke` and `Sign` steps need beyond the plan: the node-style run to make and the
/// key to sign with, when the decision has those steps.
#[derive(Debug, Clone, Copy)]
pub struct StepInputs<'a> {
    /// `--smoke`: the run made on the built image before anything is pushed.
    pub smoke: Option<&'a RunRequest>,
    /// The decrypted signing key.
    pub signer: Option<&'a SigningKey>,
    /// The manifest, whose `[store]` the store file is written from.
    pub manifest: &'a Manifest,
}

/// Runs `decision`'s steps against `target`, then reads the release's digest back from the
/// registry (never from log text); signs it with the key in `inputs` when the decision says so.
/// The local build tag is removed whatever happens.
pub async fn execute(
    target: &Target,
    engine: Option<&Engine>,
    plan: &Plan,
    decision: &Decision,
    survey: Survey,
    inputs: StepInputs<'_>,
    observer: &dyn Observer,
) -> Result<Published, PublishError> {
    let mut run = Run {
        target,
        engine,
        plan,
        decision,
        smoke: inputs.smoke,
        observer,
        signer: inputs.signer,
        manifest: inputs.manifest,
        survey,
        built: None,
        release: None,
        written: Vec::new(),
        held: plan.tags_held.iter().map(|h| h.tag.clone()).collect(),
    };
    let result = run.steps().await;
    target.report_retries(observer);
    if let (Some(engine), Some((_, local))) = (engine, &run.built) {
        // Best effort: the exact tags stay; the run's own build tag is debris.
        let _ = engine.remove_tag(local).await;
    }
    result
}

/// The state of one execution.
struct Run<'a> {
    target: &'a Target,
    engine: Option<&'a Engine>,
    plan: &'a Plan,
    decision: &'a Decision,
    smoke: Option<&'a RunRequest>,
    observer: &'a dyn Observer,
    signer: Option<&'a SigningKey>,
    manifest: &'a Manifest,
    survey: Survey,
    /// The image id and the local tag of this run's build.
    built: Option<(String, TaggedImage)>,
    /// The release's manifest in the registry, once verified.
    release: Option<ManifestInfo>,
    /// Tags written by this run.
    written: Vec<TaggedImage>,
    /// Aliases left to a higher version.
    held: Vec<TaggedImage>,
}

impl Run<'_> {
    async fn steps(&mut self) -> Result<Published, PublishError> {
        let (plan, decision, observer) = (self.plan, self.decision, self.observer);
        let source = decision.source(plan);
        if let Action::Unchanged { tag, digest } = &decision.action {
            observer.event(Event::Unchanged { tag, digest });
            self.release = self.survey.manifests.get(tag).cloned();
        }
        let mut aliases_decided = false;
        // Signing and the store file wait for the release to be verified below.
        let mut signing: Vec<Format> = Vec::new();
        let mut store_file = None;
        for step in &decision.steps {
            self.target.report_retries(observer);
            match step {
                Step::Build => {
                    let engine = self
                        .engine
                        .ok_or(PublishError::unprepared("build", "engine"))?;
                    let local = build_tag(plan);
                    engine.mark_temporary(&local);
                    let id = build(engine, plan, std::slice::from_ref(&local), observer).await?;
                    self.built = Some((id, local));
                }
                Step::Smoke { method } => {
                    let unprepared = |missing| PublishError::unprepared("smoke", missing);
                    let engine = self.engine.ok_or(unprepared("engine"))?;
                    let (id, _) = self.built.as_ref().ok_or(unprepared("built image"))?;
                    let request = self.smoke.ok_or(unprepared("run request"))?;
                    crate::run::run(engine, id, request, &SmokeProgress(observer))
                        .await
                        .map_err(|source| PublishError::Smoke {
                            method: method.clone(),
                            source: Box::new(source),
                        })?;
                }
                Step::PushExact { tag } => self.push_exact(tag).await?,
                Step::PointAlias { tag, from } => {
                    if plan.is_exact(&tag.tag) {
                        // A missing exact tag of an unchanged release.
                        self.point(tag, from).await?;
                        continue;
                    }
                    if !aliases_decided {
                        aliases_decided = true;
                        self.decide_aliases_again().await?;
                    }
                    if !self.held.contains(tag) {
                        self.point(tag, from).await?;
                    }
                }
                Step::Sign { format, .. } => signing.push(*format),
                Step::WriteStore { path } => store_file = Some(path),
                Step::Unchanged { .. } | Step::HoldAlias { .. } => {}
            }
        }
        if aliases_decided {
            self.repair_aliases().await?;
        }
        let release = match self.release.take() {
            Some(release) => release,
            None => self.verified(source).await?,
        };
        let digest = parse(&release, source)?;
        if !self.written.is_empty() {
            // Still ours at the end: a concurrent `--force` may have replaced it meanwhile.
            let now = self.target.digest(source).await?;
            if now != digest {
                return Err(self.lost(source, now));
            }
        }
        let mut signatures = Vec::new();
        for format in signing {
            signatures.extend(self.sign(&digest, format).await?);
        }
        if let Some(path) = store_file {
            let reference = decision.source(plan);
            crate::store::refresh_after_publish(self.manifest, reference, &digest)?;
            observer.event(Event::WroteStore { path });
        }
        if !release.kind.resolvable_by_store() {
            observer.event(Event::Warning(format!(
                "{source} is a `{}`, not a single-platform docker v2 manifest: the vantage6 algorithm store asks only for `application/vnd.docker.distribution.manifest.v2+json` and may fail to resolve its digest",
                release.kind
            )));
        }
        Ok(Published {
            algorithm: plan.name.clone(),
            image: plan.image.clone(),
            reference: plan.primary_tag().clone(),
            version: plan.version.clone(),
            digest,
            fingerprint: plan.fingerprint.clone(),
            tags_pushed: std::mem::take(&mut self.written),
            tags_held: std::mem::take(&mut self.held),
            skipped_unchanged: matches!(decision.action, Action::Unchanged { .. }),
            signatures,
        })
    }

    /// Makes sure `digest`, the verified release, has a signature by the key in each layout
    /// of `format`.
    async fn sign(&self, digest: &Digest, format: Format) -> Result<Vec<Placed>, PublishError> {
        let key = self
            .signer
            .ok_or(PublishError::unprepared("sign", "signing key"))?;
        let subject = Subject {
            registry: &self.target.registry,
            image: &self.plan.image,
            digest,
        };
        let mut placed = Vec::new();
        for &layout in format.layouts() {
            let signature = sign::ensure(subject, key, layout).await;
            self.target.report_retries(self.observer);
            let signature = signature?;
            self.observer.event(Event::Signed {
                image: &self.plan.image,
                digest,
                placed: &signature,
                key: key.public().id(),
            });
            placed.push(signature);
        }
        Ok(placed)
    }

    /// Pushes this run's image under `tag`: the tag is read again right before (another run may
    /// have published meanwhile) and after (it must hold this run's input).
    async fn push_exact(&mut self, tag: &TaggedImage) -> Result<(), PublishError> {
        let engine = self
            .engine
            .ok_or(PublishError::unprepared("push", "engine"))?;
        let (id, _) = self
            .built
            .as_ref()
            .ok_or(PublishError::unprepared("push", "built image"))?;
        let (now, manifest) = survey::exact_state(&self.target.registry, tag).await?;
        if let Some(digest) = &now.digest {
            if now.fingerprint.as_deref() == Some(self.plan.fingerprint.as_str()) {
                // Another run published this very input meanwhile: nothing to push.
                self.observer.event(Event::Unchanged { tag, digest });
                if tag == self.plan.primary_tag() {
                    self.release = manifest;
                }
                return Ok(());
            }
            let overwriting = matches!(&self.decision.action,
                Action::Overwrite { references } if references.contains(tag));
            if !overwriting {
                return Err(self.lost(tag, digest.clone()));
            }
        }
        engine.tag(id, tag).await?;
        self.observer.event(Event::PushStarted { tag });
        let credentials = self.target.credentials.as_ref();
        engine
            .push(tag, credentials, &mut |event| {
                self.observer.event(Event::Push(&event))
            })
            .await?;
        let release = self.verified(tag).await?;
        if tag == self.plan.primary_tag() {
            self.release = Some(release);
        }
        self.written.push(tag.clone());
        self.observer.event(Event::Pushed { tag });
        Ok(())
    }

    /// The manifest under the exact tag `tag`, which must hold this run's input: what another
    /// run pushed there instead is named, and the run fails.
    async fn verified(&self, tag: &TaggedImage) -> Result<ManifestInfo, PublishError> {
        let (now, manifest) = survey::exact_state(&self.target.registry, tag).await?;
        match (now.digest, manifest) {
            (Some(digest), Some(manifest)) => {
                if now.fingerprint.as_deref() == Some(self.plan.fingerprint.as_str()) {
                    Ok(manifest)
                } else {
                    Err(self.lost(tag, digest))
                }
            }
            _ => Err(PublishError::Vanished {
                reference: tag.clone(),
            }),
        }
    }

    /// Points `tag` at the release's manifest (read once, written as stored).
    async fn point(&mut self, tag: &TaggedImage, from: &TaggedImage) -> Result<(), PublishError> {
        let release = match &self.release {
            Some(release) => release.clone(),
            None => {
                let release = self.verified(from).await?;
                self.release = Some(release.clone());
                release
            }
        };
        let digest = parse(&release, from)?;
        self.target
            .registry
            .tag_manifest(tag.image.path(), &release, tag.tag.as_str())
            .await?;
        self.written.push(tag.clone());
        self.observer.event(Event::Pointed {
            tag,
            digest: &digest,
        });
        Ok(())
    }

    /// Right before the first alias is written: the registry's tags now, and the aliases this
    /// version may move against them. A higher version published since the plan holds them.
    async fn decide_aliases_again(&mut self) -> Result<(), PublishError> {
        let listed = self.target.tags(&self.plan.image).await?;
        let (_, held) = self.plan.aliases_against(&listed)?;
        for held in held {
            if !self.held.contains(&held.tag) {
                self.observer.event(Event::Held {
                    tag: &held.tag,
                    by: &held.by,
                });
                self.held.push(held.tag);
            }
        }
        Ok(())
    }

    /// After the aliases are written: any that a higher version owns by now (it published
    /// while this run wrote) is pointed at that version's exact tag.
    async fn repair_aliases(&mut self) -> Result<(), PublishError> {
        let listed = self.target.tags(&self.plan.image).await?;
        let (_, held) = self.plan.aliases_against(&listed)?;
        for held in held {
            let Some(index) = self.written.iter().position(|t| *t == held.tag) else {
                continue;
            };
            let path = held.by.image.path();
            let Some(owner) = self
                .target
                .registry
                .manifest(path, held.by.tag.as_str())
                .await?
            else {
                continue;
            };
            self.target
                .registry
                .tag_manifest(path, &owner, held.tag.tag.as_str())
                .await?;
            self.observer.event(Event::Repaired {
                tag: &held.tag,
                by: &held.by,
            });
            self.written.remove(index);
            self.held.push(held.tag);
        }
        Ok(())
    }

    fn lost(&self, tag: &TaggedImage, digest: Digest) -> PublishError {
        PublishError::Lost {
            reference: tag.clone(),
            digest,
        }
    }
}

/// The smoke run's progress, handed to the publish observer.
struct SmokeProgress<'a>(&'a dyn Observer);

impl RunObserver for SmokeProgress<'_> {
    fn event(&self, event: RunEvent<'_>) {
        self.0.event(Event::Smoke(event));
    }
}

fn parse(manifest: &ManifestInfo, tag: &TaggedImage) -> Result<Digest, PublishError> {
    super::parse_digest(&manifest.digest, tag)
}
