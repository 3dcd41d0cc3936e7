//! Building: the context streamed to the engine as a tar written on a blocking thread, the
//! build's output turned into [`BuildEvent`]s, and the local tags of what was built.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bollard::body_try_stream;
use bollard::errors::Error as BollardError;
use bollard::models::BuildInfo;
use bollard::query_parameters::{BuildImageOptionsBuilder, BuilderVersion, TagImageOptionsBuilder};
use futures_util::{Stream, StreamExt, stream};
use tokio_util::bytes::Bytes;
use tokio_util::io::{ReaderStream, SyncIoBridge};

use super::context_tar::{self, ContextSpec, TarError};
use super::leftovers::{self, Leftover};
use super::{BUILD_TIMEOUT, Engine, EngineError, api_message};
use crate::oci::reference::TaggedImage;

/// Capacity of the pipe between the tar writer and the request body; also the write buffer.
const PIPE_CAPACITY: usize = 256 * 1024;

/// How many output lines of the current build step a [`EngineError::BuildStep`] keeps.
const KEPT_STEP_LINES: usize = 30;

/// What to build: the caller has already selected the context files and rendered the
/// Dockerfile; this module only ships them.
#[derive(Debug, Clone, Copy)]
pub struct BuildRequest<'a> {
    /// The context root; `files` are relative to it.
    pub context_dir: &'a Path,
    /// Selected files, directories and symlinks: relative, `/`-separated. Symlinks are sent
    /// as symlinks. A `.dockerignore` among them is sent with one line appended (see
    /// [`Engine::build`]).
    pub files: &'a [String],
    /// Name of the rendered Dockerfile at the context root, e.g. `.cargo-v6.Dockerfile`: a
    /// plain file name without glob characters. A selected file of that name is not sent.
    pub dockerfile_name: &'a str,
    /// The rendered Dockerfile, added to the context from memory.
    pub dockerfile: &'a str,
    /// The references to tag the result with; may be empty.
    pub tags: &'a [TaggedImage],
    /// `--build-arg`s.
    pub build_args: &'a BTreeMap<String, String>,
    /// Labels passed as build parameters (the classic builder adds one step per label, so the
    /// plan puts what it can into one `LABEL` instruction of the Dockerfile instead).
    pub labels: &'a BTreeMap<String, String>,
    /// Network mode of RUN steps (`host` when an engine without bridge must reach PyPI).
    pub network: Option<&'a str>,
    /// Target platform, e.g. `linux/amd64`.
    pub platform: Option<&'a str>,
    /// What the fingerprint saw of each file: the bytes sent are compared with it, and a file
    /// that changed fails the build. `None` sends the files as they are.
    pub expected: Option<&'a [crate::fingerprint::FileDigest]>,
}

/// Build progress, in the order the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A Dockerfile instruction starts (`Step 3/5 : RUN pip install .`).
    Step {
        /// 1-based step number.
        number: usize,
        /// Number of steps in the Dockerfile.
        total: usize,
        /// The instruction as the engine prints it (`RUN pip install .`).
        instruction: String,
    },
    /// One line of output: a RUN step's output or the builder's own remarks
    /// (` ---> Running in ...`). Without its newline.
    Output(String),
    /// A status message, e.g. pulling the base image (`<layer>: Downloading`).
    Status(String),
}

