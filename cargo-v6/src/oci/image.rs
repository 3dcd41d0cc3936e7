//! An image config derived from its base's, as `docker build` derives it for the instructions
//! that change only the config (`ENV`, `LABEL`, `CMD`, `ENTRYPOINT`, `WORKDIR`, `EXPOSE`,
//! `USER`) and for the layers added: part 13 assembles an image without an engine, and its
//! config must say what the engine's would, so that a node runs it the same way.
//!
//! Everything of the base that no instruction changes is kept as the base has it (its
//! history, its `rootfs`, fields this module does not know). The output is the JSON of a
//! `serde_json::Value`: its maps are `BTreeMap`s (serde_json without `preserve_order`, which
//! nothing in this crate's build enables; a test checks it), so the keys are written sorted,
//! with no insignificant whitespace, and the same inputs give the same bytes on any machine.

use serde_json::{Map, Value, json};

use super::manifest::Platform;
use super::reference::Digest;

/// Why a config cannot be derived.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    /// The base's config is not JSON.
    #[error("the base image's config is not JSON: {0}")]
    NotJson(String),
    /// The base's config is JSON but not an object.
    #[error("the base image's config is not a JSON object")]
    NotAnObject,
    /// The base's config has no `rootfs.diff_ids` list: not an image config.
    #[error("the base image's config has no `rootfs.diff_ids` list: it is not an image config")]
    NoRootfs,
    /// A field the instructions change has another type in the base's config.
    #[error("the base image's config has `{field}` that is not {expected}")]
    Field {
        /// The field (`config.Env`).
        field: &'static str,
        /// What it should be (`a list of strings`).
        expected: &'static str,
    },
    /// `created` is not an RFC 3339 UTC time (`2024-05-01T12:00:00Z`).
    #[error("`{0}` is not an RFC 3339 UTC time such as 2024-05-01T12:00:00Z")]
    Created(String),
    /// An `ENV` name that is empty or holds `=`.
    #[error("`{0}` is not an environment variable name")]
    EnvName(String),
    /// An empty `WORKDIR`.
    #[error("WORKDIR needs a path")]
    Workdir,
    /// An `EXPOSE` that is not `PORT[-PORT][/tcp|udp|sctp]`.
    #[error("`{0}` is not a port to expose (PORT, PORT/PROTOCOL or FIRST-LAST/PROTOCOL)")]
    Port(String),
}

/// A command of `CMD` or `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The exec form, `["python", "-m", "app"]`: the arguments as given.
    Exec(Vec<String>),
    /// The shell form, `python -m app`: run by the config's `Shell`, `["/bin/sh", "-c"]`
    /// unless the base sets another, as docker does.
    Shell(String),
}

/// One instruction of the Dockerfile an image is assembled from, as it changes the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `ENV NAME=VALUE`: replaces the variable in place when the config has it, else appends.
    Env(String, String),
    /// `LABEL KEY=VALUE`, into `config.Labels`.
    Label(String, String),
    /// `CMD`: replaces `config.Cmd`.
    Cmd(Command),
    /// `ENTRYPOINT`: replaces `config.Entrypoint`, and clears a `Cmd` that no earlier `CMD`
    /// of these instructions set (it came from the base), as docker does.
    Entrypoint(Command),
    /// `WORKDIR`: absolute, or joined to the current one.
    Workdir(String),
    /// `EXPOSE 80`, `EXPOSE 53/udp`, `EXPOSE 8000-8002/tcp`, into `config.ExposedPorts`.
    Expose(String),
    /// `USER`.
    User(String),
    /// A layer added (a `COPY`, an install): its diff id goes into `rootfs.diff_ids`.
    Layer {
        /// The sha256 of the layer's tar ([`super::layer::LayerDigests::diff_id`]).
        diff_id: Digest,
    },
}

