//! `cargo v6 ci github|gitlab`: the generated files are read back with a YAML parser, their
//! triggers are tried on real tags of each release-tag convention, and the job is checked for
//! the command, the install pin, the credentials and the signing key. The jobs' scripts are
//! run with bash and jq (as the runners have them; scripts/stack installs jq), `cargo` replaced
//! by a stub that prints publish's JSON lines. No engine or registry.

use std::path::Path;

use assert_cmd::Command;
use yaml_rust2::{Yaml, YamlLoader};

mod support;
use support::copy_dir;

const GITHUB_FILE: &str = ".github/workflows/v6-publish.yml";
const GITLAB_FILE: &str = ".gitlab-ci.yml";
const PUBLISH: &str = "cargo v6 publish --from-tag --message-format json";

/// The python4 fixture in a temporary directory, with its v6.toml's `image` replaced and
/// `extra` appended.
fn project(image: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    project_in(dir.path(), image, extra);
    dir
}

/// [`project`] in `dir`.
fn project_in(dir: &Path, image: &str, extra: &str) {
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/python4"),
        dir,
    );
    let manifest = dir.join("v6.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("ghcr.io/example-org/partial-sum", image);
    std::fs::write(&manifest, format!("{text}\n{extra}")).unwrap();
}

fn cargo_v6(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("cargo-v6").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").arg("v6");
    cmd
}

/// Runs `cargo v6 ci PROVIDER` in `dir` (it must succeed) and parses the file it wrote.
fn generate(dir: &Path, provider: &str, file: &str) -> Yaml {
    let output = cargo_v6(dir).args(["ci", provider]).output().unwrap();
    assert!(
        output.status.success(),
        "ci {provider} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&std::fs::read_to_string(dir.join(file)).unwrap())
}

fn parse(text: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(docs.len(), 1, "{text}");
    docs.remove(0)
}

fn str_of(yaml: &Yaml) -> &str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("not a string: {yaml:?}"))
}

