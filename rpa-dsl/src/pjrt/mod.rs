//! A thin, safe binding over the PJRT C API: load a PJRT plugin (`.so`), create a client, compile StableHLO,
//! move [`Array`](crate::Array)s to and from devices, execute, and compile ahead of time for a device topology
//! that is not present (libtpu compiles for TPU on a machine without one).
//!
//! ```no_run
//! use rpa_dsl::pjrt::{self, Client, CompileOptions};
//! use rpa_dsl::{Array, DType};
//!
//! let plugin = pjrt::cpu_plugin()?; // <repo>/.cache/plugins/xla_cpu_pjrt.so, see scripts/install-plugins
//! let client = Client::new(&plugin, &[])?;
//! let exe = client.compile(
//!     "func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = stablehlo.add %a, %a : tensor<2xf32>\n  return %0 : tensor<2xf32>\n}",
//!     &CompileOptions::default(),
//! )?;
//! let device = &client.addressable_devices()?[0];
//! let x = client.buffer_from_host(&Array::from_f32(DType::F32, &[2], &[1.0, 2.0]), device)?;
//! let y = exe.execute(&[&x])?.remove(0).to_host()?;
//! assert_eq!(y.to_f32(), [2.0, 4.0]);
//! # Ok::<(), rpa_dsl::pjrt::PjrtError>(())
//! ```
//!
//! # Compatibility
//! [`ffi`] declares the structs of PJRT C API header 0.105. Every call passes our declared struct size; plugins
//! accept a caller struct at least as large as their own. A plugin is refused at load time (with
//! [`ErrorKind::Unsupported`]) if its major version is not 0, its minor version is below 0.57 (the last time the
//! function table was rearranged), or its function table is too short to hold every entry point this module
//! calls; each call re-checks the slot and that it is non-null.
//!
//! # Lifetimes and threads
//! Plugins are loaded once per process and never unloaded (XLA plugins do not survive `dlclose`). Devices,
//! buffers and executables keep their client alive; everything is `Send + Sync`, as the PJRT objects behind them
//! are thread-safe. Drop destroys the PJRT object.

// This module is the crate's only user of `unsafe`: it is an FFI binding. Every `unsafe` block carries a
// `// SAFETY:` comment; the public API is safe.
#![allow(unsafe_code)]

pub mod ffi;
mod proto;

mod client;
mod executable;

pub use client::{Buffer, Client, Device};
pub use executable::{
    compile_for_topology, CompileOptions, CompiledMemoryStats, Executable, LoadedExecutable, OptionOverride, Topology,
};

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::DType;

// ------------------------------------------------------------------------------------------------ errors

/// A PJRT status code (`PJRT_Error_Code`, the absl status codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
    /// A code this binding does not know.
    Other(i32),
}

impl ErrorCode {
    pub fn from_raw(code: i32) -> ErrorCode {
        use ErrorCode::*;
        match code {
            1 => Cancelled,
            2 => Unknown,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            c => Other(c),
        }
    }

    pub fn name(self) -> String {
        use ErrorCode::*;
        match self {
            Cancelled => "CANCELLED".into(),
            Unknown => "UNKNOWN".into(),
            InvalidArgument => "INVALID_ARGUMENT".into(),
            DeadlineExceeded => "DEADLINE_EXCEEDED".into(),
            NotFound => "NOT_FOUND".into(),
            AlreadyExists => "ALREADY_EXISTS".into(),
            PermissionDenied => "PERMISSION_DENIED".into(),
            ResourceExhausted => "RESOURCE_EXHAUSTED".into(),
            FailedPrecondition => "FAILED_PRECONDITION".into(),
            Aborted => "ABORTED".into(),
            OutOfRange => "OUT_OF_RANGE".into(),
            Unimplemented => "UNIMPLEMENTED".into(),
            Internal => "INTERNAL".into(),
            Unavailable => "UNAVAILABLE".into(),
            DataLoss => "DATA_LOSS".into(),
            Unauthenticated => "UNAUTHENTICATED".into(),
            Other(c) => format!("code {c}"),
        }
    }
}

