//! Typed errors of the container, the coder, the model loader and the codec.
//!
//! Each variant is one failure kind, as in `nnzip/errors.py`, so a caller can tell corrupt
//! input from a wrong model or a failed read. Messages are one line and use the wording of
//! the Python reference.

use std::path::Path;

/// Every error that nnzip-core returns on purpose.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Compressed input that is not a valid `.nz` container: bad magic, truncation, corruption.
    #[error("{0}")]
    InvalidData(String),

    /// A `.nz` container written by a newer format version than this reader supports.
    #[error("{0}")]
    UnsupportedVersion(String),

    /// Decoded bytes whose CRC32 differs from the one stored in the header.
    #[error("{0}")]
    Checksum(String),

    /// A `.nz` file written with a different model than the one given for decoding.
    #[error("{0}")]
    ModelMismatch(String),

    /// A model file that is missing, unreadable or not a valid nnzip export.
    #[error("{0}")]
    ModelLoad(String),

    /// A request that cannot be carried out as given, such as a header that does not match its
    /// payloads in `pack`, or an output path equal to the input path.
    #[error("{0}")]
    InvalidArgument(String),

    /// Work stopped because the progress callback asked for it (for example on Ctrl-C).
    #[error("{0}")]
    Cancelled(String),

    /// A failed read or write of a file.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Returns true for the kinds that `nnzip.errors.InvalidDataError` covers in Python, where
    /// `UnsupportedVersionError` and `ChecksumError` are subclasses of it.
    pub fn is_invalid_data(&self) -> bool {
        matches!(
            self,
            Error::InvalidData(_) | Error::UnsupportedVersion(_) | Error::Checksum(_)
        )
    }

    /// Builds an `Io` error whose message names the operation and the path.
    pub fn io(action: &str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            context: format!("cannot {action} {}", path.display()),
            source,
        }
    }
}

/// Result type of every fallible nnzip-core function.
pub type Result<T> = std::result::Result<T, Error>;
