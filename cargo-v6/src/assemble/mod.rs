//! Images assembled instead of built: for each platform, the base's layers as they are, a
//! layer with the build context at `/app` and a layer with what `pip install /app` would add,
//! resolved for that platform on the host. Nothing of the image's platform runs, so arm64
//! images are made on amd64 machines (and back) without emulation, and every byte is fixed
//! by the input: the same commit gives the same digests on any machine.

pub mod base;
pub mod python;
pub mod recipe;
