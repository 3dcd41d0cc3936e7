//! What `cargo v6 init` can tell about an existing project: its kind (Python, R or a plain
//! Cargo project), the package the wrapper must import, and from an existing Dockerfile the
//! vantage6 version, the base image and whether a template can build the same image; from the
//! repository's tags, how it releases.
//!
//! Pure: takes the files' texts (and the names of the package folders and tags that exist),
//! so that every rule is unit-tested without a filesystem; `project` reads them
//! ([`ProjectFiles::read`]). [`write`] makes the v6.toml that `init` writes from what was found.

mod write;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::dockerfile::{Instruction, instructions};
use crate::project::ProjectFiles;
use crate::project::names::{
    cargo_package_name, description_package, pyproject_name, pyproject_packages, setup_cfg_name,
    setup_py_name, setup_py_packages,
};
use crate::vantage6::{self, BaseRegistry, Wrapper, algorithm_base};
use crate::version::Version;

pub use write::{
    Build, Choices, Given, NextStep, inherited, manifest_text, name_from_dir, next_steps,
    unwritable, vantage6_default_base,
};

/// The newest release the tool knows of a major, for Dockerfiles that only show the major.
fn newest(major: u64) -> &'static str {
    vantage6::newest_of_major(major).unwrap_or(vantage6::NEWEST)
}

/// The package name chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// PKG_NAME: what the wrapper imports (Python) or the package name (R, Cargo).
    pub name: String,
    /// Where it comes from, for the user: "ARG PKG_NAME in Dockerfile".
    pub why: String,
    /// Something the user should check: the name is not a package that exists.
    pub warning: Option<String>,
}

/// The vantage6 version found, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vantage6Found {
    /// `MAJOR.MINOR`, as written in the Dockerfile.
    pub version: String,
    /// Where it comes from, for the user.
    pub why: String,
    /// Set when `version` is newer than any release of its major the tool knows: that newest
    /// known release. The version is still taken as written.
    pub newer_than: Option<&'static str>,
}

