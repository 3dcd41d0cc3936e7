//! Records where this cargo-v6 is built from, for the release jobs that `cargo v6 ci` writes:
//! they install this same commit (`cargo install --git URL --rev SHA --locked cargo-v6`).
//!
//! - `CARGO_V6_SOURCE_REV`: the commit, from `.cargo_vcs_info.json` in a packaged crate (what
//!   `cargo package` records), else `git rev-parse HEAD` in a git checkout (a clone, or the
//!   checkout `cargo install --git` builds in). A build from a modified work tree records HEAD.
//! - `CARGO_V6_SOURCE_GIT`: the repository, from `package.repository`, else the checkout's
//!   `origin` when that is a network URL (not a local path, as in cargo's own git cache), with
//!   any user name or password removed.
//!
//! Either is left unset when unknown; `cargo v6 ci` then asks for `--install-git` or
//! `--install-rev`. Nothing here fails the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    let vcs_info = dir.join(".cargo_vcs_info.json");
    // Only files that exist: cargo reruns a build script whose watched file is missing on
    // every build (and so rebuilds the crate).
    for watched in std::iter::once(vcs_info.clone()).chain(git_files(&dir)) {
        if watched.exists() {
            println!("cargo:rerun-if-changed={}", watched.display());
        }
    }
    let rev = packaged_rev(&vcs_info).or_else(|| git(&dir, &["rev-parse", "HEAD"]));
    if let Some(rev) = rev.filter(|r| r.len() >= 40 && r.chars().all(|c| c.is_ascii_hexdigit())) {
        println!("cargo:rustc-env=CARGO_V6_SOURCE_REV={rev}");
    }
    let repository = std::env::var("CARGO_PKG_REPOSITORY")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&dir, &["remote", "get-url", "origin"]))
        .and_then(|url| network_url(&url));
    if let Some(url) = repository {
        println!("cargo:rustc-env=CARGO_V6_SOURCE_GIT={url}");
    }
}

/// `git.sha1` of the `.cargo_vcs_info.json` that `cargo package` writes.
fn packaged_rev(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let after = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let start = after.find('"')? + 1;
    let end = start + after[start..].find('"')?;
    Some(after[start..end].to_string())
}

/// The files whose change means a new HEAD: HEAD itself, the branch it points to, and
/// packed-refs (where a branch's commit may be written instead).
fn git_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        paths.push(branch);
    }
    paths
        .iter()
        .filter_map(|p| {
            git(
                dir,
                &["rev-parse", "--path-format=absolute", "--git-path", p],
            )
        })
        .map(PathBuf::from)
        .collect()
}

/// `git ARGS` in `dir`, its output trimmed; `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// `url` when it is a network URL the CI file may name (`https://`, `ssh://`, `user@host:path`),
/// without the password it may carry (and, for `https://`, without the user name).
fn network_url(url: &str) -> Option<String> {
    if url.chars().any(|c| !c.is_ascii_graphic()) {
        return None;
    }
    if let Some(rest) = url.strip_prefix("https://") {
        let rest = match rest.split_once('/') {
            Some((authority, path)) => {
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{host}/{path}")
            }
            None => return None,
        };
        return Some(format!("https://{rest}"));
    }
    if let Some(rest) = url.strip_prefix("ssh://") {
        // `ssh://user:password@host/...`: the user stays (ssh needs it), the password goes.
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let authority = match authority.rsplit_once('@') {
            Some((user, host)) => {
                let user = user.split_once(':').map_or(user, |(name, _)| name);
                format!("{user}@{host}")
            }
            None => authority.to_string(),
        };
        return Some(format!("ssh://{authority}/{path}"));
    }
    let scp_like = url
        .split_once(':')
        .is_some_and(|(user_host, _)| user_host.contains('@') && !user_host.contains('/'));
    scp_like.then(|| url.to_string())
}
