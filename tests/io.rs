//! Engine and registry I/O against the real stack (`scripts/stack up`, its addresses from
//! `scripts/stack env`): the tests that used to sit beside the code, moved here so that
//! `cargo test --lib` needs neither an engine nor a registry, and the registry's round trips,
//! counted by a proxy. They use only the crate's public API, and fail, never skip, when the
//! stack is missing.

#[path = "support/counting_proxy.rs"]
mod counting_proxy;

/// Registry reads and writes against real registries (distribution, as `scripts/stack`
/// starts it). They fail, never skip, when the registries are not configured or not reachable.
mod registry {
    use std::collections::BTreeMap;
    use std::process::Command;

    use cargo_v6::credentials::{CredentialSource, Credentials};
    use cargo_v6::oci::reference::{Digest, ImageName, Tag, TaggedImage};
    use cargo_v6::registry::{ManifestKind, Registry, RegistryError};
    use oci_client::manifest::{
        IMAGE_MANIFEST_LIST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE,
    };
    use sha2::Digest as _;

    /// `repo` of the registry at `host`, as the registry client takes it.
    pub fn image(host: &str, repo: &str) -> ImageName {
        ImageName::parse(&format!("{host}/{repo}")).unwrap()
    }

    /// `tag` of `repo` of the registry at `host`.
    pub fn at(host: &str, repo: &str, tag: &str) -> TaggedImage {
        image(host, repo).with_tag(&self::tag(tag))
    }

    /// A tag.
    pub fn tag(tag: &str) -> Tag {
        Tag::parse(tag).unwrap()
    }

    /// A variable the live tests need, with a message saying how to provide it.
    fn required(var: &str) -> String {
        std::env::var(var).unwrap_or_else(|_| {
            panic!(
                "{var} is not set: the registry tests need V6_TEST_REGISTRY (open), \
                 V6_TEST_AUTH_REGISTRY, V6_TEST_AUTH_USER and V6_TEST_AUTH_PASSWORD \
                 (htpasswd), e.g. from scripts/stack"
            )
        })
    }

    pub(crate) fn open_registry() -> String {
        required("V6_TEST_REGISTRY")
    }

    /// The htpasswd registry and its right credentials.
    pub(crate) fn auth_registry() -> (String, String, String) {
        (
            required("V6_TEST_AUTH_REGISTRY"),
            required("V6_TEST_AUTH_USER"),
            required("V6_TEST_AUTH_PASSWORD"),
        )
    }

    /// A repository name no other test (or earlier run) uses.
    pub(crate) fn unique_repository(test: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("v6test/{test}-{}-{nanos}", std::process::id())
    }

    /// What to put in the registry.
    pub(crate) enum Shape<'a> {
        /// A single image, pushed as docker v2 schema 2 (what `docker push` produces).
        DockerV2(&'a [(&'a str, &'a str)]),
        /// A single image, pushed as an OCI manifest.
        OciImage,
        /// An amd64 + arm64 OCI index.
        OciIndex,
        /// An amd64 + arm64 docker manifest list.
        DockerList,
    }

    /// An OCI image layout on disk, written by hand (no engine needed).
    struct Layout {
        dir: tempfile::TempDir,
    }

    impl Layout {
        fn new() -> Layout {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
            std::fs::write(
                dir.path().join("oci-layout"),
                r#"{"imageLayoutVersion":"1.0.0"}"#,
            )
            .unwrap();
            Layout { dir }
        }

        /// Stores `bytes` as a blob; returns a descriptor of `media_type` for it.
        fn blob(&self, media_type: &str, bytes: &[u8]) -> serde_json::Value {
            let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
            let path = self.dir.path().join("blobs/sha256").join(&digest[7..]);
            std::fs::write(path, bytes).unwrap();
            serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
        }

        fn json_blob(&self, media_type: &str, value: &serde_json::Value) -> serde_json::Value {
            self.blob(media_type, &serde_json::to_vec(value).unwrap())
        }

        /// An image of one layer holding `content`; returns its manifest's descriptor.
        fn image(&self, arch: &str, content: &str, labels: &[(&str, &str)]) -> serde_json::Value {
            let mut tar = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            tar.append_data(&mut header, "hello.txt", content.as_bytes())
                .unwrap();
            let layer = self.blob(
                "application/vnd.oci.image.layer.v1.tar",
                &tar.into_inner().unwrap(),
            );
            let labels: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                .collect();
            let config = self.json_blob(
                "application/vnd.oci.image.config.v1+json",
                &serde_json::json!({
                    "architecture": arch,
                    "os": "linux",
                    "config": {"Labels": labels, "Cmd": ["/hello.txt"]},
                    "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
                }),
            );
            let mut manifest = self.json_blob(
                OCI_IMAGE_MEDIA_TYPE,
                &serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_IMAGE_MEDIA_TYPE,
                    "config": config,
                    "layers": [layer],
                }),
            );
            manifest["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
            manifest
        }

