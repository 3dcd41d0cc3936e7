//! `cargo v6 run`: run the image on this machine the way a vantage6 node runs it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::plan::{Plan, RegistryTags};
use crate::report::{self, Reporter};
use crate::run::emulated::TargetPlatform;
use crate::run::federation::{Federation, Organization};
use crate::run::{DataArg, RunError, RunRequest};
use crate::vantage6::{FunctionStep, NodeIds, Vantage6Version, Wrapper};

use super::{FormatArgs, ManifestArgs, MessageFormat, VersionArgs};

const ABOUT: &str = "Run the image on this machine the way a vantage6 node runs it";

const LONG_ABOUT: &str = "\
Run the image on this machine the way a vantage6 node runs it: a container with no network, a \
temporary folder (outside the project, removed afterwards) with the node's input, token and \
output files, the data files mounted read-only, and the environment the node sets for the \
image's vantage6 version. The log is shown live on stderr; the output is printed as one line of \
JSON, the last line on stdout. Exit 0 only when the wrapper wrote an output; otherwise the error \
names what failed (the module, the method, the data).

Without --image, v6.toml's image is built first (as `cargo v6 build` does) and that build runs.

With --platform of another architecture (linux/arm64 on an amd64 machine), --image is run \
without the engine: read from its registry (an index resolved to that platform), its layers \
unpacked into a root file system cached under ~/.cache/cargo-v6/rootfs, and the wrapper run \
under Debian's qemu-user-static (`qemu-aarch64-static`; binfmt_misc is not needed), with the \
node's files and environment. The differences from a container: no mounts (the environment \
names the work folder's paths on this machine), no network isolation, the image's command run \
without a shell, the invoking user.

A central function runs with --org: its container talks to a stand-in for the vantage6 server that cargo v6 serves on 127.0.0.1 for the run (the containers share this machine's network; each has a token of its own, and the server answers no other), and each task it creates runs as its organization's node would run it: the partial function in a container of the same image, with that organization's data, up to -j at once. Encryption is off, as in an unencrypted collaboration. Each task's organization, function, status and time are shown on stderr (with --message-format json, one JSON line per task on stdout); the central function's output is the last line on stdout. A failing subtask, or a request for anything the server does not serve, ends the run at once, naming it; the containers' logs are then kept. Without --org, a function whose algorithm client starts retrying the server is stopped at once.";

const EXAMPLES: &str = "Examples:
  cargo v6 run partial_sum --kwargs '{\"column\": \"a\"}' --data default=test/data.csv
  cargo v6 run partial_sum --kwargs '{\"column\": \"a\"}' --data default=test/data.csv \\
      --image 127.0.0.1:5550/algorithms/partial-sum@sha256:...
  cargo v6 run my_function --data first=a.csv --data second=b.parquet:parquet --env MY_SETTING=1
  (5.x) cargo v6 run my_federated --extract read_csv --data default=test/data.csv
  (5.x) cargo v6 run compare --extract read_csv --data a=a.csv --data +b=b.csv --data c=c.csv
  cargo v6 run partial_sum --kwargs '{\"column\": \"a\"}' --data default=test/data.csv \\
      --image 127.0.0.1:5550/algorithms/partial-sum:1.0.0 --platform linux/arm64
  cargo v6 run central_mean --kwargs '{\"column\": \"age\"}' --org 1=a.csv --org 2=b.csv --org 3=c.csv
  cargo v6 run central --org 1=a.csv --org 1:extra=x.csv --org 2=b.csv --central-org 2 -j 1
  (5.x) cargo v6 run central_mean --extract read_csv --org 1=a.csv --org 2=b.csv";

/// Run the image like a vantage6 node.
#[derive(Debug, clap::Args)]
#[command(about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub struct Args {
    /// The function to call: a partial function, which computes on the node's data; with
    /// --org, a central function.
    #[arg(value_name = "METHOD")]
    method: String,
    #[command(flatten)]
    pub(super) task: TaskArgs,
    /// Run this image (REF, REF@sha256:..., or an image id) instead of building v6.toml's; it
    /// is pulled when the engine does not have it.
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// The vantage6 version of the image's wrapper [default: v6.toml's `vantage6`].
    #[arg(long, value_name = "MAJOR.MINOR")]
    vantage6: Option<String>,
    /// Run the image of this platform (linux/amd64, linux/arm64, linux/arm/v7, ...): pulled
    /// by the engine when it is this machine's, run under qemu-user otherwise (with --image).
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
    /// Run --image under qemu-user even when its platform is this machine's (to compare an
    /// emulated run with the engine's).
    #[arg(long)]
    emulate: bool,
    /// A federated run (--org): run up to N subtasks at once [default: the number of CPUs].
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), requires = "org")]
    jobs: Option<u16>,
    #[command(flatten)]
    pub(super) format: FormatArgs,
    #[command(flatten)]
    manifest: ManifestArgs,
    #[command(flatten)]
    version: VersionArgs,
}

