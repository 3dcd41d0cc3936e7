//! `cargo v6 ci github|gitlab`: the generated files are read back with a YAML parser, their
//! triggers are tried on real tags of each release-tag convention, and the job is checked for
//! the command, the install pin, the credentials and the signing key. The jobs' scripts are
//! run with bash and jq (as the runners have them; scripts/stack installs jq), `cargo` replaced
//! by a stub that prints publish's JSON lines. Then the services' own tools: every generated
//! workflow is checked with actionlint, and the GitLab job is run by gitlab-ci-local against
//! the stack's engine and registry, from a tag to a published image (both tools are installed
//! by scripts/stack, which exports their paths).

use std::path::Path;

use assert_cmd::Command;
use yaml_rust2::{Yaml, YamlLoader};

mod support;
use support::copy_dir;

const GITHUB_FILE: &str = ".github/workflows/v6-publish.yml";
const GITLAB_FILE: &str = ".gitlab-ci.yml";
const PUBLISH: &str = "cargo v6 publish --from-tag --message-format json";
/// The repository the generated jobs install cargo-v6 from, passed to every `ci` run (the
/// test binary knows its commit, but no network URL: the checkout has none).
const INSTALL_GIT: &str = "https://example.org/v6/cargo-v6.git";
const INSTALL: [&str; 2] = ["--install-git", INSTALL_GIT];

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

