//! The project beside v6.toml, as its own tools describe it: the Python, R and Cargo metadata
//! files and the packages Python can import. Read here once, for `detect` (what `init`
//! writes, where the code lives) and for `version` (the version the project declares).

pub mod names;
pub mod setup_py;

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::diagnostic::Location;

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
    /// Cargo.toml
    pub cargo_toml: Option<String>,
    /// An existing Dockerfile.
    pub dockerfile: Option<String>,
    /// What Python can import from the project, as paths relative to it: the folders with an
    /// `__init__.py` at the top and under `src/` (`my-algo`, `src/my_algo`), and the top-level
    /// modules (`my_algo.py`).
    pub python_packages: Vec<String>,
}

impl ProjectFiles {
    /// Reads the project in `dir`; a file that is absent, unreadable or
    /// not UTF-8 is one detection does without.
    pub fn read(dir: &Path) -> ProjectFiles {
        let read = |name: &str| read_text(dir, name);
        ProjectFiles {
            pyproject: read("pyproject.toml"),
            setup_cfg: read("setup.cfg"),
            setup_py: read("setup.py"),
            description: read("DESCRIPTION"),
            cargo_toml: read("Cargo.toml"),
            dockerfile: read("Dockerfile"),
            python_packages: python_packages(dir),
        }
    }
}

/// One metadata file's text and the path it is shown as.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file (`dir` joined with its name).
    pub path: PathBuf,
    /// The path as messages show it.
    pub display: String,
    /// Its text.
    pub text: String,
    /// Whether the bytes were valid UTF-8 (`text` is lossy otherwise).
    pub utf8: bool,
}

impl Source {
    /// Reads `name` in `dir`, bounded like every small file; `Ok(None)` when the file does
    /// not exist.
    pub fn read(dir: &Path, name: &str) -> std::io::Result<Option<Source>> {
        let path = dir.join(name);
        let display = path.display().to_string();
        match crate::files::read_regular(&path, crate::files::SMALL_FILE_MAX) {
            Ok(bytes) => Ok(Some(Source {
                // Lossy: a stray non-UTF-8 byte elsewhere in setup.py or DESCRIPTION (R
                // allows latin1) should not hide an ASCII version line. TOML must be UTF-8;
                // `toml` checks `utf8`.
                utf8: std::str::from_utf8(&bytes).is_ok(),
                text: String::from_utf8_lossy(&bytes).into_owned(),
                path,
                display,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The place of `span` in this file, for an error.
    pub fn location(&self, span: Range<usize>) -> Location {
        Location::new(&self.display, &self.text, span)
    }
}

/// The text of `name` in `dir` when it is there, readable and UTF-8: what detection reads,
/// where a file it cannot read is one it does without.
pub fn read_text(dir: &Path, name: &str) -> Option<String> {
    Source::read(dir, name)
        .ok()
        .flatten()
        .filter(|source| source.utf8)
        .map(|source| source.text)
}

/// What Python can import from the project: the folders with an `__init__.py` at its top and
/// under `src/`, and the top-level modules, as relative paths (`my-algo`, `src/my_algo`).
pub fn python_packages(dir: &Path) -> Vec<String> {
    const NOT_MODULES: [&str; 4] = ["setup.py", "conftest.py", "noxfile.py", "tasks.py"];
    let mut found = Vec::new();
    for prefix in ["", "src/"] {
        let Ok(entries) = std::fs::read_dir(dir.join(prefix)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let path = entry.path();
            if name.starts_with('.') {
                continue;
            }
            if path.join("__init__.py").is_file()
                || (name.ends_with(".py")
                    && path.is_file()
                    && !NOT_MODULES.contains(&name.as_str()))
            {
                found.push(format!("{prefix}{name}"));
            }
        }
    }
    found.sort();
    found
}