impl Engine {
    /// Builds with the classic builder, streaming the context, and tags the result with every
    /// reference in `request.tags`. Returns the image id (`sha256:...`).
    ///
    /// The context holds the selected files, the rendered Dockerfile and a `.dockerignore`
    /// that makes the engine drop the rendered Dockerfile before COPY: the user's own
    /// `.dockerignore` with one line naming the Dockerfile appended (the only difference a
    /// user can see, inside the image if their rules do not exclude `.dockerignore`), or a
    /// generated one that also excludes itself.
    pub async fn build(
        &self,
        request: &BuildRequest<'_>,
        on_event: &mut (dyn FnMut(BuildEvent) + Send),
    ) -> Result<String, EngineError> {
        context_tar::validate_dockerfile_name(request.dockerfile_name)
            .map_err(|message| EngineError::Dockerfile { message })?;
        let labels: HashMap<&str, &str> = request
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let build_args: HashMap<&str, &str> = request
            .build_args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut options = BuildImageOptionsBuilder::new()
            .dockerfile(request.dockerfile_name)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .buildargs(&build_args)
            .version(BuilderVersion::BuilderV1);
        let first_tag = request.tags.first().map(ToString::to_string);
        if let Some(first) = &first_tag {
            options = options.t(first);
        }
        if let Some(network) = request.network {
            options = options.networkmode(network);
        }
        if let Some(platform) = request.platform {
            options = options.platform(platform);
        }

        let spec = ContextSpec {
            context_dir: request.context_dir.to_owned(),
            files: request.files.to_vec(),
            dockerfile_name: request.dockerfile_name.to_owned(),
            dockerfile: request.dockerfile.to_owned(),
            expected: request.expected.map(|digests| {
                digests
                    .iter()
                    .map(|d| (d.path.clone(), d.clone()))
                    .collect()
            }),
        };
        let context_failure = Arc::new(Mutex::new(None));
        let body = context_body(spec, Arc::clone(&context_failure));
        let docker = self.docker.clone().with_timeout(BUILD_TIMEOUT);
        let mut stream = docker.build_image(options.build(), None, Some(body_try_stream(body)));

        let mut progress = BuildProgress::default();
        let mut image_id = None;
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(id) = info.aux.as_ref().and_then(|aux| aux.id.clone()) {
                        image_id = Some(id);
                    }
                    progress.on_info(info, on_event);
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        drop(stream);
        progress.flush(on_event);
        // A broken context explains any engine error that followed it.
        if let Some(err) = take_failure(&context_failure) {
            return Err(err);
        }
        if let Some(err) = failure {
            return Err(progress.into_error(err));
        }
        let image_id = image_id
            .ok_or_else(|| EngineError::Api("the build finished without an image id".into()))?;
        for reference in request.tags.iter().skip(1) {
            self.tag(&image_id, reference).await?;
        }
        Ok(image_id)
    }

    /// Tags `image_id` (or any reference) as `reference`.
    pub async fn tag(&self, image_id: &str, reference: &TaggedImage) -> Result<(), EngineError> {
        let repository = reference.image.to_string();
        let tag = reference.tag.as_str();
        let options = TagImageOptionsBuilder::new()
            .repo(&repository)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image_id, Some(options))
            .await
            .map_err(|err| {
                let request = format!("tag {image_id} as {repository}:{tag}");
                self.failed(self.answer_limit(), request, err)
            })
    }

    /// Marks the local tag `reference` as temporary: when a signal ends the process before
    /// [`Engine::remove_tag`] removed it, [`remove_leftovers`](super::remove_leftovers) does. Mark it before the build
    /// that makes it: a signal may come between the engine's tagging and the build's end.
    pub fn mark_temporary(&self, reference: &TaggedImage) {
        self.mark_temporary_reference(&reference.to_string());
    }

    /// [`Engine::mark_temporary`] for any reference (`IMAGE@DIGEST`, pulled for a smoke run).
    pub fn mark_temporary_reference(&self, reference: &str) {
        leftovers::remember(&self.docker, Leftover::Tag(reference.to_string()));
    }

    /// Removes the local tag `reference` (not the image, while other tags name it); a tag that
    /// does not exist is not an error.
    pub async fn remove_tag(&self, reference: &TaggedImage) -> Result<(), EngineError> {
        self.remove_reference(&reference.to_string()).await
    }

    /// [`Engine::remove_tag`] for any reference (`IMAGE@DIGEST`).
    pub async fn remove_reference(&self, reference: &str) -> Result<(), EngineError> {
        let reference = reference.to_string();
        // Untagged parents stay: they are the build cache that a concurrent build (another
        // member of a workspace, another job on this engine) may be building on right now;
        // pruning them makes that build fail with "unable to find image".
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
            .noprune(true)
            .build();
        let request = format!("remove {reference}");
        let name = reference.clone();
        self.clean_up(Leftover::Tag(reference), request, |docker| async move {
            docker.remove_image(&name, Some(options), None).await
        })
        .await
    }

    /// The labels of a local image, or `None` when no such image exists.
    pub async fn image_labels(
        &self,
        reference: &str,
    ) -> Result<Option<BTreeMap<String, String>>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(
                image
                    .config
                    .and_then(|config| config.labels)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            )),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(self.failed(self.answer_limit(), format!("inspect {reference}"), err)),
        }
    }
}

