//! Containers: pull an image, create, start, follow the logs, wait, remove.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bollard::errors::Error as BollardError;
use futures_util::StreamExt;

use super::leftovers::{self, Leftover};
use super::push::{push_message, registry_auth};
use super::{BUILD_TIMEOUT, Engine, EngineError, api_message, next_within, short_id};
use crate::credentials::Credentials;

/// One container to run: what the algorithm runs ([`Engine::create_container`]).
#[derive(Debug, Clone, Copy)]
pub struct ContainerSpec<'a> {
    /// Image id or reference, present in the engine.
    pub image: &'a str,
    /// The container's name (unique per run).
    pub name: &'a str,
    /// Environment variables.
    pub env: &'a BTreeMap<String, String>,
    /// Bind mounts.
    pub binds: &'a [Bind],
    /// Paths mounted as empty tmpfs.
    pub tmpfs: &'a [String],
    /// Network mode: `none` for no network at all.
    pub network: &'a str,
    /// Labels, to find the container again.
    pub labels: &'a BTreeMap<String, String>,
    /// Run with a pseudo-terminal (stdout and stderr then arrive as one stream).
    pub tty: bool,
}

/// A host path bind-mounted into a container. Needs an engine on this machine: the path is
/// the engine host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Absolute path on the engine's host.
    pub host: PathBuf,
    /// Absolute path inside the container.
    pub container: String,
    /// Read-only.
    pub read_only: bool,
}

/// One line a container wrote, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// On stdout.
    Stdout(String),
    /// On stderr.
    Stderr(String),
}

impl LogLine {
    /// The text.
    pub fn text(&self) -> &str {
        match self {
            LogLine::Stdout(line) | LogLine::Stderr(line) => line,
        }
    }
}