/// The task a node is given, apart from the method (shared with `publish --smoke`).
#[derive(Debug, Clone, clap::Args)]
pub struct TaskArgs {
    /// Keyword arguments, a JSON object.
    #[arg(long, value_name = "JSON")]
    kwargs: Option<String>,
    /// Positional arguments, a JSON array (vantage6 4.x only).
    #[arg(long, value_name = "JSON")]
    args: Option<String>,
    /// A database of the node, in the order the function takes them: a file, a folder, or a
    /// URI; TYPE is csv (default), parquet, excel, sql, sparql, omop or other. Repeatable: each
    /// is an argument position of its own; with a leading `+` it joins the previous one (5.x:
    /// several dataframes as one argument, `USER_REQUESTED_DATAFRAMES` `a,b;c`).
    #[arg(long = "data", value_name = "[+]LABEL=PATH[:TYPE]")]
    data: Vec<String>,
    /// An extra environment variable for the algorithm (a node's `algorithm_env`), encoded like
    /// the node's own. Repeatable.
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// vantage6 5.x: the function's step [default: federated_compute].
    #[arg(long, value_name = "STEP", value_parser = parse_step)]
    step: Option<FunctionStep>,
    /// vantage6 5.x: a data-extraction function run first on each --data; its tables become
    /// the session's dataframes (named by the labels) that METHOD reads.
    #[arg(long, value_name = "METHOD")]
    extract: Option<String>,
    /// A federated run: organization ID's database, labelled `default` (`ID=PATH`) or LABEL
    /// (`ID:LABEL=PATH`). Repeatable: once per organization, or per database. METHOD is then
    /// the central function; the tasks it creates run at these organizations.
    #[arg(long = "org", value_name = "ID[:LABEL]=PATH[:TYPE]", conflicts_with_all = ["data", "step", "task_id", "node_id", "organization_id"])]
    org: Vec<String>,
    /// The organization the central function runs at [default: the first --org].
    #[arg(long, value_name = "ID", requires = "org")]
    central_org: Option<u64>,
    /// Stop the algorithm (and fail) after this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// The task id the node gives METHOD (5.x `TASK_ID`, 4.x container token) [default: its
    /// run number: 1, or the one after the --extract runs].
    #[arg(long, value_name = "ID")]
    task_id: Option<u64>,
    /// The node's id (5.x `NODE_ID`).
    #[arg(long, value_name = "ID", default_value_t = 1)]
    node_id: u64,
    /// The node's organization id (5.x `ORGANIZATION_ID`).
    #[arg(long, value_name = "ID", default_value_t = 1)]
    organization_id: u64,
    /// The collaboration id (5.x `COLLABORATION_ID`).
    #[arg(long, value_name = "ID", default_value_t = 1)]
    collaboration_id: u64,
}