/// The request body of a build: the tar written on a blocking thread into a pipe, read as a
/// byte stream. When the writer fails for a context file, the error is stored in `failure`
/// and also ends the body with an `Err`, which aborts the request: closing the pipe alone
/// would look like a complete (truncated) context to the engine.
fn context_body(
    spec: ContextSpec,
    failure: Arc<Mutex<Option<EngineError>>>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (reader, writer) = tokio::io::duplex(PIPE_CAPACITY);
    // Created here, inside the runtime: the bridge captures the runtime handle.
    let bridge = SyncIoBridge::new(writer);
    let writer_task = tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(PIPE_CAPACITY, bridge);
        let out = context_tar::write_context(&spec, out)?;
        let mut bridge = out
            .into_inner()
            .map_err(|err| TarError::Sink(err.into_error()))?;
        bridge.shutdown().map_err(TarError::Sink)
    });
    let outcome = stream::once(async move {
        let err = match writer_task.await {
            Ok(Ok(())) => return None,
            Ok(Err(TarError::Source { path, source })) => EngineError::Io { path, source },
            Ok(Err(TarError::Changed { path, what })) => EngineError::ContextChanged { path, what },
            // The request is gone already; its own error is the one to report.
            Ok(Err(err @ TarError::Sink(_))) => return Some(Err(std::io::Error::other(err))),
            Err(join) => EngineError::Api(format!("the build context writer failed: {join}")),
        };
        let message = err.to_string();
        *failure.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(err);
        Some(Err(std::io::Error::other(message)))
    })
    .filter_map(std::future::ready);
    ReaderStream::new(reader).chain(outcome)
}

fn take_failure(failure: &Mutex<Option<EngineError>>) -> Option<EngineError> {
    failure
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .take()
}

/// Turns the build stream's chunks into lines and events, and remembers the current step and
/// its last output lines for [`EngineError::BuildStep`]. The engine sends `Step n/m : ...`
/// and its newline as separate chunks, so chunks are joined into lines first.
#[derive(Default)]
struct BuildProgress {
    partial: String,
    step: Option<String>,
    step_output: VecDeque<String>,
}

impl BuildProgress {
    fn on_info(&mut self, info: BuildInfo, on_event: &mut (dyn FnMut(BuildEvent) + Send)) {
        if let Some(text) = info.stream {
            self.partial.push_str(&text);
            while let Some(end) = self.partial.find('\n') {
                let line: String = self.partial.drain(..=end).collect();
                self.line(line.trim_end_matches(['\n', '\r']), on_event);
            }
        }
        if let Some(status) = info.status {
            on_event(BuildEvent::Status(match info.id {
                Some(id) => format!("{id}: {status}"),
                None => status,
            }));
        }
    }

