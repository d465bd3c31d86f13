//! nnzip-core: the Rust implementation of nnzip's `.nz` format.
//!
//! It reads and writes the same bytes as the Python reference in `nnzip/`: the integer model
//! of docs/inference-spec.md, the retrievers and the external index of docs/retrieval.md, the
//! range coder of docs/coder.md and the container of docs/FORMAT.md.
//!
//! ```no_run
//! use std::path::Path;
//! use nnzip_core::{codec, Model};
//!
//! let model = Model::load(Path::new("models/nnzip-small-v3.safetensors"))?;
//! let blob = codec::compress(b"some bytes", &model)?;
//! assert_eq!(codec::decompress(&blob, &model)?, b"some bytes");
//! # Ok::<(), nnzip_core::Error>(())
//! ```

pub mod codec;
pub mod coder;
pub mod config;
pub mod container;
pub mod error;
pub mod fixedpoint;
pub mod index;
mod inference;
pub mod members;
pub mod model;
mod pyrepr;
pub mod retrieval;
#[cfg(test)]
mod test_random;

pub use error::{Error, Result};
pub use inference::{BlockLogits, State};
pub use model::Model;
