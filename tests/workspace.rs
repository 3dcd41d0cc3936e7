//! Workspaces on the real stack: a root v6.toml with three busybox members, selected like
//! cargo selects packages, published at once, released from tags as CI does, and recorded in
//! v6.lock.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod support;
use support::{LocalImages, assert_ok, cargo_v6, commit_all, digest_of, git, stack, text, unique};

const MEMBERS: [&str; 3] = ["alpha", "beta", "gamma"];

/// A workspace of three busybox algorithms, each at `1.0.0`, committed; `root_extra` lines
/// go at the end of the root v6.toml. Returns the directory and the repository prefix.
fn workspace(root_extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("{}/{}", stack().registry, unique("ws"));
    std::fs::write(
        dir.path().join("v6.toml"),
        format!(
            "[workspace]\nmembers = [\"algorithms/*\"]\n\n[workspace.algorithm]\nwrapper = \"minimal\"\nvantage6 = \"4.13\"\nimage = \"{prefix}/{{name}}\"\n\n[workspace.build]\nbase = \"{}\"\n{root_extra}",
            stack().busybox
        ),
    )
    .unwrap();
    for name in MEMBERS {
        write_member(dir.path(), name, "version = \"1.0.0\"\n", "");
    }
    git(dir.path(), &["init", "-q"]);
    commit_all(dir.path());
    (dir, prefix)
}

fn write_member(root: &Path, name: &str, algorithm_extra: &str, build_extra: &str) {
    let member = root.join("algorithms").join(name);
    std::fs::create_dir_all(&member).unwrap();
    std::fs::write(
        member.join("v6.toml"),
        format!(
            "[algorithm]\nname = \"{name}\"\n{algorithm_extra}\n[build]\ncommand = [\"cat\", \"/app/hello.txt\"]\n{build_extra}"
        ),
    )
    .unwrap();
    std::fs::write(member.join("hello.txt"), format!("hello from {name}\n")).unwrap();
}

