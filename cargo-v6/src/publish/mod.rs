//! Publishing, as a library: for each algorithm, plan -> read the registry ([`survey`]) ->
//! [`decide`] (pure: a list of typed [`Step`]s) -> [`execute`] (engine and registry I/O) -> a
//! [`Published`] outcome; every refusal on the way is a [`preflight`] problem, all of them
//! reported together before anything is written. `--dry-run` stops after `decide` and
//! returns the same steps. Once every algorithm is done, the publish's own step records the
//! releases ([`Step::Record`]).
//!
//! Nothing here prints: progress and warnings go to an [`Observer`] (the report module's), and
//! the outcome goes back to the caller, so that one algorithm or a workspace of many publish
//! through the same code.

pub mod claim;
pub mod decide;
pub mod execute;
pub mod preflight;
pub mod step;
pub mod survey;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::credentials::{Credentials, CredentialsError};
use crate::engine::{BuildEvent, Engine, EngineError, PushEvent};
use crate::manifest::Manifest;
use crate::oci::reference::{Digest, ImageName, TaggedImage};
use crate::plan::{Inputs, Plan, PlanError, RegistryTags, RegistryView};
use crate::record::RecordError;
use crate::registry::{Registry, RegistryError};
use crate::run::{RunError, RunEvent, RunRequest};
use crate::sign::{Format, KeyId, Placed, SignError, SigningKey};
use crate::version::Version;

pub use decide::{Action, Decision, ReleaseError, Signing};
pub use execute::build;
pub use preflight::{Problem, Problems};
pub use step::{SignKey, Step};

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No plan could be made.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Preflight found reasons not to publish; nothing was built or pushed.
    #[error(transparent)]
    Preflight(Problems),
    /// The release is refused before anything is built or pushed.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// The Docker engine failed or cannot be reached.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The image could not be assembled or uploaded.
    #[error(transparent)]
    Assemble(#[from] crate::assemble::AssembleError),
    /// The registry failed, cannot be reached, or refused the credentials.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Credentials could not be resolved.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The signing key could not be used, or signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// `[store]` is not what the algorithm store accepts, or its file could not be written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The algorithm store did not take the release.
    #[error(transparent)]
    Submit(#[from] crate::store::submit::SubmitError),
    /// Every algorithm is done and its release published, but the record of releases could
    /// not be written.
    #[error("the releases are published, but not recorded: {0}")]
    NotRecorded(RecordError),
    /// Another publish wrote the exact tag between this run's checks and its write, or after
    /// it, with other content: what the tag holds is not this run's image.
    #[error(
        "another publish won the race for {reference}: it now holds {digest}, which is not this run's input; nothing of this run is published under it"
    )]
    Lost {
        /// The exact tag.
        reference: TaggedImage,
        /// What it holds now.
        digest: Digest,
    },
    /// The registry answers a `HEAD` of the exact tag with another digest than that of the
    /// manifest it serves under it, again after reading it: no concurrent publish explains
    /// that (a write changes both), so it is not reported as one. Boxed: it is rare.
    #[error(
        "the registry is inconsistent about {}: a HEAD request says it holds {}, but the manifest it serves there is {} (this run's release); a cache or proxy in front of the registry may be serving stale answers",
        .0.reference, .0.head.as_ref().map_or_else(|| "nothing".to_owned(), ToString::to_string), .0.served
    )]
    Inconsistent(Box<Inconsistency>),
    /// A tag write the registry answered with success is not there when it is read back,
    /// after writing it again.
    #[error(
        "the registry accepted the write of {reference} ({attempts} times) but does not hold it when read back; it keeps no tags written by manifest (check the registry, or a proxy or cache in front of it)"
    )]
    NotKept {
        /// The tag.
        reference: TaggedImage,
        /// How often it was written.
        attempts: u32,
    },
    /// A tag written by this run is gone when it is read back.
    #[error("{reference} vanished from the registry while publishing")]
    Vanished {
        /// The tag.
        reference: TaggedImage,
    },
    /// `--smoke`: the built image did not run as a node runs it; nothing was pushed.
    #[error("the smoke run of `{method}` failed, so nothing was pushed: {source}")]
    Smoke {
        /// The function run.
        method: String,
        /// What failed (boxed: it is large, and rare).
        source: Box<RunError>,
    },
}

/// What [`PublishError::Inconsistent`] found.
#[derive(Debug)]
pub struct Inconsistency {
    /// The exact tag.
    pub reference: TaggedImage,
    /// What `HEAD` answers: `None` when it finds nothing.
    pub head: Option<Digest>,
    /// The digest of the manifest `GET` answers.
    pub served: Digest,
}

