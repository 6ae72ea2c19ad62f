//! Clients, devices and device buffers.

use std::fmt;
use std::sync::Arc;

use super::executable::{CompileOptions, Executable, LoadedExecutable, LoadedHandle, Program};
use super::Result;
use super::{
    api_fn, buffer_type, dtype_of_buffer_type, ffi, lossy_string, NamedValue, PjrtError, Plugin, RawNamedValues,
};
use crate::{Array, DType};

/// Owns a `PJRT_Client*`; shared by everything created from the client, so the client outlives them.
pub(crate) struct ClientInner {
    pub(crate) plugin: Arc<Plugin>,
    pub(crate) raw: *mut ffi::PJRT_Client,
}

// SAFETY: a PJRT client (xla::PjRtClient behind the C API) is thread-safe; `raw` is only passed to the plugin.
unsafe impl Send for ClientInner {}
// SAFETY: as above.
unsafe impl Sync for ClientInner {}

impl Drop for ClientInner {
    fn drop(&mut self) {
        if let Ok(f) = api_fn!(self.plugin, PJRT_Client_Destroy) {
            let mut args = ffi::PJRT_Client_Destroy_Args::new();
            args.client = self.raw;
            // SAFETY: `raw` is a live client; every object created from it holds an `Arc` to this inner value,
            // so none is alive any more. Destroyed exactly once.
            let err = unsafe { f(&mut args) };
            let _ = self.plugin.check(err);
        }
    }
}

/// A PJRT client of a plugin: its devices, compilation, host↔device transfers. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("plugin", &self.inner.plugin.path()).finish_non_exhaustive()
    }
}

impl Client {
    /// Creates a client with platform-specific create options, e.g. `[("cpu_device_count", 2.into())]` for
    /// XLA:CPU.
    pub fn new(plugin: &Arc<Plugin>, options: &[(&str, NamedValue)]) -> Result<Client> {
        let f = api_fn!(plugin, PJRT_Client_Create)?;
        let options = RawNamedValues::new(options);
        let mut args = ffi::PJRT_Client_Create_Args::new();
        args.create_options = options.as_ptr();
        args.num_options = options.len();
        // SAFETY: `args` is valid; `options` (and the strings and lists it points into) outlive the call; the
        // key-value callbacks are null, which PJRT allows for single-process clients.
        plugin.check(unsafe { f(&mut args) })?;
        if args.client.is_null() {
            return Err(PjrtError::contract("PJRT_Client_Create returned no client"));
        }
        Ok(Client { inner: Arc::new(ClientInner { plugin: plugin.clone(), raw: args.client }) })
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.inner.plugin
    }

    /// E.g. `"cpu"`, `"tpu"`.
    pub fn platform_name(&self) -> Result<String> {
        let plugin = &self.inner.plugin;
        let f = api_fn!(plugin, PJRT_Client_PlatformName)?;
        let mut args = ffi::PJRT_Client_PlatformName_Args::new();
        args.client = self.inner.raw;
        // SAFETY: valid args and live client; the returned string is owned by the client, copied right away.
        unsafe {
            plugin.check(f(&mut args))?;
            Ok(lossy_string(args.platform_name, args.platform_name_size))
        }
    }

    pub fn platform_version(&self) -> Result<String> {
        let plugin = &self.inner.plugin;
        let f = api_fn!(plugin, PJRT_Client_PlatformVersion)?;
        let mut args = ffi::PJRT_Client_PlatformVersion_Args::new();
        args.client = self.inner.raw;
        // SAFETY: as in `platform_name`.
        unsafe {
            plugin.check(f(&mut args))?;
            Ok(lossy_string(args.platform_version, args.platform_version_size))
        }
    }

    /// All devices visible to the runtime.
    pub fn devices(&self) -> Result<Vec<Device>> {
        let plugin = &self.inner.plugin;
        let f = api_fn!(plugin, PJRT_Client_Devices)?;
        let mut args = ffi::PJRT_Client_Devices_Args::new();
        args.client = self.inner.raw;
        // SAFETY: valid args and live client; the device array is owned by the client and copied right away.
        let raw = unsafe {
            plugin.check(f(&mut args))?;
            device_list(args.devices, args.num_devices)
        };
        Ok(raw.into_iter().map(|raw| Device { client: self.inner.clone(), raw }).collect())
    }

