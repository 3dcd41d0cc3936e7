//! What the metadata files declare besides the version (which `version` reads, with spans
//! for its errors): the distribution or package name, the packages a Python build ships, and
//! where the code lives. Lenient: a file that does not parse, or a value of another type,
//! declares nothing.

use crate::project::setup_py::{setup_py_argument, setup_py_literal};

use super::ProjectFiles;

/// The value at `path` (table keys) in `table`.
fn toml_at<'a>(table: &'a toml::Table, path: &[&str]) -> Option<&'a toml::Value> {
    let mut value = table.get(path[0])?;
    for key in &path[1..] {
        value = value.get(key)?;
    }
    Some(value)
}

/// The distribution's name in pyproject.toml: `[project] name`, else Poetry's.
pub fn pyproject_name(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    let name = |path: &[&str]| toml_at(&table, path)?.as_str().map(str::to_string);
    name(&["project", "name"]).or_else(|| name(&["tool", "poetry", "name"]))
}

/// `[package] name` in Cargo.toml.
pub fn cargo_package_name(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    toml_at(&table, &["package", "name"])?
        .as_str()
        .map(str::to_string)
}

/// The top-level packages that pyproject.toml tells the build backend to ship: setuptools'
/// `packages` list (`["my_algo", "my_algo.sub"]`), hatchling's wheel `packages` (paths,
/// `["src/my_algo"]`), Poetry's `packages` (`[{include = "my_algo", from = "src"}]`) and
/// flit's module name.
pub fn pyproject_packages(text: &str) -> Vec<String> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let strings = |path: &[&str]| -> Vec<String> {
        toml_at(&table, path)
            .and_then(toml::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        item.as_str()
                            .or_else(|| item.get("include").and_then(toml::Value::as_str))
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut packages: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        let name = name.to_string();
        if !name.is_empty() && !name.contains(['*', '?', '[']) && !packages.contains(&name) {
            packages.push(name);
        }
    };
    for dotted in strings(&["tool", "setuptools", "packages"]) {
        add(dotted.split('.').next().unwrap_or_default());
    }
    for path in strings(&["tool", "hatch", "build", "targets", "wheel", "packages"]) {
        add(path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default());
    }
    for include in strings(&["tool", "poetry", "packages"]) {
        add(include.split(['/', '.']).next().unwrap_or_default());
    }
    if let Some(module) =
        toml_at(&table, &["tool", "flit", "module", "name"]).and_then(toml::Value::as_str)
    {
        add(module);
    }
    packages
}

/// The packages a literal `packages=["..."]` in setup.py's `setup()` call names (top level
/// only).
pub fn setup_py_packages(text: &str) -> Vec<String> {
    static ITEM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"["']([A-Za-z0-9_.-]+)["']"#).expect("valid regex")
    });
    let item = &*ITEM;
    let mut packages = Vec::new();
    let list = setup_py_argument(text, "packages")
        .and_then(|value| value.strip_prefix('['))
        .and_then(|value| value.strip_suffix(']'));
    if let Some(list) = list {
        for name in item.captures_iter(list) {
            let top = name[1].split('.').next().unwrap_or_default().to_string();
            if !packages.contains(&top) {
                packages.push(top);
            }
        }
    }
    packages
}

/// `name` under setup.cfg's `[metadata]`.
pub fn setup_cfg_name(text: &str) -> Option<String> {
    setup_cfg_value(text, "name")
}

/// `key` under setup.cfg's `[metadata]`.
fn setup_cfg_value(text: &str, key: &str) -> Option<String> {
    let mut in_metadata = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_metadata = line == "[metadata]";
        } else if in_metadata
            && let Some((found, value)) = line.split_once(['=', ':'])
            && found.trim() == key
            && !value.trim().is_empty()
        {
            return Some(value.trim().to_string());
        }
    }
    None
}

