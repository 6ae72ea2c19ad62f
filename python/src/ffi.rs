//! The CPU custom call's entry point: our own minimal bindings of XLA's typed FFI C API
//! (`xla/ffi/api/c_api.h`, API 0.5) and the handler that XLA calls with a call frame. This is the
//! only `unsafe` code of the crate: it turns the frame into owned host arrays, hands them to the
//! safe [`crate::host::run`], and copies the results into the frame's result buffers. Panics
//! never leave the handler: they come back to XLA (and so to Python) as errors.

use crate::host;
use std::ffi::{c_char, c_int, c_void, CString};
use std::mem::{offset_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `XLA_FFI_API_MAJOR` / `XLA_FFI_API_MINOR` of the header these bindings follow.
const API_MAJOR: c_int = 0;
const API_MINOR: c_int = 5;
const EXTENSION_METADATA: c_int = 1;
const STAGE_EXECUTE: c_int = 3;
const ARG_BUFFER: c_int = 1;
const ATTR_STRING: c_int = 4;
const ERROR_INVALID_ARGUMENT: c_int = 3;
const ERROR_INTERNAL: c_int = 13;

#[repr(C)]
struct InternalExtension {
    struct_size: usize,
    kind: c_int,
    next: *mut InternalExtension,
}

#[repr(C)]
struct ApiVersion {
    struct_size: usize,
    extension_start: *mut InternalExtension,
    major: c_int,
    minor: c_int,
}

#[repr(C)]
struct ErrorCreateArgs {
    struct_size: usize,
    extension_start: *mut InternalExtension,
    message: *const c_char,
    code: c_int,
}

/// The head of `XLA_FFI_Api`: only the fields up to `XLA_FFI_Error_Create` are read.
#[repr(C)]
struct Api {
    struct_size: usize,
    extension_start: *mut InternalExtension,
    api_version: ApiVersion,
    internal_api: *const c_void,
    error_create: unsafe extern "C" fn(*mut ErrorCreateArgs) -> *mut c_void,
}

#[repr(C)]
struct Buffer {
    struct_size: usize,
    extension_start: *mut InternalExtension,
    dtype: c_int,
    data: *mut c_void,
    rank: i64,
    dims: *const i64,
}

/// `XLA_FFI_Args` and `XLA_FFI_Rets` (same layout).
#[repr(C)]
struct Operands {
    struct_size: usize,
    extension_start: *mut InternalExtension,
    size: i64,
    types: *const c_int,
    values: *const *mut c_void,
}

#[repr(C)]
struct ByteSpan {
    ptr: *const c_char,
    len: usize,
}

#[repr(C)]
struct Attrs {
    struct_size: usize,
    extension_start: *mut InternalExtension,
    size: i64,
    types: *const c_int,
    names: *const *const ByteSpan,
    values: *const *const c_void,
}

#[repr(C)]
pub struct CallFrame {
    struct_size: usize,
    extension_start: *mut InternalExtension,
    api: *const Api,
    ctx: *mut c_void,
    stage: c_int,
    args: Operands,
    rets: Operands,
    attrs: Attrs,
    future: *mut c_void,
}

#[repr(C)]
struct Metadata {
    struct_size: usize,
    api_version: ApiVersion,
    traits: u32,
    state_type_id: i64,
}

#[repr(C)]
struct MetadataExtension {
    base: InternalExtension,
    metadata: *mut Metadata,
}

// `XLA_FFI_STRUCT_SIZE`: the offset of the last field plus its size.
const CALL_FRAME_SIZE: usize = offset_of!(CallFrame, attrs) + size_of::<Attrs>();
const API_VERSION_SIZE: usize = offset_of!(ApiVersion, minor) + size_of::<c_int>();
const ERROR_CREATE_ARGS_SIZE: usize = offset_of!(ErrorCreateArgs, code) + size_of::<c_int>();
const METADATA_SIZE: usize = offset_of!(Metadata, traits) + size_of::<u32>();
const BUFFER_SIZE: usize = offset_of!(Buffer, dims) + size_of::<*const i64>();

/// The handler XLA calls (`XLA_FFI_Handler`): answers the metadata query, else runs the call.
///
/// # Safety
/// `frame` is a call frame from XLA's FFI, valid for the duration of the call.
pub unsafe extern "C" fn rpa_ffi_handler(frame: *mut CallFrame) -> *mut c_void {
    let Some(frame) = (unsafe { frame.as_mut() }) else { return std::ptr::null_mut() };
    if frame.struct_size < CALL_FRAME_SIZE || frame.api.is_null() {
        return std::ptr::null_mut(); // Not a frame of the API we know; nothing to report through.
    }
    let api = unsafe { &*frame.api };
    let outcome = catch_unwind(AssertUnwindSafe(|| unsafe { handle(frame) }));
    match outcome {
        Ok(Ok(())) => std::ptr::null_mut(),
        Ok(Err(message)) => unsafe { error(api, ERROR_INVALID_ARGUMENT, &message) },
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            unsafe { error(api, ERROR_INTERNAL, &format!("rpa: internal error (a bug; please report it): {what}")) }
        }
    }
}