    /// The devices this client can issue commands to (all of them in a single process).
    pub fn addressable_devices(&self) -> Result<Vec<Device>> {
        let plugin = &self.inner.plugin;
        let f = api_fn!(plugin, PJRT_Client_AddressableDevices)?;
        let mut args = ffi::PJRT_Client_AddressableDevices_Args::new();
        args.client = self.inner.raw;
        // SAFETY: as in `devices`.
        let raw = unsafe {
            plugin.check(f(&mut args))?;
            device_list(args.addressable_devices, args.num_addressable_devices)
        };
        Ok(raw.into_iter().map(|raw| Device { client: self.inner.clone(), raw }).collect())
    }

    /// Compiles an MLIR (StableHLO) module given as text (or bytecode) for this client's devices.
    pub fn compile(&self, mlir: impl AsRef<[u8]>, options: &CompileOptions) -> Result<LoadedExecutable> {
        let plugin = &self.inner.plugin;
        let f = api_fn!(plugin, PJRT_Client_Compile)?;
        let program = Program::mlir(mlir.as_ref());
        let options = options.to_proto();
        let mut args = ffi::PJRT_Client_Compile_Args::new();
        args.client = self.inner.raw;
        args.program = program.raw();
        args.compile_options = options.as_ptr().cast();
        args.compile_options_size = options.len();
        // SAFETY: valid args and live client; `program` (with its code and format bytes) and `options` outlive
        // the call.
        plugin.check(unsafe { f(&mut args) })?;
        if args.executable.is_null() {
            return Err(PjrtError::contract("PJRT_Client_Compile returned no executable"));
        }
        let loaded = LoadedHandle { client: self.inner.clone(), raw: args.executable };
        let get = api_fn!(plugin, PJRT_LoadedExecutable_GetExecutable)?;
        let mut args = ffi::PJRT_LoadedExecutable_GetExecutable_Args::new();
        args.loaded_executable = loaded.raw;
        // SAFETY: valid args, live loaded executable; the returned PJRT_Executable is ours to destroy.
        plugin.check(unsafe { get(&mut args) })?;
        if args.executable.is_null() {
            return Err(PjrtError::contract("PJRT_LoadedExecutable_GetExecutable returned no executable"));
        }
        let exec = Executable::from_raw(plugin.clone(), args.executable, Some(self.inner.clone()));
        Ok(LoadedExecutable { exec, loaded })
    }

    /// Copies a host array to `device` (row-major, in the dtype's width; bool as one byte per element).
    pub fn buffer_from_host(&self, array: &Array, device: &Device) -> Result<Buffer> {
        if !Arc::ptr_eq(&device.client, &self.inner) {
            return Err(PjrtError::usage("buffer_from_host: the device belongs to another client"));
        }
        let plugin = &self.inner.plugin;
        let f = api_fn!(plugin, PJRT_Client_BufferFromHostBuffer)?;
        let bytes = array.to_le_bytes();
        let dims = to_dims(array.shape())?;
        let mut args = ffi::PJRT_Client_BufferFromHostBuffer_Args::new();
        args.client = self.inner.raw;
        args.data = bytes.as_ptr().cast();
        args.type_ = buffer_type(array.dtype());
        args.dims = dims.as_ptr();
        args.num_dims = dims.len();
        args.host_buffer_semantics = ffi::PJRT_HostBufferSemantics_kImmutableOnlyDuringCall;
        args.device = device.raw;
        // SAFETY: valid args, live client and device; `bytes` holds exactly the dense row-major data of `dims` in
        // `type_`, and stays alive until `done_with_host_buffer` has fired (awaited below), although
        // kImmutableOnlyDuringCall lets the runtime drop it when the call returns.
        plugin.check(unsafe { f(&mut args) })?;
        let buffer = (!args.buffer.is_null()).then(|| Buffer { client: self.inner.clone(), raw: args.buffer });
        plugin.await_event(args.done_with_host_buffer)?;
        drop(bytes);
        buffer.ok_or_else(|| PjrtError::contract("PJRT_Client_BufferFromHostBuffer returned no buffer"))
    }
}