/// Where an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The plugin returned a `PJRT_Error` (its code and message are in the [`PjrtError`]).
    Pjrt,
    /// The plugin file does not exist: run `scripts/install-plugins`.
    PluginNotFound,
    /// `dlopen` or the `GetPjrtApi` symbol failed.
    PluginLoad,
    /// The plugin is too old or too new for this binding, or lacks an entry point.
    Unsupported,
    /// A misuse caught by the binding (wrong dtype, a buffer of another client, ...).
    Usage,
}

/// An error from a PJRT plugin (with its status code and message) or from this binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PjrtError {
    pub kind: ErrorKind,
    /// The PJRT status code, for [`ErrorKind::Pjrt`] errors.
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl PjrtError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> PjrtError {
        PjrtError { kind, code: None, message: message.into() }
    }

    pub(crate) fn usage(message: impl Into<String>) -> PjrtError {
        PjrtError::new(ErrorKind::Usage, message)
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> PjrtError {
        PjrtError::new(ErrorKind::Unsupported, message)
    }

    /// The plugin broke the API contract without returning a `PJRT_Error` (e.g. a null out-pointer).
    pub(crate) fn contract(message: impl Into<String>) -> PjrtError {
        PjrtError::new(ErrorKind::Pjrt, message)
    }
}

impl fmt::Display for PjrtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.code) {
            (ErrorKind::Pjrt, Some(code)) => write!(f, "PJRT error {}: {}", code.name(), self.message),
            (ErrorKind::Pjrt, None) => write!(f, "PJRT error: {}", self.message),
            _ => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for PjrtError {}

pub type Result<T, E = PjrtError> = std::result::Result<T, E>;

// ------------------------------------------------------------------------------------------------ named values

/// A `PJRT_NamedValue`: client/topology create options, plugin attributes, cost-analysis properties.
#[derive(Clone, Debug, PartialEq)]
pub enum NamedValue {
    String(String),
    Int64(i64),
    Int64List(Vec<i64>),
    Float(f32),
    Bool(bool),
}

impl NamedValue {
    /// The value as a float, for numeric values (cost-analysis properties are `Float`s).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            NamedValue::Int64(v) => Some(*v as f64),
            NamedValue::Float(v) => Some(f64::from(*v)),
            _ => None,
        }
    }
}

impl From<&str> for NamedValue {
    fn from(v: &str) -> Self {
        NamedValue::String(v.to_string())
    }
}
impl From<String> for NamedValue {
    fn from(v: String) -> Self {
        NamedValue::String(v)
    }
}
impl From<i64> for NamedValue {
    fn from(v: i64) -> Self {
        NamedValue::Int64(v)
    }
}
impl From<Vec<i64>> for NamedValue {
    fn from(v: Vec<i64>) -> Self {
        NamedValue::Int64List(v)
    }
}
impl From<&[i64]> for NamedValue {
    fn from(v: &[i64]) -> Self {
        NamedValue::Int64List(v.to_vec())
    }
}
impl From<f32> for NamedValue {
    fn from(v: f32) -> Self {
        NamedValue::Float(v)
    }
}
impl From<bool> for NamedValue {
    fn from(v: bool) -> Self {
        NamedValue::Bool(v)
    }
}

/// `PJRT_NamedValue`s that point into borrowed Rust values, for the duration of one call.
pub(crate) struct RawNamedValues<'a> {
    raw: Vec<ffi::PJRT_NamedValue>,
    _borrow: PhantomData<&'a ()>,
}