/// The JSON lines of stdout.
fn json_lines(output: &Output) -> Vec<Value> {
    text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn names(lines: &[Value], key: &str) -> Vec<String> {
    lines
        .iter()
        .map(|l| l[key].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `publish --from-tag --message-format json` as a CI job runs it, with the CI's `env`;
/// `extra` arguments; successful; its JSON lines.
fn publish_from_tag(dir: &Path, env: &[(&str, &str)], extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["v6", "publish", "--from-tag", "--message-format", "json"];
    args.extend_from_slice(extra);
    let out = with_env(dir, env, &args);
    assert_ok(&out);
    json_lines(&out)
}

fn with_env(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = assert_cmd::Command::cargo_bin("cargo-v6").unwrap();
    command.current_dir(dir).args(args);
    for variable in [
        "GITHUB_REF",
        "GITHUB_REF_NAME",
        "GITHUB_REF_TYPE",
        "CI_COMMIT_TAG",
    ] {
        command.env_remove(variable);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

#[test]
fn selection_is_like_cargos() {
    let (dir, _) = workspace("");
    let plan = |cwd: &Path, extra: &[&str]| {
        let mut args = vec!["v6", "plan", "--offline", "--message-format", "json"];
        args.extend_from_slice(extra);
        cargo_v6(cwd, &args)
    };
    // At the root: every member.
    let all = json_lines(&plan(dir.path(), &[]));
    assert_eq!(names(&all, "name"), MEMBERS);
    assert!(
        all[1]["image"].as_str().unwrap().ends_with("/beta"),
        "{}",
        all[1]
    );
    // Inside a member: that member; `-p` reaches the others.
    let beta = dir.path().join("algorithms/beta");
    assert_eq!(names(&json_lines(&plan(&beta, &[])), "name"), ["beta"]);
    assert_eq!(
        names(
            &json_lines(&plan(&beta, &["-p", "alpha", "-p", "gamma"])),
            "name"
        ),
        ["alpha", "gamma"]
    );
    assert_eq!(
        names(
            &json_lines(&plan(&beta, &["--workspace", "--exclude", "beta"])),
            "name"
        ),
        ["alpha", "gamma"]
    );
    // A name that is no member: exit 2, with the names there are.
    let unknown = plan(dir.path(), &["-p", "bta"]);
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = text(&unknown.stderr);
    assert!(
        stderr.contains("package `bta` is not a member of the workspace"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `beta`?"), "{stderr}");
    assert!(stderr.contains("`alpha`, `beta`, `gamma`"), "{stderr}");
    // One-algorithm commands want one.
    let dockerfile = cargo_v6(dir.path(), &["v6", "dockerfile"]);
    assert_eq!(dockerfile.status.code(), Some(2));
    assert!(text(&dockerfile.stderr).contains("pass `-p NAME`"));
    let one = assert_ok(&cargo_v6(dir.path(), &["v6", "dockerfile", "-p", "gamma"]));
    assert!(one.contains("FROM "), "{one}");
    // The release tags of members are `NAME-v1.2.3`.
    assert_eq!(all[2]["version"], "1.0.0");
}

#[test]
fn an_error_in_an_inherited_value_points_at_the_root_file() {
    let (dir, _) = workspace("platform = \"linux\"\n");
    let out = cargo_v6(
        &dir.path().join("algorithms/alpha"),
        &["v6", "plan", "--offline"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("invalid platform"), "{stderr}");
    assert!(stderr.contains("--> ../../v6.toml:11:12"), "{stderr}");
}

#[test]
fn a_workspace_publishes_every_member_and_records_each_release() {
    let (dir, prefix) = workspace("");
    let _cleanup: Vec<LocalImages> = MEMBERS
        .iter()
        .map(|m| LocalImages(format!("{prefix}/{m}")))
        .collect();
    let out = cargo_v6(
        dir.path(),
        &[
            "v6",
            "publish",
            "--workspace",
            "-j",
            "2",
            "--message-format",
            "json",
        ],
    );
    assert_ok(&out);
    let published = json_lines(&out);
    assert_eq!(names(&published, "algorithm"), MEMBERS);
    for line in &published {
        let reference = line["reference"].as_str().unwrap();
        assert_eq!(
            digest_of(reference).as_deref(),
            line["digest"].as_str(),
            "skopeo sees what publish printed for {reference}"
        );
    }
    let record = std::fs::read_to_string(dir.path().join("v6.lock")).unwrap();
    let parsed: toml::Table = toml::from_str(&record).unwrap();
    let releases = parsed["release"].as_array().unwrap();
    assert_eq!(releases.len(), 3, "{record}");
    for (release, line) in releases.iter().zip(&published) {
        assert_eq!(release["algorithm"].as_str(), line["algorithm"].as_str());
        assert_eq!(release["digest"].as_str(), line["digest"].as_str());
        assert_eq!(release["image"].as_str(), line["reference"].as_str());
    }

    // A second release of one member: the record gains one entry, in order.
    write_member(dir.path(), "alpha", "version = \"1.10.0\"\n", "");
    commit_all(dir.path());
    let alpha = assert_ok(&cargo_v6(
        &dir.path().join("algorithms/alpha"),
        &["v6", "publish", "--message-format", "json"],
    ));
    let alpha: Value = serde_json::from_str(alpha.trim()).unwrap();
    let record = std::fs::read_to_string(dir.path().join("v6.lock")).unwrap();
    let parsed: toml::Table = toml::from_str(&record).unwrap();
    let order: Vec<(String, String)> = parsed["release"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["algorithm"].as_str().unwrap().to_string(),
                r["version"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("alpha", "1.0.0"),
        ("alpha", "1.10.0"),
        ("beta", "1.0.0"),
        ("gamma", "1.0.0"),
    ];
    assert_eq!(
        order,
        expected.map(|(a, v)| (a.to_string(), v.to_string())),
        "{record}"
    );
    assert!(record.contains(alpha["digest"].as_str().unwrap()));

    // The record agrees with the registry: plan says nothing; then it does not.
    let quiet = cargo_v6(dir.path(), &["v6", "plan", "-p", "beta"]);
    assert_ok(&quiet);
    assert!(
        !text(&quiet.stderr).contains("v6.lock records"),
        "{}",
        text(&quiet.stderr)
    );
    let beta_digest = published[1]["digest"].as_str().unwrap();
    let forged = record.replace(beta_digest, &format!("sha256:{}", "0".repeat(64)));
    std::fs::write(dir.path().join("v6.lock"), forged).unwrap();
    let warned = cargo_v6(dir.path(), &["v6", "plan", "-p", "beta"]);
    let stderr = text(&warned.stderr);
    assert!(
        stderr.contains(&format!(
            "v6.lock records {prefix}/beta:1.0.0 as sha256:{}, but the registry's tag now holds {beta_digest}",
            "0".repeat(64)
        )),
        "{stderr}"
    );
}

#[test]
fn one_failing_member_does_not_hide_the_others() {
    let (dir, prefix) = workspace("");
    let _cleanup: Vec<LocalImages> = MEMBERS
        .iter()
        .map(|m| LocalImages(format!("{prefix}/{m}")))
        .collect();
    // beta's base is nowhere: its build fails, the others publish.
    write_member(
        dir.path(),
        "beta",
        "version = \"1.0.0\"\n",
        &format!("base = \"{prefix}/no-such-base:1\"\n"),
    );
    commit_all(dir.path());
    let out = cargo_v6(
        dir.path(),
        &["v6", "publish", "-j", "2", "--message-format", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    let reasons: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["reason"].as_str().unwrap().to_string(),
                l["algorithm"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("published", "alpha"),
            ("error", "beta"),
            ("published", "gamma"),
            ("error", "-"),
        ]
        .map(|(r, a)| (r.to_string(), a.to_string())),
        "{}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error[beta]:"), "{stderr}");
    assert!(
        stderr.contains("1 of 3 algorithms failed: beta"),
        "{stderr}"
    );
    let record = std::fs::read_to_string(dir.path().join("v6.lock")).unwrap();
    assert!(record.contains("alpha") && record.contains("gamma") && !record.contains("\"beta\""));
}

#[test]
fn a_release_tag_publishes_the_member_it_names() {
    let (dir, prefix) = workspace("");
    let _cleanup = LocalImages(format!("{prefix}/beta"));
    git(dir.path(), &["tag", "beta-v1.0.0"]);
    // GitHub's variable names the tag; only beta is published.
    let lines = publish_from_tag(dir.path(), &[("GITHUB_REF", "refs/tags/beta-v1.0.0")], &[]);
    assert_eq!(names(&lines, "algorithm"), ["beta"]);
    assert_eq!(
        digest_of(&format!("{prefix}/beta:1.0.0")).as_deref(),
        lines[0]["digest"].as_str()
    );
    // GitLab's, from inside another member: the tag decides, not the directory.
    let planned = publish_from_tag(
        &dir.path().join("algorithms/alpha"),
        &[("CI_COMMIT_TAG", "beta-v1.0.0")],
        &["--dry-run"],
    );
    assert_eq!(names(&planned, "name"), ["beta"]);

    // A tag whose version is not the member's: exit 2, naming both.
    git(dir.path(), &["tag", "gamma-v2.0.0"]);
    let out = with_env(
        dir.path(),
        &[],
        &["v6", "publish", "--from-tag", "gamma-v2.0.0"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the release tag `gamma-v2.0.0` says 2.0.0, but `gamma`'s version is 1.0.0 (from `version` in algorithms/gamma/v6.toml)"),
        "{stderr}"
    );
    // A tag that names nothing, and a tag that is not on HEAD.
    let out = with_env(
        dir.path(),
        &[],
        &["v6", "publish", "--from-tag", "delta-v1.0.0"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`alpha-v1.2.3`, `beta-v1.2.3`, `gamma-v1.2.3`"));
    let out = with_env(
        dir.path(),
        &[],
        &["v6", "publish", "--from-tag", "alpha-v1.0.1"],
    );
    assert_eq!(out.status.code(), Some(2));
    // No tag at all: a branch push.
    let out = with_env(
        dir.path(),
        &[("GITHUB_REF", "refs/heads/main")],
        &["v6", "publish", "--from-tag"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("GITHUB_REF is `refs/heads/main`, not a tag"));
}

#[test]
fn a_release_tag_gives_the_version_when_members_take_it_from_tags() {
    let (dir, prefix) = workspace("\n[workspace.publish]\nversion-from-tag = true\n");
    let _cleanup = LocalImages(format!("{prefix}/alpha"));
    for name in MEMBERS {
        write_member(dir.path(), name, "", "");
    }
    commit_all(dir.path());
    git(dir.path(), &["tag", "alpha-v2.1.0"]);
    let lines = publish_from_tag(
        dir.path(),
        &[
            ("GITHUB_REF_TYPE", "tag"),
            ("GITHUB_REF_NAME", "alpha-v2.1.0"),
        ],
        &[],
    );
    assert_eq!(names(&lines, "algorithm"), ["alpha"]);
    assert_eq!(lines[0]["version"], "2.1.0");
    assert_eq!(
        digest_of(&format!("{prefix}/alpha:2.1.0")).as_deref(),
        lines[0]["digest"].as_str()
    );
}

#[test]
fn a_single_algorithm_releases_from_its_bare_tag_as_vantage6_repositories_do() {
    let image = format!("{}/{}", stack().registry, unique("bare"));
    let _cleanup = LocalImages(image.clone());
    let dir = support::busybox_project(&image, "hello\n", "");
    // vantage6's convention: bare tags, the version from the tag.
    let manifest = std::fs::read_to_string(dir.path().join("v6.toml"))
        .unwrap()
        .replace("version = \"1.0.0\"\n", "")
        + "\n[publish]\nrelease-tag-prefix = \"\"\nversion-from-tag = true\n";
    std::fs::write(dir.path().join("v6.toml"), manifest).unwrap();
    git(dir.path(), &["init", "-q"]);
    commit_all(dir.path());
    git(dir.path(), &["tag", "1.2.1"]);
    let lines = publish_from_tag(dir.path(), &[("GITHUB_REF", "refs/tags/1.2.1")], &[]);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["version"], "1.2.1");
    assert_eq!(
        digest_of(&format!("{image}:1.2.1")).as_deref(),
        lines[0]["digest"].as_str()
    );
    // The record sits beside the algorithm's v6.toml and does not make the next publish dirty.
    let record = std::fs::read_to_string(dir.path().join("v6.lock")).unwrap();
    assert!(record.contains("version = \"1.2.1\""), "{record}");
    let again = publish_from_tag(dir.path(), &[("CI_COMMIT_TAG", "1.2.1")], &[]);
    assert_eq!(again[0]["skipped_unchanged"], true);
    // A `v`-prefixed tag is not this project's.
    let out = with_env(dir.path(), &[], &["v6", "publish", "--from-tag", "v1.2.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("release tags here look like `1.2.3`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sign_and_verify_take_the_members_current_releases() {
    let (dir, prefix) = workspace("");
    let _cleanup: Vec<LocalImages> = MEMBERS
        .iter()
        .map(|m| LocalImages(format!("{prefix}/{m}")))
        .collect();
    let published = json_lines(&cargo_v6(
        dir.path(),
        &["v6", "publish", "--message-format", "json"],
    ));
    let pinned: Vec<String> = published
        .iter()
        .map(|l| {
            format!(
                "{}@{}",
                l["image"].as_str().unwrap(),
                l["digest"].as_str().unwrap()
            )
        })
        .collect();
    let keys = tempfile::tempdir().unwrap();
    let password = [("COSIGN_PASSWORD", "workspace-test")];
    let key_dir = keys.path().to_str().unwrap();
    assert_ok(&with_env(
        keys.path(),
        &password,
        &["v6", "key", "generate", "--output-dir", key_dir],
    ));
    let private = keys.path().join("cosign.key");
    let public = keys.path().join("cosign.pub");

    // Unsigned: verify fails for every member, and says so for each.
    let unsigned = with_env(
        dir.path(),
        &[],
        &[
            "v6",
            "verify",
            "--workspace",
            "--key",
            public.to_str().unwrap(),
        ],
    );
    assert_eq!(unsigned.status.code(), Some(1));
    assert!(
        text(&unsigned.stderr).contains("3 of 3 algorithms failed"),
        "{}",
        text(&unsigned.stderr)
    );

    let signed = with_env(
        dir.path(),
        &password,
        &[
            "v6",
            "sign",
            "--workspace",
            "--key",
            private.to_str().unwrap(),
        ],
    );
    assert_eq!(assert_ok(&signed).lines().collect::<Vec<_>>(), pinned);
    let verified = with_env(
        dir.path(),
        &[],
        &[
            "v6",
            "verify",
            "--workspace",
            "--key",
            public.to_str().unwrap(),
        ],
    );
    assert_eq!(assert_ok(&verified).lines().collect::<Vec<_>>(), pinned);
    // One member, from inside another's directory.
    let one = with_env(
        &dir.path().join("algorithms/gamma"),
        &[],
        &[
            "v6",
            "verify",
            "-p",
            "beta",
            "--key",
            public.to_str().unwrap(),
        ],
    );
    assert_eq!(assert_ok(&one).trim(), pinned[1]);
}

#[test]
fn the_root_manifest_and_the_record_are_checked_before_anything_is_pushed() {
    let (dir, prefix) = workspace("");
    let _cleanup = LocalImages(format!("{prefix}/alpha"));
    // The root's defaults go into every member's image: an uncommitted change there is dirt.
    let root = dir.path().join("v6.toml");
    let committed = std::fs::read_to_string(&root).unwrap();
    std::fs::write(
        &root,
        format!("{committed}labels = {{ \"org.example.x\" = \"uncommitted\" }}\n"),
    )
    .unwrap();
    let out = cargo_v6(dir.path(), &["v6", "publish", "--dry-run", "-p", "alpha"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("uncommitted changes (v6.toml)"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(&root, committed).unwrap();

    // A repository-wide tag on HEAD is not one member's release under another prefix.
    git(dir.path(), &["tag", "v3.0.0"]);
    assert_ok(&cargo_v6(dir.path(), &["v6", "plan", "--offline"]));

    // A broken record stops publish before anything is pushed (exit 2), not after; plan
    // --offline does not need it.
    std::fs::write(dir.path().join("v6.lock"), "<<<<<<< HEAD\n[[release]]\n").unwrap();
    assert_ok(&cargo_v6(dir.path(), &["v6", "plan", "--offline"]));
    let out = cargo_v6(dir.path(), &["v6", "publish", "-p", "alpha"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is not a record of releases"));
    assert!(!support::repo_tags(&format!("{prefix}/alpha")).contains(&"1.0.0".to_string()));
}

#[test]
fn a_tag_from_ci_gives_its_own_version_when_head_has_two() {
    let (dir, prefix) = workspace("\n[workspace.publish]\nversion-from-tag = true\n");
    let _cleanup = LocalImages(format!("{prefix}/alpha"));
    for name in MEMBERS {
        write_member(dir.path(), name, "", "");
    }
    commit_all(dir.path());
    // A release candidate and the release on one commit: the job for the candidate publishes
    // the candidate.
    git(dir.path(), &["tag", "alpha-v1.1.0-rc.1"]);
    git(dir.path(), &["tag", "alpha-v1.1.0"]);
    let planned = publish_from_tag(
        dir.path(),
        &[("CI_COMMIT_TAG", "alpha-v1.1.0-rc.1")],
        &["--dry-run"],
    );
    let plan = &planned[0];
    assert_eq!(plan["version"], "1.1.0-rc.1");
    assert_eq!(plan["version_source"]["release_tag"], "alpha-v1.1.0-rc.1");
}

#[test]
fn a_member_linked_into_the_workspace_finds_it_from_inside() {
    let (dir, prefix) = workspace("");
    // Kept elsewhere under the root, linked into `algorithms/`.
    write_member(
        &dir.path().join("shared"),
        "delta",
        "version = \"1.0.0\"\n",
        "",
    );
    let linked = dir.path().join("algorithms/delta");
    std::os::unix::fs::symlink(dir.path().join("shared/algorithms/delta"), &linked).unwrap();
    // The shell's directory is the link (`$PWD`); the process's is where it points.
    let out = with_env(
        &linked,
        &[("PWD", linked.to_str().unwrap())],
        &["v6", "plan", "--offline", "--message-format", "json"],
    );
    let lines = json_lines(&out);
    assert_eq!(names(&lines, "name"), ["delta"], "{}", text(&out.stderr));
    assert_eq!(lines[0]["image"], format!("{prefix}/delta"));
}

#[test]
fn a_member_outside_the_workspace_is_refused_before_anything_is_published() {
    // Outside the repository: no dirty check and no revision label could cover it.
    let (dir, _) = workspace("");
    let outside = tempfile::tempdir().unwrap();
    write_member(outside.path(), "delta", "version = \"1.0.0\"\n", "");
    let real = std::fs::canonicalize(outside.path().join("algorithms/delta")).unwrap();
    let link = dir.path().join("algorithms/delta");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for args in [
        &["v6", "plan", "--offline"][..],
        &["v6", "publish", "--workspace"],
    ] {
        let out = cargo_v6(dir.path(), args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "workspace member `algorithms/*` is outside the workspace: it resolves to `{}`",
                real.display()
            )),
            "{stderr}"
        );
    }
    // `..` in `members`, the same.
    std::fs::remove_file(&link).unwrap();
    let root = dir.path().join("v6.toml");
    let relative = format!(
        "../{}/algorithms/delta",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    let text_before = std::fs::read_to_string(&root).unwrap();
    std::fs::write(
        &root,
        text_before.replace(
            "members = [\"algorithms/*\"]",
            &format!("members = [\"algorithms/*\", \"{relative}\"]"),
        ),
    )
    .unwrap();
    let out = cargo_v6(dir.path(), &["v6", "plan", "--offline"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "workspace member `{relative}` is outside the workspace"
        )),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn init_in_a_member_directory_writes_what_the_workspace_does_not_give() {
    let (dir, prefix) = workspace("");
    let delta = dir.path().join("algorithms/delta");
    std::fs::create_dir_all(&delta).unwrap();
    let out = cargo_v6(&delta, &["v6", "init"]);
    let stderr = text(&out.stderr);
    assert_ok(&out);
    assert!(
        stderr.contains("a member of the workspace ../../v6.toml"),
        "{stderr}"
    );
    assert!(!stderr.contains("no --image"), "{stderr}");
    let written = std::fs::read_to_string(delta.join("v6.toml")).unwrap();
    for inherited in ["wrapper =", "vantage6 =", "image =", "base ="] {
        assert!(!written.contains(inherited), "{inherited} in:\n{written}");
    }
    assert!(
        written.contains("it gives wrapper, vantage6, image, base"),
        "{written}"
    );
    // The new member plans with the workspace's values, from the root.
    let plan = json_lines(&cargo_v6(
        dir.path(),
        &[
            "v6",
            "plan",
            "--offline",
            "-p",
            "delta",
            "--set-version",
            "0.1.0",
            "--message-format",
            "json",
        ],
    ));
    assert_eq!(plan[0]["image"], format!("{prefix}/delta"));
    assert!(
        plan[0]["base_image"]
            .as_str()
            .unwrap()
            .ends_with(&stack().busybox),
        "{}",
        plan[0]
    );
}
