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
//! - after a build, aliases are decided again from the registry's tags right before they are
//!   written (an unchanged release decides them from the survey's listing, moments old), and
//!   after writing, an alias that a higher version now owns is pointed at that version, so
//!   that any interleaving ends with every alias on the highest version present.
//!
//! Signing comes last: only a digest that the exact tags are verified to hold (this run's
//! input, still there at the end) is signed, and a valid signature by the key that is already
//! there is kept instead of adding another (an unchanged republish completes a release whose
//! run ended between push and sign).
//!
//! A registry has no compare-and-swap on tags: the check and push of an exact tag happen
//! while holding a claim ([`super::claim`]), so that concurrent publishes of one version push
//! one at a time; the checks after each write still catch any other writer (a `--force`, a
//! claim gone stale) and say so (exit 1). The README's "Guarantees" section says what remains.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::{BuildRequest, Engine};
use crate::manifest::Manifest;
use crate::oci::reference::{Digest, Tag, TaggedImage};
use crate::plan::Plan;
use crate::record::Release;
use crate::registry::ManifestInfo;
use crate::run::{RunEvent, RunObserver};
use crate::sign::{self, Format, Placed, Subject};

use super::claim;
use super::decide::{Action, Decision};
use super::step::{SignKey, Step};
use super::survey::{self, Survey};
use super::{Event, Observer, PublishError, Published, Recorded, Target};

/// Builds the plan's image with the engine and tags it locally with `tags`. Returns the image
/// id. Also `cargo v6 build`'s whole job.
pub async fn build(
    engine: &Engine,
    plan: &Plan,
    tags: &[TaggedImage],
    observer: &dyn Observer,
) -> Result<String, PublishError> {
    observer.event(Event::BuildStarted {
        plan,
        assembled: false,
    });
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

/// How a decision is carried out: a decision that builds has its engine (the one preflight
/// found answering), so the build, the smoke run and the pushes have what they need by type;
/// one that reuses a published release needs none.
pub enum Work<'a> {
    /// Build with this engine, then smoke-test and push what it built.
    Build(&'a Engine),
    /// Assemble the image (no engine builds it) with the base read through `base_registry`;
    /// `engine` runs the smoke test when one is asked for.
    Assemble {
        /// A client of the base's registry.
        base_registry: Box<crate::registry::Registry>,
        /// The engine of a smoke run.
        engine: Option<&'a Engine>,
    },
    /// No build: the release's manifest is in the registry already.
    Reuse,
}

/// Runs `decision`'s steps against `target` (a build first, when `work` is one), then reads
/// the release's digest back from the registry (never from log text); signs it when the
/// decision says so, and writes `manifest`'s store file. The local build tag is removed
/// whatever happens.
pub async fn execute(
    target: &Target,
    work: Work<'_>,
    plan: &Plan,
    decision: &Decision,
    survey: Survey,
    manifest: &Manifest,
    observer: &dyn Observer,
) -> Result<Published, PublishError> {
    let mut run = Run {
        target,
        plan,
        decision,
        observer,
        manifest,
        survey,
        built: None,
        release: None,
        written: Vec::new(),
        held: plan.tags_held.iter().map(|h| h.tag.clone()).collect(),
    };
    let result = run.steps(work).await;
    target.report_retries(observer);
    if let Some(built) = &run.built {
        // Best effort: the exact tags stay; the run's own build tag is debris.
        let _ = built.engine.remove_tag(&built.tag).await;
    }
    result
}

/// Performs [`Step::Record`]: the releases go into the record at `path`, in one write.
pub fn record(path: PathBuf, releases: Vec<Release>) -> Result<Recorded, PublishError> {
    let count = releases.len();
    crate::record::Record::update(&path, releases).map_err(PublishError::NotRecorded)?;
    Ok(Recorded { path, count })
}

/// The local tag this run's build was made under: removed at the end, whatever happens.
mod submit;

struct LocalTag<'a> {
    /// The engine that holds it.
    engine: &'a Engine,
    /// The tag.
    tag: TaggedImage,
}

