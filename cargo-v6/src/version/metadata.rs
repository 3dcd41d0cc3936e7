//! Reading the version from the project's own metadata files.
//!
//! cargo v6 never invents a version: it takes the one the project already declares, and only
//! when it is written literally. A computed version (`dynamic`, `attr:`, a function call)
//! would need the project's own tooling to run, so it is reported as
//! [`MetadataError::NotLiteral`], pointing at the value, and the user sets the version in
//! v6.toml or on the command line instead.
//!
//! Sources, in order, first hit wins:
//!
//! * Python: `pyproject.toml` (`[project].version`, then Poetry's `[tool.poetry].version`),
//!   `setup.cfg` (`[metadata] version`), `setup.py` (a literal `version=` in `setup(...)`).
//! * R: `DESCRIPTION` (`Version:`).
//! * Minimal: `Cargo.toml` (`[package].version`), then the Python sources.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Scheme;
use crate::diagnostic::Location;
use crate::project::Source;
use crate::project::setup_py::{Keyword, setup_keyword};
use crate::vantage6::Wrapper;

/// A version found in the project's metadata.
#[derive(Debug, Clone)]
pub struct MetadataVersion {
    /// The version as written in the file.
    pub raw: String,
    /// The grammar of that file's ecosystem.
    pub scheme: Scheme,
    /// The file it was read from (as `dir` joined with the file name).
    pub file: PathBuf,
    /// Where the value is written, so that a version that does not parse can be pointed at.
    /// `None` only when the value was resolved elsewhere than `file` and has no span there.
    pub location: Option<Location>,
}

/// The project's metadata could not give a version.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The version is computed (`dynamic`, `attr:`, `file:`, an expression).
    #[error("the version in {file} is not a literal ({what})")]
    NotLiteral {
        /// The file, as displayed.
        file: String,
        /// What was found instead of a literal.
        what: String,
        /// Where, when known.
        location: Option<Location>,
    },
    /// The file exists but cannot be read or parsed.
    #[error("cannot read {file}: {reason}")]
    Unreadable {
        /// The file, as displayed.
        file: String,
        /// Why.
        reason: String,
        /// Where, when known.
        location: Option<Location>,
    },
}

impl MetadataError {
    /// Where the error points, if anywhere.
    pub fn location(&self) -> Option<&Location> {
        match self {
            MetadataError::NotLiteral { location, .. }
            | MetadataError::Unreadable { location, .. } => location.as_ref(),
        }
    }
}

/// Reads the version from the project's metadata in `dir`, by wrapper; `Ok(None)` if none of
/// the wrapper's files exist or carry a version.
pub fn read_project_version(
    dir: &Path,
    wrapper: Wrapper,
) -> Result<Option<MetadataVersion>, MetadataError> {
    match wrapper {
        Wrapper::Python => python(dir),
        Wrapper::R => match read(dir, "DESCRIPTION")? {
            Some(source) => Ok(description(&source)),
            None => Ok(None),
        },
        Wrapper::Minimal => match read(dir, "Cargo.toml")? {
            Some(source) => match cargo(&source, dir)? {
                Some(version) => Ok(Some(version)),
                None => python(dir),
            },
            None => python(dir),
        },
    }
}

/// Reads `name` in `dir` for a version: `Ok(None)` when the file does not exist.
fn read(dir: &Path, name: &str) -> Result<Option<Source>, MetadataError> {
    Source::read(dir, name).map_err(|e| MetadataError::Unreadable {
        file: dir.join(name).display().to_string(),
        reason: e.to_string(),
        location: None,
    })
}

/// What a metadata file gives a version: the version found, or why not, pointing into it.
trait Found {
    fn found(&self, raw: &str, scheme: Scheme, span: Range<usize>) -> MetadataVersion;
    fn not_literal(&self, what: impl Into<String>, span: Range<usize>) -> MetadataError;
    fn unreadable(&self, reason: impl Into<String>, span: Option<Range<usize>>) -> MetadataError;
    fn toml(&self) -> Result<Spanned<DeTable<'_>>, MetadataError>;
}