impl<'a> RawNamedValues<'a> {
    pub(crate) fn new<S: AsRef<str>>(options: &'a [(S, NamedValue)]) -> RawNamedValues<'a> {
        let raw = options
            .iter()
            .map(|(name, value)| {
                let name = name.as_ref();
                let mut nv = ffi::PJRT_NamedValue::new();
                nv.name = name.as_ptr().cast();
                nv.name_size = name.len();
                match value {
                    NamedValue::String(s) => {
                        nv.type_ = ffi::PJRT_NamedValue_kString;
                        nv.value.string_value = s.as_ptr().cast();
                        nv.value_size = s.len();
                    }
                    NamedValue::Int64(v) => {
                        nv.type_ = ffi::PJRT_NamedValue_kInt64;
                        nv.value.int64_value = *v;
                        nv.value_size = 1;
                    }
                    NamedValue::Int64List(v) => {
                        nv.type_ = ffi::PJRT_NamedValue_kInt64List;
                        nv.value.int64_array_value = v.as_ptr();
                        nv.value_size = v.len();
                    }
                    NamedValue::Float(v) => {
                        nv.type_ = ffi::PJRT_NamedValue_kFloat;
                        nv.value.float_value = *v;
                        nv.value_size = 1;
                    }
                    NamedValue::Bool(v) => {
                        nv.type_ = ffi::PJRT_NamedValue_kBool;
                        nv.value.bool_value = u8::from(*v);
                        nv.value_size = 1;
                    }
                }
                nv
            })
            .collect();
        RawNamedValues { raw, _borrow: PhantomData }
    }

    pub(crate) fn as_ptr(&self) -> *const ffi::PJRT_NamedValue {
        if self.raw.is_empty() {
            std::ptr::null()
        } else {
            self.raw.as_ptr()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }
}

/// Copies `n` plugin-owned `PJRT_NamedValue`s. Values of a type this binding does not know are skipped.
///
/// # Safety
/// `values` must point to `n` valid `PJRT_NamedValue`s (or be null with `n == 0`), alive for this call.
pub(crate) unsafe fn read_named_values(
    values: *const ffi::PJRT_NamedValue,
    n: usize,
) -> Result<BTreeMap<String, NamedValue>> {
    let mut out = BTreeMap::new();
    if n == 0 || values.is_null() {
        return Ok(out);
    }
    // SAFETY: the caller guarantees `n` valid elements; `PJRT_NamedValue`'s layout has not changed since the
    // struct was introduced, so the plugin's array stride is `size_of::<PJRT_NamedValue>()` (checked below).
    let values = unsafe { std::slice::from_raw_parts(values, n) };
    for nv in values {
        if nv.struct_size > std::mem::size_of::<ffi::PJRT_NamedValue>() {
            return Err(PjrtError::unsupported(format!(
                "plugin returned PJRT_NamedValue of {} bytes; this binding knows {}",
                nv.struct_size,
                std::mem::size_of::<ffi::PJRT_NamedValue>()
            )));
        }
        // SAFETY: name/name_size describe plugin-owned bytes alive for this call.
        let name = unsafe { lossy_string(nv.name, nv.name_size) };
        // SAFETY: the union member read is the one `type_` says the plugin wrote; pointers and sizes describe
        // plugin-owned data alive for this call.
        let value = unsafe {
            match nv.type_ {
                ffi::PJRT_NamedValue_kString => NamedValue::String(lossy_string(nv.value.string_value, nv.value_size)),
                ffi::PJRT_NamedValue_kInt64 => NamedValue::Int64(nv.value.int64_value),
                ffi::PJRT_NamedValue_kInt64List => {
                    let p = nv.value.int64_array_value;
                    NamedValue::Int64List(if p.is_null() || nv.value_size == 0 {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(p, nv.value_size).to_vec()
                    })
                }
                ffi::PJRT_NamedValue_kFloat => NamedValue::Float(nv.value.float_value),
                ffi::PJRT_NamedValue_kBool => NamedValue::Bool(nv.value.bool_value != 0),
                _ => continue,
            }
        };
        out.insert(name, value);
    }
    Ok(out)
}

/// Copies a (pointer, length) string owned by the plugin; invalid UTF-8 is replaced.
///
/// # Safety
/// `ptr` must be null or point to `len` readable bytes.
pub(crate) unsafe fn lossy_string(ptr: *const c_char, len: usize) -> String {
    if ptr.is_null() || len == 0 {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    String::from_utf8_lossy(bytes).into_owned()
}

// ------------------------------------------------------------------------------------------------ dtypes

/// The `PJRT_Buffer_Type` of an rpa [`DType`].
pub fn buffer_type(dtype: DType) -> ffi::PJRT_Buffer_Type {
    match dtype {
        DType::F32 => ffi::PJRT_Buffer_Type_F32,
        DType::Bf16 => ffi::PJRT_Buffer_Type_BF16,
        DType::F16 => ffi::PJRT_Buffer_Type_F16,
        DType::F8E4M3 => ffi::PJRT_Buffer_Type_F8E4M3FN,
        DType::F8E5M2 => ffi::PJRT_Buffer_Type_F8E5M2,
        DType::I32 => ffi::PJRT_Buffer_Type_S32,
        DType::U32 => ffi::PJRT_Buffer_Type_U32,
        DType::I16 => ffi::PJRT_Buffer_Type_S16,
        DType::U16 => ffi::PJRT_Buffer_Type_U16,
        DType::I8 => ffi::PJRT_Buffer_Type_S8,
        DType::U8 => ffi::PJRT_Buffer_Type_U8,
        DType::Bool => ffi::PJRT_Buffer_Type_PRED,
    }
}

/// The rpa [`DType`] of a `PJRT_Buffer_Type`, if rpa has one.
pub fn dtype_of_buffer_type(t: ffi::PJRT_Buffer_Type) -> Option<DType> {
    DType::ALL.into_iter().find(|&d| buffer_type(d) == t)
}

// ------------------------------------------------------------------------------------------------ plugins

/// The PJRT C API version a plugin was built with (`PJRT_Api.pjrt_api_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: i32,
    pub minor: i32,
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A loaded PJRT plugin: the shared library and its `PJRT_Api` table.
pub struct Plugin {
    path: PathBuf,
    api: *const ffi::PJRT_Api,
    api_struct_size: usize,
    version: ApiVersion,
    error_destroy: unsafe extern "C" fn(*mut ffi::PJRT_Error_Destroy_Args),
    error_message: unsafe extern "C" fn(*mut ffi::PJRT_Error_Message_Args),
    error_get_code: unsafe extern "C" fn(*mut ffi::PJRT_Error_GetCode_Args) -> *mut ffi::PJRT_Error,
    _library: libloading::Library,
}

// SAFETY: `api` points to the plugin's immutable, process-lifetime function table; the PJRT C API's entry points
// may be called from any thread. The library handle is never used after loading (and never unloaded).
unsafe impl Send for Plugin {}
// SAFETY: as above; `Plugin` has no interior mutability.
unsafe impl Sync for Plugin {}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin").field("path", &self.path).field("api_version", &self.version).finish()
    }
}

/// Plugins loaded by this process, by canonical path. Never emptied: plugins are not unloaded.
static LOADED: Mutex<Vec<Arc<Plugin>>> = Mutex::new(Vec::new());

/// Reads the function-pointer slot `$name` of a plugin's `PJRT_Api`, checking that the plugin's table is long
/// enough to contain it and that it is non-null. Evaluates to `Result<unsafe extern "C" fn(..)>`.
macro_rules! api_fn {
    ($plugin:expr, $name:ident) => {{
        let plugin: &$crate::pjrt::Plugin = &$plugin;
        plugin.check_slot(::std::mem::offset_of!($crate::pjrt::ffi::PJRT_Api, $name), stringify!($name)).and_then(
            |()| {
                // SAFETY: `check_slot` verified that the slot lies within the plugin's `PJRT_Api.struct_size`
                // bytes, so the read is in bounds of the plugin's table; a fn-pointer `Option` has no invalid
                // bit patterns besides those of a pointer.
                let slot = unsafe { ::std::ptr::addr_of!((*plugin.api_ptr()).$name).read() };
                slot.ok_or_else(|| plugin.missing(stringify!($name)))
            },
        )
    }};
}
pub(crate) use api_fn;

impl Plugin {
    /// Loads the PJRT plugin at `path` (once per process: later calls with the same file return the same
    /// plugin), checks its API version and table size, and calls `PJRT_Plugin_Initialize`.
    pub fn load(path: impl AsRef<Path>) -> Result<Arc<Plugin>> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(PjrtError::new(
                ErrorKind::PluginNotFound,
                format!(
                    "PJRT plugin not found at {}: run scripts/install-plugins (or set {} / {} to a plugin .so)",
                    path.display(),
                    CPU_PLUGIN_ENV,
                    LIBTPU_ENV
                ),
            ));
        }
        let canonical = path.canonicalize().map_err(|e| {
            PjrtError::new(ErrorKind::PluginLoad, format!("cannot resolve PJRT plugin path {}: {e}", path.display()))
        })?;
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = loaded.iter().find(|p| p.path == canonical) {
            return Ok(p.clone());
        }
        let plugin = Arc::new(Plugin::open(canonical)?);
        loaded.push(plugin.clone());
        Ok(plugin)
    }

    fn open(path: PathBuf) -> Result<Plugin> {
        let load_err = |what: String| PjrtError::new(ErrorKind::PluginLoad, what);
        // SAFETY: loading a shared library runs its initializers; PJRT plugins are ordinary C++ libraries whose
        // initializers have no preconditions on us. The library stays loaded for the life of the process.
        let library = unsafe { libloading::Library::new(&path) }
            .map_err(|e| load_err(format!("cannot load PJRT plugin {}: {e}", path.display())))?;
        // SAFETY: `GetPjrtApi` is the plugin entry point of the PJRT C API: `const PJRT_Api* GetPjrtApi(void)`.
        let get_api = unsafe { library.get::<unsafe extern "C" fn() -> *const ffi::PJRT_Api>(b"GetPjrtApi\0") }
            .map_err(|e| load_err(format!("{} is not a PJRT plugin (no GetPjrtApi): {e}", path.display())))?;
        // SAFETY: calling the entry point with its declared signature; it takes no arguments.
        let api = unsafe { get_api() };
        if api.is_null() {
            return Err(load_err(format!("GetPjrtApi of {} returned null", path.display())));
        }
        let name = path.display();
        // SAFETY: every PJRT_Api begins with `size_t struct_size` (since API 0.1), read through the raw pointer.
        let api_struct_size = unsafe { std::ptr::addr_of!((*api).struct_size).read() };
        let header_size = std::mem::offset_of!(ffi::PJRT_Api, pjrt_api_version) + size_of::<ffi::PJRT_Api_Version>();
        if api_struct_size < header_size {
            return Err(load_err(format!("{name} returned a {api_struct_size}-byte PJRT_Api")));
        }
        // SAFETY: the table covers its `PJRT_Api_Version` field (checked just above).
        let version = unsafe {
            let v = std::ptr::addr_of!((*api).pjrt_api_version).read();
            ApiVersion { major: v.major_version, minor: v.minor_version }
        };
        if version.major != ffi::PJRT_API_MAJOR || version.minor < ffi::PJRT_API_MIN_SUPPORTED_MINOR {
            return Err(PjrtError::unsupported(format!(
                "PJRT plugin {name} implements PJRT C API {version}; this binding (header {}.{}) supports {}.{}..{}.x",
                ffi::PJRT_API_MAJOR,
                ffi::PJRT_API_MINOR,
                ffi::PJRT_API_MAJOR,
                ffi::PJRT_API_MIN_SUPPORTED_MINOR,
                ffi::PJRT_API_MAJOR
            )));
        }
        if api_struct_size < ffi::PJRT_Api_REQUIRED_SIZE {
            return Err(PjrtError::unsupported(format!(
                "PJRT plugin {name} (API {version}) has a {api_struct_size}-byte PJRT_Api; this binding calls entry \
                 points up to byte {}",
                ffi::PJRT_Api_REQUIRED_SIZE
            )));
        }
        // SAFETY: the table covers these slots (checked above: they precede PJRT_Api_REQUIRED_SIZE).
        let (error_destroy, error_message, error_get_code) = unsafe {
            (
                std::ptr::addr_of!((*api).PJRT_Error_Destroy).read(),
                std::ptr::addr_of!((*api).PJRT_Error_Message).read(),
                std::ptr::addr_of!((*api).PJRT_Error_GetCode).read(),
            )
        };
        let (Some(error_destroy), Some(error_message), Some(error_get_code)) =
            (error_destroy, error_message, error_get_code)
        else {
            return Err(PjrtError::unsupported(format!("PJRT plugin {name} lacks the PJRT_Error functions")));
        };
        let plugin = Plugin {
            path,
            api,
            api_struct_size,
            version,
            error_destroy,
            error_message,
            error_get_code,
            _library: library,
        };
        let init = api_fn!(plugin, PJRT_Plugin_Initialize)?;
        let mut args = ffi::PJRT_Plugin_Initialize_Args::new();
        // SAFETY: `args` is a valid, initialized argument struct; called once per process per plugin (guarded by
        // the `LOADED` lock held by our caller).
        plugin.check(unsafe { init(&mut args) })?;
        Ok(plugin)
    }

    /// The plugin file (canonical path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The PJRT C API version the plugin implements.
    pub fn api_version(&self) -> ApiVersion {
        self.version
    }

    /// The plugin's `PJRT_Api.struct_size` (its number of entry points is `(size - 40) / 8`).
    pub fn api_struct_size(&self) -> usize {
        self.api_struct_size
    }

    /// Plugin attributes, e.g. `xla_version`, `stablehlo_current_version`, `stablehlo_minimum_version`.
    pub fn attributes(&self) -> Result<BTreeMap<String, NamedValue>> {
        let f = api_fn!(self, PJRT_Plugin_Attributes)?;
        let mut args = ffi::PJRT_Plugin_Attributes_Args::new();
        // SAFETY: valid argument struct; the plugin fills the out fields.
        self.check(unsafe { f(&mut args) })?;
        // SAFETY: the attributes have the lifetime of the process.
        unsafe { read_named_values(args.attributes, args.num_attributes) }
    }

    pub(crate) fn api_ptr(&self) -> *const ffi::PJRT_Api {
        self.api
    }

    pub(crate) fn check_slot(&self, offset: usize, name: &str) -> Result<()> {
        if offset + std::mem::size_of::<ffi::Unused>() <= self.api_struct_size {
            Ok(())
        } else {
            Err(self.missing(name))
        }
    }

    pub(crate) fn missing(&self, name: &str) -> PjrtError {
        PjrtError::unsupported(format!(
            "PJRT plugin {} (API {}) does not implement {name}",
            self.path.display(),
            self.version
        ))
    }

    /// `Ok(())` for a null `PJRT_Error*`; otherwise takes (and destroys) the error.
    pub(crate) fn check(&self, error: *mut ffi::PJRT_Error) -> Result<()> {
        if error.is_null() {
            Ok(())
        } else {
            Err(self.take_error(error))
        }
    }

    fn take_error(&self, error: *mut ffi::PJRT_Error) -> PjrtError {
        let mut msg = ffi::PJRT_Error_Message_Args::new();
        msg.error = error;
        // SAFETY: `error` is a live PJRT_Error returned by this plugin; the message it returns lives as long as
        // `error`, which we destroy only after copying it.
        let message = unsafe {
            (self.error_message)(&mut msg);
            lossy_string(msg.message, msg.message_size)
        };
        let mut code_args = ffi::PJRT_Error_GetCode_Args::new();
        code_args.error = error;
        // SAFETY: as above.
        let code_error = unsafe { (self.error_get_code)(&mut code_args) };
        let code = if code_error.is_null() {
            Some(ErrorCode::from_raw(code_args.code))
        } else {
            self.destroy_error(code_error);
            None
        };
        self.destroy_error(error);
        PjrtError { kind: ErrorKind::Pjrt, code, message }
    }

    fn destroy_error(&self, error: *mut ffi::PJRT_Error) {
        let mut args = ffi::PJRT_Error_Destroy_Args::new();
        args.error = error;
        // SAFETY: `error` is a live PJRT_Error of this plugin, destroyed exactly once.
        unsafe { (self.error_destroy)(&mut args) }
    }

    /// Waits for `event` (if non-null) and destroys it; returns the event's error status.
    pub(crate) fn await_event(&self, event: *mut ffi::PJRT_Event) -> Result<()> {
        if event.is_null() {
            return Ok(());
        }
        let awaited = api_fn!(self, PJRT_Event_Await).and_then(|f| {
            let mut args = ffi::PJRT_Event_Await_Args::new();
            args.event = event;
            // SAFETY: `event` is a live event returned by this plugin.
            self.check(unsafe { f(&mut args) })
        });
        let destroyed = api_fn!(self, PJRT_Event_Destroy).and_then(|f| {
            let mut args = ffi::PJRT_Event_Destroy_Args::new();
            args.event = event;
            // SAFETY: `event` is live and destroyed exactly once, after the await above has returned.
            self.check(unsafe { f(&mut args) })
        });
        awaited.and(destroyed)
    }
}

