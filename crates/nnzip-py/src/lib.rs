//! `nnzip._native`: the Python extension module built by maturin.
//!
//! It holds the native entry points that the Python package calls. The engine that runs the
//! exported integer model is not here yet; until it is, compression uses the numpy reference.

use pyo3::prelude::*;

/// Version of the native module, equal to the crate version.
#[pyfunction]
fn native_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(native_version, module)?)?;
    Ok(())
}
