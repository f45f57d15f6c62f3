//! # libcusax — the C ABI of cusax
//!
//! Wraps `cusax-core` only. Every exported function catches panics so that none
//! crosses the C boundary; every `unsafe` block states why it is sound.

/// The library version as a NUL-terminated C string, e.g. `"0.1.0"`.
///
/// The returned pointer is valid for the lifetime of the process and must not be freed.
#[unsafe(no_mangle)]
pub extern "C" fn cusax_version() -> *const std::ffi::c_char {
    static VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(v) => v,
        Err(_) => c"0.0.0",
    };
    VERSION.as_ptr()
}