/// The registry one algorithm is published to, with the credentials resolved for it.
#[derive(Debug)]
pub struct Target {
    /// Registry client with the resolved credentials.
    pub registry: Registry,
    /// The same credentials, for the engine's push.
    pub credentials: Option<Credentials>,
}

impl Target {
    /// Resolves the credentials for `manifest`'s registry and makes a client for it that
    /// gives up on a request stalled for `stall_timeout` (v6.toml's unless overridden).
    pub fn for_manifest(
        manifest: &Manifest,
        stall_timeout: Option<Duration>,
    ) -> Result<Target, PublishError> {
        let domain = manifest.image.domain();
        let credentials = crate::credentials::resolve(domain)?;
        let registry = Registry::with_stall_timeout(
            domain,
            credentials.clone(),
            manifest.publish.insecure,
            stall_timeout.unwrap_or(manifest.publish.stall_timeout),
        )?;
        Ok(Target {
            registry,
            credentials,
        })
    }

    /// The tags of `image` in the registry.
    pub async fn tags(&self, image: &ImageName) -> Result<Vec<String>, PublishError> {
        Ok(self.registry.list_tags(image).await?)
    }

    /// The digest `reference` holds now; an error when it is absent.
    pub async fn digest(&self, reference: &TaggedImage) -> Result<Digest, PublishError> {
        self.registry
            .digest(reference)
            .await?
            .ok_or_else(|| PublishError::Vanished {
                reference: reference.clone(),
            })
    }
}

impl Target {
    /// Hands the retries the registry client made to `observer`.
    pub fn report_retries(&self, observer: &dyn Observer) {
        for retry in self.registry.take_retries() {
            observer.event(Event::Retry(retry));
        }
    }
}

/// The engine a build and push will use, or the problem with it: it must answer, and the
/// push hands it the registry credentials, which never cross a network in clear text unless
/// the user allowed it (`options.allow_insecure_engine`).
fn engine_for_build(
    engine: Result<Engine, EngineError>,
    target: &Target,
    options: &Options,
    observer: &dyn Observer,
) -> Result<Engine, Problem> {
    let engine = engine?;
    match engine.check_credentials_path(target.credentials.as_ref()) {
        Ok(()) => Ok(engine),
        Err(_) if options.allow_insecure_engine => {
            observer.event(Event::InsecureEngine {
                endpoint: &engine.describe(),
            });
            Ok(engine)
        }
        Err(refused) => Err(refused.into()),
    }
}

/// How to publish.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Overwrite a published version tag that holds a different image.
    pub force: bool,
    /// Publish from a work tree with uncommitted changes.
    pub allow_dirty: bool,
    /// Check and decide, but build and push nothing.
    pub dry_run: bool,
    /// `--stall-timeout`: overrides v6.toml's `stall-timeout`.
    pub stall_timeout: Option<Duration>,
    /// Send registry credentials to an engine reached over plain TCP off loopback.
    pub allow_insecure_engine: bool,
    /// `--smoke METHOD ...`: the run made on the built image before anything is pushed.
    pub smoke: Option<RunRequest>,
    /// `--submit`: submit the release to the algorithm store as `[store] submit = true` does.
    pub submit: bool,
    /// `--sign-key`: sign the release with this private key (overrides v6.toml's
    /// `sign.key`).
    pub sign_key: Option<PathBuf>,
    /// `--signature-format`: overrides v6.toml's `sign.format`.
    pub signature_format: Option<Format>,
    /// `-j`: how many algorithms are published at once (0 counts as 1).
    pub jobs: usize,
}

impl Options {
    /// The signing asked for by these options and `manifest`: the key path and layouts, or
    /// `None` when no key is configured.
    pub fn signing(&self, manifest: &Manifest) -> Option<(PathBuf, Format)> {
        let key = self
            .sign_key
            .clone()
            .or_else(|| manifest.sign.key.clone())?;
        Some((key, self.signature_format.unwrap_or(manifest.sign.format)))
    }
}

/// One algorithm to publish: its manifest, what was read of its project, and where its
/// progress goes.
pub struct Algorithm<'a> {
    /// The loaded v6.toml.
    pub manifest: &'a Manifest,
    /// Version, git state and build context.
    pub inputs: Inputs,
    /// The release tag published (`--from-tag`): it must be on HEAD and name the version.
    pub release_tag: Option<&'a str>,
    /// Receives this algorithm's progress and warnings.
    pub observer: &'a dyn Observer,
}

