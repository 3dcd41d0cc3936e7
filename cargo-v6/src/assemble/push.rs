//! Uploads an assembled image: every blob, then each platform's manifest by its digest, then
//! the manifest list by its digest. No tag is written here: the caller points the exact tag
//! at the list under its claim, so an interrupted upload leaves no tag on a partial image.
//!
//! The base's layers are mounted from the base's repository when both live in the same
//! registry (no byte moves), and copied through a temporary file otherwise (a base on
//! ghcr.io, a release elsewhere); a blob the target already has is not sent again.

use std::path::Path;

use super::{AssembleError, Assembled, io};
use crate::oci::manifest::LayerBlob;
use crate::oci::reference::ImageName;
use crate::registry::Registry;

/// Uploads `assembled` to `image` of `registry`; the base's layers come from
/// `base_registry`. Returns nothing: every digest is the assembled one.
pub async fn push(
    assembled: &Assembled,
    registry: &Registry,
    base_registry: &Registry,
    image: &ImageName,
) -> Result<(), AssembleError> {
    let same_registry = assembled.base.domain() == image.domain();
    let mut done: Vec<&LayerBlob> = Vec::new();
    for platform in &assembled.images {
        for layer in &platform.base_layers {
            if done.iter().any(|d| d.digest == layer.digest) {
                continue;
            }
            let present = registry.blob_exists(image, &layer.digest).await?
                || (same_registry
                    && registry
                        .mount_blob(image, &layer.digest, &assembled.base)
                        .await?);
            if !present {
                let work = &assembled.work.path;
                copy(base_registry, &assembled.base, registry, image, layer, work).await?;
            }
            done.push(layer);
        }
        for (layer, file) in &platform.new_layers {
            if done.iter().any(|d| d.digest == layer.digest) {
                continue;
            }
            upload(registry, image, layer, file).await?;
            done.push(layer);
        }
        registry.push_blob(image, platform.config.clone()).await?;
        let manifest = &platform.manifest;
        registry
            .put_manifest_at_digest(image, manifest.body().to_vec(), manifest.kind.media_type())
            .await?;
    }
    let index = &assembled.index;
    if assembled.images.len() > 1 {
        registry
            .put_manifest_at_digest(image, index.body().to_vec(), index.kind.media_type())
            .await?;
    }
    Ok(())
}

/// Uploads the layer file `file` unless the registry has the blob.
async fn upload(
    registry: &Registry,
    image: &ImageName,
    layer: &LayerBlob,
    file: &Path,
) -> Result<(), AssembleError> {
    registry
        .push_blob_file(image, file, &layer.digest, layer.size)
        .await?;
    Ok(())
}

/// Copies a base layer from another registry: downloaded to a file (checked against its
/// digest), then uploaded; memory stays small whatever the layer's size.
async fn copy(
    from_registry: &Registry,
    from: &ImageName,
    registry: &Registry,
    image: &ImageName,
    layer: &LayerBlob,
    work: &Path,
) -> Result<(), AssembleError> {
    let file = work.join("copy.download");
    {
        let out = std::fs::File::create(&file).map_err(io("cannot create a download file"))?;
        let mut out = std::io::BufWriter::new(out);
        from_registry
            .pull_blob_to(from, &layer.digest, layer.size, &mut out)
            .await?;
        std::io::Write::flush(&mut out).map_err(io("cannot write a download file"))?;
    }
    let uploaded = upload(registry, image, layer, &file).await;
    let _ = std::fs::remove_file(&file);
    uploaded
}