/// Copies a plugin-owned device array.
///
/// # Safety
/// `devices` must be null or point to `n` device pointers, alive for this call.
pub(crate) unsafe fn device_list(devices: *const *mut ffi::PJRT_Device, n: usize) -> Vec<*mut ffi::PJRT_Device> {
    if devices.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(devices, n) }.to_vec()
}

pub(crate) fn to_dims(shape: &[usize]) -> Result<Vec<i64>> {
    shape
        .iter()
        .map(|&d| i64::try_from(d).map_err(|_| PjrtError::usage(format!("dimension {d} does not fit in i64"))))
        .collect()
}

/// A device of a client (owned by the client, which it keeps alive).
#[derive(Clone)]
pub struct Device {
    pub(crate) client: Arc<ClientInner>,
    pub(crate) raw: *mut ffi::PJRT_Device,
}

// SAFETY: a device handle is an immutable, client-owned object; its accessors are thread-safe.
unsafe impl Send for Device {}
// SAFETY: as above.
unsafe impl Sync for Device {}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device").field("id", &self.id().ok()).field("kind", &self.kind().ok()).finish()
    }
}

impl Device {
    fn description(&self) -> Result<*mut ffi::PJRT_DeviceDescription> {
        let plugin = &self.client.plugin;
        let f = api_fn!(plugin, PJRT_Device_GetDescription)?;
        let mut args = ffi::PJRT_Device_GetDescription_Args::new();
        args.device = self.raw;
        // SAFETY: valid args, live device; the description is owned by the device.
        plugin.check(unsafe { f(&mut args) })?;
        Ok(args.device_description)
    }

    /// The device id (unique among the client's devices).
    pub fn id(&self) -> Result<i32> {
        let plugin = &self.client.plugin;
        let f = api_fn!(plugin, PJRT_DeviceDescription_Id)?;
        let mut args = ffi::PJRT_DeviceDescription_Id_Args::new();
        args.device_description = self.description()?;
        // SAFETY: valid args, live device description.
        plugin.check(unsafe { f(&mut args) })?;
        Ok(args.id)
    }

    /// The device kind, e.g. `"cpu"` or `"TPU v5 lite"`.
    pub fn kind(&self) -> Result<String> {
        device_kind(&self.client.plugin, self.description()?)
    }
}

pub(crate) fn device_kind(plugin: &Plugin, description: *mut ffi::PJRT_DeviceDescription) -> Result<String> {
    let f = api_fn!(plugin, PJRT_DeviceDescription_Kind)?;
    let mut args = ffi::PJRT_DeviceDescription_Kind_Args::new();
    args.device_description = description;
    // SAFETY: valid args, live description (owned by a device or topology the caller holds); the string is
    // copied right away.
    unsafe {
        plugin.check(f(&mut args))?;
        Ok(lossy_string(args.device_kind, args.device_kind_size))
    }
}

/// An array on a device. Dropping it frees the device memory.
pub struct Buffer {
    pub(crate) client: Arc<ClientInner>,
    pub(crate) raw: *mut ffi::PJRT_Buffer,
}

// SAFETY: PJRT buffers are thread-safe (xla::PjRtBuffer); `raw` is only passed to the plugin.
unsafe impl Send for Buffer {}
// SAFETY: as above.
unsafe impl Sync for Buffer {}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer").field("dtype", &self.dtype().ok()).field("shape", &self.shape().ok()).finish()
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let plugin = &self.client.plugin;
        if let Ok(f) = api_fn!(plugin, PJRT_Buffer_Destroy) {
            let mut args = ffi::PJRT_Buffer_Destroy_Args::new();
            args.buffer = self.raw;
            // SAFETY: `raw` is a live buffer of this client, destroyed exactly once.
            let _ = plugin.check(unsafe { f(&mut args) });
        }
    }
}

