//! The project beside v6.toml, as its own tools describe it: the Python, R and Cargo metadata
//! files and the packages Python can import. Read here once, for `detect` (what `init`
//! writes, where the code lives) and for `version` (the version the project declares).

use std::path::Path;

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