/// Where the project says its code lives: pyproject's `[project.urls]` (`Repository`,
/// `Source`, `Source Code`, `Code`, then `Homepage`) or Poetry's `repository`/`homepage`,
/// setup.cfg's and setup.py's `url`, DESCRIPTION's `URL:`; only `http(s)://` addresses. With
/// where it was found, for the user (`setup.py's \`url\``).
pub fn project_url(files: &ProjectFiles) -> Option<(String, String)> {
    // A web address, with any user name and token dropped (as from the git remote): it is
    // written into v6.toml and the store's JSON.
    let web = |url: &str| {
        let url = url.trim();
        (url.starts_with("https://") || url.starts_with("http://"))
            .then(|| crate::git::source_url(url))
            .flatten()
            .filter(|u| !u.contains(char::is_whitespace))
    };
    if let Some(table) = files
        .pyproject
        .as_deref()
        .and_then(|t| t.parse::<toml::Table>().ok())
    {
        if let Some(urls) = toml_at(&table, &["project", "urls"]).and_then(toml::Value::as_table) {
            for wanted in ["repository", "source", "source code", "code", "homepage"] {
                let found = urls
                    .iter()
                    .find(|(key, _)| key.to_ascii_lowercase() == wanted)
                    .and_then(|(key, v)| Some((key, web(v.as_str()?)?)));
                if let Some((key, url)) = found {
                    return Some((url, format!("pyproject.toml's [project.urls] `{key}`")));
                }
            }
        }
        for key in ["repository", "homepage"] {
            if let Some(url) = toml_at(&table, &["tool", "poetry", key])
                .and_then(toml::Value::as_str)
                .and_then(web)
            {
                return Some((url, format!("pyproject.toml's [tool.poetry] `{key}`")));
            }
        }
    }
    if let Some(url) = files
        .setup_cfg
        .as_deref()
        .and_then(|t| setup_cfg_value(t, "url"))
        .as_deref()
        .and_then(web)
    {
        return Some((url, "setup.cfg's `url`".to_string()));
    }
    if let Some(url) = files
        .setup_py
        .as_deref()
        .and_then(|t| setup_py_literal(t, "url"))
        .as_deref()
        .and_then(web)
    {
        return Some((url, "setup.py's `url`".to_string()));
    }
    let description_url = files.description.as_deref().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("URL:"))
            .and_then(|v| v.split([',', ' ']).find_map(web))
    });
    description_url.map(|url| (url, "DESCRIPTION's `URL:`".to_string()))
}

/// A literal `name=` in setup.py's `setup()` call, when it is a distribution name.
pub fn setup_py_name(text: &str) -> Option<String> {
    setup_py_literal(text, "name").filter(|name| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    })
}

/// `Package:` in an R DESCRIPTION file.
pub fn description_package(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("Package:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_and_token_in_the_projects_url_never_reach_the_store() {
        let files = ProjectFiles {
            pyproject: Some(
                "[project]\nname = \"x\"\n[project.urls]\nRepository = \"https://bot:ghp_s3cr3t@github.com/o/x\"\n".into(),
            ),
            ..Default::default()
        };
        let (url, _) = project_url(&files).unwrap();
        assert_eq!(url, "https://github.com/o/x");
    }

    #[test]
    fn the_projects_url_from_its_metadata() {
        let url = |files: ProjectFiles| project_url(&files);
        let setup = ProjectFiles {
            setup_py: Some("setup(\n    name=\"v6-x\",\n    download_url=\"https://d.example/x.tgz\",\n    url=\"https://github.com/vantage6/v6-x\",\n)\n".into()),
            ..Default::default()
        };
        assert_eq!(
            url(setup),
            Some((
                "https://github.com/vantage6/v6-x".into(),
                "setup.py's `url`".into()
            ))
        );
        let pyproject = ProjectFiles {
            pyproject: Some("[project]\nname = \"x\"\n[project.urls]\nHomepage = \"https://x.example\"\n\"Source Code\" = \"https://git.example/x\"\n".into()),
            setup_py: Some("setup(url='https://other.example')\n".into()),
            ..Default::default()
        };
        assert_eq!(
            url(pyproject),
            Some((
                "https://git.example/x".into(),
                "pyproject.toml's [project.urls] `Source Code`".into()
            ))
        );
        let cfg = ProjectFiles {
            setup_cfg: Some("[metadata]\nname = x\nurl = https://cfg.example/x\n".into()),
            ..Default::default()
        };
        assert_eq!(url(cfg).unwrap().0, "https://cfg.example/x");
        let r = ProjectFiles {
            description: Some(
                "Package: vtg.x\nURL: https://github.com/iknl/vtg.x, https://docs.example\n".into(),
            ),
            ..Default::default()
        };
        assert_eq!(url(r).unwrap().0, "https://github.com/iknl/vtg.x");
        // Only the `setup()` call's own arguments: never a comment, nor another call's.
        let commented = ProjectFiles {
            setup_py: Some("# Copy the template: name=\"v6-template\", url=\"https://example.org/template\"\nmeta = dict(url=\"https://example.org/other\")\nsetup(\n    name=\"v6-x\",  # name=\"not-this\"\n    url=\"https://github.com/o/v6-x\",\n)\n".into()),
            ..Default::default()
        };
        assert_eq!(
            url(commented.clone()).unwrap().0,
            "https://github.com/o/v6-x"
        );
        assert_eq!(
            setup_py_name(commented.setup_py.as_deref().unwrap()).as_deref(),
            Some("v6-x")
        );
        // Not a web address, or none at all.
        let local = ProjectFiles {
            setup_py: Some("setup(url=\"file:///srv/x\")\n".into()),
            ..Default::default()
        };
        assert_eq!(url(local), None);
        assert_eq!(url(ProjectFiles::default()), None);
    }
}