fn parse_step(text: &str) -> Result<FunctionStep, String> {
    FunctionStep::parse(text).ok_or_else(|| {
        let all: Vec<&str> = FunctionStep::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
}

impl TaskArgs {
    /// Whether any task option was given (they mean nothing to `publish` without `--smoke`).
    pub fn given(&self) -> bool {
        self.kwargs.is_some()
            || self.args.is_some()
            || !self.data.is_empty()
            || !self.env.is_empty()
            || self.step.is_some()
            || self.extract.is_some()
            || self.timeout.is_some()
            || self.task_id.is_some()
            || !self.org.is_empty()
            || (self.node_id, self.organization_id, self.collaboration_id) != (1, 1, 1)
    }

    /// With --org, the federation the central function runs over: each organization's
    /// databases, in the order given; as many subtasks at once as there are CPUs.
    fn federation(&self) -> Result<Option<Federation>, Error> {
        if self.org.is_empty() {
            return Ok(None);
        }
        let mut organizations: Vec<Organization> = Vec::new();
        for text in &self.org {
            let bad = || {
                Error::input(
                    format!("--org `{text}` is not ID=PATH[:TYPE] or ID:LABEL=PATH[:TYPE]"),
                    None,
                )
            };
            let (who, location) = text.split_once('=').ok_or_else(bad)?;
            let (id, label) = who.split_once(':').unwrap_or((who, "default"));
            let id: u64 = id.parse().map_err(|_| bad())?;
            let mut data = DataArg::parse(&format!("{label}={location}"))
                .map_err(|m| Error::input(format!("--org {m}"), None))?;
            // Without :TYPE, a file's extension says it (what a node's configuration would).
            if !location.ends_with(":csv") {
                let extension = std::path::Path::new(&data.location).extension();
                match extension.and_then(|e| e.to_str()) {
                    Some("parquet") => data.db_type = "parquet".to_owned(),
                    Some("xlsx" | "xls") => data.db_type = "excel".to_owned(),
                    _ => {}
                }
            }
            match organizations.iter_mut().find(|o| o.id == id) {
                Some(org) if org.data.iter().any(|d| d.label == data.label) => {
                    return Err(Error::input(
                        format!(
                            "--org gives organization {id} two databases labelled `{}`",
                            data.label
                        ),
                        Some(format!("label the others: --org {id}:LABEL=PATH")),
                    ));
                }
                Some(org) => org.data.push(data),
                None => organizations.push(Organization {
                    id,
                    data: vec![data],
                }),
            }
        }
        let central = self.central_org.unwrap_or(organizations[0].id);
        Ok(Some(Federation {
            organizations,
            central,
            jobs: super::default_jobs(),
        }))
    }

    /// The run request for `method` on an image of vantage6 `vantage6`.
    pub fn request(&self, method: &str, vantage6: Vantage6Version) -> Result<RunRequest, Error> {
        let kwargs = match &self.kwargs {
            None => serde_json::Map::new(),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(Error::input(
                        "--kwargs must be a JSON object, e.g. '{\"column\": \"a\"}'",
                        None,
                    ));
                }
                Err(e) => return Err(Error::input(format!("--kwargs is not JSON: {e}"), None)),
            },
        };
        let args = match &self.args {
            None => Vec::new(),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Array(items)) => items,
                Ok(_) => {
                    return Err(Error::input(
                        "--args must be a JSON array, e.g. '[1, \"a\"]'",
                        None,
                    ));
                }
                Err(e) => return Err(Error::input(format!("--args is not JSON: {e}"), None)),
            },
        };
        let data = self
            .data
            .iter()
            .map(|d| DataArg::parse(d).map_err(|m| Error::input(format!("--data {m}"), None)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut env = BTreeMap::new();
        for kv in &self.env {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(Error::input(format!("--env `{kv}` is not K=V"), None));
            };
            crate::vantage6::check_env_name(k)
                .map_err(|e| Error::input(format!("--env: {e}"), None))?;
            env.insert(k.to_owned(), v.to_owned());
        }
        // The --extract runs come first, one per --data, numbered from 1.
        let extractions = if self.extract.is_some() {
            data.len()
        } else {
            0
        };
        let ids = NodeIds {
            task: self.task_id.unwrap_or(
                u64::try_from(extractions)
                    .unwrap_or(u64::MAX)
                    .saturating_add(1),
            ),
            node: self.node_id,
            organization: self.organization_id,
            collaboration: self.collaboration_id,
        };
        Ok(RunRequest {
            vantage6,
            method: method.to_owned(),
            args,
            kwargs,
            data,
            env,
            step: self.step,
            extract: self.extract.clone(),
            timeout: self.timeout.map(Duration::from_secs),
            ids,
            federation: self.federation()?,
            written: crate::run::Written {
                args: self.args.clone(),
                kwargs: self.kwargs.clone(),
            },
        })
    }
}

/// Where the image to run comes from. `B` is what a build needs: v6.toml, then the plan made
/// from it.
enum Source<B> {
    /// `--image`: an image id or a reference the engine has or can pull.
    Given(String),
    /// No `--image`: v6.toml's image, built first.
    Build(B),
}