/// What publish did for one algorithm.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    /// `algorithm.name`: which member of a workspace this is.
    pub algorithm: String,
    /// The normalized repository.
    pub image: ImageName,
    /// The exact version tag (the first, when there are several).
    pub reference: TaggedImage,
    /// The version as found.
    pub version: Version,
    /// The digest of the exact version tag, read back from the registry.
    pub digest: Digest,
    /// The input fingerprint.
    pub fingerprint: String,
    /// Tags written by this run.
    pub tags_pushed: Vec<TaggedImage>,
    /// Aliases left alone because a higher version owns them.
    pub tags_held: Vec<TaggedImage>,
    /// The release was already in the registry: nothing was built or uploaded.
    pub skipped_unchanged: bool,
    /// The signatures of the release by the configured key: added by this run, or found.
    /// Absent without a key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<Placed>,
    /// What the algorithm store holds after `[store] submit`: `None` without it.
    pub store: Option<crate::store::submit::Submitted>,
}

impl Published {
    /// The release as the record keeps it.
    pub fn release(&self) -> crate::record::Release {
        crate::record::Release {
            algorithm: self.algorithm.clone(),
            version: self.version.raw().to_string(),
            image: crate::record::Recorded::Valid(self.reference.clone()),
            digest: crate::record::Recorded::Valid(self.digest.clone()),
        }
    }
}

/// The outcome for one algorithm.
#[derive(Debug)]
pub enum Outcome {
    /// `--dry-run`: the plan and the steps a real run would execute.
    DryRun {
        /// The plan.
        plan: Box<Plan>,
        /// The decision.
        decision: Decision,
    },
    /// The release is in the registry.
    Published(Box<Published>),
}