/// Containers: pull, create, start, follow the logs, wait, remove.
impl Engine {
    /// Pulls `reference` (`name:tag`, `name@sha256:...`) with `credentials` for its registry:
    /// the image for `platform` (`linux/amd64`) of an index, or the engine's own by default.
    pub async fn pull(
        &self,
        reference: &crate::oci::reference::ImageRef,
        platform: Option<&str>,
        credentials: Option<&Credentials>,
        on_status: &mut (dyn FnMut(String) + Send),
    ) -> Result<(), EngineError> {
        let registry = reference.name.domain();
        let text = reference.to_string();
        let auth = registry_auth(registry, credentials);
        let mut options =
            bollard::query_parameters::CreateImageOptionsBuilder::new().from_image(&text);
        if let Some(platform) = platform {
            options = options.platform(platform);
        }
        let options = options.build();
        let docker = self.docker.clone().with_timeout(BUILD_TIMEOUT);
        let mut stream = docker.create_image(Some(options), None, auth);
        // The engine reports a pull's progress all along: a long silence is a stall.
        let limit = self.answer_limit();
        loop {
            let next = next_within(&mut stream, limit).await.map_err(|limit| {
                EngineError::Api(format!(
                    "cannot pull {text}: no progress for {} s ({}): the registry {registry}, \
                     or the engine, stopped answering",
                    limit.after.as_secs(),
                    limit.name
                ))
            })?;
            let Some(item) = next else { break };
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        // The registry's error, as the engine relays it: it may echo the
                        // credentials the engine sent.
                        let detail = crate::credentials::redact(&detail, credentials);
                        return Err(EngineError::Api(format!("cannot pull {text}: {detail}")));
                    }
                    if let Some(status) = info.status {
                        on_status(match info.id {
                            Some(id) => format!("{id}: {status}"),
                            None => status,
                        });
                    }
                }
                Err(err) => {
                    return Err(EngineError::Api(format!(
                        "cannot pull {text}: {}",
                        push_message(registry, credentials, err)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The environment (`K=V`) a local image sets, or `None` when no such image exists.
    pub async fn image_env(&self, reference: &str) -> Result<Option<Vec<String>>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(
                image
                    .config
                    .and_then(|config| config.env)
                    .unwrap_or_default(),
            )),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(self.failed(self.answer_limit(), format!("inspect {reference}"), err)),
        }
    }

    /// Creates (does not start) a container; returns its id.
    pub async fn create_container(&self, spec: &ContainerSpec<'_>) -> Result<String, EngineError> {
        use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
        let mounts = spec
            .binds
            .iter()
            .map(|bind| Mount {
                source: Some(bind.host.to_string_lossy().into_owned()),
                target: Some(bind.container.clone()),
                typ: Some(MountType::BIND),
                read_only: Some(bind.read_only),
                ..Mount::default()
            })
            .collect();
        let tmpfs = spec
            .tmpfs
            .iter()
            .map(|path| (path.clone(), String::new()))
            .collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.to_owned()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(
                spec.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(spec.tty),
            host_config: Some(HostConfig {
                network_mode: Some(spec.network.to_owned()),
                mounts: Some(mounts),
                tmpfs: Some(tmpfs),
                ..HostConfig::default()
            }),
            ..ContainerCreateBody::default()
        };
        let options = bollard::query_parameters::CreateContainerOptionsBuilder::new()
            .name(spec.name)
            .build();
        // Remembered by name before it exists: a signal during the request (which copies the
        // image on some storage drivers) must not leave it behind.
        let named = Leftover::Container(spec.name.to_owned());
        leftovers::remember(&self.docker, named.clone());
        let created = self.docker.create_container(Some(options), body).await;
        leftovers::forget(&named);
        let id = created.map(|created| created.id).map_err(|err| {
            let request = format!("create a container of {}", spec.image);
            self.failed(self.answer_limit(), request, err)
        })?;
        leftovers::remember(&self.docker, Leftover::Container(id.clone()));
        Ok(id)
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker.start_container(id, None).await.map_err(|err| {
            let request = format!("start container {}", short_id(id));
            self.failed(self.answer_limit(), request, err)
        })
    }

    /// Follows a container's stdout and stderr from its start until it exits, line by line.
    pub async fn follow_logs(
        &self,
        id: &str,
        on_line: &mut (dyn FnMut(LogLine) + Send),
    ) -> Result<(), EngineError> {
        use bollard::container::LogOutput;
        let options = bollard::query_parameters::LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut out = Vec::new();
        let mut err = Vec::new();
        let failure = loop {
            let Some(item) = stream.next().await else {
                break None;
            };
            match item {
                Ok(LogOutput::StdErr { message }) => {
                    split_lines(&mut err, &message, &mut |l| on_line(LogLine::Stderr(l)))
                }
                Ok(
                    LogOutput::StdOut { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message },
                ) => split_lines(&mut out, &message, &mut |l| on_line(LogLine::Stdout(l))),
                Err(e) => break Some(e),
            }
        };
        if !out.is_empty() {
            on_line(LogLine::Stdout(decode_line(&out)));
        }
        if !err.is_empty() {
            on_line(LogLine::Stderr(decode_line(&err)));
        }
        match failure {
            None => Ok(()),
            Some(e) => Err(EngineError::Api(format!(
                "cannot read the logs of container {}: {}",
                short_id(id),
                api_message(e)
            ))),
        }
    }

    /// Waits until a container stops; returns its exit code.
    pub async fn wait_container(&self, id: &str) -> Result<i64, EngineError> {
        let docker = self.docker.clone().with_timeout(BUILD_TIMEOUT);
        let mut stream = docker.wait_container(id, None);
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard turns a non-zero exit into an error; it is an answer here.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(err)) => Err(EngineError::Api(format!(
                "cannot wait for container {}: {}",
                short_id(id),
                api_message(err)
            ))),
            None => Err(EngineError::Api(format!(
                "the engine did not say how container {} ended",
                short_id(id)
            ))),
        }
    }

    /// Removes a container, stopping it first if it runs; one that is gone is not an error.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        let request = format!("remove container {}", short_id(id));
        let leftover = Leftover::Container(id.to_owned());
        self.clean_up(leftover, request, |docker| async move {
            docker.remove_container(id, Some(options)).await
        })
        .await
    }
}

/// Appends `bytes` to `partial` and hands every complete line to `on_line` (a character split
/// between two chunks is joined before it is decoded).
fn split_lines(partial: &mut Vec<u8>, bytes: &[u8], on_line: &mut dyn FnMut(String)) {
    partial.extend_from_slice(bytes);
    while let Some(end) = partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = partial.drain(..=end).collect();
        on_line(decode_line(&line));
    }
}

fn decode_line(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    text.trim_end_matches(['\n', '\r']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_output_is_split_into_lines_across_chunks() {
        let mut partial = Vec::new();
        let mut lines = Vec::new();
        // "é" split between two chunks, a CRLF, and an unterminated tail.
        for chunk in [&b"info > a\nin\xc3"[..], b"\xa9\r\n", b"tail"] {
            split_lines(&mut partial, chunk, &mut |l| lines.push(l));
        }
        assert_eq!(lines, ["info > a", "iné"]);
        assert_eq!(decode_line(&partial), "tail");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