/// What was found, each with where it was found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Detected {
    /// Python, R or minimal, and the file that says so.
    pub wrapper: Option<(Wrapper, &'static str)>,
    /// The name of the distribution or package in the project's metadata, and its file.
    pub distribution: Option<(String, &'static str)>,
    /// The package name to write (PKG_NAME).
    pub name: Option<Name>,
    /// The vantage6 version the Dockerfile targets.
    pub vantage6: Option<Vantage6Found>,
    /// The Dockerfile's base image when it is not vantage6's algorithm base on GHCR (a mirror,
    /// `continuumio/miniconda3`, `python:3.12`): a rendered Dockerfile must build on it too.
    pub custom_base: Option<String>,
    /// The Dockerfile's base image when it lived on harbor2.vantage6.ai, which is gone.
    pub retired_base: Option<String>,
}

/// Reads the project kind, name, vantage6 version and Dockerfile facts from `files`.
pub fn detect(files: &ProjectFiles) -> Detected {
    let mut found = Detected::default();
    let python = |file: &'static str| Some((Wrapper::Python, file));
    if let Some(name) = files.pyproject.as_deref().and_then(pyproject_name) {
        found.wrapper = python("pyproject.toml");
        found.distribution = Some((name, "pyproject.toml"));
    } else if let Some(name) = files.setup_cfg.as_deref().and_then(setup_cfg_name) {
        found.wrapper = python("setup.cfg");
        found.distribution = Some((name, "setup.cfg"));
    } else if let Some(name) = files.setup_py.as_deref().and_then(setup_py_name) {
        found.wrapper = python("setup.py");
        found.distribution = Some((name, "setup.py"));
    } else if let Some(name) = files.description.as_deref().and_then(description_package) {
        found.wrapper = Some((Wrapper::R, "DESCRIPTION"));
        found.distribution = Some((name, "DESCRIPTION"));
    } else if files.pyproject.is_some() || files.setup_cfg.is_some() || files.setup_py.is_some() {
        found.wrapper = python("a Python project file");
    } else if let Some(cargo) = files.cargo_toml.as_deref() {
        found.wrapper = Some((Wrapper::Minimal, "Cargo.toml"));
        found.distribution = cargo_package_name(cargo).map(|n| (n, "Cargo.toml"));
    }
    let wrapper = found.wrapper.map(|(w, _)| w);
    let dockerfile = files.dockerfile.as_deref();
    let steps = dockerfile.map(instructions).unwrap_or_default();
    found.name = pkg_name_in_dockerfile(&steps)
        .map(|(name, why)| {
            let warning = (wrapper == Some(Wrapper::Python))
                .then(|| missing_package_warning(&name, files))
                .flatten();
            Name { name, why, warning }
        })
        .or_else(|| match wrapper {
            Some(Wrapper::Python) | None => python_name(files, found.distribution.as_ref()),
            Some(_) => found.distribution.as_ref().map(|(name, file)| Name {
                name: name.clone(),
                why: format!("the package name in {file}"),
                warning: None,
            }),
        });
    if let Some(text) = dockerfile {
        let base = crate::dockerfile::final_base(text, &BTreeMap::new())
            .filter(|b| !b.is_empty() && !b.ends_with(':') && !b.contains('$'));
        let algorithm_base = base.as_deref().and_then(algorithm_base);
        found.vantage6 = algorithm_base
            .as_ref()
            .and_then(|(_, version)| *version)
            .map(|(major, minor)| {
                let known = vantage6::newest_of_major(major);
                let newer = known.is_none_or(|known| {
                    known
                        .split_once('.')
                        .and_then(|(_, m)| m.parse::<u64>().ok())
                        .is_some_and(|known_minor| minor > known_minor)
                });
                Vantage6Found {
                    version: format!("{major}.{minor}"),
                    why: format!(
                        "the base image `{}` in Dockerfile",
                        base.as_deref().unwrap_or_default()
                    ),
                    newer_than: newer.then(|| known.unwrap_or(vantage6::NEWEST)),
                }
            })
            .or_else(|| wrapper_call_vantage6(&steps));
        match (&base, &algorithm_base) {
            (Some(base), Some((BaseRegistry::Harbor2, _))) => {
                found.retired_base = Some(base.clone())
            }
            (Some(_), Some((BaseRegistry::Ghcr, _))) => {}
            (Some(base), _) => found.custom_base = Some(base.clone()),
            (None, _) => {}
        }
    }
    found
}

/// Names compared as pip compares distributions: case-insensitive, `-`, `_` and `.` alike.
fn normalized(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if matches!(c, '-' | '_' | '.') {
            '-'
        } else {
            c.to_ascii_lowercase()
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

/// Folders that hold a project's tests or documentation, not its algorithm.
const NOT_THE_ALGORITHM: [&str; 8] = [
    "test",
    "tests",
    "doc",
    "docs",
    "example",
    "examples",
    "scripts",
    "benchmarks",
];

/// The package name for a Python project: the import package that exists. vantage6's template
/// names the package folder like the distribution, hyphens included (`v6-summary-py/`), and
/// `importlib.import_module` accepts that; `my_algo` is never made up from `my-algo`.
fn python_name(
    files: &ProjectFiles,
    distribution: Option<&(String, &'static str)>,
) -> Option<Name> {
    let dist = distribution.map(|(name, _)| name.as_str());
    let named = |name: &str, why: String| Name {
        name: name.to_string(),
        why,
        warning: None,
    };
    // 1. The packages the build configuration names.
    let configured: Vec<(String, &str)> = files
        .pyproject
        .as_deref()
        .map(pyproject_packages)
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p, "pyproject.toml"))
        .chain(
            files
                .setup_py
                .as_deref()
                .map(setup_py_packages)
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p, "setup.py")),
        )
        .collect();
    let matching = |name: &str| dist.is_some_and(|d| normalized(d) == normalized(name));
    if let Some((package, file)) = configured
        .iter()
        .find(|(p, _)| matching(p))
        .or(configured.first())
    {
        return Some(named(package, format!("the package that {file} builds")));
    }
    // 2. The package folders (and modules) that exist.
    let existing: Vec<(&str, &str)> = files
        .python_packages
        .iter()
        .map(|path| {
            let last = path.rsplit('/').next().unwrap_or(path);
            (last.strip_suffix(".py").unwrap_or(last), path.as_str())
        })
        .collect();
    let shown = |path: &str| {
        if path.ends_with(".py") {
            format!("the module `{path}`")
        } else {
            format!("the package folder `{path}/`")
        }
    };
    if let Some(dist) = dist {
        let exact = existing.iter().find(|(name, _)| *name == dist);
        if let Some((name, path)) = exact.or_else(|| existing.iter().find(|(n, _)| matching(n))) {
            return Some(named(name, shown(path)));
        }
    }
    let folders: Vec<&(&str, &str)> = existing
        .iter()
        .filter(|(name, path)| !path.ends_with(".py") && !NOT_THE_ALGORITHM.contains(name))
        .collect();
    if let [(name, path)] = folders[..] {
        return Some(named(name, format!("{}, the only one", shown(path))));
    }
    // 3. Nothing importable: the distribution's name as written, to be checked.
    let (dist, file) = distribution?;
    Some(Name {
        name: dist.clone(),
        why: format!("the distribution name in {file}"),
        warning: Some(format!(
            "no package folder `{dist}/` (with `__init__.py`){}: `name` is what the wrapper imports, check it",
            if dist.contains('-') {
                format!(" or `{}/`", dist.replace('-', "_"))
            } else {
                String::new()
            }
        )),
    })
}