/// Progress and warnings while publishing, for the caller to show.
#[derive(Debug)]
pub enum Event<'a> {
    /// Something the user should know; the publish goes on.
    Warning(String),
    /// The registry credentials go to an engine reached over plain TCP off this machine,
    /// because the user allowed it.
    InsecureEngine {
        /// The engine's address, with where it came from.
        endpoint: &'a str,
    },
    /// `force`: the exact tags that hold other images are written over (`dry_run`: would be).
    Overwriting {
        /// The tags.
        references: &'a [TaggedImage],
        /// Whether this is a dry run.
        dry_run: bool,
    },
    /// The engine starts building `plan`, or (`assembled`) its assembly starts.
    BuildStarted {
        /// The plan being built.
        plan: &'a Plan,
        /// Assembled without the engine, rather than built by it.
        assembled: bool,
    },
    /// Build progress from the engine.
    Build(&'a BuildEvent),
    /// An assembled image's platform is being made.
    Assembling {
        /// `linux/arm64`.
        platform: &'a str,
    },
    /// The image is built.
    Built {
        /// The exact tag it is built for.
        tag: &'a TaggedImage,
        /// Its id.
        image_id: &'a str,
    },
    /// The engine starts pushing `tag`.
    PushStarted {
        /// The exact tag.
        tag: &'a TaggedImage,
    },
    /// Push progress from the engine.
    Push(&'a PushEvent),
    /// `tag` is pushed.
    Pushed {
        /// The exact tag.
        tag: &'a TaggedImage,
    },
    /// `tag` now points at `digest`, by a manifest write.
    Pointed {
        /// The tag.
        tag: &'a TaggedImage,
        /// The release's digest.
        digest: &'a Digest,
    },
    /// `tag` is left to `by`, a higher version published since the plan was made.
    Held {
        /// The alias.
        tag: &'a TaggedImage,
        /// The owner's exact tag.
        by: &'a TaggedImage,
    },
    /// `tag`, written by this run, is pointed at `by`, a higher version that published while
    /// this run wrote its aliases.
    Repaired {
        /// The alias.
        tag: &'a TaggedImage,
        /// The owner's exact tag.
        by: &'a TaggedImage,
    },
    /// A registry request failed for a reason that may pass, and is tried again.
    Retry(String),
    /// Progress of the `--smoke` run.
    Smoke(RunEvent<'a>),
    /// The release is already in the registry under `tag`.
    Unchanged {
        /// The exact tag that holds it.
        tag: &'a TaggedImage,
        /// Its digest.
        digest: &'a Digest,
    },
    /// The algorithm store's submission was written for the release.
    WroteStore {
        /// The file.
        path: &'a std::path::Path,
    },
    /// The algorithm store holds the release (submitted now, or already).
    Submitted {
        /// What it holds.
        submitted: &'a crate::store::submit::Submitted,
        /// Where.
        endpoints: &'a crate::store::submit::Endpoints,
        /// The image as submitted.
        image: &'a str,
    },
    /// The release's digest carries a signature by `key`: written now, or found.
    Signed {
        /// The repository.
        image: &'a ImageName,
        /// The signed digest.
        digest: &'a Digest,
        /// Where the signature is.
        placed: &'a Placed,
        /// The signing key.
        key: &'a KeyId,
    },
}

/// Receives [`Event`]s. `Sync`: engine callbacks may run on the runtime's threads.
pub trait Observer: Sync {
    /// Called for each event, in order.
    fn event(&self, event: Event<'_>);
}

/// What a publish did: each algorithm's outcome, in the order given, and the record of the
/// releases (`None` when nothing was published: a dry run, or every algorithm failed).
#[derive(Debug)]
pub struct Publication {
    /// Each algorithm's result.
    pub outcomes: Vec<Result<Outcome, PublishError>>,
    /// The [`Step::Record`] after every algorithm.
    pub recorded: Option<Result<Recorded, PublishError>>,
}

/// The releases written to the record.
#[derive(Debug)]
pub struct Recorded {
    /// The record's file.
    pub path: PathBuf,
    /// How many releases it got.
    pub count: usize,
}

/// Publishes the algorithms, up to `options.jobs` at once (one engine builds them side by
/// side); one failure does not stop the others, and each gets its own result, in the order
/// given. Then the releases published go into the record at `record` (one file for them
/// all, so written once, after every algorithm).
pub async fn publish(
    algorithms: Vec<Algorithm<'_>>,
    options: &Options,
    record: &Path,
) -> Publication {
    use futures_util::StreamExt;
    // The keys first, one after the other, each loaded once: a password is asked for before
    // anything runs and never by two members at once. A key that fails is tried again for
    // the next member that uses it, so each gets its own error.
    let mut keys: Vec<SignKey> = Vec::new();
    let mut signings = Vec::with_capacity(algorithms.len());
    for algorithm in &algorithms {
        signings.push(match options.signing(algorithm.manifest) {
            None => Ok(None),
            Some((path, format)) => match keys.iter().find(|k| k.path == path) {
                Some(key) => Ok(Some(key.clone())),
                None => load_key(&path).map(|key| {
                    let key = SignKey {
                        path,
                        key: Arc::new(key),
                    };
                    keys.push(key.clone());
                    Some(key)
                }),
            }
            .map(|key| key.map(|key| Signing { key, format })),
        });
    }
    let outcomes: Vec<Result<Outcome, PublishError>> =
        futures_util::stream::iter(algorithms.into_iter().zip(signings).map(
            |(algorithm, signing)| async move { publish_one(algorithm, signing?, options).await },
        ))
        .buffered(options.jobs.max(1))
        .collect()
        .await;
    let recorded = match decide::record(record, &outcomes) {
        Some(Step::Record { path, releases }) => Some(execute::record(path, releases)),
        _ => None,
    };
    Publication { outcomes, recorded }
}

fn load_key(path: &std::path::Path) -> Result<SigningKey, SignError> {
    let password = crate::sign::Password::obtain(false)?;
    Ok(SigningKey::load(path, &password)?)
}

async fn publish_one(
    algorithm: Algorithm<'_>,
    signing: Option<Signing>,
    options: &Options,
) -> Result<Outcome, PublishError> {
    let Algorithm {
        manifest,
        inputs,
        release_tag,
        observer,
    } = algorithm;
    // Checks before actions, every problem at once: the project, the registry and the engine
    // are all asked before anything is written. The project's own problems (the release tag,
    // `[store]`, the key) are reported at once, without waiting on a registry or an engine
    // that may be slow or unreachable; a dirty work tree waits for the rest.
    let mut found = preflight::project(
        manifest,
        &inputs,
        release_tag,
        signing.as_ref().map(|signing| signing.key.path.as_path()),
        options.allow_dirty,
    );
    if found.beyond_work_tree() {
        return Err(refused(found));
    }
    let target = match Target::for_manifest(manifest, options.stall_timeout) {
        Ok(target) => target,
        Err(error) => {
            found.push(problem_of(error)?);
            return Err(refused(found));
        }
    };
    let stall_timeout = options
        .stall_timeout
        .unwrap_or(manifest.publish.stall_timeout);
    // The engine is asked only when a build may be needed: an unchanged republish needs none
    // (and an ssh engine would be dialled for nothing); a publish the registry leaves
    // undecided counts as a build.
    let connect = || async { Engine::connect_with_stall_timeout(stall_timeout).await };
    let listed = match target.tags(&manifest.image).await {
        Ok(listed) => listed,
        Err(error) => {
            found.push(problem_of(error)?);
            found.take(connect().await);
            return Err(refused(found));
        }
    };
    let existing = RegistryTags {
        tags: listed.clone(),
        view: RegistryView::Read,
    };
    // A plan that cannot be made is the project's problem: the engine is not asked.
    let Some(plan) = found.take(Plan::new(manifest, inputs, existing)) else {
        return Err(refused(found));
    };
    for warning in &plan.warnings {
        observer.event(Event::Warning(warning.clone()));
    }
    let survey = survey::read(&target.registry, &plan, &listed).await;
    target.report_retries(observer);
    let survey = match survey {
        Ok(survey) => survey,
        Err(error) => {
            found.push(problem_of(error)?);
            found.take(connect().await);
            return Err(refused(found));
        }
    };
    let store_output = crate::store::output(manifest);
    let submit = crate::store::submit_target(manifest, options.submit);
    // The account is needed at the end: missing, it is said before anything is pushed.
    if submit.is_some() && !options.dry_run {
        crate::store::submit::Login::from_env()?;
    }
    let decision = found.take(decide::decide(
        &plan,
        &survey,
        options.force,
        options.smoke.as_ref(),
        signing.as_ref(),
        store_output.as_deref(),
        submit.as_ref(),
    ));
    // The exact tags a build pushes are claimed first: one too long to claim is refused now,
    // before the build.
    if decision.as_ref().is_some_and(Decision::builds) {
        for exact in &plan.exact_tags {
            found.take(claim::claimable(exact));
        }
    }
    // A refused release counts as a build: the engine is asked, so that its problem is
    // reported with the refusal. `Some(None)`: no build, no engine needed; `None`: the engine
    // is a problem.
    let assembles = plan.is_assembled() && decision.as_ref().is_some_and(Decision::builds);
    let base_registry = match assembles {
        true => found.take(
            crate::assemble::base_registry(&plan.base_image, manifest, stall_timeout).map_err(
                |error| match error {
                    crate::assemble::AssembleError::Registry(e) => Problem::Registry(e),
                    crate::assemble::AssembleError::Credentials(e) => Problem::Credentials(e),
                    other => Problem::Plan(PlanError::Input(crate::diagnostic::Diagnostic::new(
                        other.to_string(),
                        None,
                    ))),
                },
            ),
        ),
        false => None,
    };
    if assembles && let Err(why) = crate::assemble::uv_version(&crate::assemble::uv_program()) {
        found.push(Problem::NoUv(why));
    }
    let engine: Option<Option<Engine>> = match &decision {
        Some(decision) if !decision.builds() => Some(None),
        // An assembled image needs the engine only for a smoke run.
        Some(_) if assembles && options.smoke.is_none() => Some(None),
        _ => found
            .take(engine_for_build(
                connect().await,
                &target,
                options,
                observer,
            ))
            .map(Some),
    };
    let (Some(decision), Some(engine), true) = (decision, engine, found.is_empty()) else {
        return Err(refused(found));
    };
    if let Action::Overwrite { references } = &decision.action {
        observer.event(Event::Overwriting {
            references,
            dry_run: options.dry_run,
        });
    }
    if options.dry_run {
        return Ok(Outcome::DryRun {
            plan: Box::new(plan),
            decision,
        });
    }
    let work = match (&engine, base_registry) {
        (engine, Some(base_registry)) => execute::Work::Assemble {
            base_registry: Box::new(base_registry),
            engine: engine.as_ref(),
        },
        (Some(engine), None) => execute::Work::Build(engine),
        (None, None) => execute::Work::Reuse,
    };
    let published =
        execute::execute(&target, work, &plan, &decision, survey, manifest, observer).await?;
    Ok(Outcome::Published(Box::new(published)))
}

/// A failure to reach the registry (or to resolve its credentials) before anything is
/// written, as a problem to report with the others; any other error ends the publish as it
/// is.
fn problem_of(error: PublishError) -> Result<Problem, PublishError> {
    match error {
        PublishError::Registry(e) => Ok(Problem::Registry(e)),
        PublishError::Credentials(e) => Ok(Problem::Credentials(e)),
        other => Err(other),
    }
}

/// The error for what preflight found.
fn refused(found: preflight::Found) -> PublishError {
    PublishError::Preflight(found.into_problems())
}
