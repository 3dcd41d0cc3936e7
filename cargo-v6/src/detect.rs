//! What `cargo v6 init` can tell about an existing project: its kind (Python or R), its
//! package name, and from an existing Dockerfile the vantage6 version and `PKG_NAME`.
//!
//! Pure: takes the files' texts, so that every rule is unit-tested without a filesystem.

use crate::vantage6::Wrapper;

/// The newest release the tool knows of a major, for Dockerfiles that only show the major.
fn newest(major: u64) -> &'static str {
    crate::vantage6::newest_of_major(major).unwrap_or(crate::vantage6::NEWEST)
}

/// The texts of the files detection reads (None when absent).
#[derive(Debug, Default, Clone)]
pub struct ProjectFiles {
    /// pyproject.toml
    pub pyproject: Option<String>,
    /// setup.cfg
    pub setup_cfg: Option<String>,
    /// setup.py
    pub setup_py: Option<String>,
    /// DESCRIPTION (R)
    pub description: Option<String>,
    /// An existing Dockerfile.
    pub dockerfile: Option<String>,
}

/// What was found, each with where it was found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Detected {
    /// Python or R, and the file that says so.
    pub wrapper: Option<(Wrapper, &'static str)>,
    /// The distribution or package name, and its file.
    pub name: Option<(String, &'static str)>,
    /// `ARG PKG_NAME` from the Dockerfile.
    pub pkg_name: Option<String>,
    /// The vantage6 version the Dockerfile targets, and why we think so.
    pub vantage6: Option<(String, &'static str)>,
}

/// Reads the project kind, name and vantage6 version from `files`.
pub fn detect(files: &ProjectFiles) -> Detected {
    let mut found = Detected::default();
    if let Some(name) = files.pyproject.as_deref().and_then(pyproject_name) {
        found.wrapper = Some((Wrapper::Python, "pyproject.toml"));
        found.name = Some((name, "pyproject.toml"));
    } else if let Some(name) = files.setup_cfg.as_deref().and_then(setup_cfg_name) {
        found.wrapper = Some((Wrapper::Python, "setup.cfg"));
        found.name = Some((name, "setup.cfg"));
    } else if let Some(name) = files.setup_py.as_deref().and_then(setup_py_name) {
        found.wrapper = Some((Wrapper::Python, "setup.py"));
        found.name = Some((name, "setup.py"));
    } else if let Some(name) = files.description.as_deref().and_then(description_package) {
        found.wrapper = Some((Wrapper::R, "DESCRIPTION"));
        found.name = Some((name, "DESCRIPTION"));
    } else if files.pyproject.is_some() || files.setup_cfg.is_some() || files.setup_py.is_some() {
        found.wrapper = Some((Wrapper::Python, "a Python project file"));
    }
    if let Some(dockerfile) = files.dockerfile.as_deref() {
        found.pkg_name = dockerfile_arg(dockerfile, "PKG_NAME");
        found.vantage6 = dockerfile_vantage6(dockerfile);
    }
    found
}

fn pyproject_name(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    let from = |path: &[&str]| {
        let mut value = table.get(path[0])?;
        for key in &path[1..] {
            value = value.get(key)?;
        }
        value.as_str().map(str::to_string)
    };
    from(&["project", "name"]).or_else(|| from(&["tool", "poetry", "name"]))
}

fn setup_cfg_name(text: &str) -> Option<String> {
    let mut in_metadata = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_metadata = line == "[metadata]";
        } else if in_metadata
            && let Some((key, value)) = line.split_once(['=', ':'])
            && key.trim() == "name"
            && !value.trim().is_empty()
        {
            return Some(value.trim().to_string());
        }
    }
    None
}

fn setup_py_name(text: &str) -> Option<String> {
    let re = regex::Regex::new(r#"\bname\s*=\s*["']([A-Za-z0-9._-]+)["']"#).expect("valid regex");
    re.captures(text).map(|c| c[1].to_string())
}

fn description_package(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("Package:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The default value of `ARG NAME=...` (quotes removed).
fn dockerfile_arg(dockerfile: &str, name: &str) -> Option<String> {
    dockerfile.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("ARG ")?.trim();
        let (key, value) = rest.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches(['"', '\'']).to_string())
    })
}