/// Runs `cargo v6 run`; prints the output as one line of JSON on stdout.
pub fn run(args: Args, reporter: &Reporter) -> Result<(), Error> {
    let platform = match &args.platform {
        Some(text) => Some(
            TargetPlatform::parse(text)
                .map_err(|m| Error::input(format!("--platform {m}"), None))?,
        ),
        None => None,
    };
    let emulated = match &platform {
        Some(platform) if args.emulate || !platform.is_host() => Some(platform.clone()),
        None if args.emulate => Some(TargetPlatform::host()),
        _ => None,
    };
    if emulated.is_some() && args.image.is_none() {
        return Err(Error::input(
            "an emulated run (--emulate, or a --platform not this machine's) reads the image from its registry: pass --image REF",
            Some(
                "publish it first, or run v6.toml's build with the engine (without --platform)"
                    .to_owned(),
            ),
        ));
    }
    // v6.toml: needed to build, and the default vantage6 version of an image given by name.
    let (source, vantage6, wrapper) = match (args.image, &args.vantage6) {
        (Some(image), Some(text)) => (Source::Given(image), parse_vantage6(text)?, None),
        (Some(image), None) => {
            let manifest = args.manifest.load().map_err(|e| match e {
                Error::Manifest(crate::manifest::ManifestError::NotFound { .. }) => Error::input(
                    "the image's vantage6 version is unknown: pass --vantage6 MAJOR.MINOR, or run in a project with v6.toml",
                    None,
                ),
                other => other,
            })?;
            let vantage6 = manifest.vantage6.clone();
            (Source::Given(image), vantage6, Some(manifest.wrapper))
        }
        (None, given) => {
            let manifest = args.manifest.load()?;
            let vantage6 = match given {
                Some(text) => parse_vantage6(text)?,
                None => manifest.vantage6.clone(),
            };
            let wrapper = manifest.wrapper;
            (Source::Build(Box::new(manifest)), vantage6, Some(wrapper))
        }
    };
    let mut request = args.task.request(&args.method, vantage6)?;
    if let (Some(federation), Some(jobs)) = (&mut request.federation, args.jobs) {
        federation.jobs = usize::from(jobs);
    }
    if request.federation.is_some() && emulated.is_some() {
        return Err(Error::input(
            "a federated run (--org) runs its containers in the engine: it cannot be emulated",
            None,
        ));
    }
    // Wrong arguments or data are exit 2 before anything is built or started.
    crate::run::check(&request).map_err(run_error)?;
    if wrapper == Some(Wrapper::R) {
        reporter.warn("the R wrapper (vtg) dates from vantage6 3.x and may not read what a 4.x or 5.x node gives it");
    }
    let source = match source {
        Source::Given(image) => Source::Given(image),
        Source::Build(manifest) => {
            let inputs = args.version.inputs(&manifest)?;
            let plan = Plan::new(&manifest, inputs, RegistryTags::offline())?;
            for warning in &plan.warnings {
                reporter.warn(warning);
            }
            Source::Build(Box::new(plan))
        }
    };
    super::runtime()?.block_on(async {
        let observer = match args.format.message_format {
            MessageFormat::Json => report::RunProgress::with_json(reporter),
            MessageFormat::Human => report::RunProgress::new(reporter),
        };
        if let (Some(platform), Source::Given(image)) = (&emulated, &source) {
            // No engine: the function runs under qemu-user. A signal ends it through
            // `Runtime::block_on`, which drops it: its process is killed, its folder removed.
            let outcome = crate::run::run_emulated(image, platform, &request, &observer)
                .await
                .map_err(run_error)?;
            return report::run_output(&outcome, reporter);
        }
        let engine = crate::engine::Engine::connect().await?;
        let image = match &source {
            Source::Given(image) => {
                crate::run::ensure_image(&engine, image, platform.as_ref(), &observer)
                    .await
                    .map_err(run_error)?;
                image.clone()
            }
            Source::Build(plan) => {
                let progress = report::PublishProgress::new(reporter);
                crate::publish::build(
                    &engine,
                    plan,
                    std::slice::from_ref(plan.primary_tag()),
                    &progress,
                )
                .await?
            }
        };
        // A signal ends it through `Runtime::block_on`, which removes the container; the
        // work folder goes when the run's future is dropped.
        let outcome = crate::run::run(&engine, &image, &request, &observer)
            .await
            .map_err(run_error)?;
        report::run_output(&outcome, reporter)
    })
}

/// `--vantage6 MAJOR.MINOR`.
fn parse_vantage6(text: &str) -> Result<Vantage6Version, Error> {
    Vantage6Version::parse(text).ok_or_else(|| {
        Error::input(
            format!("invalid --vantage6 `{text}`: write MAJOR.MINOR, e.g. 4.15"),
            None,
        )
    })
}

/// A run's error, with its exit code: 2 for a wrong request, 1 for anything else (also for
/// `publish --smoke`).
pub(super) fn run_error(error: RunError) -> Error {
    match error {
        RunError::Input { message, help } => Error::Input {
            message,
            location: None,
            help,
        },
        RunError::Engine(e) => match e.to_string() {
            // The engine is elsewhere: it cannot see this machine's files.
            text if text.contains("bind source path does not exist") => Error::Failed {
                message: text,
                help: Some("`run` mounts files of this machine: use an engine on this machine (DOCKER_HOST)".to_owned()),
            },
            _ => Error::from(e),
        },
        RunError::Emulation(crate::run::emulated::EmulationError::Registry(e)) => {
            Error::Registry(e)
        }
        other => Error::Failed {
            help: crate::error::run_help(&other),
            message: other.to_string(),
        },
    }
}