    fn flush(&mut self, on_event: &mut (dyn FnMut(BuildEvent) + Send)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(line.trim_end_matches('\r'), on_event);
        }
    }

    fn line(&mut self, line: &str, on_event: &mut (dyn FnMut(BuildEvent) + Send)) {
        let line = strip_colors(line);
        if let Some((number, total, instruction)) = parse_step(&line) {
            self.step = Some(line.clone());
            self.step_output.clear();
            on_event(BuildEvent::Step {
                number,
                total,
                instruction: instruction.to_owned(),
            });
            return;
        }
        // The builder's own remarks say nothing about why a step failed.
        let remark =
            line.starts_with(" ---> ") || line.starts_with("Removing intermediate container ");
        if !remark {
            if self.step_output.len() == KEPT_STEP_LINES {
                self.step_output.pop_front();
            }
            self.step_output.push_back(line.clone());
        }
        on_event(BuildEvent::Output(line));
    }

    fn into_error(self, err: BollardError) -> EngineError {
        match err {
            BollardError::DockerStreamError { error } => match self.step {
                Some(step) => EngineError::BuildStep {
                    step,
                    output: Vec::from(self.step_output).join("\n"),
                    message: error,
                },
                None => EngineError::Api(format!("the build failed: {error}")),
            },
            BollardError::DockerResponseServerError {
                status_code: 400,
                message,
            } => EngineError::Dockerfile { message },
            other => EngineError::Api(format!("the build failed: {}", api_message(other))),
        }
    }
}

/// Removes ANSI colour sequences (`ESC [ ... m`): the classic builder wraps a RUN step's
/// stderr in `ESC[91m` ... `ESC[0m`, which would otherwise end up in messages and JSON.
fn strip_colors(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("\x1b[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[params..].starts_with('m') {
            rest = &after[params + 1..];
        } else {
            out.push('\x1b');
            rest = &rest[start + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// `Step 3/5 : RUN false` -> (3, 5, "RUN false").
fn parse_step(line: &str) -> Option<(usize, usize, &str)> {
    let (counts, instruction) = line.strip_prefix("Step ")?.split_once(" : ")?;
    let (number, total) = counts.split_once('/')?;
    Some((number.parse().ok()?, total.parse().ok()?, instruction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_lines_are_parsed() {
        assert_eq!(
            parse_step("Step 3/5 : RUN false"),
            Some((3, 5, "RUN false"))
        );
        assert_eq!(
            parse_step("Step 12/12 : COPY . /app"),
            Some((12, 12, "COPY . /app"))
        );
        assert_eq!(parse_step(" ---> Running in 1234"), None);
        assert_eq!(parse_step("Step x/5 : RUN"), None);
    }

    #[test]
    fn colour_sequences_are_removed() {
        assert_eq!(strip_colors("\x1b[91mtwo"), "two");
        assert_eq!(strip_colors("\x1b[0mRemoving x"), "Removing x");
        assert_eq!(strip_colors("a\x1b[1;31mb\x1b[0m"), "ab");
        assert_eq!(strip_colors("lone \x1b here"), "lone \x1b here");
    }

    #[test]
    fn build_output_is_split_into_lines_and_a_failing_step_keeps_its_output() {
        let mut events = Vec::new();
        let mut progress = BuildProgress::default();
        let chunks = [
            "Step 1/2 : FROM x",
            "\n",
            " ---> abc\n",
            "Step 2/2 : RUN false",
            "\n",
            " ---> Running in 123\n",
        ];
        let mut on_event = |e| events.push(e);
        for chunk in chunks.into_iter().chain(["partial ", "line\nunterminated"]) {
            let info = BuildInfo {
                stream: Some(chunk.into()),
                ..BuildInfo::default()
            };
            progress.on_info(info, &mut on_event);
        }
        progress.flush(&mut on_event);
        let err = progress.into_error(BollardError::DockerStreamError {
            error: "returned a non-zero code: 1".into(),
        });
        assert_eq!(
            events,
            [
                BuildEvent::Step {
                    number: 1,
                    total: 2,
                    instruction: "FROM x".into()
                },
                BuildEvent::Output(" ---> abc".into()),
                BuildEvent::Step {
                    number: 2,
                    total: 2,
                    instruction: "RUN false".into()
                },
                BuildEvent::Output(" ---> Running in 123".into()),
                BuildEvent::Output("partial line".into()),
                BuildEvent::Output("unterminated".into()),
            ]
        );
        match err {
            EngineError::BuildStep {
                step,
                output,
                message,
            } => {
                assert_eq!(step, "Step 2/2 : RUN false");
                assert_eq!(output, "partial line\nunterminated");
                assert_eq!(message, "returned a non-zero code: 1");
            }
            other => panic!("{other:?}"),
        }
    }
}
