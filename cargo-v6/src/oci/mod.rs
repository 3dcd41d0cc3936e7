//! OCI and Docker data, with no I/O: image references ([`reference`]) and manifests, indexes,
//! descriptors and media types ([`manifest`]). A leaf: it uses nothing else of the crate, so
//! every module may use it; the registry client ([`crate::registry`]) reads and writes this
//! data, and `sign` builds its artifacts from it.

pub mod manifest;
pub mod reference;