/// The vantage6 version a Dockerfile was written for: the algorithm base image's tag (also via
/// an `ARG` default), else the wrapper call and install line it uses.
fn dockerfile_vantage6(dockerfile: &str) -> Option<(String, &'static str)> {
    // The final stage's base: the last FROM (instructions are case-insensitive), skipping
    // flags such as `--platform=linux/amd64`.
    let from = dockerfile
        .lines()
        .rev()
        .find_map(|l| {
            let mut words = l.split_whitespace();
            words
                .next()
                .filter(|w| w.eq_ignore_ascii_case("FROM"))
                .and_then(|_| words.find(|w| !w.starts_with("--")))
        })
        .map(str::to_string);
    let base = from.map(|f| match f.strip_prefix("${").or(f.strip_prefix('$')) {
        Some(arg) => {
            let arg = arg.trim_end_matches('}');
            dockerfile_arg(dockerfile, arg).unwrap_or_default()
        }
        None => f,
    });
    if let Some(base) = base.filter(|b| b.contains("algorithm-base")) {
        let tag = base
            .rsplit_once(':')
            .map(|(_, t)| t)
            .filter(|t| !t.contains('/'));
        let tag_version = tag.filter(|t| {
            let parts: Vec<&str> = t.split('.').collect();
            parts.len() >= 2 && parts.iter().all(|p| p.parse::<u64>().is_ok())
        });
        if let Some(tag) = tag_version {
            let mut parts = tag.split('.');
            let major_minor = format!("{}.{}", parts.next()?, parts.next()?);
            return Some((major_minor, "the base image's tag in Dockerfile"));
        }
    }
    if dockerfile.contains("uv pip install") {
        return Some((newest(5).to_string(), "`uv pip install` in Dockerfile"));
    }
    if dockerfile.contains("docker_wrapper") {
        return Some((newest(3).to_string(), "`docker_wrapper` in Dockerfile"));
    }
    if dockerfile.contains("wrap_algorithm") {
        return Some((newest(4).to_string(), "`wrap_algorithm` in Dockerfile"));
    }
    None
}

/// `ghcr.io/<owner>/<repo>` for a GitHub remote; registries want lowercase.
pub fn image_from_remote(source_url: &str) -> Option<String> {
    let path = source_url.strip_prefix("https://github.com/")?;
    let mut parts = path.trim_end_matches('/').split('/');
    let (owner, repo) = (parts.next()?, parts.next()?);
    (!owner.is_empty() && !repo.is_empty() && parts.next().is_none())
        .then(|| format!("ghcr.io/{}/{}", owner.to_lowercase(), repo.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_dockerfile(text: &str) -> Detected {
        detect(&ProjectFiles {
            dockerfile: Some(text.to_string()),
            ..Default::default()
        })
    }

    #[test]
    fn python_name_from_pep621_then_poetry() {
        let files = ProjectFiles {
            pyproject: Some("[project]\nname = \"summary-py\"\n".into()),
            ..Default::default()
        };
        assert_eq!(
            detect(&files).name,
            Some(("summary-py".to_string(), "pyproject.toml"))
        );
        let poetry = ProjectFiles {
            pyproject: Some("[tool.poetry]\nname = \"algo\"\n".into()),
            ..Default::default()
        };
        assert_eq!(
            detect(&poetry).wrapper,
            Some((Wrapper::Python, "pyproject.toml"))
        );
    }

    #[test]
    fn setup_cfg_setup_py_and_r_description() {
        let cfg = ProjectFiles {
            setup_cfg: Some("[options]\nname = no\n[metadata]\nname = algo_cfg\n".into()),
            ..Default::default()
        };
        assert_eq!(detect(&cfg).name.unwrap().0, "algo_cfg");
        let py = ProjectFiles {
            setup_py: Some("setup(\n    name='algo-py',\n    version=v)\n".into()),
            ..Default::default()
        };
        assert_eq!(detect(&py).name.unwrap().0, "algo-py");
        let r = ProjectFiles {
            description: Some("Package: vtg.summary\nVersion: 1.0-2\n".into()),
            ..Default::default()
        };
        assert_eq!(detect(&r).wrapper, Some((Wrapper::R, "DESCRIPTION")));
        assert_eq!(detect(&r).name.unwrap().0, "vtg.summary");
    }

    #[test]
    fn vantage6_from_base_tag_arg_default_and_wrapper_call() {
        let tagged =
            "FROM ghcr.io/vantage6/infrastructure/algorithm-base:4.9\nARG PKG_NAME=\"x\"\n";
        assert_eq!(with_dockerfile(tagged).vantage6.unwrap().0, "4.9");
        assert_eq!(with_dockerfile(tagged).pkg_name.as_deref(), Some("x"));
        let via_arg =
            "ARG BASE=harbor2.vantage6.ai/infrastructure/algorithm-base:3.7\nFROM ${BASE}\n";
        assert_eq!(with_dockerfile(via_arg).vantage6.unwrap().0, "3.7");
        let untagged = "FROM ghcr.io/vantage6/infrastructure/algorithm-base\nCMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"\n";
        assert_eq!(with_dockerfile(untagged).vantage6.unwrap().0, newest(4));
        let v3 = "FROM x\nCMD python -c \"from vantage6.tools.docker_wrapper import docker_wrapper; docker_wrapper('a')\"\n";
        assert_eq!(with_dockerfile(v3).vantage6.unwrap().0, newest(3));
        let v5 = "FROM x\nRUN uv pip install --system /app\n";
        assert_eq!(with_dockerfile(v5).vantage6.unwrap().0, newest(5));
        assert_eq!(with_dockerfile("FROM scratch\n").vantage6, None);
        let flagged = "FROM python:3.12 AS build\nfrom --platform=linux/amd64 ghcr.io/vantage6/infrastructure/algorithm-base:5.1\n";
        assert_eq!(with_dockerfile(flagged).vantage6.unwrap().0, "5.1");
    }

    #[test]
    fn github_remotes_become_ghcr_images() {
        assert_eq!(
            image_from_remote("https://github.com/IKNL/V6-Summary"),
            Some("ghcr.io/iknl/v6-summary".to_string())
        );
        assert_eq!(image_from_remote("https://gitlab.com/a/b"), None);
    }
}