/// A warning when the Dockerfile's PKG_NAME names no package of the project (its image would
/// fail on the node with `ModuleNotFoundError`). Quiet when nothing is known to compare with.
fn missing_package_warning(name: &str, files: &ProjectFiles) -> Option<String> {
    let names: Vec<&str> = files
        .python_packages
        .iter()
        .map(|path| {
            let last = path.rsplit('/').next().unwrap_or(path);
            last.strip_suffix(".py").unwrap_or(last)
        })
        .collect();
    (!names.is_empty() && !names.contains(&name)).then(|| {
        format!(
            "the Dockerfile's PKG_NAME `{name}` is no package folder of the project (found: {}): the wrapper imports it",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The name the image's wrapper imports: a literal `ENV PKG_NAME=...` (the environment the
/// wrapper reads), else `ARG PKG_NAME=...`.
fn pkg_name_in_dockerfile(steps: &[Instruction]) -> Option<(String, String)> {
    let value = |keyword: &str| {
        steps.iter().rev().find_map(|s| {
            let (key, value) = s
                .rest
                .split_once('=')
                .or_else(|| (keyword == "ENV").then(|| s.rest.split_once(' ')).flatten())?;
            let value = value.trim().trim_matches(['"', '\'']);
            (s.keyword == keyword
                && key.trim() == "PKG_NAME"
                && !value.is_empty()
                && !value.contains('$'))
            .then(|| value.to_string())
        })
    };
    value("ENV")
        .map(|v| (v, "ENV PKG_NAME in Dockerfile".to_string()))
        .or_else(|| value("ARG").map(|v| (v, "ARG PKG_NAME in Dockerfile".to_string())))
}

/// When no base image names a version: the wrapper call and install line the Dockerfile
/// uses tell the major, and the newest release the tool knows of it is assumed. Only
/// instructions are read: vantage6's 4.x template keeps a comment naming 3.x's
/// `docker_wrapper()` above its 4.x `CMD`.
fn wrapper_call_vantage6(steps: &[Instruction]) -> Option<Vantage6Found> {
    let in_step = |keywords: &[&str], text: &str| {
        steps
            .iter()
            .any(|s| keywords.contains(&s.keyword.as_str()) && s.rest.contains(text))
    };
    const STARTS: &[&str] = &["CMD", "ENTRYPOINT"];
    let (major, why) = if in_step(&["RUN"], "uv pip install") {
        (5, "`uv pip install` in the Dockerfile's RUN")
    } else if in_step(STARTS, "vantage6.algorithm.tools") || in_step(STARTS, "wrap_algorithm") {
        // 4.x's module also had a `docker_wrapper` for a while.
        (4, "the wrapper `wrap_algorithm` in the Dockerfile's CMD")
    } else if in_step(STARTS, "docker_wrapper") {
        (3, "the wrapper `docker_wrapper` in the Dockerfile's CMD")
    } else {
        return None;
    };
    Some(Vantage6Found {
        version: newest(major).to_string(),
        why: format!("{why}, the newest {major}.x this cargo v6 knows"),
        newer_than: None,
    })
}

/// Why the project's own Dockerfile must be built as it is rather than a rendered one, for the
/// user (``line 3: `RUN apt-get update ...` is a step no template expresses``); `None` when
/// rendering the wrapper's template builds the same image. The template's steps: one `FROM`
/// (any base: `build.base` names it), `ARG`s without a default (and `PKG_NAME`, and the global
/// ones `FROM` uses), the wrapper's `COPY`, install `RUN` and `WORKDIR`, `ENV PKG_NAME`, and
/// a `CMD` calling the wrapper. The minimal wrapper has no template to compare with: its
/// Dockerfile is how the project builds.
pub fn own_dockerfile_reason(dockerfile: &str, wrapper: Wrapper) -> Option<String> {
    if wrapper == Wrapper::Minimal {
        return Some(
            "the project has no vantage6 wrapper, its Dockerfile is how it builds".to_string(),
        );
    }
    first_foreign_step(dockerfile, wrapper)
        .map(|step| format!("{step} is a step no template expresses"))
}

/// The first step of the Dockerfile that the wrapper's template does not reproduce
/// (``line 3: `RUN apt-get update ...` ``), or for the minimal wrapper, which has no
/// template, its first step.
pub fn first_foreign_step(dockerfile: &str, wrapper: Wrapper) -> Option<String> {
    let steps = instructions(dockerfile);
    if wrapper == Wrapper::Minimal {
        return steps.first().map(Instruction::shown);
    }
    foreign_step(&steps, wrapper)
}

fn foreign_step(steps: &[Instruction], wrapper: Wrapper) -> Option<String> {
    static INSTALL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^(?:python3? -m )?(?:uv )?pip3? install(?: --system| --no-cache-dir| -e| --editable)* /app/?$",
        )
        .expect("valid regex")
    });
    let mut froms = 0;
    for step in steps {
        let rest = step.rest.as_str();
        let expressed = match step.keyword.as_str() {
            "FROM" => {
                froms += 1;
                froms == 1
            }
            // Before FROM: used by FROM only.
            "ARG" if froms == 0 => true,
            "ARG" => {
                let (name, default) = rest.split_once('=').unwrap_or((rest, ""));
                name.trim() == "PKG_NAME" || default.is_empty()
            }
            "ENV" => {
                let (name, _) = rest.split_once(['=', ' ']).unwrap_or((rest, ""));
                (name == "PKG_NAME" && !rest.contains(char::is_whitespace))
                    || matches!(rest, "PKG_NAME ${PKG_NAME}" | "PKG_NAME $PKG_NAME")
            }
            "COPY" => match wrapper {
                Wrapper::R => matches!(
                    rest,
                    ". /usr/local/R/${PKG_NAME}/" | ". /usr/local/R/${PKG_NAME}"
                ),
                _ => matches!(rest, ". /app" | ". /app/" | "./ /app" | "./ /app/"),
            },
            "WORKDIR" => {
                wrapper == Wrapper::R
                    && matches!(
                        rest,
                        "/usr/local/R/${PKG_NAME}" | "/usr/local/R/${PKG_NAME}/"
                    )
            }
            "RUN" => match wrapper {
                Wrapper::R => matches!(
                    rest,
                    "Rscript -e 'library(devtools)' -e 'install_deps(\".\")'"
                        | "R CMD INSTALL --no-multiarch --with-keep.source ."
                ),
                _ => INSTALL.is_match(rest),
            },
            "CMD" => match wrapper {
                Wrapper::R => rest.contains("vtg::docker.wrapper("),
                _ => rest.contains("wrap_algorithm()") || rest.contains("docker_wrapper("),
            },
            _ => false,
        };
        if !expressed {
            let what = if step.keyword == "FROM" {
                " (a multi-stage build)"
            } else {
                ""
            };
            return Some(format!("{}{what}", step.shown()));
        }
    }
    None
}

/// How a repository tags its releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseTags {
    /// `""` for bare tags (`1.2.1`, vantage6's convention), `"v"` for `v1.2.1`.
    pub prefix: &'static str,
    /// How many release tags there are under that prefix.
    pub count: usize,
    /// The highest release tag, and its version.
    pub latest: (String, Version),
}

