//! `nnzip._native`: the Python extension module built by maturin.
//!
//! It wraps the nnzip-core engine: `NativeModel` loads an export once and compresses or
//! decompresses whole buffers on its own rayon pool, with the GIL released. Errors become the
//! exception classes of `nnzip.errors`, so both engines raise the same types and messages.

use std::path::PathBuf;

use nnzip_core::{codec, Error, Model};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// An exported nnzip model loaded by nnzip-core, with a thread pool for its work.
#[pyclass(frozen)]
struct NativeModel {
    model: Model,
    pool: rayon::ThreadPool,
}

#[pymethods]
impl NativeModel {
    /// Loads the export at `path`; `threads` = 0 lets rayon choose (one per CPU).
    #[new]
    #[pyo3(signature = (path, threads = 0))]
    fn new(py: Python<'_>, path: PathBuf, threads: usize) -> PyResult<Self> {
        let model = py
            .allow_threads(|| Model::load(&path))
            .map_err(|err| to_python_error(py, err))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|err| {
                PyRuntimeError::new_err(format!("cannot start {threads} threads: {err}"))
            })?;
        Ok(NativeModel { model, pool })
    }

    /// Returns the 32-byte sha256 model id. `.nz` headers store its first 16 bytes.
    #[getter]
    fn id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.model.id)
    }

    /// Returns the `.nz` container of `data`, byte-identical to the Python reference.
    ///
    /// `progress`, if given, is called with the bytes coded since its previous call. Ctrl-C
    /// and exceptions raised by `progress` stop the work and are raised here.
    #[pyo3(signature = (data, progress = None))]
    fn compress<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        progress: Option<PyObject>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut reporter = Reporter::new(progress);
        let result = py.allow_threads(|| {
            self.pool.install(|| {
                codec::compress_with_progress(data, &self.model, &mut |n| reporter.report(n))
            })
        });
        match result {
            Ok(blob) => Ok(PyBytes::new(py, &blob)),
            Err(err) => Err(reporter
                .take_error()
                .unwrap_or_else(|| to_python_error(py, err))),
        }
    }

    /// Returns the original bytes of a `.nz` container made with this model; `progress` as
    /// for `compress`.
    #[pyo3(signature = (blob, progress = None))]
    fn decompress<'py>(
        &self,
        py: Python<'py>,
        blob: &[u8],
        progress: Option<PyObject>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut reporter = Reporter::new(progress);
        let result = py.allow_threads(|| {
            self.pool.install(|| {
                codec::decompress_with_progress(blob, &self.model, &mut |n| reporter.report(n))
            })
        });
        match result {
            Ok(data) => Ok(PyBytes::new(py, &data)),
            Err(err) => Err(reporter
                .take_error()
                .unwrap_or_else(|| to_python_error(py, err))),
        }
    }
}

/// Forwards nnzip-core's progress calls to a Python callable and checks for Ctrl-C, taking
/// the GIL for each call. It keeps the Python exception that stopped the work.
///
/// NOTE: Python handles signals only on its main thread, and nnzip-core calls this from its
/// own threads, so the check finds Ctrl-C only when the coding runs on the main thread.
struct Reporter {
    callback: Option<PyObject>,
    error: Option<PyErr>,
}

impl Reporter {
    fn new(callback: Option<PyObject>) -> Self {
        Reporter {
            callback,
            error: None,
        }
    }

    fn report(&mut self, coded: usize) -> nnzip_core::Result<()> {
        let outcome = Python::with_gil(|py| {
            py.check_signals()?;
            if let Some(callback) = &self.callback {
                callback.call1(py, (coded,))?;
            }
            Ok::<(), PyErr>(())
        });
        outcome.map_err(|err| {
            self.error = Some(err);
            Error::Cancelled("stopped by the progress callback".to_string())
        })
    }

    fn take_error(&mut self) -> Option<PyErr> {
        self.error.take()
    }
}

/// Converts an nnzip-core error into the `nnzip.errors` exception of the same kind.
fn to_python_error(py: Python<'_>, err: Error) -> PyErr {
    let class_name = match &err {
        Error::InvalidData(_) => "InvalidDataError",
        Error::UnsupportedVersion(_) => "UnsupportedVersionError",
        Error::Checksum(_) => "ChecksumError",
        Error::ModelMismatch(_) => "ModelMismatchError",
        Error::ModelLoad(_) => "ModelLoadError",
        Error::InvalidArgument(_) | Error::Io { .. } | Error::Cancelled(_) => "UsageError",
    };
    let message = err.to_string();
    let class = py
        .import("nnzip.errors")
        .and_then(|module| module.getattr(class_name));
    match class.and_then(|class| class.call1((message.clone(),))) {
        Ok(instance) => PyErr::from_value(instance),
        Err(_) => PyRuntimeError::new_err(message),
    }
}

/// Version of the native module, equal to the crate version.
#[pyfunction]
fn native_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<NativeModel>()?;
    module.add_function(wrap_pyfunction!(native_version, module)?)?;
    Ok(())
}