/// The config of an image made from the base whose config is `base` by `steps` (each with its
/// history line, `created_by`, in Dockerfile order), for `platform`, created at `created` (an
/// RFC 3339 UTC time, from `SOURCE_DATE_EPOCH`): JSON with sorted keys and no whitespace.
///
/// Each step adds a history entry at `created`; those of config-only instructions have
/// `"empty_layer": true`, as docker writes them. The config's `created` is `created`, and its
/// `architecture`, `os` and `variant` are the platform's.
pub fn derive_config(
    base: &[u8],
    platform: &Platform,
    created: &str,
    steps: &[(String, Instruction)],
) -> Result<Vec<u8>, ImageError> {
    check_created(created)?;
    let mut config: Value =
        serde_json::from_slice(base).map_err(|e| ImageError::NotJson(e.to_string()))?;
    let root = config.as_object_mut().ok_or(ImageError::NotAnObject)?;
    if !root
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .is_some_and(Value::is_array)
    {
        return Err(ImageError::NoRootfs);
    }
    // Whether a CMD of these steps set `Cmd`, which a later ENTRYPOINT then keeps.
    let mut cmd_set = false;
    for (created_by, instruction) in steps {
        let mut entry = json!({"created": created, "created_by": created_by});
        if let Instruction::Layer { diff_id } = instruction {
            root["rootfs"]["diff_ids"]
                .as_array_mut()
                .expect("checked above")
                .push(json!(diff_id.as_str()));
        } else {
            apply(object(root, "config", "config")?, instruction, &mut cmd_set)?;
            entry["empty_layer"] = json!(true);
        }
        array(root, "history", "history", "a list")?.push(entry);
    }
    root.insert("created".into(), json!(created));
    let platform = serde_json::to_value(platform).expect("a platform serializes");
    for key in ["architecture", "os", "variant"] {
        match platform.get(key) {
            Some(value) => root.insert(key.into(), value.clone()),
            None => root.remove(key),
        };
    }
    Ok(serde_json::to_vec(&config).expect("JSON values serialize"))
}

/// Applies a config-only `instruction` to the container config `config`.
fn apply(
    config: &mut Map<String, Value>,
    instruction: &Instruction,
    cmd_set: &mut bool,
) -> Result<(), ImageError> {
    match instruction {
        Instruction::Env(name, value) => {
            if name.is_empty() || name.contains('=') {
                return Err(ImageError::EnvName(name.clone()));
            }
            let env = array(config, "Env", "config.Env", "a list of strings")?;
            let line = json!(format!("{name}={value}"));
            let same = |entry: &Value| {
                entry
                    .as_str()
                    .is_some_and(|e| e.split('=').next() == Some(name.as_str()))
            };
            match env.iter_mut().find(|entry| same(entry)) {
                Some(entry) => *entry = line,
                None => env.push(line),
            }
        }
        Instruction::Label(key, value) => {
            object(config, "Labels", "config.Labels")?.insert(key.clone(), json!(value));
        }
        Instruction::Cmd(command) => {
            let cmd = resolve(config, command)?;
            config.insert("Cmd".into(), cmd);
            *cmd_set = true;
        }
        Instruction::Entrypoint(command) => {
            let entrypoint = resolve(config, command)?;
            config.insert("Entrypoint".into(), entrypoint);
            if !*cmd_set {
                // Docker writes the cleared `Cmd` as null.
                config.insert("Cmd".into(), Value::Null);
            }
        }
        Instruction::Workdir(path) => {
            let current = match config.get("WorkingDir") {
                Some(Value::String(dir)) => dir.as_str(),
                Some(Value::Null) | None => "",
                Some(_) => {
                    return Err(ImageError::Field {
                        field: "config.WorkingDir",
                        expected: "a string",
                    });
                }
            };
            let dir = workdir(current, path)?;
            config.insert("WorkingDir".into(), json!(dir));
        }
        Instruction::Expose(spec) => {
            let ports = object(config, "ExposedPorts", "config.ExposedPorts")?;
            for port in ports_of(spec)? {
                ports.insert(port, json!({}));
            }
        }
        Instruction::User(user) => {
            config.insert("User".into(), json!(user));
        }
        // A layer changes `rootfs`, which the caller writes; the config is left as it is.
        Instruction::Layer { .. } => {}
    }
    Ok(())
}

