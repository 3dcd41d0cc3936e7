//! The build context: which files of the project the build sees, by Docker's exact
//! `.dockerignore` semantics.

use std::path::Path;

/// The context could not be read, or its `.dockerignore` is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// Placeholder until the walker lands.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Lists the files (regular files and symlinks, not followed) that the build will see, relative
/// and `/`-separated, sorted bytewise. `.git` is left out unless `.dockerignore` says `!.git`.
pub fn select(root: &Path) -> Result<Vec<String>, ContextError> {
    todo!("{root:?}")
}

impl ContextError {
    /// A bad `.dockerignore` is the user's input (exit 2); an unreadable file is not.
    pub fn is_user_input(&self) -> bool {
        false
    }
}