/// The commit cargo-v6 was built from: what build.rs recorded for this package's targets (the
/// binary and this test alike, built together), checked to be a commit of the repository the
/// tests run in. Not HEAD as it is now: a commit made while the tests run moves HEAD, not the
/// binary.
fn built_from() -> String {
    let rev = env!("CARGO_V6_SOURCE_REV").to_string();
    let output = std::process::Command::new("git")
        .args(["cat-file", "-e", &format!("{rev}^{{commit}}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{rev} is no commit here: {output:?}"
    );
    rev
}

fn cargo_v6(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("cargo-v6").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").arg("v6");
    cmd
}

/// Runs `cargo v6 ci PROVIDER` in `dir` (it must succeed) and parses the file it wrote.
fn generate(dir: &Path, provider: &str, file: &str) -> Yaml {
    let output = cargo_v6(dir)
        .args(["ci", provider])
        .args(INSTALL)
        .output()
        .unwrap();
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

/// The paths the GitLab job keeps as artifacts.
fn artifact_paths(ci: &Yaml) -> Vec<&str> {
    ci["v6-publish"]["artifacts"]["paths"]
        .as_vec()
        .unwrap()
        .iter()
        .map(str_of)
        .collect()
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
    let rev = built_from();
    let install = step(&workflow, "Install cargo-v6");
    assert_eq!(
        str_of(&install["run"]),
        format!("cargo install --locked --git '{INSTALL_GIT}' --rev '{rev}' cargo-v6")
    );
    // The binary is cached under the commit: installed only on a miss, and saved at once.
    let restore = step(&workflow, "Restore cargo-v6");
    assert!(str_of(&restore["uses"]).starts_with("actions/cache/restore@"));
    let key = str_of(&restore["with"]["key"]);
    assert!(key.ends_with(&format!("-{rev}")), "{key}");
    assert_eq!(str_of(&restore["with"]["path"]), "~/.cargo/bin/cargo-v6");
    let miss = format!(
        "steps.{}.outputs.cache-hit != 'true'",
        str_of(&restore["id"])
    );
    assert_eq!(str_of(&install["if"]), miss);
    let save = step(&workflow, "Cache cargo-v6");
    assert!(str_of(&save["uses"]).starts_with("actions/cache/save@"));
    assert_eq!(str_of(&save["if"]), miss);
    assert_eq!(str_of(&save["with"]["key"]), key);
    assert_eq!(save["with"]["path"], restore["with"]["path"]);
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
            "Restore cargo-v6",
            "Install cargo-v6",
            "Cache cargo-v6",
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
            "Restore cargo-v6",
            "Install cargo-v6",
            "Cache cargo-v6",
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
    let rev = built_from();
    assert!(
        script.contains(&format!(
            "cargo install --locked --git '{INSTALL_GIT}' --rev '{rev}' --root \"$tools\" cargo-v6\n"
        )),
        "{script}"
    );
    // Installed only when the cache (keyed by the commit) has no binary; the scripts run
    // below show that it stays out of the work tree while publish runs.
    assert!(
        script.contains("if [ -x .cargo-v6/bin/cargo-v6 ]; then"),
        "{script}"
    );
    assert_eq!(str_of(&job["cache"]["key"]), format!("cargo-v6-{rev}"));
    assert_eq!(str_of(&job["cache"]["paths"][0]), ".cargo-v6/");
    assert_eq!(str_of(&job["cache"]["when"]), "always");
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
    // YAML's (`#`, `'`, `"`), GitHub's glob (`+`, `!`, `]`), GitLab's regex and the shell's
    // (`$`, `(`, `|`) characters, and `/`: all that git allows in a tag name.
    let prefix = "r#1'\"+!x]$(id)|/";
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
    assert!(!github_triggers(&workflow, "r#1'\"\"!x]$(id)|/1.2.3"));
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
        "[publish]\nrelease-tag-prefix = \"${{secrets.X}}\"\n",
    );
    let output = cargo_v6(dir.path())
        .args(["ci", "github"])
        .args(INSTALL)
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
        .args(INSTALL)
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
        .args(INSTALL)
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

/// A project's own `.gitlab-ci.yml` (its whole pipeline, not a file cargo v6 wrote): the
/// refusal says how to add the job without replacing the pipeline, not just `--force`.
#[test]
fn an_own_gitlab_pipeline_is_kept_and_the_way_to_include_the_job_is_named() {
    let dir = project("registry.gitlab.com/org/partial-sum", "");
    let path = dir.path().join(".gitlab-ci.yml");
    let own = "stages: [test]\ntest:\n  script: [make test]\n";
    std::fs::write(&path, own).unwrap();
    let output = cargo_v6(dir.path())
        .args(["ci", "gitlab"])
        .args(INSTALL)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not one cargo v6 wrote")
            && stderr.contains("cargo v6 ci gitlab -o ci/v6-publish.yml")
            && stderr.contains("include:"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), own);
    // The file it says to write, then include, is a job of its own.
    let output = cargo_v6(dir.path())
        .args(["ci", "gitlab", "-o", "ci/v6-publish.yml"])
        .args(INSTALL)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(dir.path().join("ci/v6-publish.yml").is_file());
}

/// `--install-git file://...` is a path on this machine: a hosted runner has no such path.
#[test]
fn a_local_install_source_is_warned_about() {
    let dir = project("registry.example.org/team/partial-sum", "");
    for (git, warned) in [("file:///srv/git/cargo-v6", true), (INSTALL_GIT, false)] {
        let output = cargo_v6(dir.path())
            .args(["ci", "github", "--stdout", "--install-git", git])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.contains("warning:") && stderr.contains("a path on this machine"),
            warned,
            "{git}: {stderr}"
        );
    }
}

/// v6.toml in a subdirectory of its repository: GitHub and GitLab read the file only at the
/// repository's top, and the job runs there. The file goes there, publish is told where
/// v6.toml is, and the paths the job writes and keeps are the repository's.
#[test]
fn a_project_below_the_repository_top_gets_its_file_at_the_top() {
    let repo = tempfile::tempdir().unwrap();
    let store = "[sign]\nkey = \"keys/cosign.key\"\n[store]\noutput = \"store/algorithm_store.json\"\ncode-url = \"https://example.org/code\"\npartitioning = \"horizontal\"\nfunctions = []\n";
    let dir = repo.path().join("algorithms/sum");
    project_in(&dir, "ghcr.io/example-org/partial-sum", store);
    support::commit_all(repo.path());

    let workflow = generate(&dir, "github", "../../.github/workflows/v6-publish.yml");
    assert!(!dir.join(".github").exists());
    let publish = str_of(&step(&workflow, "Publish")["run"]);
    assert!(
        publish.contains("cargo v6 publish --from-tag --manifest-path 'algorithms/sum/v6.toml' --message-format json"),
        "{publish}"
    );
    let key = str_of(&step(&workflow, "Write the signing key")["run"]);
    assert!(
        key.contains("key='algorithms/sum/keys/cosign.key'"),
        "{key}"
    );
    let kept: Vec<&str> = str_of(&step(&workflow, "Keep the release record")["with"]["path"])
        .lines()
        .collect();
    assert_eq!(
        kept,
        [
            "algorithms/sum/store/algorithm_store.json",
            "algorithms/sum/v6.lock"
        ]
    );

    let ci = generate(&dir, "gitlab", "../../.gitlab-ci.yml");
    assert!(!dir.join(".gitlab-ci.yml").exists());
    let script = str_of(&ci["v6-publish"]["script"][0]);
    assert!(
        script.contains("cargo v6 publish --from-tag --manifest-path 'algorithms/sum/v6.toml' --message-format json"),
        "{script}"
    );
    let kept: Vec<&str> = ci["v6-publish"]["artifacts"]["paths"]
        .as_vec()
        .unwrap()
        .iter()
        .map(str_of)
        .collect();
    assert_eq!(
        kept,
        [
            "v6-publish.jsonl",
            "algorithms/sum/store/algorithm_store.json",
            "algorithms/sum/v6.lock"
        ]
    );
}

/// The tag the notes suggest follows the repository's latest release tag under the prefix,
/// never a made-up `1.2.3` lower than a release it already has.
#[test]
fn the_suggested_release_tag_follows_the_latest() {
    let dir = project(
        "registry.example.org/team/partial-sum",
        "[publish]\nrelease-tag-prefix = \"\"\n",
    );
    support::commit_all(dir.path());
    support::git(dir.path(), &["tag", "1.3.1"]);
    support::git(dir.path(), &["tag", "v9.0.0"]);
    let output = cargo_v6(dir.path())
        .args(["ci", "github"])
        .args(INSTALL)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "git tag 1.3.2 && git push origin 1.3.2 (after the latest release tag `1.3.1`)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("1.2.3"), "{stderr}");
}

#[test]
fn created_says_where_and_what_to_set_up() {
    let dir = project("registry.example.org/team/partial-sum", "");
    let output = cargo_v6(dir.path())
        .args(["ci", "github"])
        .args(INSTALL)
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
            .args(INSTALL)
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
        .args(INSTALL)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(dir.path().join(GITLAB_FILE).is_file());
    assert!(!elsewhere.path().join(GITLAB_FILE).exists());

    let output = cargo_v6(dir.path())
        .args(["ci", "gitlab", "-o", "ci/v6.yml"])
        .args(INSTALL)
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

/// A directory of stubs: `cargo install ... --root DIR` puts a copy of the stub at
/// `DIR/bin/cargo-v6` (its arguments appended to `$INSTALL_LOG` when set), `apt-get` succeeds
/// doing nothing; `cargo v6 ...` prints `$FAKE_LINES` and exits
/// with `$FAKE_STATUS`, or fails with 99 when the work tree (the current directory) is dirty
/// as publish would see it: a `v6-publish.*` file in it, or anything `git status` lists.
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
        "#!/bin/sh\nif [ \"$1\" = install ]; then\n  if [ -n \"${INSTALL_LOG:-}\" ]; then echo \"$*\" >> \"$INSTALL_LOG\"; fi\n  while [ $# -gt 0 ]; do\n    if [ \"$1\" = --root ]; then mkdir -p \"$2/bin\" && cp \"$0\" \"$2/bin/cargo-v6\"; fi\n    shift\n  done\n  exit 0\nfi\nif [ \"$1\" = v6 ]; then\n  if ls v6-publish.* >/dev/null 2>&1 || [ -n \"$(git status --porcelain 2>/dev/null)\" ]; then echo dirty >&2; exit 99; fi\n  printf '%s\\n' \"$FAKE_LINES\"\n  exit \"$FAKE_STATUS\"\nfi\n",
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
        support::commit_all(dir.path());
        let job = &ci["v6-publish"];
        let script = str_of(&job["script"][0]);
        let status_text = status.to_string();
        // The second round finds cargo-v6 where the cache restores it: no install, and the
        // restored directory does not make the work tree dirty.
        let cached = status == 1;
        if cached {
            let bin = dir.path().join(".cargo-v6/bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::copy(stubs.path().join("cargo"), bin.join("cargo-v6")).unwrap();
        }
        let logs = tempfile::tempdir().unwrap();
        let log = logs.path().join("install.log");
        let log = log.to_str().unwrap();
        let env = [
            ("INSTALL_LOG", log),
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
        let installs = std::fs::read_to_string(log).unwrap_or_default();
        if cached {
            assert_eq!(installs, "");
        } else {
            assert!(installs.contains("--rev"), "{installs}");
        }
        // Back where the cache keeps it, after publish.
        assert!(dir.path().join(".cargo-v6/bin/cargo-v6").is_file());
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
        .args(INSTALL)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let workflow = parse(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(github_patterns(&workflow), ["alpha-v[0-9]+.[0-9]+*"]);
    assert!(!step_names(&workflow).contains(&"Write the signing key"));
    let output = cargo_v6(dir.path())
        .args(["ci", "github", "-p", "gamma"])
        .args(INSTALL)
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
    assert_eq!(str_of(&keep["uses"]), "actions/upload-artifact@v7");
    let paths: Vec<&str> = str_of(&keep["with"]["path"]).lines().collect();
    assert_eq!(paths, ["store/algorithm_store.json", "v6.lock"]);
    // After publishing: a failed publish has nothing to keep.
    let names = step_names(&workflow);
    assert_eq!(names.last(), Some(&"Keep the release record"));

    let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
    let kept = artifact_paths(&ci);
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

// ---- values that could change what the file does ----

/// The `[store]` lines with `output` as given (a TOML string literal).
fn store_with_output(output: &str) -> String {
    format!(
        "[store]\noutput = {output}\ncode-url = \"https://example.org/code\"\npartitioning = \"horizontal\"\nfunctions = []\n"
    )
}

/// The issue's attack: a newline in `store.output` wrote a second job, `evil`, that receives
/// the registry password. Every command that loads v6.toml refuses it now, pointing at it.
#[test]
fn a_newline_in_store_output_is_refused_where_it_is_written() {
    let evil = r#""z.json\n  evil:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ secrets.V6_REGISTRY_PASSWORD }}\n#.json""#;
    let dir = project("ghcr.io/example-org/partial-sum", &store_with_output(evil));
    let text = std::fs::read_to_string(dir.path().join("v6.toml")).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("output = "))
        .unwrap()
        + 1;
    for args in [
        &["plan", "--offline"][..],
        &["ci", "github", "--install-git", INSTALL_GIT],
        &["ci", "gitlab", "--install-git", INSTALL_GIT],
    ] {
        let output = cargo_v6(dir.path()).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("`store.output` must be a single line")
                && stderr.contains(&format!("v6.toml:{line}:10")),
            "{args:?}: {stderr}"
        );
    }
    assert!(!dir.path().join(GITHUB_FILE).exists());
    assert!(!dir.path().join(GITLAB_FILE).exists());
}

/// The jobs of a generated file: GitHub's `jobs`, GitLab's top-level keys.
fn job_names(yaml: &Yaml, provider: &str) -> Vec<String> {
    let jobs = match provider {
        "github" => &yaml["jobs"],
        _ => yaml,
    };
    jobs.as_hash()
        .unwrap()
        .keys()
        .map(|k| str_of(k).to_string())
        .collect()
}

/// A path with YAML's and the shell's special characters (`: `, ` #`, `'`, `"`, ` - `) is one
/// artifact path in the one job, read back as itself.
#[test]
fn store_output_with_yaml_characters_stays_one_path_of_one_job() {
    let path = r##"out/it's: "#1" - a.json"##;
    let dir = project(
        "ghcr.io/example-org/partial-sum",
        &store_with_output(&toml::Value::String(path.to_string()).to_string()),
    );
    let workflow = generate(dir.path(), "github", GITHUB_FILE);
    assert_eq!(job_names(&workflow, "github"), ["publish"]);
    let keep = step(&workflow, "Keep the release record");
    let paths: Vec<&str> = str_of(&keep["with"]["path"]).lines().collect();
    assert_eq!(paths, [path, "v6.lock"]);
    let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
    assert_eq!(job_names(&ci, "gitlab"), ["v6-publish"]);
    let kept = artifact_paths(&ci);
    assert_eq!(kept, ["v6-publish.jsonl", path, "v6.lock"]);
}

/// Artifact paths are patterns to both services: one that would not name the file itself (a
/// glob, a variable, GitHub's `!` exclusion or `#` comment line) is refused, not written.
#[test]
fn store_outputs_that_are_patterns_are_refused() {
    for path in [
        "*.json",
        "out/$CI_JOB_TOKEN.json",
        "!a.json",
        "#a.json",
        "a[1].json",
    ] {
        let dir = project(
            "ghcr.io/example-org/partial-sum",
            &store_with_output(&toml::Value::String(path.to_string()).to_string()),
        );
        for (provider, file) in [("github", GITHUB_FILE), ("gitlab", GITLAB_FILE)] {
            let output = cargo_v6(dir.path())
                .args(["ci", provider])
                .args(INSTALL)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{path} {provider}: {stderr}");
            assert!(stderr.contains("`store.output`"), "{stderr}");
            assert!(!dir.path().join(file).exists());
        }
    }
}

// ---- where the job gets cargo-v6 ----

#[test]
fn install_options_pin_a_repository_and_a_full_commit() {
    let dir = project("ghcr.io/example-org/partial-sum", "");
    let rev = "0123456789abcdef0123456789ABCDEF01234567";
    let output = cargo_v6(dir.path())
        .args([
            "ci",
            "github",
            "--stdout",
            "--install-git",
            "git@example.org:v6/cargo-v6.git",
        ])
        .args(["--install-rev", rev])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let workflow = parse(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(
        str_of(&step(&workflow, "Install cargo-v6")["run"]),
        format!(
            "cargo install --locked --git 'git@example.org:v6/cargo-v6.git' --rev '{}' cargo-v6",
            rev.to_ascii_lowercase()
        )
    );
    for (git, rev, says) in [
        (INSTALL_GIT, "main", "not a full commit id"),
        (INSTALL_GIT, "0123456", "not a full commit id"),
        ("http://example.org/cargo-v6.git", rev, "not an https://"),
        ("git://example.org/cargo-v6.git", rev, "not an https://"),
        (
            "https://me:token@example.org/cargo-v6.git",
            rev,
            "user name or password",
        ),
        ("https://example.org/$(id).git", rev, "without quotes"),
    ] {
        for provider in ["github", "gitlab"] {
            let output = cargo_v6(dir.path())
                .args([
                    "ci",
                    provider,
                    "--stdout",
                    "--install-git",
                    git,
                    "--install-rev",
                    rev,
                ])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{git} {rev}: {stderr}");
            assert!(stderr.contains(says), "{git} {rev}: {stderr}");
            assert!(output.stdout.is_empty());
        }
    }
}

/// Without `--install-git`, the job installs from the repository this cargo-v6 was built from
/// when that is a network URL (the checkout's `origin`); otherwise `ci` asks for the option.
#[test]
fn the_default_source_is_where_this_binary_was_built_from() {
    let origin = std::process::Command::new("git")
        .args(["remote", "get-url", "origin"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let origin = String::from_utf8(origin.stdout).unwrap().trim().to_string();
    let network = origin.starts_with("https://")
        || origin.starts_with("ssh://")
        || origin
            .split_once(':')
            .is_some_and(|(h, _)| h.contains('@') && !h.contains('/'));
    let dir = project("ghcr.io/example-org/partial-sum", "");
    let output = cargo_v6(dir.path())
        .args(["ci", "github", "--stdout"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if network {
        assert!(output.status.success(), "{stderr}");
        let workflow = parse(&String::from_utf8(output.stdout).unwrap());
        let run = str_of(&step(&workflow, "Install cargo-v6")["run"]).to_string();
        assert!(run.contains(&format!("--rev '{}'", built_from())), "{run}");
    } else {
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--install-git"), "{stderr}");
    }
}

// ---- warnings ----

#[test]
fn a_registry_no_runner_reaches_is_warned_about() {
    for (image, warned) in [
        ("127.0.0.1:5550/team/partial-sum", true),
        ("localhost:5000/team/partial-sum", true),
        ("[::1]:5000/team/partial-sum", true),
        ("registry.local/team/partial-sum", true),
        ("192.168.1.10:5000/team/partial-sum", true),
        // IPv6's private (unique local) and link-local ranges, and a name with no domain,
        // which only a local resolver knows.
        ("[fd12:3456::1]:5000/team/partial-sum", true),
        ("[fe80::1]:5000/team/partial-sum", true),
        ("registry:5000/team/partial-sum", true),
        ("registry.example.org/team/partial-sum", false),
        ("[2001:db8::1]:5000/team/partial-sum", false),
    ] {
        let dir = project(image, "");
        for provider in ["github", "gitlab"] {
            let output = cargo_v6(dir.path())
                .args(["ci", provider, "--stdout"])
                .args(INSTALL)
                .output()
                .unwrap();
            assert!(output.status.success(), "{output:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                stderr.contains("warning:") && stderr.contains("can never push"),
                warned,
                "{image} {provider}: {stderr}"
            );
        }
    }
}

/// vantage6's template repositories release from `.github/workflows/release.yml` on
/// `*.*.*`: a second workflow on the same tags is named, with how to retire or merge it.
#[test]
fn another_workflow_on_the_same_tags_is_named() {
    let cases = [
        ("on:\n  push:\n    tags:\n      - '*.*.*'\n", true),
        ("on: push\n", true),
        ("on:\n  push:\n    tags: ['v*']\n", true),
        ("on:\n  push:\n    branches: [main]\n", false),
        ("on:\n  push:\n    tags: ['docs-*']\n", false),
        ("on:\n  push:\n    tags-ignore: ['v*']\n", false),
        ("on:\n  push:\n    tags: ['*', '!v*']\n", false),
        ("on: [pull_request]\n", false),
    ];
    for (on, warned) in cases {
        let dir = project("ghcr.io/example-org/partial-sum", "");
        let workflows = dir.path().join(".github/workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        std::fs::write(
            workflows.join("release.yml"),
            format!("name: release\n{on}jobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n"),
        )
        .unwrap();
        let output = cargo_v6(dir.path())
            .args(["ci", "github"])
            .args(INSTALL)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let named = stderr.contains("warning:")
            && stderr.contains(".github/workflows/release.yml")
            && stderr.contains("retire it");
        assert_eq!(named, warned, "{on}: {stderr}");
        // Regenerating does not count the file it replaces.
        let again = cargo_v6(dir.path())
            .args(["ci", "github", "--force"])
            .args(INSTALL)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert!(!stderr.contains("v6-publish.yml` also runs"), "{stderr}");
    }
}

// ---- the files as the services' own tools read and run them ----

/// A tool that scripts/stack installs, from the variable `scripts/stack env` exports.
fn stack_tool(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run the tests with scripts/test, or eval \"$(scripts/stack env)\" after scripts/stack up")
    })
}

/// Every shape of workflow `ci github` writes passes actionlint, with no finding at all
/// (among them: actions on a runtime GitHub retires, inputs an action does not have,
/// expression and shell errors).
#[test]
fn every_generated_workflow_passes_actionlint() {
    let actionlint = stack_tool("V6_TEST_ACTIONLINT");
    let store = store_with_output("\"store/algorithm_store.json\"");
    let signed = "[sign]\nkey = \"keys/it's cosign.key\"\n";
    let shapes = [
        ("ghcr.io/example-org/partial-sum", String::new()),
        ("registry.example.org/team/partial-sum", signed.to_string()),
        ("docker.io/team/partial-sum", format!("{store}{signed}")),
        (
            "ghcr.io/example-org/partial-sum",
            "[publish]\nrelease-tag-prefix = \"r#1'\\\"+!x]$(id)|/\"\n".to_string(),
        ),
    ];
    let mut dirs: Vec<tempfile::TempDir> = shapes
        .iter()
        .map(|(image, extra)| project(image, extra))
        .collect();
    dirs.push(workspace());
    for dir in &dirs {
        generate(dir.path(), "github", GITHUB_FILE);
        let output = std::process::Command::new(&actionlint)
            .arg("-no-color")
            .arg(GITHUB_FILE)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success() && output.stdout.is_empty(),
            "actionlint: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(dir.path().join(GITHUB_FILE)).unwrap()
        );
    }
    // And it does find what it is here for: the retired runtime of the old majors.
    let dir = &dirs[0];
    let path = dir.path().join(GITHUB_FILE);
    let old = std::fs::read_to_string(&path)
        .unwrap()
        .replace("actions/checkout@v7", "actions/checkout@v4");
    std::fs::write(&path, old).unwrap();
    let output = std::process::Command::new(&actionlint)
        .arg("-no-color")
        .arg(GITHUB_FILE)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("node20"));
}

/// The GitLab job's script, as GitLab hands it to bash, passes shellcheck (installed by
/// scripts/stack; actionlint runs it on the GitHub steps), every finding down to style, for
/// every shape.
#[test]
fn every_generated_gitlab_script_passes_shellcheck() {
    let signed = "[sign]\nkey = \"../keys/it's cosign.key\"\n";
    for (image, extra) in [
        ("registry.gitlab.com/example-org/partial-sum", String::new()),
        (
            "docker.io/team/partial-sum",
            format!("{}{signed}", store_with_output("\"store/a.json\"")),
        ),
    ] {
        let dir = project(image, &extra);
        let ci = generate(dir.path(), "gitlab", GITLAB_FILE);
        let script = str_of(&ci["v6-publish"]["script"][0]);
        let mut child = std::process::Command::new("shellcheck")
            // SC2153 takes GitLab's CI_REGISTRY_PASSWORD for a misspelt V6_REGISTRY_PASSWORD.
            .args(["--shell=bash", "--exclude=SC2153", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("shellcheck runs (scripts/stack installs it)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}\n{script}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

/// The GitLab job run for real: gitlab-ci-local (its shell executor) runs the pipeline of the
/// generated `.gitlab-ci.yml` in a git repository tagged `v1.0.0`, against the stack's engine
/// and open registry, and the image is published under the tag's version.
///
/// The job's cargo-v6 is this test binary, put where the job's cache restores it
/// (`.cargo-v6/bin/cargo-v6`, what a release after the first finds): the job then skips the
/// install, as it does on GitLab, and publishes with the code under test. (The first
/// release's `cargo install --git` builds cargo-v6 from the network, which this machine has
/// no route to; gitlab-ci-local's shell executor restores caches only with
/// `--shell-isolation`, which copies tracked files without `.git`, where publish cannot read
/// the tag.) Only what a runner gives differs, through gitlab-ci-local's own override file
/// `.gitlab-ci-local.yml`: GitLab's `docker:dind` service is the stack's engine (no service;
/// DOCKER_HOST and TLS set for it); and CI_COMMIT_TAG is set as on a tag pipeline.
#[test]
fn the_gitlab_job_publishes_from_a_tag_under_gitlab_ci_local() {
    use support::{assert_ok, digest_of, git, repo_tags, stack, unique};
    let gitlab_ci_local = stack_tool("V6_TEST_GITLAB_CI_LOCAL");
    let stack = stack();
    let image = format!("{}/{}", stack.registry, unique("ci-gitlab"));
    let _images = support::LocalImages(image.clone());
    let dir = support::busybox_project(&image, "hello from a tag pipeline", "");
    let output = cargo_v6(dir.path())
        .args(["ci", "gitlab"])
        .args(INSTALL)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // gitlab-ci-local's state and override file (below) are the harness's, not the image's.
    let harness = "/.gitlab-ci-local/\n/.gitlab-ci-local.yml\n";
    std::fs::write(dir.path().join(".dockerignore"), harness).unwrap();
    support::commit_all(dir.path());
    git(dir.path(), &["tag", "v1.0.0"]);
    // gitlab-ci-local reads the project's path from `origin` (it never contacts it), and keeps
    // its state in the project, which git is told to ignore, as its README advises.
    git(
        dir.path(),
        &[
            "remote",
            "add",
            "origin",
            "https://gitlab.example.org/team/partial-sum.git",
        ],
    );
    std::fs::write(dir.path().join(".git/info/exclude"), harness).unwrap();
    // gitlab-ci-local's own file of local differences, merged over .gitlab-ci.yml: the
    // stack's engine instead of GitLab's docker:dind service (which it would pull and run).
    let host = std::env::var("DOCKER_HOST").expect("DOCKER_HOST from scripts/stack env");
    std::fs::write(
        dir.path().join(".gitlab-ci-local.yml"),
        format!(
            "v6-publish:\n  services: []\n  variables:\n    DOCKER_HOST: {}\n    DOCKER_TLS_VERIFY: \"\"\n    DOCKER_CERT_PATH: \"\"\n",
            toml::Value::String(host)
        ),
    )
    .unwrap();
    let bin = dir.path().join(".cargo-v6/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cargo-v6"), bin.join("cargo-v6")).unwrap();

    let output = std::process::Command::new(&gitlab_ci_local)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("V6_REGISTRY_USERNAME")
        .env_remove("V6_REGISTRY_PASSWORD")
        .args(["--force-shell-executor", "--no-color"])
        .args(["--variable", "CI_COMMIT_TAG=v1.0.0"])
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "gitlab-ci-local failed:\n{log}");
    assert!(repo_tags(&image).contains(&"1.0.0".to_string()), "{log}");
    let digest = digest_of(&format!("{image}:1.0.0")).expect("the pushed tag resolves");
    let dotenv = std::fs::read_to_string(dir.path().join("v6-publish.env")).unwrap();
    assert_eq!(
        dotenv,
        format!("V6_IMAGE={image}\nV6_DIGEST={digest}\nV6_PINNED={image}@{digest}\n"),
        "{log}"
    );
    // The job ran this binary (a `cargo install` would have failed here, with no route to
    // the repository), and it is back where the cache keeps it; the project's files are as
    // publish found them.
    assert!(
        std::fs::symlink_metadata(dir.path().join(".cargo-v6/bin/cargo-v6"))
            .unwrap()
            .is_symlink(),
        "{log}"
    );
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain", "--", "v6.toml", "hello.txt"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(assert_ok(&status), "");
}