/// The release tags among a repository's `tags`: bare versions (`1.2.1`) or `v` and a version
/// (`v1.2.1`), parsed with the wrapper's version scheme. When a repository has both, the more
/// frequent prefix wins (on a tie, the one of the highest version). Other tags
/// (`partial-sum-v1.0.0`, `stable`) are not release tags here.
pub fn release_tags(tags: &[String], wrapper: Wrapper) -> Option<ReleaseTags> {
    let of = |prefix: &'static str| -> Option<ReleaseTags> {
        let versions: Vec<(String, Version)> = tags
            .iter()
            .filter_map(|tag| {
                let rest = tag.strip_prefix(prefix)?;
                if !rest.starts_with(|c: char| c.is_ascii_digit()) {
                    return None;
                }
                Some((tag.clone(), Version::parse_for(rest, wrapper).ok()?))
            })
            .collect();
        let count = versions.len();
        let latest = versions.into_iter().max_by(|a, b| a.1.cmp(&b.1))?;
        Some(ReleaseTags {
            prefix,
            count,
            latest,
        })
    };
    match (of(""), of("v")) {
        (Some(bare), Some(v)) => {
            let bare_wins = (bare.count, &bare.latest.1) >= (v.count, &v.latest.1);
            Some(if bare_wins { bare } else { v })
        }
        (bare, v) => bare.or(v),
    }
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
            setup_py: Some("setup(name=\"algo\")\n".into()),
            dockerfile: Some(text.to_string()),
            ..Default::default()
        })
    }

    fn version(text: &str) -> String {
        with_dockerfile(text).vantage6.unwrap().version
    }

    /// vantage6's 4.x template, as its repositories have it (v6-summary-py).
    const TEMPLATE_4: &str = "# basic python3 image as base\nARG BASE=4.15\nFROM ghcr.io/vantage6/infrastructure/algorithm-base:${BASE}\n\n# This is a placeholder\nARG PKG_NAME=\"v6-summary-py\"\n\n# install federated algorithm\nCOPY . /app\nRUN pip install /app\n\nENV PKG_NAME=${PKG_NAME}\n\nCMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"\n";

    #[test]
    fn python_distribution_from_pep621_then_poetry() {
        let files = ProjectFiles {
            pyproject: Some("[project]\nname = \"summary-py\"\n".into()),
            ..Default::default()
        };
        assert_eq!(
            detect(&files).distribution,
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
    fn setup_cfg_setup_py_r_description_and_cargo() {
        let cfg = ProjectFiles {
            setup_cfg: Some("[options]\nname = no\n[metadata]\nname = algo_cfg\n".into()),
            ..Default::default()
        };
        assert_eq!(detect(&cfg).distribution.unwrap().0, "algo_cfg");
        let py = ProjectFiles {
            setup_py: Some("setup(\n    name='algo-py',\n    version=v)\n".into()),
            ..Default::default()
        };
        assert_eq!(detect(&py).distribution.unwrap().0, "algo-py");
        let r = ProjectFiles {
            description: Some("Package: vtg.summary\nVersion: 1.0-2\n".into()),
            ..Default::default()
        };
        assert_eq!(detect(&r).wrapper, Some((Wrapper::R, "DESCRIPTION")));
        assert_eq!(detect(&r).name.unwrap().name, "vtg.summary");
        let cargo = ProjectFiles {
            cargo_toml: Some("[package]\nname = \"rusty-algo\"\nversion = \"0.1.0\"\n".into()),
            ..Default::default()
        };
        let found = detect(&cargo);
        assert_eq!(found.wrapper, Some((Wrapper::Minimal, "Cargo.toml")));
        assert_eq!(found.name.unwrap().name, "rusty-algo");
    }

    fn python_name_of(files: ProjectFiles) -> Name {
        detect(&files).name.unwrap()
    }

    fn setup_py(name: &str, packages: &[&str]) -> ProjectFiles {
        ProjectFiles {
            setup_py: Some(format!(
                "setup(\n    name=\"{name}\",\n    packages=find_packages(),\n)\n"
            )),
            python_packages: packages.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_name_is_the_package_folder_that_exists_hyphens_included() {
        let hyphen = python_name_of(setup_py("my-algo", &["my-algo", "tests"]));
        assert_eq!(hyphen.name, "my-algo");
        assert_eq!(hyphen.why, "the package folder `my-algo/`");
        assert_eq!(hyphen.warning, None);
        let underscore = python_name_of(setup_py("my-algo", &["my_algo"]));
        assert_eq!(underscore.name, "my_algo");
        let src = python_name_of(setup_py("My.Algo", &["src/my_algo"]));
        assert_eq!(src.name, "my_algo");
        assert_eq!(src.why, "the package folder `src/my_algo/`");
        let module = python_name_of(setup_py("my-algo", &["my_algo.py"]));
        assert_eq!(module.name, "my_algo");
        // Named otherwise than the distribution: the only package folder.
        let only = python_name_of(setup_py("v6-summary", &["summary", "tests", "docs"]));
        assert_eq!(only.name, "summary");
        // None at all: the distribution as written, never a made-up `my_algo`, and a warning.
        let none = python_name_of(setup_py("my-algo", &["tests"]));
        assert_eq!(none.name, "my-algo");
        assert!(
            none.warning
                .unwrap()
                .contains("no package folder `my-algo/`")
        );
    }

    #[test]
    fn the_name_is_the_package_the_build_configuration_names() {
        let hatch = ProjectFiles {
            pyproject: Some("[project]\nname = \"v6-median\"\n[tool.hatch.build.targets.wheel]\npackages = [\"src/v6_median\"]\n".into()),
            ..Default::default()
        };
        assert_eq!(python_name_of(hatch).name, "v6_median");
        let setuptools = ProjectFiles {
            pyproject: Some("[project]\nname = \"algo\"\n[tool.setuptools]\npackages = [\"the_algo\", \"the_algo.sub\"]\n".into()),
            python_packages: vec!["algo".into()],
            ..Default::default()
        };
        let found = python_name_of(setuptools);
        assert_eq!(
            (found.name.as_str(), found.why.as_str()),
            ("the_algo", "the package that pyproject.toml builds")
        );
        let matching = ProjectFiles {
            pyproject: Some("[project]\nname = \"the-algo\"\n[tool.setuptools]\npackages = [\"helpers\", \"the_algo\"]\n".into()),
            ..Default::default()
        };
        assert_eq!(python_name_of(matching).name, "the_algo");
        let poetry = ProjectFiles {
            pyproject: Some("[tool.poetry]\nname = \"p\"\npackages = [{ include = \"p_algo\", from = \"src\" }]\n".into()),
            ..Default::default()
        };
        assert_eq!(python_name_of(poetry).name, "p_algo");
        let literal = ProjectFiles {
            setup_py: Some("setup(name='x-y', packages=['x_y_pkg', 'x_y_pkg.sub'])\n".into()),
            ..Default::default()
        };
        assert_eq!(python_name_of(literal).name, "x_y_pkg");
        // A commented-out list is no list.
        let commented = ProjectFiles {
            setup_py: Some("setup(\n    name='x-y',\n    # packages=['old_pkg'],\n    packages=['x_y_pkg'],\n)\n".into()),
            ..Default::default()
        };
        assert_eq!(python_name_of(commented).name, "x_y_pkg");
    }

    #[test]
    fn the_dockerfiles_pkg_name_wins_and_is_checked() {
        let files = ProjectFiles {
            python_packages: vec!["v6-summary-py".into()],
            ..setup_py("v6-summary-py", &[])
        };
        let found = detect(&ProjectFiles {
            dockerfile: Some(TEMPLATE_4.into()),
            ..files.clone()
        });
        let name = found.name.unwrap();
        assert_eq!((name.name.as_str(), name.warning), ("v6-summary-py", None));
        assert_eq!(name.why, "ARG PKG_NAME in Dockerfile");
        let wrong = detect(&ProjectFiles {
            dockerfile: Some(TEMPLATE_4.replace("\"v6-summary-py\"", "\"v6_summary_py\"")),
            ..files
        });
        let name = wrong.name.unwrap();
        assert_eq!(name.name, "v6_summary_py");
        assert!(name.warning.unwrap().contains("found: `v6-summary-py`"));
        let env = with_dockerfile("FROM x\nENV PKG_NAME=from_env\nARG PKG_NAME=from_arg\n");
        assert_eq!(env.name.unwrap().name, "from_env");
    }

    #[test]
    fn vantage6_from_the_base_image_as_written() {
        assert_eq!(version(TEMPLATE_4), "4.15");
        assert_eq!(
            with_dockerfile(TEMPLATE_4).vantage6.unwrap().why,
            "the base image `ghcr.io/vantage6/infrastructure/algorithm-base:4.15` in Dockerfile"
        );
        let tagged =
            "FROM ghcr.io/vantage6/infrastructure/algorithm-base:4.9\nARG PKG_NAME=\"x\"\n";
        assert_eq!(version(tagged), "4.9");
        let via_arg =
            "ARG BASE=harbor2.vantage6.ai/infrastructure/algorithm-base:3.7\nFROM ${BASE}\n";
        assert_eq!(version(via_arg), "3.7");
        assert_eq!(
            with_dockerfile(via_arg).retired_base.as_deref(),
            Some("harbor2.vantage6.ai/infrastructure/algorithm-base:3.7")
        );
        let patch = "FROM ghcr.io/vantage6/infrastructure/algorithm-base:5.0.0a26@sha256:abc\n";
        assert_eq!(version(patch), "5.0");
        let flagged = "FROM python:3.12 AS build\nfrom --platform=linux/amd64 ghcr.io/vantage6/infrastructure/algorithm-base:5.1\n";
        assert_eq!(version(flagged), "5.1");
        // Newer than the tool knows: as written, flagged.
        let newer = with_dockerfile("FROM ghcr.io/vantage6/infrastructure/algorithm-base:4.17\n");
        let found = newer.vantage6.unwrap();
        assert_eq!(
            (found.version.as_str(), found.newer_than),
            ("4.17", Some("4.15"))
        );
        let known = with_dockerfile("FROM ghcr.io/vantage6/infrastructure/algorithm-base:4.13\n");
        assert_eq!(known.vantage6.unwrap().newer_than, None);
        let six = with_dockerfile("FROM ghcr.io/vantage6/infrastructure/algorithm-base:6.0\n");
        assert_eq!(six.vantage6.unwrap().newer_than, Some(vantage6::NEWEST));
    }

    #[test]
    fn vantage6_from_the_wrapper_call_only_when_no_base_names_one() {
        let untagged = "FROM harbor2.vantage6.ai/infrastructure/algorithm-base\nCMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"\n";
        assert_eq!(version(untagged), newest(4));
        let v3 = "FROM x\nCMD python -c \"from vantage6.tools.docker_wrapper import docker_wrapper; docker_wrapper('a')\"\n";
        assert_eq!(version(v3), newest(3));
        let v5 = "FROM x\nRUN uv pip install --system /app\n";
        assert_eq!(version(v5), newest(5));
        assert_eq!(with_dockerfile("FROM scratch\n").vantage6, None);
        // The base tag wins over the heuristics.
        let uv_on_5 = "FROM ghcr.io/vantage6/infrastructure/algorithm-base:5.0\nRUN uv pip install --system /app\n";
        assert_eq!(version(uv_on_5), "5.0");
        // 4.x's module once exported `docker_wrapper` too: the module tells the major.
        let v4_docker_wrapper = "FROM x\nCMD python -c \"from vantage6.algorithm.tools.wrap import docker_wrapper; docker_wrapper()\"\n";
        assert_eq!(version(v4_docker_wrapper), newest(4));
    }

    #[test]
    fn comments_are_never_read_as_the_wrapper() {
        // vantage6's 4.x template: a comment naming 3.x's wrapper above the 4.x CMD, and a
        // commented-out 3.x CMD below it.
        let commented = "FROM harbor2.vantage6.ai/infrastructure/algorithm-base\nCOPY . /app\nRUN pip install /app\n# Tell docker to execute docker_wrapper() when the image is run.\nCMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"\n# CMD python -c \"from vantage6.tools.docker_wrapper import docker_wrapper; docker_wrapper('x')\"\n";
        let found = with_dockerfile(commented).vantage6.unwrap();
        assert_eq!(found.version, newest(4));
        assert!(found.why.contains("wrap_algorithm"), "{}", found.why);
        // Words in comments (or in a RUN's echo) never name a major.
        let uv_comment = "FROM x\n# 5.x would `uv pip install` here\nRUN pip install /app\n";
        assert_eq!(with_dockerfile(uv_comment).vantage6, None);
        let echo = "FROM x\nRUN echo wrap_algorithm\n";
        assert_eq!(with_dockerfile(echo).vantage6, None);
        // Nor a PKG_NAME or a base image.
        let pkg = with_dockerfile(
            "# ARG PKG_NAME=\"wrong\"\n# FROM ghcr.io/vantage6/infrastructure/algorithm-base:3.7\nFROM scratch\nARG PKG_NAME=\"right\"\n",
        );
        assert_eq!(pkg.name.unwrap().name, "right");
        assert_eq!(pkg.vantage6, None);
    }

    #[test]
    fn other_bases_are_kept_and_vantage6s_own_is_the_default() {
        assert_eq!(with_dockerfile(TEMPLATE_4).custom_base, None);
        let conda =
            with_dockerfile("FROM continuumio/miniconda3\nCOPY . /app\nRUN pip install /app\n");
        assert_eq!(conda.custom_base.as_deref(), Some("continuumio/miniconda3"));
        let mirror = with_dockerfile("FROM registry.example.org/v6/algorithm-base:4.15\n");
        assert_eq!(
            mirror.custom_base.as_deref(),
            Some("registry.example.org/v6/algorithm-base:4.15")
        );
        assert_eq!(mirror.vantage6.unwrap().version, "4.15");
        let unset = with_dockerfile("ARG BASE\nFROM ${BASE}\n");
        assert_eq!(unset.custom_base, None);
    }

    fn own(text: &str) -> Option<String> {
        own_dockerfile_reason(text, Wrapper::Python).map(|why| {
            why.trim_end_matches(" is a step no template expresses")
                .to_string()
        })
    }

    #[test]
    fn the_templates_steps_render_anything_else_builds_the_own_dockerfile() {
        assert_eq!(own(TEMPLATE_4), None);
        let uv = "FROM ghcr.io/vantage6/infrastructure/algorithm-base:5.0\nARG PKG_NAME=\"v6_median\"\nCOPY . /app\nRUN uv pip install --system -e /app\nENV PKG_NAME=${PKG_NAME}\nCMD python -c \"from vantage6.algorithm.tools.wrap import wrap_algorithm; wrap_algorithm()\"\n";
        assert_eq!(own(uv), None);
        let apt = TEMPLATE_4.replace(
            "COPY . /app\n",
            "RUN apt-get update \\\n    && apt-get install -y libpq5\nCOPY . /app\n",
        );
        assert_eq!(
            own(&apt).as_deref(),
            Some("line 9: `RUN apt-get update && apt-get install -y libpq5`")
        );
        let conda =
            "FROM continuumio/miniconda3\nRUN conda install -y -c conda-forge rdkit\nCOPY . /app\n";
        assert!(
            own(conda)
                .unwrap()
                .starts_with("line 2: `RUN conda install")
        );
        let staged = "FROM python:3.12 AS build\nRUN pip wheel /src\nFROM ghcr.io/vantage6/infrastructure/algorithm-base:4.15\n";
        assert!(own(staged).unwrap().starts_with("line 2: `RUN pip wheel"));
        let two = "FROM a AS b\nFROM b\n";
        assert_eq!(
            own(two).as_deref(),
            Some("line 2: `FROM b` (a multi-stage build)")
        );
        let extra_env = TEMPLATE_4.replace(
            "ENV PKG_NAME=${PKG_NAME}",
            "ENV PKG_NAME=${PKG_NAME} JAVA_HOME=/opt/java",
        );
        assert!(own(&extra_env).unwrap().contains("JAVA_HOME"));
        let extra_copy = TEMPLATE_4.replace("COPY . /app\n", "COPY . /app\nCOPY data/ /data\n");
        assert!(own(&extra_copy).unwrap().contains("COPY data/ /data"));
        let arg_default = TEMPLATE_4.replace(
            "COPY . /app\n",
            "ARG PIP_INDEX_URL=https://pypi.example.org/simple\nCOPY . /app\n",
        );
        assert!(own(&arg_default).unwrap().contains("ARG PIP_INDEX_URL="));
        assert_eq!(
            own(&TEMPLATE_4.replace("COPY . /app\n", "ARG PIP_INDEX_URL\nCOPY . /app\n")),
            None
        );
        let long = format!("FROM x\nRUN {}\n", "a".repeat(200));
        assert!(own(&long).unwrap().ends_with("...`"));
        // No wrapper at all: its Dockerfile is all there is.
        assert!(
            own_dockerfile_reason("FROM rust\n", Wrapper::Minimal)
                .unwrap()
                .contains("no vantage6 wrapper")
        );
        assert_eq!(
            own_dockerfile_reason(&apt, Wrapper::Python).unwrap(),
            "line 9: `RUN apt-get update && apt-get install -y libpq5` is a step no template expresses"
        );
    }

    #[test]
    fn r_projects_render_the_vtg_template_steps() {
        let r = ProjectFiles {
            description: Some("Package: vtg.mean\n".into()),
            dockerfile: Some("FROM r-base:4.3\nARG PKG_NAME=\"vtg.mean\"\nCOPY . /usr/local/R/${PKG_NAME}/\nWORKDIR /usr/local/R/${PKG_NAME}\nRUN Rscript -e 'library(devtools)' -e 'install_deps(\".\")'\nRUN R CMD INSTALL --no-multiarch --with-keep.source .\nENV PKG_NAME=${PKG_NAME}\nCMD Rscript -e \"vtg::docker.wrapper('$PKG_NAME')\"\n".into()),
            ..Default::default()
        };
        let found = detect(&r);
        assert_eq!(
            own_dockerfile_reason(r.dockerfile.as_deref().unwrap(), Wrapper::R),
            None
        );
        assert_eq!(found.custom_base.as_deref(), Some("r-base:4.3"));
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn release_tags_bare_or_v() {
        let bare = release_tags(
            &tags(&["0.0.1", "1.1.3", "1.2.1", "1.10.0rc1", "stable"]),
            Wrapper::Python,
        )
        .unwrap();
        assert_eq!(bare.prefix, "");
        assert_eq!(bare.count, 4);
        assert_eq!(bare.latest.0, "1.10.0rc1");
        let v = release_tags(
            &tags(&["v1.0.0", "v1.2.0", "v6-migration"]),
            Wrapper::Python,
        )
        .unwrap();
        assert_eq!((v.prefix, v.count, v.latest.0.as_str()), ("v", 2, "v1.2.0"));
        let mixed = release_tags(&tags(&["v0.1.0", "1.0.0", "1.1.0"]), Wrapper::Python).unwrap();
        assert_eq!(mixed.prefix, "");
        let tie = release_tags(&tags(&["0.1.0", "v1.0.0"]), Wrapper::Python).unwrap();
        assert_eq!(tie.prefix, "v");
        assert_eq!(
            release_tags(&tags(&["partial-sum-v1.0.0", "latest"]), Wrapper::Python),
            None
        );
        assert_eq!(release_tags(&[], Wrapper::Minimal), None);
        let r = release_tags(&tags(&["1.2-3"]), Wrapper::R).unwrap();
        assert_eq!(r.latest.1.exact_tag(), "1.2.3");
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