impl Found for Source {
    fn found(&self, raw: &str, scheme: Scheme, span: Range<usize>) -> MetadataVersion {
        MetadataVersion {
            raw: raw.to_owned(),
            scheme,
            file: self.path.clone(),
            location: Some(self.location(span)),
        }
    }

    fn not_literal(&self, what: impl Into<String>, span: Range<usize>) -> MetadataError {
        MetadataError::NotLiteral {
            file: self.display.clone(),
            what: what.into(),
            location: Some(self.location(span)),
        }
    }

    fn unreadable(&self, reason: impl Into<String>, span: Option<Range<usize>>) -> MetadataError {
        MetadataError::Unreadable {
            file: self.display.clone(),
            reason: reason.into(),
            location: span.map(|span| self.location(span)),
        }
    }

    fn toml(&self) -> Result<Spanned<DeTable<'_>>, MetadataError> {
        if !self.utf8 {
            let at = self.text.find(char::REPLACEMENT_CHARACTER);
            return Err(self.unreadable(
                "a TOML file must be UTF-8",
                at.map(|at| at..at + char::REPLACEMENT_CHARACTER.len_utf8()),
            ));
        }
        DeTable::parse(&self.text).map_err(|e| self.unreadable(e.message(), e.span()))
    }
}

/// `table[key]` as a table, if it is one.
fn table<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a DeTable<'i>> {
    table.get(key)?.get_ref().as_table()
}

/// A `version = "..."` value, which must be a string.
fn version_string<'a>(
    source: &Source,
    value: &'a Spanned<DeValue<'_>>,
    key: &str,
) -> Result<(&'a str, Range<usize>), MetadataError> {
    match value.get_ref().as_str() {
        Some(text) => Ok((text, value.span())),
        None => Err(source.unreadable(
            format!(
                "`{key}` must be a string, found {}",
                value.get_ref().type_str()
            ),
            Some(value.span()),
        )),
    }
}

/// The Python sources, in order. A `dynamic` version in pyproject.toml is not final: with
/// setuptools it means "from setup.cfg or setup.py", so those are still read, and the
/// `dynamic` entry is reported only if they give nothing.
fn python(dir: &Path) -> Result<Option<MetadataVersion>, MetadataError> {
    let mut dynamic = None;
    if let Some(source) = read(dir, "pyproject.toml")? {
        match pyproject(&source)? {
            Pyproject::Found(version) => return Ok(Some(version)),
            Pyproject::Dynamic(error) => dynamic = Some(error),
            Pyproject::Absent => {}
        }
    }
    if let Some(source) = read(dir, "setup.cfg")?
        && let Some(version) = setup_cfg(&source)?
    {
        return Ok(Some(version));
    }
    if let Some(source) = read(dir, "setup.py")?
        && let Some(version) = setup_py(&source)?
    {
        return Ok(Some(version));
    }
    dynamic.map_or(Ok(None), Err)
}

/// What pyproject.toml says about the version.
enum Pyproject {
    Found(MetadataVersion),
    /// `dynamic = ["version"]` without a literal anywhere in the file.
    Dynamic(MetadataError),
    Absent,
}

fn pyproject(source: &Source) -> Result<Pyproject, MetadataError> {
    let document = source.toml()?;
    let root = document.get_ref();
    let project = table(root, "project");
    if let Some(value) = project.and_then(|p| p.get("version")) {
        let (raw, span) = version_string(source, value, "project.version")?;
        return Ok(Pyproject::Found(source.found(raw, Scheme::Pep440, span)));
    }
    let tool = table(root, "tool");
    // Poetry 1 keeps the version here; Poetry 2 may too, with `dynamic = ["version"]`.
    if let Some(value) = tool
        .and_then(|t| table(t, "poetry"))
        .and_then(|p| p.get("version"))
    {
        let (raw, span) = version_string(source, value, "tool.poetry.version")?;
        return Ok(Pyproject::Found(source.found(raw, Scheme::Pep440, span)));
    }
    // setuptools' own dynamic version (`{attr = ...}` / `{file = ...}`) is the definitive,
    // computed source: point there rather than at `dynamic`.
    if let Some(value) = tool
        .and_then(|t| table(t, "setuptools"))
        .and_then(|s| table(s, "dynamic"))
        .and_then(|d| d.get("version"))
    {
        return Err(source.not_literal(
            format!(
                "`tool.setuptools.dynamic.version = {}`",
                &source.text[value.span()]
            ),
            value.span(),
        ));
    }
    let dynamic_version = project
        .and_then(|p| p.get("dynamic"))
        .and_then(|d| d.get_ref().as_array())
        .and_then(|entries| {
            entries
                .iter()
                .find(|entry| entry.get_ref().as_str() == Some("version"))
        });
    Ok(match dynamic_version {
        Some(entry) => Pyproject::Dynamic(source.not_literal(
            "`project.dynamic` lists \"version\", so a build backend computes it",
            entry.span(),
        )),
        None => Pyproject::Absent,
    })
}