        /// Names `descriptor` `latest` in the layout's index.json.
        fn tag(&self, mut descriptor: serde_json::Value) {
            descriptor["annotations"] =
                serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
            let index = serde_json::json!({"schemaVersion": 2, "manifests": [descriptor]});
            std::fs::write(
                self.dir.path().join("index.json"),
                serde_json::to_vec(&index).unwrap(),
            )
            .unwrap();
        }
    }

    /// Builds `shape` and pushes it to `registry/repository:tag` with skopeo, as the
    /// Docker engine or a buildx build would have.
    pub(crate) fn seed(
        registry: &str,
        repository: &str,
        tag: &str,
        shape: Shape<'_>,
        creds: Option<(&str, &str)>,
    ) {
        let layout = Layout::new();
        let (format, all) = match shape {
            Shape::DockerV2(labels) => {
                layout.tag(layout.image("amd64", repository, labels));
                ("v2s2", false)
            }
            Shape::OciImage => {
                layout.tag(layout.image("amd64", repository, &[]));
                ("oci", false)
            }
            Shape::OciIndex | Shape::DockerList => {
                let amd = layout.image("amd64", &format!("{repository} amd64"), &[]);
                let arm = layout.image("arm64", &format!("{repository} arm64"), &[]);
                let index = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE,
                    "manifests": [amd, arm],
                });
                layout.tag(layout.json_blob(OCI_IMAGE_INDEX_MEDIA_TYPE, &index));
                let format = if matches!(shape, Shape::OciIndex) {
                    "oci"
                } else {
                    "v2s2"
                };
                (format, true)
            }
        };
        let mut skopeo = Command::new("skopeo");
        skopeo.args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--format",
            format,
        ]);
        if all {
            skopeo.arg("--all");
        }
        if let Some((user, password)) = creds {
            skopeo.arg("--dest-creds").arg(format!("{user}:{password}"));
        }
        skopeo
            .arg(format!("oci:{}:latest", layout.dir.path().display()))
            .arg(format!("docker://{registry}/{repository}:{tag}"));
        run(&mut skopeo);
    }

    /// Runs `command`, panicking with its output when it fails; returns its stdout.
    fn run(command: &mut Command) -> Vec<u8> {
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        assert!(
            out.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The digest of the manifest skopeo reads for `registry/repository:tag`: sha256 of
    /// the raw manifest, which is what `skopeo inspect` reports for a single image too.
    pub(crate) fn skopeo_digest(
        registry: &str,
        repository: &str,
        tag: &str,
        creds: Option<(&str, &str)>,
    ) -> Digest {
        let mut skopeo = Command::new("skopeo");
        skopeo.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some((user, password)) = creds {
            skopeo.arg("--creds").arg(format!("{user}:{password}"));
        }
        skopeo.arg(format!("docker://{registry}/{repository}:{tag}"));
        let raw = run(&mut skopeo);
        Digest::parse(&format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(&raw))
        ))
        .unwrap()
    }

    /// `skopeo inspect`'s own `Digest` field for a single image.
    fn skopeo_inspect_digest(registry: &str, repository: &str, tag: &str) -> Digest {
        let out = run(Command::new("skopeo").args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{registry}/{repository}:{tag}"),
        ]));
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        Digest::parse(json["Digest"].as_str().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn digest_labels_and_tags_of_a_pushed_image() {
        let host = open_registry();
        let repo = unique_repository("digest");
        let labels = [
            ("org.opencontainers.image.version", "1.0.0"),
            ("ai.vantage6.algorithm", "average"),
        ];
        seed(&host, &repo, "1.0.0", Shape::DockerV2(&labels), None);
        let registry = Registry::new(&host, None, false).unwrap();

        let digest = registry
            .digest(&at(&host, &repo, "1.0.0"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(digest, skopeo_inspect_digest(&host, &repo, "1.0.0"));
        assert_eq!(digest, skopeo_digest(&host, &repo, "1.0.0", None));

        let read = registry
            .labels(&at(&host, &repo, "1.0.0"))
            .await
            .unwrap()
            .unwrap();
        let expected: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(read, expected);

        assert_eq!(
            registry
                .manifest_kind(&at(&host, &repo, "1.0.0"))
                .await
                .unwrap(),
            ManifestKind::DockerV2
        );
        assert_eq!(
            registry.list_tags(&image(&host, &repo)).await.unwrap(),
            ["1.0.0"]
        );
        registry.check(&image(&host, &repo)).await.unwrap();
    }

    #[tokio::test]
    async fn missing_repository_and_tag() {
        let host = open_registry();
        let repo = unique_repository("missing");
        let registry = Registry::new(&host, None, false).unwrap();
        // Before the first push: no tags, no digest; reachable all the same.
        assert!(
            registry
                .list_tags(&image(&host, &repo))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            registry.digest(&at(&host, &repo, "1.0.0")).await.unwrap(),
            None
        );
        assert_eq!(
            registry.labels(&at(&host, &repo, "1.0.0")).await.unwrap(),
            None
        );
        registry.check(&image(&host, &repo)).await.unwrap();

        seed(&host, &repo, "1.0.0", Shape::DockerV2(&[]), None);
        assert_eq!(
            registry.digest(&at(&host, &repo, "2.0.0")).await.unwrap(),
            None
        );
        assert_eq!(
            registry.labels(&at(&host, &repo, "2.0.0")).await.unwrap(),
            None
        );
        let err = registry
            .manifest_kind(&at(&host, &repo, "2.0.0"))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
        let err = registry
            .copy_tag(&at(&host, &repo, "2.0.0"), &tag("latest"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{host}/{repo}:2.0.0 does not exist")
        );
        // The image without labels has an empty label set, not None.
        assert_eq!(
            registry.labels(&at(&host, &repo, "1.0.0")).await.unwrap(),
            Some(BTreeMap::new())
        );
    }

    #[tokio::test]
    async fn copy_tag_keeps_the_manifest_bytes() {
        let host = open_registry();
        let repo = unique_repository("copy");
        seed(&host, &repo, "1.0.0", Shape::DockerV2(&[("a", "b")]), None);
        seed(&host, &repo, "multi", Shape::OciIndex, None);
        let registry = Registry::new(&host, None, false).unwrap();

        let digest = registry
            .digest(&at(&host, &repo, "1.0.0"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            registry
                .copy_tag(&at(&host, &repo, "1.0.0"), &tag("latest"))
                .await
                .unwrap(),
            digest
        );
        assert_eq!(skopeo_digest(&host, &repo, "latest", None), digest);
        assert_eq!(
            registry
                .manifest_kind(&at(&host, &repo, "latest"))
                .await
                .unwrap(),
            ManifestKind::DockerV2
        );
        // Moving an existing alias.
        let multi = registry
            .digest(&at(&host, &repo, "multi"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            registry
                .copy_tag(&at(&host, &repo, "multi"), &tag("latest"))
                .await
                .unwrap(),
            multi
        );
        assert_eq!(skopeo_digest(&host, &repo, "latest", None), multi);
        assert!(matches!(
            registry
                .manifest_kind(&at(&host, &repo, "latest"))
                .await
                .unwrap(),
            ManifestKind::Index { .. }
        ));
        assert_eq!(
            registry.list_tags(&image(&host, &repo)).await.unwrap(),
            ["1.0.0", "latest", "multi"]
        );
    }

    #[tokio::test]
    async fn manifest_kinds_as_stored() {
        let host = open_registry();
        let repo = unique_repository("kinds");
        seed(&host, &repo, "oci", Shape::OciImage, None);
        seed(&host, &repo, "oci-index", Shape::OciIndex, None);
        seed(&host, &repo, "docker-list", Shape::DockerList, None);
        let registry = Registry::new(&host, None, false).unwrap();
        assert_eq!(
            registry
                .manifest_kind(&at(&host, &repo, "oci"))
                .await
                .unwrap(),
            ManifestKind::OciImage
        );
        assert_eq!(
            registry
                .manifest_kind(&at(&host, &repo, "oci-index"))
                .await
                .unwrap(),
            ManifestKind::Index {
                media_type: OCI_IMAGE_INDEX_MEDIA_TYPE.into()
            }
        );
        assert_eq!(
            registry
                .manifest_kind(&at(&host, &repo, "docker-list"))
                .await
                .unwrap(),
            ManifestKind::Index {
                media_type: IMAGE_MANIFEST_LIST_MEDIA_TYPE.into()
            }
        );
        // The digest of an index is the index's own, as skopeo sees it.
        assert_eq!(
            registry
                .digest(&at(&host, &repo, "oci-index"))
                .await
                .unwrap()
                .unwrap(),
            skopeo_digest(&host, &repo, "oci-index", None)
        );
    }

    #[tokio::test]
    async fn auth_registry_with_right_credentials() {
        let (host, user, password) = auth_registry();
        let repo = unique_repository("auth-ok");
        seed(
            &host,
            &repo,
            "1.0.0",
            Shape::DockerV2(&[("k", "v")]),
            Some((&user, &password)),
        );
        let creds = Credentials::new(
            user.clone(),
            password.clone(),
            CredentialSource::Environment,
        );
        let registry = Registry::new(&host, Some(creds), false).unwrap();
        registry.check(&image(&host, &repo)).await.unwrap();
        let digest = registry
            .digest(&at(&host, &repo, "1.0.0"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            digest,
            skopeo_digest(&host, &repo, "1.0.0", Some((&user, &password)))
        );
        assert_eq!(
            registry
                .labels(&at(&host, &repo, "1.0.0"))
                .await
                .unwrap()
                .unwrap()["k"],
            "v"
        );
        // A manifest write with the same credentials (push scope).
        assert_eq!(
            registry
                .copy_tag(&at(&host, &repo, "1.0.0"), &tag("latest"))
                .await
                .unwrap(),
            digest
        );
        assert_eq!(
            registry.list_tags(&image(&host, &repo)).await.unwrap(),
            ["1.0.0", "latest"]
        );
    }

    #[tokio::test]
    async fn auth_registry_refuses_wrong_or_missing_credentials_without_leaking() {
        let (host, user, password) = auth_registry();
        let repo = unique_repository("auth-bad");
        seed(
            &host,
            &repo,
            "1.0.0",
            Shape::DockerV2(&[]),
            Some((&user, &password)),
        );
        let wrong = format!("{password}-wrong-Secr3t");
        let creds = Credentials::new(user.clone(), wrong.clone(), CredentialSource::Environment);
        let registry = Registry::new(&host, Some(creds), false).unwrap();
        assert!(!format!("{registry:?}").contains(&wrong));

        let errors = vec![
            registry.list_tags(&image(&host, &repo)).await.unwrap_err(),
            registry
                .digest(&at(&host, &repo, "1.0.0"))
                .await
                .unwrap_err(),
            registry
                .labels(&at(&host, &repo, "1.0.0"))
                .await
                .unwrap_err(),
            registry
                .manifest_kind(&at(&host, &repo, "1.0.0"))
                .await
                .unwrap_err(),
            registry
                .copy_tag(&at(&host, &repo, "1.0.0"), &tag("latest"))
                .await
                .unwrap_err(),
            registry.check(&image(&host, &repo)).await.unwrap_err(),
        ];
        for err in &errors {
            assert!(
                matches!(
                    err,
                    RegistryError::Unauthorized {
                        credentials: Some(_),
                        ..
                    }
                ),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "registry {host} refused the credentials (401 Unauthorized); they came \
                     from V6_REGISTRY_USERNAME/V6_REGISTRY_PASSWORD"
                )
            );
            for text in [format!("{err}"), format!("{err:?}")] {
                assert!(!text.contains(&wrong), "{text}");
                assert!(!text.contains(&password), "{text}");
            }
        }

        let anonymous = Registry::new(&host, None, false).unwrap();
        let err = anonymous.check(&image(&host, &repo)).await.unwrap_err();
        assert!(
            matches!(
                err,
                RegistryError::Unauthorized {
                    credentials: None,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("none were found"), "{err}");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let err = Registry::new(&host, None, false)
            .unwrap()
            .check(&image(&host, "v6test/x"))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot reach registry {host}: ")),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
    }
}

/// Against a real engine: DOCKER_HOST (or the default socket) must reach one; these tests
/// fail, never skip, without it. Fixtures, overridable through the environment:
/// V6_TEST_BASE_IMAGE (a busybox image with sh, ls, cat, stat, readlink),
/// V6_TEST_REGISTRY (open registry), V6_TEST_AUTH_REGISTRY with V6_TEST_AUTH_USER and
/// V6_TEST_AUTH_PASSWORD (htpasswd registry; the password must make bollard's
/// X-Registry-Auth contain `+` or `/`, which `auth_password_exercises_the_pitfall` checks).
mod engine {
    use std::collections::BTreeMap;

    use bollard::Docker;
    use bollard::auth::DockerCredentials;
    use bollard::query_parameters::{PushImageOptionsBuilder, RemoveImageOptionsBuilder};
    use cargo_v6::credentials::{CredentialSource, Credentials};
    use cargo_v6::engine::{BuildEvent, BuildRequest, Engine, EngineError, PushEvent};
    use futures_util::StreamExt;

    fn fixture(name: &str, default: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| default.to_owned())
    }

    fn base_image() -> String {
        fixture("V6_TEST_BASE_IMAGE", "cargo-v6-test/busybox:1")
    }

    fn auth_credentials(password: &str) -> Credentials {
        Credentials::new(
            fixture("V6_TEST_AUTH_USER", "v6user"),
            password.to_owned(),
            CredentialSource::Environment,
        )
    }

    fn auth_password() -> String {
        fixture("V6_TEST_AUTH_PASSWORD", "a?b>c~d")
    }

    /// Removes a tag or image; a reference that does not exist is not an error. Not forced: an
    /// image id that still has several tags, or is used by a container, is refused. (Test
    /// clean-up only: the product never removes images.)
    async fn remove_image(engine: &Engine, reference: &str) -> Result<(), bollard::errors::Error> {
        let docker = Docker::connect_with_host(engine.endpoint())?
            .negotiate_version()
            .await?;
        let options = RemoveImageOptionsBuilder::new().build();
        match docker.remove_image(reference, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// [`Engine::push`] of `repository:tag`.
    async fn push(
        engine: &Engine,
        repository: &str,
        tag: &str,
        credentials: Option<&Credentials>,
        on_event: &mut (dyn FnMut(PushEvent) + Send),
    ) -> Result<(), EngineError> {
        engine
            .push(
                &tagged(&format!("{repository}:{tag}")),
                credentials,
                on_event,
            )
            .await
    }

    /// `repository:tag` as the typed reference the engine takes.
    fn tagged(reference: &str) -> cargo_v6::oci::reference::TaggedImage {
        let parsed = cargo_v6::oci::reference::ImageRef::parse(reference).unwrap();
        let tag = parsed.tag.as_deref().unwrap_or("latest");
        parsed
            .name
            .with_tag(&cargo_v6::oci::reference::Tag::parse(tag).unwrap())
    }

    async fn engine() -> Engine {
        Engine::connect()
            .await
            .unwrap_or_else(|err| panic!("these tests need a Docker engine: {err}"))
    }

    /// Runs the docker CLI (same DOCKER_HOST) and returns its stdout.
    fn docker_cli(args: &[&str]) -> String {
        let output = std::process::Command::new("docker")
            .args(args)
            .output()
            .expect("the docker CLI runs");
        assert!(
            output.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    struct Project {
        dir: tempfile::TempDir,
        files: Vec<String>,
    }

    fn project(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let mut files: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
        files.sort();
        Project { dir, files }
    }

    async fn build(
        engine: &Engine,
        project: &Project,
        dockerfile: &str,
        tags: &[String],
        labels: &BTreeMap<String, String>,
    ) -> (Result<String, EngineError>, Vec<BuildEvent>) {
        let mut events = Vec::new();
        let tags: Vec<_> = tags.iter().map(|t| tagged(t)).collect();
        let request = BuildRequest {
            context_dir: project.dir.path(),
            files: &project.files,
            dockerfile_name: ".cargo-v6.Dockerfile",
            dockerfile,
            tags: &tags,
            build_args: &BTreeMap::new(),
            labels,
            network: None,
            platform: None,
            expected: None,
        };
        let result = engine.build(&request, &mut |e| events.push(e)).await;
        (result, events)
    }

    /// Builds a one-file image for push tests and returns its id.
    async fn tiny_image(engine: &Engine, tag: &str) -> String {
        let project = project(&[("hello.txt", tag)]);
        let dockerfile = format!("FROM {}\nCOPY . /app\n", base_image());
        let (result, _) = build(
            engine,
            &project,
            &dockerfile,
            &[tag.to_owned()],
            &BTreeMap::new(),
        )
        .await;
        result.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn build_ships_files_modes_symlinks_and_hides_generated_files() {
        let engine = engine().await;
        let project = project(&[
            ("app.py", "print('hi')\n"),
            ("bin/run.sh", "#!/bin/sh\necho run\n"),
            ("data/private/x.csv", "a\n1\n"),
        ]);
        let root = project.dir.path();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let set = |p: &str, m| {
                std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(m)).unwrap()
            };
            set("bin/run.sh", 0o755);
            set("data/private", 0o700);
            std::os::unix::fs::symlink("app.py", root.join("link.py")).unwrap();
        }
        let mut files = project.files.clone();
        files.push("link.py".into());
        files.sort();
        let project = Project { files, ..project };
        let tags = [
            "cargo-v6-test/engine-build:1".to_owned(),
            "cargo-v6-test/engine-build:alias".to_owned(),
        ];
        let labels = BTreeMap::from([("org.example.test".to_owned(), "yes".to_owned())]);
        let dockerfile = format!("FROM {}\nCOPY . /app\nRUN ls /app\n", base_image());
        let (result, events) = build(&engine, &project, &dockerfile, &tags, &labels).await;
        let id = result.unwrap();
        assert!(id.starts_with("sha256:"), "{id}");
        assert!(
            events.contains(&BuildEvent::Step {
                number: 2,
                // The engine appends the labels as a last `LABEL` step.
                total: 4,
                instruction: "COPY . /app".into()
            }),
            "{events:#?}"
        );
        for tag in &tags {
            let labels = engine.image_labels(tag).await.unwrap().expect("tagged");
            assert_eq!(
                labels.get("org.example.test").map(String::as_str),
                Some("yes")
            );
        }
        let listing = docker_cli(&[
            "run",
            "--rm",
            &tags[0],
            "sh",
            "-c",
            "ls -A /app; stat -c '%n %a' /app/bin/run.sh /app/data/private; readlink /app/link.py",
        ]);
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(
            lines,
            [
                "app.py",
                "bin",
                "data",
                "link.py",
                "/app/bin/run.sh 755",
                "/app/data/private 700",
                "app.py"
            ],
            "neither the rendered Dockerfile nor the generated .dockerignore reach the image"
        );
        for tag in &tags {
            remove_image(&engine, tag).await.unwrap();
            assert_eq!(engine.image_labels(tag).await.unwrap(), None);
        }
        remove_image(&engine, &tags[0])
            .await
            .expect("removing twice is fine");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn user_dockerignore_is_kept_with_one_line_appended() {
        let engine = engine().await;
        let project = project(&[(".dockerignore", "*.pyc\n"), ("app.py", "")]);
        let tag = "cargo-v6-test/engine-ignore:1".to_owned();
        let dockerfile = format!("FROM {}\nCOPY . /app\n", base_image());
        let (result, _) = build(
            &engine,
            &project,
            &dockerfile,
            std::slice::from_ref(&tag),
            &BTreeMap::new(),
        )
        .await;
        result.unwrap();
        let out = docker_cli(&[
            "run",
            "--rm",
            &tag,
            "sh",
            "-c",
            "ls -A /app; cat /app/.dockerignore",
        ]);
        assert_eq!(out, ".dockerignore\napp.py\n*.pyc\n.cargo-v6.Dockerfile\n");
        remove_image(&engine, &tag).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failing_run_step_reports_the_step_and_its_output() {
        let engine = engine().await;
        let project = project(&[("app.py", "")]);
        let dockerfile = format!(
            "FROM {}\nRUN echo fine\nRUN echo doomed-output && false\n",
            base_image()
        );
        let (result, _) = build(&engine, &project, &dockerfile, &[], &BTreeMap::new()).await;
        match result.unwrap_err() {
            EngineError::BuildStep {
                step,
                output,
                message,
            } => {
                assert_eq!(step, "Step 3/3 : RUN echo doomed-output && false");
                assert!(output.lines().any(|l| l == "doomed-output"), "{output}");
                assert!(!output.contains("fine"), "{output}");
                assert!(message.contains("non-zero code"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dockerfile_syntax_error_is_rejected_before_building() {
        let engine = engine().await;
        let project = project(&[("app.py", "")]);
        let dockerfile = format!("FROM {}\nNOTANINSTRUCTION x\n", base_image());
        let (result, events) = build(&engine, &project, &dockerfile, &[], &BTreeMap::new()).await;
        let err = result.unwrap_err();
        assert!(matches!(err, EngineError::Dockerfile { .. }), "{err:?}");
        assert!(
            err.to_string().to_lowercase().contains("notaninstruction"),
            "{err}"
        );
        assert!(events.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vanished_context_file_fails_the_build_naming_it() {
        let engine = engine().await;
        let big = "x".repeat(4 << 20);
        let mut project = project(&[("big.bin", &big)]);
        project.files.push("zz-gone.txt".into());
        let tag = "cargo-v6-test/engine-vanished:1".to_owned();
        remove_image(&engine, &tag).await.unwrap();
        let dockerfile = format!("FROM {}\nCOPY . /app\n", base_image());
        let (result, _) = build(
            &engine,
            &project,
            &dockerfile,
            std::slice::from_ref(&tag),
            &BTreeMap::new(),
        )
        .await;
        match result.unwrap_err() {
            EngineError::Io { path, source } => {
                assert_eq!(path, project.dir.path().join("zz-gone.txt"));
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("a truncated context must not build: {other:?}"),
        }
        assert_eq!(engine.image_labels(&tag).await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn push_to_an_open_registry_reports_layers_and_digest() {
        let engine = engine().await;
        let repository = format!(
            "{}/cargo-v6-test/engine-push",
            fixture("V6_TEST_REGISTRY", "127.0.0.1:5560")
        );
        tiny_image(&engine, &format!("{repository}:1")).await;
        let mut events = Vec::new();
        push(&engine, &repository, "1", None, &mut |e| events.push(e))
            .await
            .unwrap();
        assert!(
            events.iter().any(|e| matches!(e, PushEvent::Layer { status, .. } if status == "Pushed" || status == "Layer already exists")),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, PushEvent::Status(s) if s.starts_with("1: digest: sha256:"))),
            "{events:?}"
        );
        remove_image(&engine, &format!("{repository}:1"))
            .await
            .unwrap();
    }

    fn auth_registry_host() -> String {
        fixture("V6_TEST_AUTH_REGISTRY", "127.0.0.1:5561")
    }

    fn auth_repository(name: &str) -> String {
        format!("{}/cargo-v6-test/{name}", auth_registry_host())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn push_with_credentials_needing_url_safe_encoding() {
        let engine = engine().await;
        let repository = auth_repository("engine-auth");
        tiny_image(&engine, &format!("{repository}:1")).await;
        let credentials = auth_credentials(&auth_password());
        push(&engine, &repository, "1", Some(&credentials), &mut |_| {})
            .await
            .unwrap();
        remove_image(&engine, &format!("{repository}:1"))
            .await
            .unwrap();
    }

    /// Without the header fix, the same credentials are dropped by the engine: proves that the
    /// fixture password exercises the pitfall, and tells us when bollard fixes it upstream.
    /// The unfixed push is bollard's own, with the credentials [`Engine::push`] sends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn auth_password_exercises_the_pitfall() {
        let fixed = engine().await;
        let unfixed = Docker::connect_with_host(fixed.endpoint())
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();
        let repository = auth_repository("engine-pitfall");
        tiny_image(&fixed, &format!("{repository}:1")).await;
        let credentials = auth_credentials(&auth_password());
        let auth = DockerCredentials {
            username: Some(credentials.username.clone()),
            password: Some(credentials.password().to_owned()),
            serveraddress: Some(auth_registry_host()),
            ..DockerCredentials::default()
        };
        let options = PushImageOptionsBuilder::new().tag("1").build();
        let mut stream = unfixed.push_image(&repository, Some(options), Some(auth));
        let mut failure = None;
        while let Some(item) = stream.next().await {
            if let Err(err) = item {
                failure = Some(err.to_string());
                break;
            }
        }
        let err = failure.expect("the push without the fix fails");
        assert!(err.contains("no basic auth credentials"), "{err}");
        remove_image(&fixed, &format!("{repository}:1"))
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wrong_or_missing_credentials_are_clear_errors_without_the_secret() {
        let engine = engine().await;
        let repository = auth_repository("engine-denied");
        let registry = auth_registry_host();
        tiny_image(&engine, &format!("{repository}:1")).await;
        let wrong = "wr0ng+/pass?>~";
        let err = push(
            &engine,
            &repository,
            "1",
            Some(&auth_credentials(wrong)),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(matches!(err, EngineError::Push { .. }), "{text}");
        assert!(
            text.contains(&registry) && text.contains("refused"),
            "{text}"
        );
        assert!(!text.contains(wrong), "{text}");
        let err = push(&engine, &repository, "1", None, &mut |_| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("requires authentication"), "{err}");
        remove_image(&engine, &format!("{repository}:1"))
            .await
            .unwrap();
    }
}

/// The registry's round trips, counted by a proxy in front of the real registries: what an
/// unchanged republish reads, and what moving a tag writes. The requests are compared
/// exactly, so an extra one (a repeated auth handshake, a second read of a manifest) fails.
mod round_trips {
    use std::collections::BTreeMap;

    use cargo_v6::credentials::{CredentialSource, Credentials};
    use cargo_v6::oci::reference::Digest;
    use cargo_v6::registry::{ManifestInfo, ManifestKind, Registry, RegistryError};

    use crate::counting_proxy::CountingProxy;
    use crate::registry::{
        Shape, at, auth_registry, image, open_registry, seed, skopeo_digest, tag, unique_repository,
    };

    /// The aliases of release 1.0.0 (besides its exact tag).
    const ALIASES: [&str; 3] = ["1.0", "1", "latest"];
    /// The label the release carries, as the fingerprint label would be.
    const LABEL: (&str, &str) = ("io.cargo-v6.fingerprint", "sha256:f1");
    /// The auth handshake: the ping that finds out how the registry authenticates.
    const PING: &str = "GET /v2/";

    /// A registry of the stack and the credentials it needs.
    struct Target {
        host: String,
        user_password: Option<(String, String)>,
    }

    fn open() -> Target {
        Target {
            host: open_registry(),
            user_password: None,
        }
    }

    fn auth() -> Target {
        let (host, user, password) = auth_registry();
        Target {
            host,
            user_password: Some((user, password)),
        }
    }

    impl Target {
        fn credentials(&self) -> Option<Credentials> {
            self.user_password.as_ref().map(|(user, password)| {
                Credentials::new(
                    user.clone(),
                    password.clone(),
                    CredentialSource::Environment,
                )
            })
        }

        fn skopeo_creds(&self) -> Option<(&str, &str)> {
            self.user_password
                .as_ref()
                .map(|(user, password)| (user.as_str(), password.as_str()))
        }

        /// A new repository holding release 1.0.0 (labelled) under its exact tag and, when
        /// `aliases`, the three aliases; written directly, not through a proxy.
        async fn release(&self, name: &str, aliases: bool) -> String {
            let repo = unique_repository(name);
            seed(
                &self.host,
                &repo,
                "1.0.0",
                Shape::DockerV2(&[LABEL]),
                self.skopeo_creds(),
            );
            if aliases {
                let direct = Registry::new(&self.host, self.credentials(), false).unwrap();
                for alias in ALIASES {
                    direct
                        .copy_tag(&at(&self.host, &repo, "1.0.0"), &tag(alias))
                        .await
                        .unwrap();
                }
            }
            repo
        }

        /// A proxy in front of this registry, and a fresh client that goes through it.
        fn counted(&self) -> (CountingProxy, Registry) {
            let proxy = CountingProxy::start(&self.host);
            let registry = Registry::new(&proxy.host(), self.credentials(), false).unwrap();
            (proxy, registry)
        }
    }

    /// The requests `proxy` saw since the last call, with the `last` of a tag listing's
    /// second page (which depends on the order in which the registry lists tags) as `*`.
    fn seen(proxy: &CountingProxy) -> Vec<String> {
        proxy
            .take()
            .into_iter()
            .map(|request| match request.split_once("&last=") {
                Some((head, _)) => format!("{head}&last=*"),
                None => request,
            })
            .collect()
    }

    /// What publish reads for an unchanged republish of 1.0.0: the tags, the exact tag's
    /// manifest (digest, kind) and labels (fingerprint), and the digest of every alias.
    async fn republish_reads(
        registry: &Registry,
        host: &str,
        repo: &str,
    ) -> (
        Vec<String>,
        ManifestInfo,
        BTreeMap<String, String>,
        Vec<Option<Digest>>,
    ) {
        let tags = registry.list_tags(&image(host, repo)).await.unwrap();
        let info = registry
            .manifest(&at(host, repo, "1.0.0"))
            .await
            .unwrap()
            .unwrap();
        let labels = registry
            .config_labels(&image(host, repo), &info)
            .await
            .unwrap();
        let mut aliases = Vec::new();
        for alias in ALIASES {
            aliases.push(registry.digest(&at(host, repo, alias)).await.unwrap());
        }
        (tags, info, labels, aliases)
    }

    /// The requests of [`republish_reads`]: a handshake only the first time.
    fn republish_requests(repo: &str, config: &str, first: bool) -> Vec<String> {
        let mut requests = Vec::new();
        if first {
            requests.push(PING.to_owned());
        }
        requests.extend([
            // One page: fewer tags than asked for and no `Link` to a next page.
            format!("GET /v2/{repo}/tags/list?n=1000"),
            format!("GET /v2/{repo}/manifests/1.0.0"),
            format!("GET /v2/{repo}/blobs/{config}"),
        ]);
        requests.extend(ALIASES.map(|alias| format!("HEAD /v2/{repo}/manifests/{alias}")));
        requests
    }

    async fn unchanged_republish_reads(target: Target) {
        let repo = target.release("count-reads", true).await;
        let (proxy, registry) = target.counted();

        let (tags, info, labels, aliases) = republish_reads(&registry, &target.host, &repo).await;
        assert_eq!(tags, ["1", "1.0", "1.0.0", "latest"]);
        let digest = skopeo_digest(&target.host, &repo, "1.0.0", target.skopeo_creds());
        assert_eq!(info.digest, digest);
        assert_eq!(info.kind, ManifestKind::DockerV2);
        assert_eq!(labels.get(LABEL.0).map(String::as_str), Some(LABEL.1));
        assert_eq!(
            aliases,
            [Some(digest.clone()), Some(digest.clone()), Some(digest)]
        );
        let config = info.image_config().unwrap();
        let requests = seen(&proxy);
        assert_eq!(requests, republish_requests(&repo, config.as_str(), true));
        assert!(requests.len() <= 8, "{requests:#?}");

        // The same reads again: no handshake at all.
        republish_reads(&registry, &target.host, &repo).await;
        assert_eq!(
            seen(&proxy),
            republish_requests(&repo, config.as_str(), false)
        );

        // The thin wrappers read no more than what they wrap.
        registry
            .labels(&at(&target.host, &repo, "1.0.0"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            seen(&proxy),
            [
                format!("GET /v2/{repo}/manifests/1.0.0"),
                format!("GET /v2/{repo}/blobs/{config}"),
            ]
        );
        registry
            .manifest_kind(&at(&target.host, &repo, "1.0.0"))
            .await
            .unwrap();
        assert_eq!(seen(&proxy), [format!("GET /v2/{repo}/manifests/1.0.0")]);
        assert_eq!(
            registry
                .manifest(&at(&target.host, &repo, "2.0.0"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(seen(&proxy), [format!("GET /v2/{repo}/manifests/2.0.0")]);
    }

    #[tokio::test]
    async fn unchanged_republish_reads_on_the_open_registry() {
        unchanged_republish_reads(open()).await;
    }

    #[tokio::test]
    async fn unchanged_republish_reads_on_the_auth_registry() {
        unchanged_republish_reads(auth()).await;
    }

    async fn tag_writes(target: Target) {
        let repo = target.release("count-writes", false).await;
        let (proxy, registry) = target.counted();
        let digest = skopeo_digest(&target.host, &repo, "1.0.0", target.skopeo_creds());

        // A fresh client: one handshake (the push scope needs none of its own on a registry
        // that issues no tokens), the manifest read, the write.
        assert_eq!(
            registry
                .copy_tag(&at(&target.host, &repo, "1.0.0"), &tag("latest"))
                .await
                .unwrap(),
            digest
        );
        assert_eq!(
            seen(&proxy),
            [
                PING.to_owned(),
                format!("GET /v2/{repo}/manifests/1.0.0"),
                format!("PUT /v2/{repo}/manifests/latest"),
            ]
        );
        assert_eq!(
            registry
                .copy_tag(&at(&target.host, &repo, "1.0.0"), &tag("1.0"))
                .await
                .unwrap(),
            digest
        );
        assert_eq!(
            seen(&proxy),
            [
                format!("GET /v2/{repo}/manifests/1.0.0"),
                format!("PUT /v2/{repo}/manifests/1.0"),
            ]
        );
        // With the manifest read already, only the write.
        let info = registry
            .manifest(&at(&target.host, &repo, "1.0.0"))
            .await
            .unwrap()
            .unwrap();
        seen(&proxy);
        registry
            .tag_manifest(&at(&target.host, &repo, "1"), &info)
            .await
            .unwrap();
        assert_eq!(seen(&proxy), [format!("PUT /v2/{repo}/manifests/1")]);
        for tag in ["latest", "1.0", "1"] {
            assert_eq!(
                skopeo_digest(&target.host, &repo, tag, target.skopeo_creds()),
                digest,
                "{tag}"
            );
        }
        // A missing source: the read that finds it missing, nothing written.
        let err = registry
            .copy_tag(&at(&target.host, &repo, "2.0.0"), &tag("2"))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");
        assert_eq!(seen(&proxy), [format!("GET /v2/{repo}/manifests/2.0.0")]);

        // Another repository of the same registry: no handshake either (the registry issues
        // no tokens, whatever the repository). The digest of a missing tag costs a HEAD: its
        // 404 says so.
        let other = unique_repository("count-other");
        assert_eq!(
            registry
                .digest(&at(&target.host, &other, "1.0.0"))
                .await
                .unwrap(),
            None
        );
        registry.check(&image(&target.host, &other)).await.unwrap();
        assert_eq!(
            seen(&proxy),
            [
                format!("HEAD /v2/{other}/manifests/1.0.0"),
                format!("GET /v2/{other}/tags/list?n=1"),
            ]
        );
    }

    #[tokio::test]
    async fn tag_writes_on_the_open_registry() {
        tag_writes(open()).await;
    }

    #[tokio::test]
    async fn tag_writes_on_the_auth_registry() {
        tag_writes(auth()).await;
    }

    /// Refused credentials cost one handshake too, and each later call one request, each
    /// refused the same way.
    #[tokio::test]
    async fn refusals_repeat_no_handshake() {
        let target = auth();
        let repo = target.release("count-refused", false).await;
        for credentials in [
            None,
            Some(Credentials::new(
                "v6test".into(),
                "not-the-password".into(),
                CredentialSource::Environment,
            )),
        ] {
            let anonymous = credentials.is_none();
            let proxy = CountingProxy::start(&target.host);
            let registry = Registry::new(&proxy.host(), credentials, false).unwrap();
            let refused = |err: RegistryError| match err {
                RegistryError::Unauthorized { credentials, .. } => {
                    assert_eq!(credentials.is_none(), anonymous)
                }
                other => panic!("{other:?}"),
            };
            refused(
                registry
                    .check(&image(&target.host, &repo))
                    .await
                    .unwrap_err(),
            );
            refused(
                registry
                    .manifest(&at(&target.host, &repo, "1.0.0"))
                    .await
                    .unwrap_err(),
            );
            refused(
                registry
                    .copy_tag(&at(&target.host, &repo, "1.0.0"), &tag("x"))
                    .await
                    .unwrap_err(),
            );
            assert_eq!(
                seen(&proxy),
                [
                    PING.to_owned(),
                    format!("GET /v2/{repo}/tags/list?n=1"),
                    format!("GET /v2/{repo}/manifests/1.0.0"),
                    format!("GET /v2/{repo}/manifests/1.0.0"),
                ]
            );
        }
    }
}

/// The proxy's request parser, on a keep-alive stream with bodies that look like requests.
#[test]
fn proxy_parser_skips_bodies_on_keep_alive_connections() {
    let stream: &[u8] = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n\
        PUT /v2/r/manifests/a HTTP/1.1\r\ncontent-length: 6\r\n\r\nGET /x\
        PATCH /v2/r/blobs/uploads/u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
        3;ext=1\r\nGET\r\n10\r\nHEAD /y HTTP/1.1\r\n0\r\nX-Trailer: 1\r\n\r\n\
        HEAD /v2/r/manifests/b HTTP/1.1\r\n\r\n";
    let expected = [
        "GET /v2/",
        "PUT /v2/r/manifests/a",
        "PATCH /v2/r/blobs/uploads/u",
        "HEAD /v2/r/manifests/b",
    ];
    let mut whole = counting_proxy::RequestParser::default();
    assert_eq!(whole.feed(stream), expected);
    // The same bytes one at a time, as a slow client would send them.
    let mut bytewise = counting_proxy::RequestParser::default();
    let seen: Vec<String> = stream.iter().flat_map(|b| bytewise.feed(&[*b])).collect();
    assert_eq!(seen, expected);
}