impl Buffer {
    /// The element type as a raw `PJRT_Buffer_Type`.
    pub fn buffer_type(&self) -> Result<ffi::PJRT_Buffer_Type> {
        let plugin = &self.client.plugin;
        let f = api_fn!(plugin, PJRT_Buffer_ElementType)?;
        let mut args = ffi::PJRT_Buffer_ElementType_Args::new();
        args.buffer = self.raw;
        // SAFETY: valid args, live buffer.
        plugin.check(unsafe { f(&mut args) })?;
        Ok(args.type_)
    }

    /// The element type; an error for PJRT types rpa has no [`DType`] for (f64, s64, ...).
    pub fn dtype(&self) -> Result<DType> {
        let t = self.buffer_type()?;
        dtype_of_buffer_type(t)
            .ok_or_else(|| PjrtError::usage(format!("PJRT buffer type {t} has no rpa DType (see pjrt::ffi)")))
    }

    pub fn shape(&self) -> Result<Vec<usize>> {
        let plugin = &self.client.plugin;
        let f = api_fn!(plugin, PJRT_Buffer_Dimensions)?;
        let mut args = ffi::PJRT_Buffer_Dimensions_Args::new();
        args.buffer = self.raw;
        // SAFETY: valid args, live buffer; the dims array is owned by the buffer and copied right away.
        let dims = unsafe {
            plugin.check(f(&mut args))?;
            if args.dims.is_null() || args.num_dims == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(args.dims, args.num_dims).to_vec()
            }
        };
        dims.into_iter()
            .map(|d| usize::try_from(d).map_err(|_| PjrtError::usage(format!("negative buffer dimension {d}"))))
            .collect()
    }

    /// Copies the buffer to the host (waiting for it to be computed) as a dense row-major [`Array`].
    pub fn to_host(&self) -> Result<Array> {
        let dtype = self.dtype()?;
        let shape = self.shape()?;
        let plugin = &self.client.plugin;
        let f = api_fn!(plugin, PJRT_Buffer_ToHostBuffer)?;

        // Ask for the dense row-major layout explicitly (minor_to_major = [rank-1, ..., 0], no tiles), whatever
        // the device layout is.
        let minor_to_major: Vec<i64> = (0..shape.len() as i64).rev().collect();
        let mut tiled = ffi::PJRT_Buffer_MemoryLayout_Tiled::new();
        tiled.minor_to_major = minor_to_major.as_ptr();
        tiled.minor_to_major_size = minor_to_major.len();
        let mut layout = ffi::PJRT_Buffer_MemoryLayout::new();
        layout.layout.tiled = std::mem::ManuallyDrop::new(tiled);
        layout.type_ = ffi::PJRT_Buffer_MemoryLayout_Type_Tiled;

        let mut args = ffi::PJRT_Buffer_ToHostBuffer_Args::new();
        args.src = self.raw;
        args.host_layout = &mut layout;
        // First call with dst = null: the plugin reports the size it needs.
        // SAFETY: valid args, live buffer, `layout` and `minor_to_major` outlive the call.
        plugin.check(unsafe { f(&mut args) })?;
        plugin.await_event(args.event)?;
        let expected = shape.iter().product::<usize>() * dtype.bytes();
        if args.dst_size != expected {
            return Err(PjrtError::unsupported(format!(
                "to_host: the plugin needs {} bytes for {dtype}{shape:?}, a dense array has {expected}",
                args.dst_size
            )));
        }
        let mut bytes = vec![0u8; expected];
        args.dst = bytes.as_mut_ptr().cast();
        args.dst_size = bytes.len();
        args.event = std::ptr::null_mut();
        // SAFETY: as above; `bytes` has `dst_size` writable bytes and is neither read nor freed until the copy's
        // event has been awaited (below, also on error paths: `await_event` returns only once the event is ready).
        let copied = plugin.check(unsafe { f(&mut args) });
        let awaited = plugin.await_event(args.event);
        copied.and(awaited)?;
        Ok(Array::from_le_bytes(dtype, &shape, &bytes))
    }
}
