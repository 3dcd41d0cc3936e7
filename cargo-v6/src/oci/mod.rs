//! OCI and Docker data, with no I/O: image references ([`reference`]), manifests, indexes,
//! descriptors and media types ([`manifest`]), and what part 13 writes itself to assemble an
//! image without an engine: layers ([`layer`], streamed over any `Write`) and image configs
//! ([`image`]). A leaf: it uses nothing else of the crate, so every module may use it; the
//! registry client ([`crate::registry`]) reads and writes this data, and `sign` builds its
//! artifacts from it.

pub mod image;
pub mod layer;
pub mod manifest;
pub mod platform;
pub mod reference;