/// `[metadata] version` in setup.cfg, read as Python's configparser does: keys are
/// case-insensitive, `=` or `:` separates, `#`/`;` start comment lines, and indented lines
/// continue the previous value.
fn setup_cfg(source: &Source) -> Result<Option<MetadataVersion>, MetadataError> {
    let mut section = "";
    let mut value: Option<Range<usize>> = None;
    let mut offset = 0;
    for line in source.text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim();
        let indented = content.starts_with([' ', '\t']);
        if let Some(range) = value.as_mut()
            && indented
            && !trimmed.is_empty()
        {
            // A continuation of the version value (`version =` then the value indented).
            if range.start == range.end {
                let lead = content.len() - content.trim_start().len();
                range.start = start + lead;
            }
            range.end = start + content.trim_end().len();
            continue;
        }
        if value.is_some() && !trimmed.is_empty() {
            break;
        }
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = name.trim();
            continue;
        }
        if section != "metadata" {
            continue;
        }
        let Some(split) = content.find(['=', ':']) else {
            continue;
        };
        if !content[..split].trim().eq_ignore_ascii_case("version") {
            continue;
        }
        let rest = &content[split + 1..];
        let lead = rest.len() - rest.trim_start().len();
        let value_start = start + split + 1 + lead;
        value = Some(value_start..value_start + rest.trim().len());
    }
    let Some(span) = value else {
        return Ok(None);
    };
    let raw = &source.text[span.clone()];
    if raw.is_empty() {
        return Err(source.unreadable("`version` in [metadata] is empty", Some(span)));
    }
    if raw.starts_with("attr:") || raw.starts_with("file:") {
        return Err(source.not_literal(format!("`version = {raw}`"), span));
    }
    Ok(Some(source.found(raw, Scheme::Pep440, span)))
}

/// A literal `version=` keyword in the `setup(...)` call of setup.py.
///
/// This is a scanner, not a Python parser: it finds `setup(`, walks its arguments at the top
/// nesting level (skipping strings, comments and nested brackets) and reads `version=`. A
/// plain (or `r`/`u`) string literal followed by `,` or `)` is a literal; anything else
/// (`get_version()`, `__version__`, an f-string, concatenation) is not.
fn setup_py(source: &Source) -> Result<Option<MetadataVersion>, MetadataError> {
    match setup_keyword(&source.text, "version") {
        Some(Keyword::Literal { content, span }) => Ok(Some(source.found(
            &source.text[content],
            Scheme::Pep440,
            span,
        ))),
        Some(Keyword::Expression(span)) => Err(source.not_literal(
            format!("`version={}` in setup()", &source.text[span.clone()]),
            span,
        )),
        None => Ok(None),
    }
}