/// GitHub's filter pattern semantics, as its "filter pattern cheat sheet" documents them, for
/// the characters the generated patterns use: the whole tag must match; `*` is any run of
/// characters but `/`; `+` repeats the preceding character or class once or more; `[0-9]` is a
/// digit; `\c` is the character `c`; anything else is itself.
fn glob_matches(pattern: &str, tag: &str) -> bool {
    let mut re = String::from("^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => re.push_str("[^/]*"),
            '+' => re.push('+'),
            '[' => {
                re.push('[');
                for d in chars.by_ref() {
                    re.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            '\\' => re.push_str(&regex::escape(&chars.next().unwrap().to_string())),
            '?' | '!' => panic!("the generated patterns use no `{c}` unescaped: {pattern}"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).unwrap().is_match(tag)
}

fn github_patterns(workflow: &Yaml) -> Vec<String> {
    workflow["on"]["push"]["tags"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|p| str_of(p).to_string())
        .collect()
}

fn github_triggers(workflow: &Yaml, tag: &str) -> bool {
    github_patterns(workflow)
        .iter()
        .any(|p| glob_matches(p, tag))
}

/// The GitLab job's `rules: - if:` regex, compiled as GitLab would (RE2 syntax, which the
/// regex crate shares for what the file uses).
fn gitlab_rule(job: &Yaml) -> regex::Regex {
    let rules = job["rules"].as_vec().unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    let condition = str_of(&rules[0]["if"]);
    let pattern = condition
        .strip_prefix("$CI_COMMIT_TAG =~ /")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("not a tag regex rule: {condition}"));
    regex::Regex::new(pattern).unwrap()
}

/// The GitHub job's step named `name`.
fn step<'a>(workflow: &'a Yaml, name: &str) -> &'a Yaml {
    workflow["jobs"]["publish"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no step `{name}`"))
}

fn step_names(workflow: &Yaml) -> Vec<&str> {
    workflow["jobs"]["publish"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect()
}

const TAGS: [&str; 6] = [
    "1.2.3",
    "v1.2.3",
    "summary-v1.2.3",
    "1.2.3-rc.1",
    "v1.2.3-rc.1",
    "latest",
];

/// Which of [`TAGS`] each convention releases: (release-tag-prefix line, accepted tags).
const CONVENTIONS: [(&str, &[&str]); 3] = [
    ("", &["v1.2.3", "v1.2.3-rc.1"]),
    (
        "[publish]\nrelease-tag-prefix = \"\"\n",
        &["1.2.3", "1.2.3-rc.1"],
    ),
    (
        "[publish]\nrelease-tag-prefix = \"summary-v\"\n",
        &["summary-v1.2.3"],
    ),
];

#[test]
fn github_triggers_on_the_projects_release_tags_only() {
    for (extra, accepted) in CONVENTIONS {
        let dir = project("ghcr.io/example-org/partial-sum", extra);
        let workflow = generate(dir.path(), "github", GITHUB_FILE);
        assert_eq!(github_patterns(&workflow).len(), 1);
        for tag in TAGS {
            assert_eq!(
                github_triggers(&workflow, tag),
                accepted.contains(&tag),
                "{tag} under {extra:?}: {:?}",
                github_patterns(&workflow)
            );
        }
    }
}

#[test]
fn gitlab_triggers_on_the_projects_release_tags_only() {
    for (extra, accepted) in CONVENTIONS {
        let dir = project("registry.gitlab.com/example-org/partial-sum", extra);
        let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
        let rule = gitlab_rule(&ci["v6-publish"]);
        for tag in TAGS {
            assert_eq!(
                rule.is_match(tag),
                accepted.contains(&tag),
                "{tag} under {extra:?}: {rule}"
            );
        }
    }
}

#[test]
fn github_job_installs_the_pinned_tool_publishes_from_the_tag_and_reports_the_digest() {
    let dir = project("ghcr.io/example-org/partial-sum", "");
    let workflow = generate(dir.path(), "github", GITHUB_FILE);
    assert_eq!(
        str_of(&step(&workflow, "Install cargo-v6")["run"]),
        format!(
            "cargo install cargo-v6 --locked --version {}",
            env!("CARGO_PKG_VERSION")
        )
    );
    let publish = step(&workflow, "Publish");
    let script = str_of(&publish["run"]);
    assert!(script.contains("set -euo pipefail"), "{script}");
    assert!(
        script.contains(&format!(
            "{PUBLISH} | tee \"$RUNNER_TEMP/v6-publish.jsonl\""
        )),
        "{script}"
    );
    assert_eq!(str_of(&publish["shell"]), "bash");
    // The job's outputs come from the report step, which reads the JSON lines.
    let outputs = &workflow["jobs"]["publish"]["outputs"];
    assert_eq!(
        str_of(&outputs["digest"]),
        "${{ steps.report.outputs.digest }}"
    );
    assert_eq!(
        str_of(&outputs["image"]),
        "${{ steps.report.outputs.image }}"
    );
    let report = step(&workflow, "Report");
    assert_eq!(str_of(&report["id"]), "report");
    assert_eq!(str_of(&report["if"]), "${{ !cancelled() }}");
    let script = str_of(&report["run"]);
    for needle in [
        "$GITHUB_OUTPUT",
        "$GITHUB_STEP_SUMMARY",
        "digest=\\(.digest)",
        "select(.reason == \"published\")",
        "`\\(.image)@\\(.digest)`",
    ] {
        assert!(script.contains(needle), "{needle} in {script}");
    }
    assert_eq!(
        step_names(&workflow),
        [
            "Install cargo-v6",
            "Publish",
            "Report",
            "Keep the release record"
        ]
    );
    let checkout = &workflow["jobs"]["publish"]["steps"][0];
    assert!(str_of(&checkout["uses"]).starts_with("actions/checkout@"));
}

#[test]
fn github_uses_the_job_token_for_ghcr_and_secrets_elsewhere() {
    let dir = project("ghcr.io/example-org/partial-sum", "");
    let workflow = generate(dir.path(), "github", GITHUB_FILE);
    assert_eq!(str_of(&workflow["permissions"]["packages"]), "write");
    assert_eq!(str_of(&workflow["permissions"]["contents"]), "read");
    let env = &step(&workflow, "Publish")["env"];
    assert_eq!(str_of(&env["V6_REGISTRY_USERNAME"]), "${{ github.actor }}");
    assert_eq!(
        str_of(&env["V6_REGISTRY_PASSWORD"]),
        "${{ secrets.GITHUB_TOKEN }}"
    );

    let dir = project("registry.example.org/team/partial-sum", "");
    let workflow = generate(dir.path(), "github", GITHUB_FILE);
    assert!(workflow["permissions"]["packages"].is_badvalue());
    assert_eq!(str_of(&workflow["permissions"]["contents"]), "read");
    let env = &step(&workflow, "Publish")["env"];
    assert_eq!(
        str_of(&env["V6_REGISTRY_USERNAME"]),
        "${{ secrets.V6_REGISTRY_USERNAME }}"
    );
    assert_eq!(
        str_of(&env["V6_REGISTRY_PASSWORD"]),
        "${{ secrets.V6_REGISTRY_PASSWORD }}"
    );
    assert!(env["COSIGN_PASSWORD"].is_badvalue());
}

#[test]
fn github_writes_the_signing_key_from_a_secret_before_publishing() {
    let dir = project(
        "ghcr.io/example-org/partial-sum",
        "[sign]\nkey = \"keys/it's cosign.key\"\n",
    );
    let workflow = generate(dir.path(), "github", GITHUB_FILE);
    assert_eq!(
        step_names(&workflow),
        [
            "Install cargo-v6",
            "Write the signing key",
            "Publish",
            "Report",
            "Keep the release record"
        ]
    );
    let key = step(&workflow, "Write the signing key");
    assert_eq!(
        str_of(&key["env"]["COSIGN_PRIVATE_KEY"]),
        "${{ secrets.COSIGN_PRIVATE_KEY }}"
    );
    let script = str_of(&key["run"]);
    assert!(
        script.contains("key='keys/it'\\''s cosign.key'\n"),
        "{script}"
    );
    assert!(script.contains("umask 077"), "{script}");
    assert!(
        script.contains("printf '%s\\n' \"$COSIGN_PRIVATE_KEY\" > \"$key\""),
        "{script}"
    );
    assert_eq!(
        str_of(&step(&workflow, "Publish")["env"]["COSIGN_PASSWORD"]),
        "${{ secrets.COSIGN_PASSWORD }}"
    );
    // And the file says so to whoever reads it.
    let text = std::fs::read_to_string(dir.path().join(GITHUB_FILE)).unwrap();
    assert!(text.contains("# Signing: v6.toml names a key"), "{text}");
}

#[test]
fn gitlab_job_runs_on_dind_with_tls_and_keeps_the_digest() {
    let dir = project("registry.gitlab.com/example-org/partial-sum", "");
    let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
    let job = &ci["v6-publish"];
    assert!(str_of(&job["image"]).starts_with("rust:1"));
    assert_eq!(str_of(&job["services"][0]["name"]), "docker:dind");
    assert_eq!(str_of(&job["services"][0]["alias"]), "docker");
    let variables = &job["variables"];
    for (name, value) in [
        ("DOCKER_HOST", "tcp://docker:2376"),
        ("DOCKER_TLS_CERTDIR", "/certs"),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", "/certs/client"),
        ("V6_IMAGE_REGISTRY", "registry.gitlab.com"),
    ] {
        assert_eq!(str_of(&variables[name]), value, "{name}");
    }
    let script = str_of(&job["script"][0]);
    assert!(
        script.contains(&format!(
            "cargo install cargo-v6 --locked --version {}\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{script}"
    );
    // Written outside the work tree while publish runs (a new file would make it dirty), and
    // publish's exit status is the job's.
    assert!(
        script.contains(&format!("{PUBLISH} | tee \"$results\" || status=$?")),
        "{script}"
    );
    assert!(script.contains("results=\"$(mktemp)\""), "{script}");
    assert!(script.trim_end().ends_with("exit \"$status\""), "{script}");
    assert!(script.contains("set -euo pipefail"));
    // GitLab's own registry with the job's token, unless the variables are set.
    assert!(script.contains("V6_REGISTRY_USERNAME=\"$CI_REGISTRY_USER\""));
    assert!(script.contains("V6_REGISTRY_PASSWORD=\"$CI_REGISTRY_PASSWORD\""));
    assert!(script.contains("V6_DIGEST=\\(.digest)"), "{script}");
    assert!(!script.contains("COSIGN"), "{script}");
    assert_eq!(str_of(&job["artifacts"]["when"]), "always");
    assert_eq!(
        str_of(&job["artifacts"]["reports"]["dotenv"]),
        "v6-publish.env"
    );
    assert_eq!(str_of(&job["artifacts"]["paths"][0]), "v6-publish.jsonl");
}

#[test]
fn gitlab_signs_with_a_key_from_a_variable_and_other_registries_need_variables() {
    let dir = project(
        "docker.io/example/partial-sum",
        "[sign]\nkey = \"../keys/cosign.key\"\n",
    );
    let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
    let job = &ci["v6-publish"];
    let script = str_of(&job["script"][0]);
    let key_at = script.find("key='../keys/cosign.key'").expect(script);
    assert!(key_at < script.find(PUBLISH).unwrap());
    assert!(script.contains("\"$COSIGN_PRIVATE_KEY\" > \"$key\""));
    // The registry is not GitLab's: the fallback to the job token compares with it at run time.
    assert_eq!(str_of(&job["variables"]["V6_IMAGE_REGISTRY"]), "docker.io");
    let text = std::fs::read_to_string(dir.path().join(GITLAB_FILE)).unwrap();
    assert!(text.contains("COSIGN_PASSWORD"), "{text}");
}

#[test]
fn prefixes_with_yaml_and_pattern_characters_stay_literal() {
    let prefix = "r#1: '\\\"[x]+*/";
    let extra = format!(
        "[publish]\nrelease-tag-prefix = {}\n",
        toml::Value::String(prefix.to_string())
    );
    let tag = format!("{prefix}1.2.3");
    let dir = project("ghcr.io/example-org/partial-sum", &extra);
    let workflow = generate(dir.path(), "github", GITHUB_FILE);
    assert!(github_triggers(&workflow, &tag), "{tag}");
    assert!(!github_triggers(&workflow, "1.2.3"));
    // What the pattern would take if the prefix's characters were not escaped.
    assert!(!github_triggers(&workflow, "r#1: '\"xxz/1.2.3"));
    let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
    let rule = gitlab_rule(&ci["v6-publish"]);
    assert!(rule.is_match(&tag), "{rule}");
    assert!(!rule.is_match("1.2.3"));
    // No unescaped `/` ends GitLab's regex literal early.
    let condition = str_of(&ci["v6-publish"]["rules"][0]["if"]);
    let body = &condition["$CI_COMMIT_TAG =~ /".len()..condition.len() - 1];
    assert!(!body.replace("\\/", "").contains('/'), "{body}");
}

#[test]
fn a_github_expression_in_a_value_is_refused() {
    let dir = project(
        "ghcr.io/example-org/partial-sum",
        "[publish]\nrelease-tag-prefix = \"${{ secrets.X }}\"\n",
    );
    let output = cargo_v6(dir.path())
        .args(["ci", "github"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("release-tag-prefix"), "{stderr}");
    assert!(!dir.path().join(GITHUB_FILE).exists());
}

#[test]
fn an_existing_file_is_kept_without_force_and_replaced_with_it() {
    let dir = project("ghcr.io/example-org/partial-sum", "");
    let path = dir.path().join(GITHUB_FILE);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "mine\n").unwrap();
    let output = cargo_v6(dir.path())
        .args(["ci", "github"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(GITHUB_FILE) && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine\n");

    let output = cargo_v6(dir.path())
        .args(["ci", "github", "--force"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("Replaced {GITHUB_FILE}")),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains(PUBLISH));
}

#[test]
fn created_says_where_and_what_to_set_up() {
    let dir = project("registry.example.org/team/partial-sum", "");
    let output = cargo_v6(dir.path())
        .args(["ci", "github"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("Created {GITHUB_FILE}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("V6_REGISTRY_USERNAME and V6_REGISTRY_PASSWORD"),
        "{stderr}"
    );
    assert!(stderr.contains("git tag v1.2.3"), "{stderr}");
}

#[test]
fn stdout_prints_and_writes_nothing() {
    let dir = project("ghcr.io/example-org/partial-sum", "");
    for (provider, file) in [("github", GITHUB_FILE), ("gitlab", GITLAB_FILE)] {
        let output = cargo_v6(dir.path())
            .args(["ci", provider, "--stdout"])
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.contains(PUBLISH));
        parse(&text);
        assert!(!dir.path().join(file).exists());
    }
}

#[test]
fn files_go_to_the_project_root_or_where_output_says() {
    let dir = project("ghcr.io/example-org/partial-sum", "");
    let elsewhere = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("v6.toml");
    let output = cargo_v6(elsewhere.path())
        .args(["ci", "gitlab", "--manifest-path"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(dir.path().join(GITLAB_FILE).is_file());
    assert!(!elsewhere.path().join(GITLAB_FILE).exists());

    let output = cargo_v6(dir.path())
        .args(["ci", "gitlab", "-o", "ci/v6.yml"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    parse(&std::fs::read_to_string(dir.path().join("ci/v6.yml")).unwrap());
}

#[test]
fn help_has_examples() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["ci", "--help"][..], &["ci", "github", "--help"]] {
        let output = cargo_v6(dir.path()).args(args).output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.contains("Examples:"), "{text}");
    }
}

// ---- the jobs' scripts, run ----

const PUBLISHED: &str = r#"{"reason":"published","algorithm":"partial_sum","image":"ghcr.io/example-org/partial-sum","version":"1.2.3","digest":"sha256:abc","tags_pushed":["1.2.3"]}"#;
const FAILED: &str =
    r#"{"reason":"error","message":"boom","exit_code":1,"algorithm":"partial_sum"}"#;

/// A directory of stubs: `cargo install ...` and `apt-get` succeed doing nothing; `cargo v6
/// ...` prints `$FAKE_LINES` and exits with `$FAKE_STATUS`, or fails with 99 when a
/// `v6-publish.*` file is already in the work tree (the current directory), which would make
/// the tree dirty for publish.
fn stubs() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    write(
        "cargo",
        "#!/bin/sh\nif [ \"$1\" = v6 ]; then\n  if ls v6-publish.* >/dev/null 2>&1; then echo dirty >&2; exit 99; fi\n  printf '%s\\n' \"$FAKE_LINES\"\n  exit \"$FAKE_STATUS\"\nfi\n",
    );
    write("apt-get", "#!/bin/sh\nexit 0\n");
    dir
}

/// Runs `script` with bash in `dir`, the stubs first on PATH and `env` set.
fn run_script(
    script: &str,
    dir: &Path,
    stubs: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let path = format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap());
    std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn github_scripts_keep_publishs_status_and_hand_on_the_digest() {
    let dir = project("ghcr.io/example-org/partial-sum", "");
    let workflow = generate(dir.path(), "github", GITHUB_FILE);
    let publish = str_of(&step(&workflow, "Publish")["run"]).to_string();
    let report = str_of(&step(&workflow, "Report")["run"]).to_string();
    let stubs = stubs();
    for (lines, status) in [(PUBLISHED, 0), (FAILED, 1)] {
        let temp = tempfile::tempdir().unwrap();
        let file = |name: &str| temp.path().join(name).to_str().unwrap().to_string();
        let status_text = status.to_string();
        let env = [
            ("RUNNER_TEMP", file("")),
            ("GITHUB_OUTPUT", file("output")),
            ("GITHUB_STEP_SUMMARY", file("summary")),
            ("FAKE_LINES", lines.to_string()),
            ("FAKE_STATUS", status_text),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ran = run_script(&publish, dir.path(), stubs.path(), &env);
        assert_eq!(ran.status.code(), Some(status), "{ran:?}");
        let ran = run_script(&report, dir.path(), stubs.path(), &env);
        assert!(ran.status.success(), "{ran:?}");
        let output = std::fs::read_to_string(file("output")).unwrap_or_default();
        let summary = std::fs::read_to_string(file("summary")).unwrap();
        if status == 0 {
            assert_eq!(
                output,
                "image=ghcr.io/example-org/partial-sum\ndigest=sha256:abc\npinned=ghcr.io/example-org/partial-sum@sha256:abc\n"
            );
            assert!(
                summary.contains(
                    "| partial_sum | 1.2.3 | `ghcr.io/example-org/partial-sum@sha256:abc` |"
                ),
                "{summary}"
            );
        } else {
            assert_eq!(output, "");
            assert!(
                summary.contains("**error** (partial_sum): boom"),
                "{summary}"
            );
        }
        // Nothing was left in the work tree.
        assert!(!dir.path().join("v6-publish.jsonl").exists());
    }
}

#[test]
fn gitlab_script_keeps_publishs_status_and_writes_the_dotenv_report() {
    let stubs = stubs();
    for (lines, status) in [(PUBLISHED, 0), (FAILED, 1)] {
        let dir = project("registry.gitlab.com/example-org/partial-sum", "");
        let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
        let job = &ci["v6-publish"];
        let script = str_of(&job["script"][0]);
        let status_text = status.to_string();
        let env = [
            (
                "V6_IMAGE_REGISTRY",
                str_of(&job["variables"]["V6_IMAGE_REGISTRY"]),
            ),
            ("CI_REGISTRY", "registry.gitlab.com"),
            ("CI_REGISTRY_USER", "gitlab-ci-token"),
            ("CI_REGISTRY_PASSWORD", "job-token"),
            ("FAKE_LINES", lines),
            ("FAKE_STATUS", &status_text),
        ];
        let ran = run_script(script, dir.path(), stubs.path(), &env);
        assert_eq!(ran.status.code(), Some(status), "{ran:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("v6-publish.jsonl")).unwrap(),
            format!("{lines}\n")
        );
        let dotenv = std::fs::read_to_string(dir.path().join("v6-publish.env")).unwrap();
        if status == 0 {
            assert_eq!(
                dotenv,
                "V6_IMAGE=ghcr.io/example-org/partial-sum\nV6_DIGEST=sha256:abc\nV6_PINNED=ghcr.io/example-org/partial-sum@sha256:abc\n"
            );
        } else {
            assert_eq!(dotenv, "");
        }
    }
}

#[test]
fn the_signing_key_is_written_private_where_v6_toml_says_and_required() {
    use std::os::unix::fs::PermissionsExt;
    // The project one level down, so that `../keys` stays inside the temporary directory.
    let outer = tempfile::tempdir().unwrap();
    let project = outer.path().join("project");
    std::fs::create_dir(&project).unwrap();
    project_in(
        &project,
        "ghcr.io/example-org/partial-sum",
        "[sign]\nkey = \"../keys/it's cosign.key\"\n",
    );
    let key = outer.path().join("keys/it's cosign.key");
    let workflow = generate(&project, "github", GITHUB_FILE);
    let script = str_of(&step(&workflow, "Write the signing key")["run"]).to_string();
    let stubs = stubs();
    let ran = run_script(
        &script,
        &project,
        stubs.path(),
        &[("COSIGN_PRIVATE_KEY", "")],
    );
    assert!(!ran.status.success());
    assert!(String::from_utf8_lossy(&ran.stdout).contains("COSIGN_PRIVATE_KEY is not set"));
    assert!(!key.exists());

    let pem = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----";
    let ran = run_script(
        &script,
        &project,
        stubs.path(),
        &[("COSIGN_PRIVATE_KEY", pem)],
    );
    assert!(ran.status.success(), "{ran:?}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), format!("{pem}\n"));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

// ---- workspaces ----

/// A workspace of `alpha` and `beta` (default prefixes `NAME-v`) on ghcr.io; `beta` signs with
/// a key two directories up from it, `keys/cosign.key` from the root.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v6.toml"),
        "[workspace]\nmembers = [\"algorithms/*\"]\n\n[workspace.algorithm]\nwrapper = \"minimal\"\nvantage6 = \"4.13\"\nimage = \"ghcr.io/example-org/{name}\"\n\n[workspace.build]\nbase = \"docker.io/library/busybox:1\"\n",
    )
    .unwrap();
    for (name, extra) in [
        ("alpha", ""),
        ("beta", "\n[sign]\nkey = \"../../keys/cosign.key\"\n"),
    ] {
        let member = dir.path().join("algorithms").join(name);
        std::fs::create_dir_all(&member).unwrap();
        std::fs::write(
            member.join("v6.toml"),
            format!("[algorithm]\nname = \"{name}\"\nversion = \"1.0.0\"\n\n[build]\ncommand = [\"true\"]\n{extra}"),
        )
        .unwrap();
    }
    dir
}

#[test]
fn a_workspace_gets_one_trigger_per_member_at_its_root() {
    let dir = workspace();
    // Run inside a member: the file still goes to the root, for every member.
    let member = dir.path().join("algorithms/alpha");
    let workflow = generate(&member, "github", &format!("../../{GITHUB_FILE}"));
    assert_eq!(
        github_patterns(&workflow),
        ["alpha-v[0-9]+.[0-9]+*", "beta-v[0-9]+.[0-9]+*"]
    );
    for (tag, triggers) in [
        ("alpha-v1.2.3", true),
        ("beta-v1.0.0-rc.1", true),
        ("v1.2.3", false),
        ("1.2.3", false),
        ("gamma-v1.2.3", false),
    ] {
        assert_eq!(github_triggers(&workflow, tag), triggers, "{tag}");
    }
    let key = str_of(&step(&workflow, "Write the signing key")["run"]);
    assert!(key.contains("key='keys/cosign.key'\n"), "{key}");

    let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
    let rule = gitlab_rule(&ci["v6-publish"]);
    assert!(rule.is_match("alpha-v1.2.3") && rule.is_match("beta-v1.2.3"));
    assert!(!rule.is_match("v1.2.3") && !rule.is_match("gamma-v1.2.3"));
}

#[test]
fn p_narrows_a_workspace_to_the_members_named() {
    let dir = workspace();
    let output = cargo_v6(dir.path())
        .args(["ci", "github", "-p", "alpha", "--stdout"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let workflow = parse(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(github_patterns(&workflow), ["alpha-v[0-9]+.[0-9]+*"]);
    assert!(!step_names(&workflow).contains(&"Write the signing key"));
    let output = cargo_v6(dir.path())
        .args(["ci", "github", "-p", "gamma"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn the_release_record_and_the_store_file_are_kept() {
    let store = "[store]\noutput = \"store/algorithm_store.json\"\ncode-url = \"https://example.org/code\"\npartitioning = \"horizontal\"\nfunctions = []\n";
    let dir = project("ghcr.io/example-org/partial-sum", store);
    let workflow = generate(dir.path(), "github", GITHUB_FILE);
    let keep = step(&workflow, "Keep the release record");
    assert_eq!(str_of(&keep["uses"]), "actions/upload-artifact@v4");
    let paths: Vec<&str> = str_of(&keep["with"]["path"]).lines().collect();
    assert_eq!(paths, ["store/algorithm_store.json", "v6.lock"]);
    // After publishing: a failed publish has nothing to keep.
    let names = step_names(&workflow);
    assert_eq!(names.last(), Some(&"Keep the release record"));

    let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
    let kept: Vec<&str> = ci["v6-publish"]["artifacts"]["paths"]
        .as_vec()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    assert_eq!(
        kept,
        ["v6-publish.jsonl", "store/algorithm_store.json", "v6.lock"]
    );

    // Without [store], the record alone.
    let plain = project("ghcr.io/example-org/partial-sum", "");
    let workflow = generate(plain.path(), "github", GITHUB_FILE);
    let keep = step(&workflow, "Keep the release record");
    assert_eq!(str_of(&keep["with"]["path"]).trim(), "v6.lock");
}