/// A command as the config holds it: the exec form as given; the shell form after the
/// config's `Shell` (docker's `/bin/sh -c` when it sets none).
fn resolve(config: &Map<String, Value>, command: &Command) -> Result<Value, ImageError> {
    match command {
        Command::Exec(args) => Ok(json!(args)),
        Command::Shell(line) => {
            let shell = match config.get("Shell") {
                Some(Value::Array(shell)) if !shell.is_empty() => shell.clone(),
                Some(Value::Array(_) | Value::Null) | None => vec![json!("/bin/sh"), json!("-c")],
                Some(_) => {
                    return Err(ImageError::Field {
                        field: "config.Shell",
                        expected: "a list of strings",
                    });
                }
            };
            let mut command = shell;
            command.push(json!(line));
            Ok(Value::Array(command))
        }
    }
}

/// The object at `key` of `parent`, made when absent or null; `field` names it for the error.
fn object<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a mut Map<String, Value>, ImageError> {
    let value = parent.entry(key).or_insert(Value::Null);
    if value.is_null() {
        *value = json!({});
    }
    value.as_object_mut().ok_or(ImageError::Field {
        field,
        expected: "an object",
    })
}

/// The list at `key` of `parent`, made when absent or null; `field` names it for the error.
fn array<'a>(
    parent: &'a mut Map<String, Value>,
    key: &str,
    field: &'static str,
    expected: &'static str,
) -> Result<&'a mut Vec<Value>, ImageError> {
    let value = parent.entry(key).or_insert(Value::Null);
    if value.is_null() {
        *value = json!([]);
    }
    value
        .as_array_mut()
        .ok_or(ImageError::Field { field, expected })
}

/// The working directory after `WORKDIR requested` from `current`: an absolute path cleaned,
/// a relative one joined to `current` (`/` when none), as docker's `normalizeWorkdir`.
fn workdir(current: &str, requested: &str) -> Result<String, ImageError> {
    if requested.is_empty() {
        return Err(ImageError::Workdir);
    }
    let joined = match requested.starts_with('/') {
        true => requested.to_owned(),
        false => format!("{current}/{requested}"),
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The `ExposedPorts` keys of an `EXPOSE` word: `80` is `80/tcp`, the protocol lowercased, a
/// range one key per port (as docker's `nat.ParsePortSpecs`).
fn ports_of(spec: &str) -> Result<Vec<String>, ImageError> {
    let refuse = || ImageError::Port(spec.to_owned());
    let (ports, protocol) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let protocol = protocol.to_ascii_lowercase();
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(refuse());
    }
    let number = |text: &str| {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u16>().ok())
            .flatten()
            .ok_or_else(refuse)
    };
    let (first, last) = match ports.split_once('-') {
        Some((first, last)) => (number(first)?, number(last)?),
        None => (number(ports)?, number(ports)?),
    };
    if first > last {
        return Err(refuse());
    }
    Ok((first..=last).map(|p| format!("{p}/{protocol}")).collect())
}

