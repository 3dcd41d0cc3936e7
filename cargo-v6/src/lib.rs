//! cargo v6: package and publish vantage6 algorithms as Docker images.
//!
//! The pipeline, one module per step:
//! [`manifest`] (v6.toml) -> [`plan::inputs`] (the project's version, git state and context)
//! -> [`plan`] (pure data: image, [`tags`], labels, [`render`]ed Dockerfile, [`context`] file
//! list, [`fingerprint`]) -> [`publish`] (read the registry, decide the typed steps, execute
//! them through [`engine`] and [`registry`], and [`sign`] the release) -> [`report`] (human or
//! JSON). [`workspace`] finds and selects the algorithms of a workspace, [`release_tag`] maps
//! a release tag to one, and [`record`] keeps what was published (`v6.lock`). [`ci`] writes
//! the CI files that publish on a release tag. [`run`] runs a built image the way a vantage6
//! node does. [`store`] writes the vantage6 algorithm store's JSON from v6.toml's `[store]`.
//! [`vantage6`] and [`oci`] are leaves that every step may use; [`cli`] only wires the
//! steps together.
#![warn(missing_docs)]

pub mod assemble;
pub mod ci;
pub mod cli;
pub mod context;
pub mod credentials;
pub mod detect;
pub mod diagnostic;
pub mod dockerfile;
pub mod engine;
pub mod error;
pub mod files;
pub mod fingerprint;
pub mod git;
pub mod manifest;
pub mod oci;
pub mod parquet;
pub mod plan;
pub mod project;
pub mod publish;
pub mod record;
pub mod registry;
pub mod release_tag;
pub mod render;
pub mod report;
pub mod run;
pub mod sign;
pub mod store;
pub mod tags;
#[cfg(test)]
mod testing;
pub mod time;
pub mod vantage6;
pub mod version;
pub mod workspace;
