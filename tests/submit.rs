//! `cargo v6 store submit` against the stack's real vantage6-server and algorithm store 4.15.2
//! (scripts/stack: sqlite, uWSGI, review off), with the image published to the stack's TLS
//! registry (its own CA, which only the store process trusts: cargo v6 reaches it as the
//! Docker engine reaches a loopback registry, TLS unverified). Every entry is read back
//! through the store's own API.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

#[path = "support/hostile.rs"]
mod hostile;
mod support;
use hostile::{Answer, Hostile, response};
use support::{LocalImages, assert_ok, cargo_v6_env, commit_all, fails, text, unique};

/// The stack's server and store, from `scripts/stack env`.
struct Store {
    server: String,
    store: String,
    user: String,
    password: String,
    tls_registry: String,
}

fn store_stack() -> Store {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: scripts/stack up starts the server and store (Python 3.10), then eval \"$(scripts/stack env)\"")
        })
    };
    Store {
        server: var("V6_TEST_SERVER_URL"),
        store: var("V6_TEST_STORE_URL"),
        user: var("V6_TEST_SERVER_USER"),
        password: var("V6_TEST_SERVER_PASSWORD"),
        tls_registry: var("V6_TEST_TLS_REGISTRY"),
    }
}

/// A busybox algorithm whose `[store]` describes one central function with one argument.
fn project(image: &str, store: &str, server: &str) -> tempfile::TempDir {
    let dir = support::busybox_project(image, "hello", "");
    let manifest = dir.path().join("v6.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let store_section = format!(
        r#"
[store]
description = "Says hello"
code-url = "https://example.org/hello"
partitioning = "horizontal"
store-url = "{store}"
server-url = "{server}"

[[store.functions]]
name = "central_hello"
type = "central"
description = "Greets"

[[store.functions.arguments]]
name = "column"
type = "column"
description = "What to greet"
"#
    );
    std::fs::write(&manifest, text + &store_section).unwrap();
    commit_all(dir.path());
    dir
}

/// `cargo v6 ARGS` with the submitting account's credentials (`password`).
fn run(dir: &Path, s: &Store, password: &str, args: &[&str]) -> Output {
    cargo_v6_env(
        dir,
        &[
            ("V6_SERVER_USERNAME", &s.user),
            ("V6_SERVER_PASSWORD", password),
        ],
        args,
    )
}

/// The store's entry `id`, read through its API.
fn entry(s: &Store, id: u64) -> Value {
    let out = std::process::Command::new("curl")
        .args(["-sf", &format!("{}/algorithm/{id}", s.store)])
        .output()
        .unwrap();
    serde_json::from_str(&assert_ok(&out)).unwrap()
}

/// `cargo v6 store submit` of a version no registry has, at `digest`: the store has no
/// entry of it, so the request goes on to the POST.
fn unknown_version(digest: &str) -> [&str; 7] {
    [
        "v6",
        "store",
        "submit",
        "--set-version",
        "9.9.9",
        "--digest",
        digest,
    ]
}