// ------------------------------------------------------------------------------------------------ plugin paths

/// Environment variable naming the XLA:CPU PJRT plugin to use instead of the default.
pub const CPU_PLUGIN_ENV: &str = "RPA_PJRT_CPU_PLUGIN";
/// Environment variable naming the libtpu to use instead of the default.
pub const LIBTPU_ENV: &str = "RPA_LIBTPU";
/// Where `scripts/install-plugins` puts the plugins (the workspace's `.cache/plugins`).
pub const DEFAULT_PLUGIN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.cache/plugins");

fn plugin_path(env: &str, file: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        // DEFAULT_PLUGIN_DIR without its `rpa-dsl/..`, for readable messages.
        _ => match Path::new(env!("CARGO_MANIFEST_DIR")).parent() {
            Some(workspace) => workspace.join(".cache/plugins").join(file),
            None => Path::new(DEFAULT_PLUGIN_DIR).join(file),
        },
    }
}

/// The XLA:CPU PJRT plugin: `$RPA_PJRT_CPU_PLUGIN`, else `<workspace>/.cache/plugins/xla_cpu_pjrt.so`.
pub fn cpu_plugin_path() -> PathBuf {
    plugin_path(CPU_PLUGIN_ENV, "xla_cpu_pjrt.so")
}