unsafe fn error(api: &Api, code: c_int, message: &str) -> *mut c_void {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    let mut args = ErrorCreateArgs {
        struct_size: ERROR_CREATE_ARGS_SIZE,
        extension_start: std::ptr::null_mut(),
        message: message.as_ptr(),
        code,
    };
    // XLA copies the message into the error it returns.
    unsafe { (api.error_create)(&mut args) }
}

unsafe fn handle(frame: &mut CallFrame) -> Result<(), String> {
    let ext = frame.extension_start;
    if !ext.is_null() && unsafe { (*ext).kind } == EXTENSION_METADATA {
        return unsafe { fill_metadata(ext as *mut MetadataExtension) };
    }
    if frame.stage != STAGE_EXECUTE {
        return Err(format!("rpa: unexpected execution stage {}", frame.stage));
    }
    let request = unsafe { string_attr(&frame.attrs, "request") }?;
    let mut inputs = Vec::new();
    for i in 0..frame.args.size.max(0) as usize {
        let (dtype, dims, data) = unsafe { buffer_at(&frame.args, i) }?;
        // Copied before any result is written: a result may alias this buffer.
        let bytes = unsafe { std::slice::from_raw_parts(data, dims.iter().product::<usize>() * dtype.bytes()) };
        inputs.push(host::array_from_le(dtype, &dims, bytes));
    }
    let (results, _) = host::run(&request, inputs, frame.rets.size.max(0) as usize)?;
    for (i, result) in results.iter().enumerate() {
        let (dtype, dims, data) = unsafe { buffer_at(&frame.rets, i) }?;
        if dtype != result.dtype() || dims != result.shape() {
            return Err(format!(
                "rpa: result {i} is {dtype} {dims:?} in the program, but the call produced {} {:?}",
                result.dtype(),
                result.shape()
            ));
        }
        host::write_le(result, unsafe { std::slice::from_raw_parts_mut(data, result.nbytes()) });
    }
    Ok(())
}

unsafe fn fill_metadata(ext: *mut MetadataExtension) -> Result<(), String> {
    let ext = unsafe { &mut *ext };
    let metadata = unsafe { ext.metadata.as_mut() }.ok_or("rpa: metadata query without metadata")?;
    if ext.base.struct_size < size_of::<MetadataExtension>() || metadata.struct_size < METADATA_SIZE {
        return Err("rpa: metadata query of an unknown FFI version".into());
    }
    metadata.api_version = ApiVersion {
        struct_size: API_VERSION_SIZE,
        extension_start: std::ptr::null_mut(),
        major: API_MAJOR,
        minor: API_MINOR,
    };
    metadata.traits = 0;
    Ok(())
}

/// Buffer `i` of `operands`: its dtype, dimensions and data.
unsafe fn buffer_at(operands: &Operands, i: usize) -> Result<(rpa_dsl::DType, Vec<usize>, *mut u8), String> {
    if i >= operands.size.max(0) as usize || unsafe { *operands.types.add(i) } != ARG_BUFFER {
        return Err(format!("rpa: operand {i} is not a buffer"));
    }
    let buffer = unsafe { &*(*operands.values.add(i) as *const Buffer) };
    if buffer.struct_size < BUFFER_SIZE {
        return Err("rpa: buffer of an unknown FFI version".into());
    }
    let dtype = host::dtype_of_code(buffer.dtype).ok_or(format!("rpa: unsupported XLA dtype {}", buffer.dtype))?;
    let rank = buffer.rank.max(0) as usize;
    let dims = unsafe { std::slice::from_raw_parts(buffer.dims, rank) }.iter().map(|&d| d.max(0) as usize).collect();
    let data = if buffer.data.is_null() { std::ptr::NonNull::dangling().as_ptr() } else { buffer.data as *mut u8 };
    Ok((dtype, dims, data))
}

unsafe fn string_attr(attrs: &Attrs, name: &str) -> Result<String, String> {
    for i in 0..attrs.size.max(0) as usize {
        let span = unsafe { &**attrs.names.add(i) };
        let key = unsafe { std::slice::from_raw_parts(span.ptr as *const u8, span.len) };
        if key == name.as_bytes() && unsafe { *attrs.types.add(i) } == ATTR_STRING {
            let value = unsafe { &*(*attrs.values.add(i) as *const ByteSpan) };
            let bytes = unsafe { std::slice::from_raw_parts(value.ptr as *const u8, value.len) };
            return String::from_utf8(bytes.to_vec()).map_err(|e| format!("rpa: attribute {name}: {e}"));
        }
    }
    Err(format!("rpa: the custom call has no string attribute `{name}`"))
}

/// A PyCapsule holding [`rpa_ffi_handler`], for `jax.ffi.register_ffi_target`.
pub fn handler_capsule(py: pyo3::Python<'_>) -> pyo3::PyResult<pyo3::Bound<'_, pyo3::PyAny>> {
    let handler: unsafe extern "C" fn(*mut CallFrame) -> *mut c_void = rpa_ffi_handler;
    unsafe {
        let capsule = pyo3::ffi::PyCapsule_New(handler as *mut c_void, std::ptr::null(), None);
        pyo3::Bound::from_owned_ptr_or_err(py, capsule)
    }
}
