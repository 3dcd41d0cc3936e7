//! CLI tests over fixture projects (in progress).
