//! cargo v6: package and publish vantage6 algorithms as Docker images.
//!
//! The pipeline, one module per step:
//! [`manifest`] (v6.toml) -> [`version`] (the project's own metadata) -> [`plan`] (pure data:
//! image, [`tags`], labels, [`render`]ed Dockerfile, [`context`] file list) -> engine and
//! registry I/O -> [`report`] (human or JSON).
#![warn(missing_docs)]

pub mod cli;
pub mod context;
pub mod credentials;
pub mod detect;
pub mod diagnostic;
pub mod engine;
pub mod error;
pub mod fingerprint;
pub mod git;
pub mod manifest;
pub mod plan;
pub mod publish;
pub mod reference;
pub mod registry;
pub mod release;
pub mod render;
pub mod report;
pub mod tags;
pub mod version;