/// libtpu: `$RPA_LIBTPU`, else `<workspace>/.cache/plugins/libtpu.so`.
pub fn libtpu_path() -> PathBuf {
    plugin_path(LIBTPU_ENV, "libtpu.so")
}

/// Loads the XLA:CPU plugin from [`cpu_plugin_path`].
pub fn cpu_plugin() -> Result<Arc<Plugin>> {
    Plugin::load(cpu_plugin_path())
}

/// Loads libtpu from [`libtpu_path`], for compile-only use (no TPU needed), after
/// [`default_libtpu_env`].
pub fn libtpu() -> Result<Arc<Plugin>> {
    default_libtpu_env();
    Plugin::load(libtpu_path())
}

/// Sets `TPU_SKIP_MDS_QUERY=1` unless the variable is already set: without it libtpu blocks on GCE
/// metadata-server look-ups. Then, as no metadata describes the host, also gives libtpu a host
/// description (`TPU_WORKER_HOSTNAMES=localhost`, `TPU_ACCELERATOR_TYPE=v5litepod-1`, each unless
/// set), whose absence it reports as errors on stderr; compiles target the topology they are given
/// either way. `ALLOW_MULTIPLE_LIBTPU_LOAD=1` (unless set) lets processes that only compile load
/// libtpu side by side instead of failing on its lockfile. Setting variables races with C code reading the environment on other threads: a
/// program that loads libtpu calls this at the start of `main` (as `rpa` does).
pub fn default_libtpu_env() {
    if std::env::var_os("ALLOW_MULTIPLE_LIBTPU_LOAD").is_none() {
        std::env::set_var("ALLOW_MULTIPLE_LIBTPU_LOAD", "1");
    }
    if std::env::var_os("TPU_SKIP_MDS_QUERY").is_none() {
        std::env::set_var("TPU_SKIP_MDS_QUERY", "1");
        for (var, value) in [("TPU_WORKER_HOSTNAMES", "localhost"), ("TPU_ACCELERATOR_TYPE", "v5litepod-1")] {
            if std::env::var_os(var).is_none() {
                std::env::set_var(var, value);
            }
        }
    }
}