/// The algorithm id in `Submitted`/`Unchanged ... as algorithm N (status)`.
fn id_in(stderr: &str, verb: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with(verb))
        .unwrap_or_else(|| panic!("no `{verb}` line in\n{stderr}"));
    let after = line.split("as algorithm ").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn publish_to_a_tls_registry_then_submit_creates_the_entry_and_a_rerun_is_unchanged() {
    let s = store_stack();
    let image = format!("{}/{}", s.tls_registry, unique("submit"));
    let _cleanup = LocalImages(image.clone());
    let dir = project(&image, &s.store, &s.server);
    let publish = |version: &str| {
        let out = run(
            dir.path(),
            &s,
            &s.password,
            &["v6", "publish", "--set-version", version],
        );
        support::printed_digest(&assert_ok(&out))
    };
    // The registry speaks TLS only: publish reaches it (TLS unverified, as a loopback one).
    let digest = publish("1.0.0");

    // Dry run: the request, without any secret, and nothing sent.
    let out = run(
        dir.path(),
        &s,
        &s.password,
        &[
            "v6",
            "store",
            "submit",
            "--set-version",
            "1.0.0",
            "--dry-run",
        ],
    );
    let shown: Value = serde_json::from_str(&assert_ok(&out)).unwrap();
    assert_eq!(shown["image"], format!("{image}:1.0.0@{digest}"));
    assert!(
        text(&out.stderr).contains("Would submit"),
        "{}",
        text(&out.stderr)
    );

    let submit = |version: &str, password: &str| {
        run(
            dir.path(),
            &s,
            password,
            &["v6", "store", "submit", "--set-version", version],
        )
    };
    let out = submit("1.0.0", &s.password);
    assert_ok(&out);
    let stderr = text(&out.stderr);
    let id = id_in(&stderr, "Submitted");
    assert!(stderr.contains("(approved)"), "{stderr}");
    // Read back: the image, the digest the store resolved itself, the function.
    let stored = entry(&s, id);
    assert_eq!(stored["image"], format!("{image}:1.0.0"));
    assert_eq!(stored["digest"], digest.as_str());
    assert_eq!(stored["name"], "hello");
    assert_eq!(stored["partitioning"], "horizontal");
    let functions = stored["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 1);
    assert_eq!(functions[0]["name"], "central_hello");
    assert_eq!(functions[0]["arguments"][0]["name"], "column");
    assert_eq!(functions[0]["arguments"][0]["type"], "column");

    // A rerun: the same entry, nothing posted.
    let out = submit("1.0.0", &s.password);
    assert_ok(&out);
    assert_eq!(id_in(&text(&out.stderr), "Unchanged"), id);

    // A new release is a new entry beside the old one (the store keys entries by REPO:TAG).
    let digest2 = publish("1.1.0");
    let out = submit("1.1.0", &s.password);
    assert_ok(&out);
    let id2 = id_in(&text(&out.stderr), "Submitted");
    assert_ne!(id2, id);
    assert_eq!(entry(&s, id2)["digest"], digest2.as_str());
    assert_eq!(entry(&s, id)["status"], "approved");

    // A wrong password: the server's refusal, exit 1, and no secret shown.
    let wrong = "not-the-password-7f3a";
    let stderr = fails(&submit("1.0.0", wrong));
    assert!(stderr.contains("refused the login (401)"), "{stderr}");
    assert!(!stderr.contains(wrong), "{stderr}");

    // A server the store has not whitelisted (the whitelist compares the URL as written).
    let manifest = dir.path().join("v6.toml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    let elsewhere = s.server.replace("127.0.0.1", "localhost");
    std::fs::write(&manifest, original.replace(&s.server, &elsewhere)).unwrap();
    // (A version the store has is read without the server, and is unchanged: a new one.)
    let unknown = unknown_version(&digest);
    let stderr = fails(&run(dir.path(), &s, &s.password, &unknown));
    assert!(stderr.contains("answered 403"), "{stderr}");
    assert!(stderr.contains("whitelist"), "{stderr}");
    std::fs::write(&manifest, &original).unwrap();

    // A version the registry does not have: the store creates an entry without a digest,
    // which is an error here.
    let stderr = fails(&run(dir.path(), &s, &s.password, &unknown));
    assert!(stderr.contains("could not read the image"), "{stderr}");

    // A token the server never gave: the store's 401, and the token not shown.
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.not-a-signature-5b1c";
    let out = cargo_v6_env(dir.path(), &[("V6_SERVER_TOKEN", token)], &unknown);
    let stderr = fails(&out);
    assert!(stderr.contains("answered 401"), "{stderr}");
    assert!(
        !stderr.contains(token) && !text(&out.stdout).contains(token),
        "{stderr}"
    );

    // No credentials: said, exit 1.
    let out = cargo_v6_env(
        dir.path(),
        &[],
        &["v6", "store", "submit", "--set-version", "1.0.0"],
    );
    let stderr = fails(&out);
    assert!(stderr.contains("V6_SERVER_USERNAME"), "{stderr}");
}

#[test]
fn store_url_without_server_url_is_refused_at_its_place() {
    let dir = support::busybox_project("127.0.0.1:5550/x/y", "hello", "");
    let manifest = dir.path().join("v6.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text + "\n[store]\ncode-url = \"https://e.org\"\npartitioning = \"horizontal\"\nstore-url = \"https://store.example.org/api\"\n\n[[store.functions]]\nname = \"f\"\ntype = \"central\"\n",
    )
    .unwrap();
    let out = cargo_v6_env(
        dir.path(),
        &[],
        &[
            "v6",
            "store",
            "submit",
            "--dry-run",
            "--digest",
            &format!("sha256:{}", "a".repeat(64)),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", support::text(&out.stderr));
    let stderr = support::text(&out.stderr);
    assert!(stderr.contains("v6.toml:15:"), "{stderr}");
    assert!(stderr.contains("go together"), "{stderr}");
}

#[test]
fn publish_with_submit_on_ends_in_the_store_and_without_an_account_pushes_nothing() {
    let s = store_stack();
    let image = format!("{}/{}", s.tls_registry, unique("publish-submit"));
    let _cleanup = LocalImages(image.clone());
    let dir = project(&image, &s.store, &s.server);
    let manifest = dir.path().join("v6.toml");
    let text_of = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text_of.replace(
            "partitioning = \"horizontal\"\n",
            "partitioning = \"horizontal\"\nsubmit = true\n",
        ),
    )
    .unwrap();
    support::git(dir.path(), &["commit", "-qam", "submit on"]);

    // Without an account: refused before anything is pushed.
    let out = cargo_v6_env(dir.path(), &[], &["v6", "publish"]);
    let stderr = fails(&out);
    assert!(stderr.contains("V6_SERVER_USERNAME"), "{stderr}");
    let tags = std::process::Command::new("skopeo")
        .args([
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{image}"),
        ])
        .output()
        .unwrap();
    assert!(
        !tags.status.success() || !text(&tags.stdout).contains("1.0.0"),
        "pushed: {}",
        text(&tags.stdout)
    );

    // The dry run says it would submit; the publish does, after the push.
    let out = run(dir.path(), &s, &s.password, &["v6", "publish", "--dry-run"]);
    assert_ok(&out);
    assert!(
        text(&out.stderr).contains("Would submit"),
        "{}",
        text(&out.stderr)
    );
    let out = run(dir.path(), &s, &s.password, &["v6", "publish"]);
    let digest = support::printed_digest(&assert_ok(&out));
    let id = id_in(&text(&out.stderr), "Submitted");
    assert_eq!(entry(&s, id)["digest"], digest.as_str());
    assert!(!text(&out.stderr).contains(&format!("\"{}\"", s.password)));

    // A rerun, for CI: the `published` line says what the store holds.
    let out = run(
        dir.path(),
        &s,
        &s.password,
        &["v6", "publish", "--message-format", "json"],
    );
    let stdout = assert_ok(&out);
    let published: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["reason"] == "published")
        .unwrap_or_else(|| panic!("no published line: {stdout}"));
    assert_eq!(published["store"]["id"], id);
    assert_eq!(published["store"]["unchanged"], true);
    assert_eq!(published["store"]["digest"], digest.as_str());
}

#[test]
fn the_stores_refusals_are_said_with_their_reason() {
    let s = store_stack();
    let stack = support::stack();
    // An image on the stack's plain-HTTP registry: the store reads images over HTTPS only and
    // fails (500).
    let image = format!("{}/{}", stack.registry, unique("submit-plain"));
    let _cleanup = LocalImages(image.clone());
    let dir = project(&image, &s.store, &s.server);
    assert_ok(&run(dir.path(), &s, &s.password, &["v6", "publish"]));
    let stderr = fails(&run(
        dir.path(),
        &s,
        &s.password,
        &["v6", "store", "submit"],
    ));
    assert!(stderr.contains("answered 500"), "{stderr}");
    assert!(stderr.contains("over HTTPS"), "{stderr}");
}

/// The vantage6 5.0.3 store of tests/support/store5.py (its Keycloak stood in for by the
/// realm's public key, so that the test signs the access tokens): stopped when dropped.
struct Store5 {
    child: std::process::Child,
    url: String,
    tokens: Value,
    _state: tempfile::TempDir,
}

impl Store5 {
    fn start(ca: &str) -> Store5 {
        use std::io::BufRead;
        let python = std::env::var("V6_STORE_SCHEMA_PYTHON_5")
            .expect("V6_STORE_SCHEMA_PYTHON_5 is not set: scripts/stack up makes it");
        let state = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/store5.py");
        let mut child = std::process::Command::new(python)
            .arg(script)
            .arg(state.path())
            .env("REQUESTS_CA_BUNDLE", ca)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let tokens: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the 5.0.3 store did not start: {e}: {line}"));
        Store5 {
            url: tokens["store"].as_str().unwrap().to_owned(),
            child,
            tokens,
            _state: state,
        }
    }
}

impl Drop for Store5 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_5x_release_is_submitted_with_a_keycloak_token_to_the_real_5_0_3_store() {
    let s = store_stack();
    let ca = std::env::var("V6_TEST_TLS_CA").unwrap();
    let store = Store5::start(&ca);
    let image = format!("{}/{}", s.tls_registry, unique("submit-5"));
    let _cleanup = LocalImages(image.clone());
    let dir = support::busybox_project(&image, "hello", "");
    let manifest = dir.path().join("v6.toml");
    let text_of = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("vantage6 = \"4.13\"", "vantage6 = \"5.0\"");
    let section = format!(
        "\n[store]\ndescription = \"Says hello\"\ncode-url = \"https://example.org/hello\"\npartitioning = \"horizontal\"\nstore-url = \"{}\"\n\n[[store.functions]]\nname = \"central_hello\"\nstep-type = \"central_compute\"\n\n[[store.functions.arguments]]\nname = \"column\"\ntype = \"column\"\n",
        store.url
    );
    std::fs::write(&manifest, text_of + &section).unwrap();
    commit_all(dir.path());
    let digest = support::printed_digest(&assert_ok(&cargo_v6_env(
        dir.path(),
        &[],
        &["v6", "publish"],
    )));
    let submit = |env: &[(&str, &str)]| cargo_v6_env(dir.path(), env, &["v6", "store", "submit"]);
    let token = |who: &str| store.tokens[who].as_str().unwrap().to_owned();

    // A developer's token: the entry, read back from the store.
    let developer = token("developer");
    let out = submit(&[("V6_SERVER_TOKEN", &developer)]);
    assert_ok(&out);
    let stderr = text(&out.stderr);
    let id = id_in(&stderr, "Submitted");
    assert!(!stderr.contains(&developer), "{stderr}");
    let read = std::process::Command::new("curl")
        .args(["-sf", &format!("{}/algorithm/{id}", store.url)])
        .output()
        .unwrap();
    let stored: Value = serde_json::from_str(&assert_ok(&read)).unwrap();
    assert_eq!(stored["digest"], digest.as_str());
    assert_eq!(stored["image"], format!("{image}:1.0.0"));
    assert_eq!(stored["functions"][0]["step_type"], "central_compute");
    assert_eq!(stored["vantage6_version"], "5.0");
    // Again: unchanged.
    let out = submit(&[("V6_SERVER_TOKEN", &developer)]);
    assert_ok(&out);
    assert_eq!(id_in(&text(&out.stderr), "Unchanged"), id);

    // A viewer may not submit (the 5.0.3 store answers 401); a user it does not know, 500;
    // a username and password cannot log in to Keycloak without a browser.
    let refused = |who: &str| {
        let token = token(who);
        fails(&cargo_v6_env(
            dir.path(),
            &[("V6_SERVER_TOKEN", &token)],
            &unknown_version(&digest),
        ))
    };
    let stderr = refused("viewer");
    assert!(stderr.contains("answered 401"), "{stderr}");
    let stderr = refused("stranger");
    assert!(stderr.contains("answered 500"), "{stderr}");
    let out = submit(&[("V6_SERVER_USERNAME", "me"), ("V6_SERVER_PASSWORD", "pw")]);
    assert!(
        fails(&out).contains("Keycloak access token"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_schema_refusal_points_at_v6_toml() {
    // A 5.x algorithm sent to the 4.15.2 store: its schema refuses `step_type`, named at the
    // function's table in v6.toml.
    let s = store_stack();
    let image = format!("{}/{}", s.tls_registry, unique("submit-400"));
    let _cleanup = LocalImages(image.clone());
    let dir = project(&image, &s.store, &s.server);
    let manifest = dir.path().join("v6.toml");
    let text_of = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("vantage6 = \"4.13\"", "vantage6 = \"5.0\"")
        .replace("type = \"central\"", "step-type = \"central_compute\"");
    std::fs::write(&manifest, &text_of).unwrap();
    support::git(dir.path(), &["commit", "-qam", "5.x"]);
    assert_ok(&cargo_v6_env(dir.path(), &[], &["v6", "publish"]));
    let login = std::process::Command::new("curl")
        .args(["-sf", "-X", "POST", "-H", "Content-Type: application/json"])
        .args([
            "-d",
            &format!(r#"{{"username":"{}","password":"{}"}}"#, s.user, s.password),
        ])
        .arg(format!("{}/token/user", s.server))
        .output()
        .unwrap();
    let token: Value = serde_json::from_str(&assert_ok(&login)).unwrap();
    let token = token["access_token"].as_str().unwrap();
    let out = cargo_v6_env(
        dir.path(),
        &[("V6_SERVER_TOKEN", token)],
        &["v6", "store", "submit"],
    );
    let stderr = fails(&out);
    assert!(stderr.contains("answered 400"), "{stderr}");
    assert!(stderr.contains("step_type"), "{stderr}");
    let line = text_of
        .lines()
        .position(|l| l == "[[store.functions]]")
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("v6.toml:{line}:")), "{stderr}");
    assert!(!stderr.contains(token), "{stderr}");
}

#[test]
fn a_store_that_fails_now_and_then_is_asked_again_but_a_post_is_sent_once() {
    // The stack's store behind a proxy that answers its first two reads, and every POST when
    // told to, with 503.
    let s = store_stack();
    let upstream = s
        .store
        .trim_start_matches("http://")
        .trim_end_matches("/api")
        .to_owned();
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fail_posts = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let proxy = {
        let (reads, fail_posts) = (reads.clone(), fail_posts.clone());
        Hostile::start(&upstream, move |request| {
            use std::sync::atomic::Ordering;
            let unavailable = || Answer::Respond(response("503 Service Unavailable", &[], b"{}"));
            match request.method.as_str() {
                "GET" if reads.fetch_add(1, Ordering::SeqCst) < 2 => unavailable(),
                "POST" if fail_posts.load(Ordering::SeqCst) => unavailable(),
                _ => Answer::Forward,
            }
        })
    };
    let store = format!("http://{}/api", proxy.host());
    let image = format!("{}/{}", s.tls_registry, unique("submit-flaky"));
    let _cleanup = LocalImages(image.clone());
    let dir = project(&image, &store, &s.server);
    let digest = support::printed_digest(&assert_ok(&run(
        dir.path(),
        &s,
        &s.password,
        &["v6", "publish"],
    )));

    // A POST that fails is not repeated: the store may have made the entry.
    let stderr = fails(&run(
        dir.path(),
        &s,
        &s.password,
        &["v6", "store", "submit"],
    ));
    assert!(stderr.contains("answered 503"), "{stderr}");
    let posts = |seen: Vec<String>| seen.iter().filter(|l| l.starts_with("POST ")).count();
    assert_eq!(posts(proxy.seen()), 1, "{:?}", proxy.seen());
    // The reads that failed were asked again; then the POST goes through, once.
    fail_posts.store(false, std::sync::atomic::Ordering::SeqCst);
    let out = run(dir.path(), &s, &s.password, &["v6", "store", "submit"]);
    assert_ok(&out);
    let id = id_in(&text(&out.stderr), "Submitted");
    assert_eq!(entry(&s, id)["digest"], digest.as_str());
    assert_eq!(posts(proxy.seen()), 2, "{:?}", proxy.seen());
    let reads_seen = proxy
        .seen()
        .iter()
        .filter(|l| l.starts_with("GET /api/algorithm"))
        .count();
    assert!(reads_seen >= 4, "{:?}", proxy.seen());
}