/// What an exact tag is pushed from.
#[derive(Clone, Copy)]
enum Made<'a> {
    /// An image the engine built, by its id.
    Engine {
        /// The engine that holds it.
        engine: &'a Engine,
        /// Its id.
        id: &'a str,
    },
    /// An assembled image, uploaded by digest.
    Assembled(&'a crate::assemble::Assembled),
}

/// The state of one execution.
struct Run<'a> {
    target: &'a Target,
    plan: &'a Plan,
    decision: &'a Decision,
    observer: &'a dyn Observer,
    manifest: &'a Manifest,
    survey: Survey,
    /// The local tag of this run's build, once made.
    built: Option<LocalTag<'a>>,
    /// The release's manifest in the registry, once verified.
    release: Option<ManifestInfo>,
    /// Tags written by this run.
    written: Vec<TaggedImage>,
    /// Aliases left to a higher version.
    held: Vec<TaggedImage>,
}

impl<'a> Run<'a> {
    async fn steps(&mut self, work: Work<'a>) -> Result<Published, PublishError> {
        let (plan, decision, observer) = (self.plan, self.decision, self.observer);
        let source = decision.source(plan);
        if let Action::Unchanged { tag, digest } = &decision.action {
            observer.event(Event::Unchanged { tag, digest });
            self.release = self.survey.manifests.get(tag).cloned();
        }
        match work {
            Work::Build(engine) => self.build_and_push(engine).await?,
            Work::Assemble {
                base_registry,
                engine,
            } => self.assemble_and_push(&base_registry, engine).await?,
            Work::Reuse => {}
        }
        let mut aliases_decided = false;
        // Signing and the store file wait for the release to be verified below.
        let mut signing: Vec<(&SignKey, Format)> = Vec::new();
        let (mut store_file, mut submission) = (None, None);
        for step in &decision.steps {
            self.target.report_retries(observer);
            match step {
                // Carried out above, by the build phase, with the engine and the image it made.
                Step::Build | Step::Smoke { .. } | Step::PushExact { .. } => {}
                Step::CompleteExact { tag, from } => self.point(tag, from).await?,
                Step::PointAlias { tag, from } => {
                    if !aliases_decided {
                        aliases_decided = true;
                        self.decide_aliases_again().await?;
                    }
                    if !self.held.contains(tag) {
                        self.point(tag, from).await?;
                    }
                }
                Step::Sign { key, format, .. } => signing.push((key, *format)),
                Step::WriteStore { path } => store_file = Some(path),
                Step::SubmitStore { endpoints } => submission = Some(endpoints),
                // The publish's own step, never among an algorithm's; performed as it says.
                Step::Record { path, releases } => {
                    record(path.clone(), releases.clone())?;
                }
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
        let (release, digest) = match self.written.is_empty() {
            true => {
                let digest = release.digest.clone();
                (release, digest)
            }
            // Still this run's input at the end: a concurrent `--force` may have replaced it
            // meanwhile.
            false => self.still_ours(source, release).await?,
        };
        let mut signatures = Vec::new();
        // A manifest list is signed with each platform's image, as `cosign sign --recursive`
        // does: a policy that checks the digest a node pulled for its platform finds one.
        let platforms = match release.kind.resolvable_by_store_by_digest() {
            true => crate::oci::manifest::list_entries(&release),
            false => Vec::new(),
        };
        for (key, format) in signing {
            for signed in std::iter::once(&digest).chain(&platforms) {
                signatures.extend(self.sign(signed, key, format).await?);
            }
        }
        let store = self.store_steps(store_file, submission, &digest).await?;
        if release.kind.resolvable_by_store_by_digest() {
            observer.event(Event::Warning(format!(
                "{source} is a manifest list of several platforms: give the vantage6 algorithm store {}@{digest} (its digest alone, as `store export` writes it for vantage6 4.6 and later); by tag the store records the linux/amd64 image, which nodes of other platforms cannot run",
                plan.image
            )));
        } else if !release.kind.resolvable_by_store() {
            observer.event(Event::Warning(format!(
                "{source} is a `{}`, not a single-platform docker v2 manifest: the vantage6 algorithm store asks only for `{}` and may fail to resolve its digest",
                release.kind,
                crate::vantage6::STORE_MANIFEST_ACCEPT
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
            store,
        })
    }

    /// The build phase of a decision that builds: the image is built with `engine` under a
    /// local tag of its own, then, in the decision's order, smoke-tested and pushed under each
    /// exact tag.
    async fn build_and_push(&mut self, engine: &'a Engine) -> Result<(), PublishError> {
        let (plan, decision, observer) = (self.plan, self.decision, self.observer);
        let local = build_tag(plan);
        engine.mark_temporary(&local);
        let id = build(engine, plan, std::slice::from_ref(&local), observer).await?;
        self.built = Some(LocalTag { engine, tag: local });
        for step in &decision.steps {
            match step {
                Step::Smoke { request } => {
                    let progress = SmokeProgress(observer);
                    crate::run::run(engine, &id, request, &progress)
                        .await
                        .map_err(|source| PublishError::Smoke {
                            method: request.method.clone(),
                            source: Box::new(source),
                        })?;
                }
                Step::PushExact { tag } => {
                    self.push_exact(tag, Made::Engine { engine, id: &id })
                        .await?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The build phase of an assembled image: assembled for each platform, uploaded by digest
    /// (before a smoke run, which pulls it by digest), then each exact tag pointed at its
    /// manifest list.
    async fn assemble_and_push(
        &mut self,
        base_registry: &crate::registry::Registry,
        engine: Option<&'a Engine>,
    ) -> Result<(), PublishError> {
        let (plan, decision, observer) = (self.plan, self.decision, self.observer);
        let Some(recipe) = &plan.assembled else {
            return Ok(());
        };
        observer.event(Event::BuildStarted {
            plan,
            assembled: true,
        });
        let uv = crate::assemble::uv_program();
        let tools = crate::assemble::Tools {
            base_registry,
            uv: &uv,
            cache: crate::assemble::cache_dir().map(|d| d.join("layers")),
            epoch: None,
            base_digest: None,
        };
        let progress = |platform: &str| observer.event(Event::Assembling { platform });
        let assembled = crate::assemble::assemble(plan, recipe, &tools, &progress).await?;
        observer.event(Event::Built {
            tag: plan.primary_tag(),
            image_id: assembled.index.digest.as_str(),
        });
        let registry = &self.target.registry;
        crate::assemble::push::push(&assembled, registry, base_registry, &plan.image).await?;
        for step in &decision.steps {
            match step {
                Step::Smoke { request } => {
                    self.smoke_assembled(engine, &assembled, request).await?
                }
                Step::PushExact { tag } => {
                    self.push_exact(tag, Made::Assembled(&assembled)).await?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The smoke run of an assembled image, uploaded by digest and not yet tagged: this
    /// machine's platform in the engine (pulled by digest, removed after), every other platform
    /// under qemu-user; a platform whose qemu-user binary is not installed is said, not run.
    async fn smoke_assembled(
        &self,
        engine: Option<&Engine>,
        assembled: &crate::assemble::Assembled,
        request: &crate::run::RunRequest,
    ) -> Result<(), PublishError> {
        let reference = format!("{}@{}", self.plan.image, assembled.index.digest);
        let progress = SmokeProgress(self.observer);
        let failed = |source| PublishError::Smoke {
            method: request.method.clone(),
            source: Box::new(source),
        };
        for image in &assembled.images {
            let on_host = Some(image.platform) == crate::oci::platform::Platform::host();
            if let (true, Some(engine)) = (on_host, engine) {
                // Pulled for the run only: removed after it, whatever happens.
                engine.mark_temporary_reference(&reference);
                let smoke = async {
                    crate::run::ensure_image(engine, &reference, None, &progress).await?;
                    crate::run::run(engine, &reference, request, &progress).await
                };
                let smoked = smoke.await;
                let _ = engine.remove_reference(&reference).await;
                smoked.map_err(failed)?;
                continue;
            }
            if request.federation.is_some() {
                let why = "a federated run (--org) needs the engine's platform";
                let warning = format!("not smoke-tested on {}: {why}", image.platform);
                self.observer.event(Event::Warning(warning));
                continue;
            }
            let platform = crate::run::emulated::TargetPlatform::parse(&image.platform.to_string())
                .map_err(|message| {
                    failed(crate::run::RunError::Input {
                        message,
                        help: None,
                    })
                })?;
            match crate::run::run_emulated(&reference, &platform, request, &progress).await {
                Ok(_) => {}
                Err(crate::run::RunError::Emulation(
                    missing @ crate::run::emulated::EmulationError::QemuMissing { .. },
                )) => self.observer.event(Event::Warning(format!(
                    "not smoke-tested on {}: {missing}",
                    image.platform
                ))),
                Err(other) => return Err(failed(other)),
            }
        }
        Ok(())
    }

    /// Makes sure `digest`, the verified release, has a signature by `key` in each layout of
    /// `format`.
    async fn sign(
        &self,
        digest: &Digest,
        key: &SignKey,
        format: Format,
    ) -> Result<Vec<Placed>, PublishError> {
        let key = &*key.key;
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
    /// have published meanwhile) and after (it must hold this run's input). A push the engine
    /// fails for a reason that may pass (a 5xx, a 429, a reset connection) is tried again, up
    /// to [`PUSH_ATTEMPTS`] times, each after reading the tag again.
    async fn push_exact(&mut self, tag: &TaggedImage, made: Made<'_>) -> Result<(), PublishError> {
        // One run at a time checks and pushes this version ([`claim`]).
        let claim = claim::acquire(
            &self.target.registry,
            tag,
            &self.plan.fingerprint,
            self.observer,
        )
        .await?;
        let pushed = claim.hold(self.push_exact_claimed(tag, made)).await;
        claim.release().await;
        pushed
    }

    /// [`Run::push_exact`] while holding the claim on `tag`.
    async fn push_exact_claimed(
        &mut self,
        tag: &TaggedImage,
        made: Made<'_>,
    ) -> Result<(), PublishError> {
        let mut backoff = PUSH_BACKOFF;
        for attempt in 1..=PUSH_ATTEMPTS {
            let (now, manifest) = survey::exact_state(&self.target.registry, tag).await?;
            if let Some(digest) = &now.digest {
                if now.fingerprint.as_deref() == Some(self.plan.fingerprint.as_str()) {
                    if tag == self.plan.primary_tag() {
                        self.release = manifest;
                    }
                    if attempt == 1 {
                        // Another run published this very input meanwhile: nothing to push.
                        self.observer.event(Event::Unchanged { tag, digest });
                    } else {
                        // The failed push had written it after all.
                        self.written.push(tag.clone());
                        self.observer.event(Event::Pushed { tag });
                    }
                    return Ok(());
                }
                let overwriting = matches!(&self.decision.action,
                    Action::Overwrite { references } if references.contains(tag));
                if !overwriting {
                    return Err(self.lost(tag, digest.clone()));
                }
            }
            let (engine, id) = match made {
                Made::Engine { engine, id } => (engine, id),
                Made::Assembled(assembled) => {
                    // Every blob and manifest is in the registry already (uploaded by digest
                    // before the smoke run): the tag is one manifest write.
                    self.observer.event(Event::PushStarted { tag });
                    let index = &assembled.index;
                    let registry = &self.target.registry;
                    registry
                        .put_manifest(tag, index.body().to_vec(), index.kind.media_type())
                        .await?;
                    break;
                }
            };
            engine.tag(id, tag).await?;
            self.observer.event(Event::PushStarted { tag });
            let credentials = self.target.credentials.as_ref();
            let pushed = engine
                .push(tag, credentials, &mut |event| {
                    self.observer.event(Event::Push(&event))
                })
                .await;
            match pushed {
                Ok(()) => break,
                Err(e) if attempt < PUSH_ATTEMPTS && push_may_pass(&e) => {
                    self.observer.event(Event::Retry(format!(
                        "{e}; retry {attempt} of {} in {} s",
                        PUSH_ATTEMPTS - 1,
                        backoff.as_secs()
                    )));
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let release = self.verified(tag).await?;
        if tag == self.plan.primary_tag() {
            self.release = Some(release);
        }
        self.written.push(tag.clone());
        self.observer.event(Event::Pushed { tag });
        Ok(())
    }

    /// The release and its digest at the end of a run that wrote tags: `source`, the exact
    /// tag, must still hold this run's input. Its `HEAD` first; when that names another
    /// digest, the manifest itself: this run's (the registry contradicts itself: an error
    /// saying so, not a lost race), another image of the same input (two jobs publishing one
    /// commit: unchanged, and the aliases this run wrote follow it), or other content (lost).
    async fn still_ours(
        &mut self,
        source: &TaggedImage,
        release: ManifestInfo,
    ) -> Result<(ManifestInfo, Digest), PublishError> {
        let registry = &self.target.registry;
        let digest = release.digest.clone();
        let head = registry.digest(source).await?;
        if head.as_ref() == Some(&digest) {
            return Ok((release, digest));
        }
        let (state, manifest) = survey::exact_state(registry, source).await?;
        let (Some(now), Some(manifest)) = (state.digest, manifest) else {
            return Err(PublishError::Vanished {
                reference: source.clone(),
            });
        };
        if now == digest {
            // The manifest is this run's: a HEAD must say so too, unless the tag moved and
            // moved back between the two reads.
            let again = registry.digest(source).await?;
            if again.as_ref() == Some(&digest) {
                return Ok((release, digest));
            }
            return Err(PublishError::Inconsistent(Box::new(super::Inconsistency {
                reference: source.clone(),
                head: again.or(head),
                served: digest,
            })));
        }
        if state.fingerprint.as_deref() != Some(self.plan.fingerprint.as_str()) {
            return Err(self.lost(source, now));
        }
        self.observer.event(Event::Unchanged {
            tag: source,
            digest: &now,
        });
        let aliases: Vec<TaggedImage> = self
            .written
            .iter()
            .filter(|t| !self.plan.is_exact(&t.tag))
            .cloned()
            .collect();
        for alias in aliases {
            if !self.write_tag(&alias, &manifest).await? {
                self.written.retain(|t| *t != alias);
            }
        }
        Ok((manifest, now))
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
        let digest = release.digest.clone();
        if self.write_tag(tag, &release).await? {
            self.written.push(tag.clone());
            self.observer.event(Event::Pointed {
                tag,
                digest: &digest,
            });
        }
        Ok(())
    }

    /// Writes `manifest` under `tag` and reads it back: `true` when the tag holds it; `false`
    /// when a higher version published since owns the tag (it is then held, and left to it).
    /// A tag that holds nothing, or anything else, is written again, up to [`TAG_WRITES`]
    /// times: a registry that answers the write with success but does not keep it fails the
    /// run rather than have it list a tag that is not there.
    async fn write_tag(
        &mut self,
        tag: &TaggedImage,
        manifest: &ManifestInfo,
    ) -> Result<bool, PublishError> {
        let registry = &self.target.registry;
        for _ in 0..TAG_WRITES {
            registry.tag_manifest(tag, manifest).await?;
            match registry.digest(tag).await? {
                Some(now) if now == manifest.digest => return Ok(true),
                None => continue,
                Some(now) => {
                    if let Some(held) = self.owner_holding(tag, &now).await? {
                        self.observer.event(Event::Held {
                            tag: &held.tag,
                            by: &held.by,
                        });
                        if !self.held.contains(&held.tag) {
                            self.held.push(held.tag);
                        }
                        return Ok(false);
                    }
                }
            }
        }
        Err(PublishError::NotKept {
            reference: tag.clone(),
            attempts: TAG_WRITES,
        })
    }

    /// Right before the first alias is written: the registry's tags now, and the aliases this
    /// version may move against them. A higher version published since the plan holds them.
    /// A run that built nothing reads no new listing: the survey's was read moments ago, with
    /// no build or push since (a higher version published meanwhile is found by
    /// [`Run::repair_aliases`], which lists the tags again after the writes).
    async fn decide_aliases_again(&mut self) -> Result<(), PublishError> {
        let listed = match self.built {
            None => self.survey.tags.clone(),
            Some(_) => self.target.tags(&self.plan.image).await?,
        };
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
            let Some(owner) = self.target.registry.manifest(&held.by).await? else {
                continue;
            };
            // `false`: an even higher version owns it by now, and holds it.
            if !self.write_tag(&held.tag, &owner).await? {
                self.written.retain(|t| *t != held.tag);
                continue;
            }
            self.observer.event(Event::Repaired {
                tag: &held.tag,
                by: &held.by,
            });
            self.written.remove(index);
            self.held.push(held.tag);
        }
        Ok(())
    }

    /// The higher version that owns the alias `tag` now, when `digest`, what `tag` holds,
    /// is that version's: it published (and moved the alias) after this run's write.
    async fn owner_holding(
        &self,
        tag: &TaggedImage,
        digest: &Digest,
    ) -> Result<Option<crate::plan::HeldTag>, PublishError> {
        if self.plan.is_exact(&tag.tag) {
            return Ok(None);
        }
        let listed = self.target.tags(&self.plan.image).await?;
        let (_, held) = self.plan.aliases_against(&listed)?;
        let Some(held) = held.into_iter().find(|h| h.tag == *tag) else {
            return Ok(None);
        };
        let owner = self.target.registry.digest(&held.by).await?;
        Ok((owner.as_ref() == Some(digest)).then_some(held))
    }

    fn lost(&self, tag: &TaggedImage, digest: Digest) -> PublishError {
        PublishError::Lost {
            reference: tag.clone(),
            digest,
        }
    }
}

/// How many times the engine pushes an exact tag when a push fails for a reason that may pass.
const PUSH_ATTEMPTS: u32 = 3;

/// The pause before the engine's second push; it doubles for the third.
const PUSH_BACKOFF: Duration = Duration::from_secs(1);

/// How many times a tag is written when it is not there when read back.
const TAG_WRITES: u32 = 3;

/// Whether the engine's push failed for a reason that may pass when it is tried again: the
/// registry answered a server error or 429, or the connection broke. Not a stall
/// (`--stall-timeout`: a registry that stopped answering is not waited for again), and not
/// refused credentials or a refused manifest.
fn push_may_pass(e: &crate::engine::EngineError) -> bool {
    let crate::engine::EngineError::Push { message, .. } = e else {
        return false;
    };
    let message = message.to_lowercase();
    [
        "unexpected http status: 5",
        "unexpected http status: 429",
        "toomanyrequests",
        "too many requests",
        "connection reset",
        "broken pipe",
        "unexpected eof",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// The smoke run's progress, handed to the publish observer.
struct SmokeProgress<'a>(&'a dyn Observer);

impl RunObserver for SmokeProgress<'_> {
    fn event(&self, event: RunEvent<'_>) {
        self.0.event(Event::Smoke(event));
    }
}