/// `Version:` in an R DESCRIPTION file (Debian control format: `Field: value`, indented
/// lines continue the previous field).
fn description(source: &Source) -> Option<MetadataVersion> {
    let mut offset = 0;
    let mut value: Option<Range<usize>> = None;
    for line in source.text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        if let Some(range) = value.as_mut() {
            if content.starts_with([' ', '\t']) && !content.trim().is_empty() {
                if range.start == range.end {
                    range.start = start + (content.len() - content.trim_start().len());
                }
                range.end = start + content.trim_end().len();
                continue;
            }
            break;
        }
        if let Some(rest) = content.strip_prefix("Version:") {
            let value_start = start + "Version:".len() + (rest.len() - rest.trim_start().len());
            value = Some(value_start..value_start + rest.trim().len());
        }
    }
    let span = value.filter(|span| !span.is_empty())?;
    Some(source.found(&source.text[span.clone()], Scheme::R, span))
}

/// `[package].version` in Cargo.toml.
///
/// The manifest is parsed directly with `toml` rather than through `cargo metadata`: that
/// is instant, needs no cargo on PATH and gives spans for errors. Only an inherited version
/// (`version.workspace = true`) runs `cargo metadata --no-deps`, because resolving it means
/// finding the workspace root exactly as cargo does (`package.workspace`, parent
/// directories, `exclude`), which is cargo's logic to own, not ours.
fn cargo(source: &Source, dir: &Path) -> Result<Option<MetadataVersion>, MetadataError> {
    let document = source.toml()?;
    let Some(package) = table(document.get_ref(), "package") else {
        return Ok(None); // a virtual workspace manifest has no version of its own
    };
    let Some(value) = package.get("version") else {
        return Ok(None); // cargo's default 0.0.0 is "unversioned", not a version
    };
    let span = value.span();
    if let Some(raw) = value.get_ref().as_str() {
        return Ok(Some(source.found(raw, Scheme::Semver, span)));
    }
    let inherits = value
        .get_ref()
        .as_table()
        .and_then(|t| t.get("workspace"))
        .and_then(|w| w.get_ref().as_bool())
        == Some(true);
    if !inherits {
        return Err(source.unreadable(
            "`package.version` must be a string or `{ workspace = true }`",
            Some(span),
        ));
    }
    let name = package
        .get("name")
        .and_then(|n| n.get_ref().as_str())
        .ok_or_else(|| source.unreadable("`package.name` is missing", None))?;
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(dir.join("Cargo.toml"))
        .no_deps()
        .exec()
        .map_err(|e| {
            let reason = match e {
                cargo_metadata::Error::CargoMetadata { stderr } => {
                    format!("cannot resolve the workspace version: {}", stderr.trim())
                }
                other => format!("cannot resolve the workspace version: {other}"),
            };
            source.unreadable(reason, Some(span.clone()))
        })?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == name)
        .ok_or_else(|| {
            source.unreadable(
                format!("`cargo metadata` does not list package `{name}`"),
                Some(span.clone()),
            )
        })?;
    Ok(Some(source.found(
        &package.version.to_string(),
        Scheme::Semver,
        span,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn read(
        files: &[(&str, &str)],
        wrapper: Wrapper,
    ) -> Result<Option<MetadataVersion>, MetadataError> {
        let dir = project(files);
        read_project_version(dir.path(), wrapper)
    }

    /// The version and the file name it came from.
    fn found(files: &[(&str, &str)], wrapper: Wrapper) -> (String, Scheme, String) {
        let version = read(files, wrapper).unwrap().expect("a version");
        let location = version.location.expect("a location");
        assert_eq!(
            &location.source[location.span.clone()].trim_matches(['"', '\'']),
            &version.raw
        );
        (
            version.raw,
            version.scheme,
            version
                .file
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// The error, and the text its location points at.
    fn failed(files: &[(&str, &str)], wrapper: Wrapper) -> (MetadataError, Option<String>) {
        let error = read(files, wrapper).unwrap_err();
        let pointed = error
            .location()
            .map(|l| l.source[l.span.clone()].to_owned());
        (error, pointed)
    }

    fn p(raw: &str, file: &str) -> (String, Scheme, String) {
        (raw.to_owned(), Scheme::Pep440, file.to_owned())
    }

    #[test]
    fn pyproject_pep_621() {
        let files = [(
            "pyproject.toml",
            "[project]\nname = \"algo\"\nversion = \"1.2.0rc1\"\n",
        )];
        assert_eq!(
            found(&files, Wrapper::Python),
            p("1.2.0rc1", "pyproject.toml")
        );
    }

    #[test]
    fn pyproject_poetry() {
        let files = [(
            "pyproject.toml",
            "[tool.poetry]\nname = \"algo\"\nversion = \"0.3.1\"\n",
        )];
        assert_eq!(found(&files, Wrapper::Python), p("0.3.1", "pyproject.toml"));
        // Poetry 2: dynamic in [project], literal in [tool.poetry].
        let files = [(
            "pyproject.toml",
            "[project]\nname = \"algo\"\ndynamic = [\"version\"]\n\n[tool.poetry]\nversion = \"2.0.0\"\n",
        )];
        assert_eq!(found(&files, Wrapper::Python), p("2.0.0", "pyproject.toml"));
    }

    #[test]
    fn pyproject_dynamic_is_not_literal() {
        let text = "[project]\nname = \"algo\"\ndynamic = [\"readme\", \"version\"]\n";
        let (error, pointed) = failed(&[("pyproject.toml", text)], Wrapper::Python);
        assert!(matches!(error, MetadataError::NotLiteral { .. }), "{error}");
        assert_eq!(pointed.as_deref(), Some("\"version\""));
        let location = error.location().unwrap();
        assert_eq!(location.line_col(), (3, 22));
        assert!(location.path.ends_with("pyproject.toml"));
        // The command adds the fix, naming its flag (`crate::error`).
        let message = error.to_string();
        assert!(message.contains("is not a literal ("), "{message}");
        assert!(!message.contains("--"), "{message}");
    }

    #[test]
    fn pyproject_dynamic_falls_back_to_setup_files() {
        let files = [
            (
                "pyproject.toml",
                "[project]\nname = \"algo\"\ndynamic = [\"version\"]\n",
            ),
            ("setup.cfg", "[metadata]\nversion = 4.5.6\n"),
        ];
        assert_eq!(found(&files, Wrapper::Python), p("4.5.6", "setup.cfg"));
    }

    #[test]
    fn pyproject_setuptools_dynamic_points_at_the_attr() {
        let text = "[project]\ndynamic = [\"version\"]\n[tool.setuptools.dynamic]\nversion = {attr = \"algo.__version__\"}\n";
        let (error, pointed) = failed(&[("pyproject.toml", text)], Wrapper::Python);
        assert!(matches!(error, MetadataError::NotLiteral { .. }), "{error}");
        assert_eq!(pointed.as_deref(), Some("{attr = \"algo.__version__\"}"));
    }

    #[test]
    fn pyproject_non_string_version_is_unreadable() {
        let (error, pointed) = failed(
            &[("pyproject.toml", "[project]\nversion = 1\n")],
            Wrapper::Python,
        );
        assert!(matches!(error, MetadataError::Unreadable { .. }), "{error}");
        assert!(error.to_string().contains("must be a string"), "{error}");
        assert_eq!(pointed.as_deref(), Some("1"));
    }

    #[test]
    fn invalid_toml_is_unreadable_with_a_location() {
        let text = "[project]\nname = \"algo\"\nversion = \"1.0\n";
        let (error, _) = failed(&[("pyproject.toml", text)], Wrapper::Python);
        assert!(matches!(error, MetadataError::Unreadable { .. }), "{error}");
        let location = error.location().expect("a location");
        assert_eq!(location.line_col().0, 3);
    }

    #[test]
    fn setup_cfg_literal() {
        let text = "[options]\nversion = 9.9.9\n\n[metadata]\nname = algo\nVersion: 1.4.2\n";
        assert_eq!(
            found(&[("setup.cfg", text)], Wrapper::Python),
            p("1.4.2", "setup.cfg")
        );
        let continued = "[metadata]\nversion =\n    1.4.3\nname = algo\n";
        assert_eq!(
            found(&[("setup.cfg", continued)], Wrapper::Python),
            p("1.4.3", "setup.cfg")
        );
    }

    #[test]
    fn setup_cfg_attr_and_file_are_not_literal() {
        for value in ["attr: algo.__version__", "file: VERSION"] {
            let text = format!("[metadata]\nname = algo\nversion = {value}\n");
            let (error, pointed) = failed(&[("setup.cfg", &text)], Wrapper::Python);
            assert!(matches!(error, MetadataError::NotLiteral { .. }), "{error}");
            assert_eq!(pointed.as_deref(), Some(value));
            assert_eq!(error.location().unwrap().line_col(), (3, 11));
        }
    }

    #[test]
    fn setup_py_literal() {
        let text = "from setuptools import setup\n\n__version__ = \"0.0.1\"\nversion = \"0.0.2\"\n\nsetup(\n    name='algo',  # the name\n    install_requires=['vantage6-algorithm-tools>=4', \"pandas\"],\n    version='1.0.3',\n)\n";
        assert_eq!(
            found(&[("setup.py", text)], Wrapper::Python),
            p("1.0.3", "setup.py")
        );
        let one_line = "import setuptools\nsetuptools.setup(name=\"a\", version = \"2.0\")\n";
        assert_eq!(
            found(&[("setup.py", one_line)], Wrapper::Python),
            p("2.0", "setup.py")
        );
    }

    #[test]
    fn setup_py_computed_is_not_literal() {
        for (value, pointed_at) in [
            ("get_version()", "get_version()"),
            ("__version__", "__version__"),
            ("f\"{major}.0\"", "f\"{major}.0\""),
            ("'1.0' + suffix  # computed", "'1.0' + suffix"),
            (
                "read('VERSION', encoding='utf-8')",
                "read('VERSION', encoding='utf-8')",
            ),
        ] {
            let text = format!(
                "from setuptools import setup\nsetup(\n    name='algo',\n    version={value},\n)\n"
            );
            let (error, pointed) = failed(&[("setup.py", &text)], Wrapper::Python);
            assert!(
                matches!(error, MetadataError::NotLiteral { .. }),
                "{value}: {error}"
            );
            assert_eq!(pointed.as_deref(), Some(pointed_at), "{value}");
            assert_eq!(error.location().unwrap().line_col(), (4, 13));
        }
    }

    #[test]
    fn setup_py_ignores_nested_and_definitions() {
        let text = "def setup(version=None):\n    pass\nsetup(name='a', options=dict(version=x))\n";
        assert!(
            read(&[("setup.py", text)], Wrapper::Python)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn description_version() {
        let text = "Package: vtg.algo\nTitle: An algorithm\nVersion: 0.1.2.9000\nAuthors@R:\n    person(\"A\", \"B\")\n";
        assert_eq!(
            found(&[("DESCRIPTION", text)], Wrapper::R),
            ("0.1.2.9000".to_owned(), Scheme::R, "DESCRIPTION".to_owned())
        );
        let no_version = "Package: vtg.algo\n";
        assert!(
            read(&[("DESCRIPTION", no_version)], Wrapper::R)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn cargo_literal() {
        let files = [(
            "Cargo.toml",
            "[package]\nname = \"algo\"\nversion = \"0.4.0-rc.2\"\nedition = \"2024\"\n",
        )];
        assert_eq!(
            found(&files, Wrapper::Minimal),
            (
                "0.4.0-rc.2".to_owned(),
                Scheme::Semver,
                "Cargo.toml".to_owned()
            )
        );
    }

    #[test]
    fn cargo_workspace_inherited_version() {
        let dir = project(&[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"algo\"]\nresolver = \"3\"\n\n[workspace.package]\nversion = \"3.1.4\"\n",
            ),
            (
                "algo/Cargo.toml",
                "[package]\nname = \"algo\"\nversion.workspace = true\nedition = \"2024\"\n",
            ),
            ("algo/src/main.rs", "fn main() {}\n"),
        ]);
        let version = read_project_version(&dir.path().join("algo"), Wrapper::Minimal)
            .unwrap()
            .expect("a version");
        assert_eq!(version.raw, "3.1.4");
        assert_eq!(version.scheme, Scheme::Semver);
        assert!(version.file.ends_with("algo/Cargo.toml"));
        let location = version.location.expect("a location");
        assert_eq!(
            location.line_col(),
            (3, 1),
            "points at `version.workspace = true`"
        );
    }

    #[test]
    fn cargo_inherited_version_without_a_workspace_is_unreadable() {
        let files = [
            (
                "Cargo.toml",
                "[package]\nname = \"algo\"\nversion = { workspace = true }\n",
            ),
            ("src/main.rs", "fn main() {}\n"),
        ];
        let (error, pointed) = failed(&files, Wrapper::Minimal);
        assert!(matches!(error, MetadataError::Unreadable { .. }), "{error}");
        assert!(error.to_string().contains("workspace"), "{error}");
        assert_eq!(pointed.as_deref(), Some("{ workspace = true }"));
    }

    #[test]
    fn minimal_falls_back_to_python_sources() {
        let files = [
            ("Cargo.toml", "[workspace]\nmembers = []\n"),
            ("pyproject.toml", "[project]\nversion = \"5.0\"\n"),
        ];
        assert_eq!(found(&files, Wrapper::Minimal), p("5.0", "pyproject.toml"));
        let files = [("setup.py", "setup(version=\"5.1\")\n")];
        assert_eq!(found(&files, Wrapper::Minimal), p("5.1", "setup.py"));
    }

    #[test]
    fn first_source_wins() {
        let files = [
            ("pyproject.toml", "[project]\nversion = \"1.0\"\n"),
            ("setup.cfg", "[metadata]\nversion = 2.0\n"),
            ("setup.py", "setup(version='3.0')\n"),
        ];
        assert_eq!(found(&files, Wrapper::Python), p("1.0", "pyproject.toml"));
    }

    #[test]
    fn none_found() {
        assert!(read(&[], Wrapper::Python).unwrap().is_none());
        assert!(read(&[], Wrapper::R).unwrap().is_none());
        assert!(read(&[], Wrapper::Minimal).unwrap().is_none());
        // The files of another ecosystem are not read.
        assert!(
            read(&[("DESCRIPTION", "Version: 1.0\n")], Wrapper::Python)
                .unwrap()
                .is_none()
        );
        assert!(
            read(
                &[("pyproject.toml", "[project]\nversion = \"1.0\"\n")],
                Wrapper::R
            )
            .unwrap()
            .is_none()
        );
        let unrelated = [("pyproject.toml", "[tool.black]\nline-length = 99\n")];
        assert!(read(&unrelated, Wrapper::Python).unwrap().is_none());
    }

    fn source(text: &str) -> Source {
        Source {
            path: PathBuf::from("f"),
            display: "f".to_owned(),
            text: text.to_owned(),
            utf8: true,
        }
    }

    proptest::proptest! {
        /// The scanners slice the text by byte offsets; no input may make them panic, and
        /// what they find must be where they say it is.
        #[test]
        fn scanners_never_panic(
            body in "(setup\\(|version|=|'|\"|\"\"\"|#|\\\\|,|\\)|\\(|\n|\\[metadata\\]|Version:| |\t|é|1\\.0|attr:)*",
        ) {
            for text in [body.clone(), format!("setup({body}"), format!("[metadata]\n{body}")] {
                let source = source(&text);
                for result in [setup_py(&source), setup_cfg(&source), Ok(description(&source))] {
                    match result {
                        Ok(Some(version)) => {
                            let location = version.location.unwrap();
                            proptest::prop_assert!(location.source[location.span].contains(&version.raw));
                        }
                        Ok(None) => {}
                        Err(error) => {
                            if let Some(l) = error.location() {
                                proptest::prop_assert!(l.source.get(l.span.clone()).is_some());
                            }
                        }
                    }
                }
                let _ = pyproject(&source);
                let _ = cargo(&source, Path::new(""));
            }
        }
    }

    #[test]
    fn displayed_path_joins_dir() {
        let dir = project(&[("setup.cfg", "[metadata]\nversion = attr: a.v\n")]);
        let error = read_project_version(dir.path(), Wrapper::Python).unwrap_err();
        let MetadataError::NotLiteral { file, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(file, &dir.path().join("setup.cfg").display().to_string());
    }
}
