//! git (in progress).