/// Whether `created` is `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
fn check_created(created: &str) -> Result<(), ImageError> {
    let shape = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
        .expect("the pattern is valid");
    match shape.is_match(created) {
        true => Ok(()),
        false => Err(ImageError::Created(created.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{Arch, Os, PlatformBuilder};

    /// A base config in the engine's own key order (not sorted), with a base CMD, a variant
    /// and a field this module does not know.
    const BASE: &str = r#"{"architecture":"amd64","variant":"v8","os":"linux","config":{"Env":["PATH=/usr/local/bin:/usr/bin","LANG=C.UTF-8"],"Cmd":["python3"],"WorkingDir":"/","Labels":null},"rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) ADD file:x in /"}],"created":"2024-01-01T00:00:00Z","moby.extra":{"z":1,"a":2}}"#;

    const CREATED: &str = "2026-12-01T10:00:00Z";

    fn platform(arch: Arch, variant: Option<&str>) -> Platform {
        let builder = PlatformBuilder::default().os(Os::Linux).architecture(arch);
        match variant {
            Some(v) => builder.variant(v.to_owned()).build().unwrap(),
            None => builder.build().unwrap(),
        }
    }

    fn derive(steps: &[(&str, Instruction)]) -> Value {
        let steps: Vec<(String, Instruction)> = steps
            .iter()
            .map(|(by, i)| (by.to_string(), i.clone()))
            .collect();
        let bytes = derive_config(
            BASE.as_bytes(),
            &platform(Arch::ARM64, None),
            CREATED,
            &steps,
        )
        .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn diff_id(c: char) -> Digest {
        Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    #[test]
    fn the_template_steps_give_dockers_config() {
        let config = derive(&[
            (
                "ENV PKG_NAME=summary",
                Instruction::Env("PKG_NAME".into(), "summary".into()),
            ),
            (
                "ENV LANG=en_US.UTF-8",
                Instruction::Env("LANG".into(), "en_US.UTF-8".into()),
            ),
            (
                "COPY . /app",
                Instruction::Layer {
                    diff_id: diff_id('2'),
                },
            ),
            (
                "LABEL a=1",
                Instruction::Label("org.example.a".into(), "1".into()),
            ),
            (
                "CMD python -c ...",
                Instruction::Cmd(Command::Shell("python -c 'wrap()'".into())),
            ),
            (
                "WORKDIR app",
                Instruction::Workdir("app/../app/./src".into()),
            ),
            ("EXPOSE 80", Instruction::Expose("80".into())),
            ("EXPOSE 53/UDP", Instruction::Expose("53/UDP".into())),
            ("USER 1000", Instruction::User("1000".into())),
        ]);
        let c = &config["config"];
        // ENV replaces in place, appends a new one.
        assert_eq!(
            c["Env"],
            json!([
                "PATH=/usr/local/bin:/usr/bin",
                "LANG=en_US.UTF-8",
                "PKG_NAME=summary"
            ])
        );
        assert_eq!(c["Labels"], json!({"org.example.a": "1"}));
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "python -c 'wrap()'"]));
        assert_eq!(c["WorkingDir"], "/app/src");
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["User"], "1000");
        assert_eq!(
            config["rootfs"]["diff_ids"],
            json!([diff_id('1').as_str(), diff_id('2').as_str()])
        );
        let history = config["history"].as_array().unwrap();
        assert_eq!(history.len(), 10);
        assert_eq!(history[0]["created"], "2024-01-01T00:00:00Z");
        assert_eq!(
            history[1],
            json!({"created": CREATED, "created_by": "ENV PKG_NAME=summary", "empty_layer": true})
        );
        assert_eq!(
            history[3],
            json!({"created": CREATED, "created_by": "COPY . /app"})
        );
        assert_eq!(config["created"], CREATED);
        assert_eq!(config["architecture"], "arm64");
        assert_eq!(config["os"], "linux");
        // The base's variant is not the platform's; what this module does not know stays.
        assert!(config.get("variant").is_none());
        assert_eq!(config["moby.extra"], json!({"z": 1, "a": 2}));
    }

    #[test]
    fn entrypoint_clears_the_base_cmd_but_not_one_set_before_it() {
        let entry = Instruction::Entrypoint(Command::Exec(vec!["/run".into()]));
        let config = derive(&[("ENTRYPOINT", entry.clone())]);
        assert_eq!(config["config"]["Entrypoint"], json!(["/run"]));
        assert_eq!(config["config"]["Cmd"], Value::Null);

        let cmd = Instruction::Cmd(Command::Exec(vec!["--help".into()]));
        let config = derive(&[("CMD", cmd.clone()), ("ENTRYPOINT", entry.clone())]);
        assert_eq!(config["config"]["Cmd"], json!(["--help"]));
        let config = derive(&[("ENTRYPOINT", entry), ("CMD", cmd)]);
        assert_eq!(config["config"]["Cmd"], json!(["--help"]));
    }

    #[test]
    fn the_shell_form_uses_the_base_shell() {
        let base = r#"{"config":{"Shell":["/bin/bash","-lc"]},"rootfs":{"diff_ids":[]}}"#;
        let steps = [(
            "CMD".to_owned(),
            Instruction::Cmd(Command::Shell("run".into())),
        )];
        let bytes = derive_config(
            base.as_bytes(),
            &platform(Arch::Amd64, None),
            CREATED,
            &steps,
        )
        .unwrap();
        let config: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(config["config"]["Cmd"], json!(["/bin/bash", "-lc", "run"]));
        assert_eq!(config["history"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn output_has_sorted_keys_no_whitespace_and_is_the_same_each_time() {
        let steps = [(
            "ENV A=1".to_owned(),
            Instruction::Env("A".into(), "1".into()),
        )];
        let amd = platform(Arch::Amd64, None);
        let bytes = derive_config(BASE.as_bytes(), &amd, CREATED, &steps).unwrap();
        assert_eq!(
            bytes,
            derive_config(BASE.as_bytes(), &amd, CREATED, &steps).unwrap()
        );
        let text = String::from_utf8(bytes.clone()).unwrap();
        // Keys sorted at every level (serde_json's map is a BTreeMap here), compact.
        assert!(text.starts_with(r#"{"architecture":"amd64","config":{"Cmd":["python3"],"Env":"#));
        assert!(text.contains(r#""moby.extra":{"a":2,"z":1}"#));
        assert!(!text.contains(": ") && !text.contains('\n'));
        // Each input changes the bytes.
        let arm = platform(Arch::ARM64, Some("v8"));
        let other = derive_config(BASE.as_bytes(), &arm, CREATED, &steps).unwrap();
        assert_ne!(other, bytes);
        assert!(
            String::from_utf8(other)
                .unwrap()
                .contains(r#""variant":"v8""#)
        );
        let later = derive_config(BASE.as_bytes(), &amd, "2026-12-01T10:00:01Z", &steps);
        assert_ne!(later.unwrap(), bytes);
    }

    #[test]
    fn refusals() {
        let amd = platform(Arch::Amd64, None);
        let derive = |base: &str, created: &str, step: Instruction| {
            derive_config(base.as_bytes(), &amd, created, &[("X".to_owned(), step)])
        };
        let env = || Instruction::Env("A".into(), "1".into());
        assert!(matches!(
            derive("{", CREATED, env()),
            Err(ImageError::NotJson(_))
        ));
        assert_eq!(derive("[]", CREATED, env()), Err(ImageError::NotAnObject));
        assert_eq!(derive("{}", CREATED, env()), Err(ImageError::NoRootfs));
        assert_eq!(
            derive(BASE, "2026-12-01 10:00:00", env()),
            Err(ImageError::Created("2026-12-01 10:00:00".into()))
        );
        let odd = r#"{"config":{"Env":"A=1"},"rootfs":{"diff_ids":[]}}"#;
        assert_eq!(
            derive(odd, CREATED, env()),
            Err(ImageError::Field {
                field: "config.Env",
                expected: "a list of strings"
            })
        );
        assert_eq!(
            derive(BASE, CREATED, Instruction::Env("A=B".into(), "1".into())),
            Err(ImageError::EnvName("A=B".into()))
        );
        assert_eq!(
            derive(BASE, CREATED, Instruction::Workdir(String::new())),
            Err(ImageError::Workdir)
        );
        for port in ["http", "80/quic", "90-80", "70000", "", "80-"] {
            assert_eq!(
                derive(BASE, CREATED, Instruction::Expose(port.into())),
                Err(ImageError::Port(port.into())),
                "{port}"
            );
        }
    }

    #[test]
    fn ports_and_workdirs_as_docker_reads_them() {
        assert_eq!(
            ports_of("8000-8002/tcp").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(ports_of("5000/sctp").unwrap(), ["5000/sctp"]);
        assert_eq!(workdir("", "app").unwrap(), "/app");
        assert_eq!(workdir("/app", "../srv/").unwrap(), "/srv");
        assert_eq!(workdir("/app", "/abs/./x/..").unwrap(), "/abs");
        assert_eq!(workdir("/", "..").unwrap(), "/");
    }
}
