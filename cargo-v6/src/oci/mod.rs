//! OCI and Docker data: image references ([`reference`]). A leaf: it uses nothing else of
//! the crate, so every module may use it.

pub mod reference;
