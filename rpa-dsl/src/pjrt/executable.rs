//! Compile options, executables (compiled, and loaded on a client), topologies and ahead-of-time compilation.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::client::{device_kind, device_list, Buffer, ClientInner, Device};
use super::{api_fn, ffi, lossy_string, proto, read_named_values, NamedValue, PjrtError, Plugin, RawNamedValues};
use super::{dtype_of_buffer_type, Result};
use crate::DType;

// ------------------------------------------------------------------------------------------------ compile options

/// A value of `CompileOptionsProto.env_option_overrides` (XLA / backend flags, e.g. `xla_cpu_...`).
#[derive(Clone, Debug, PartialEq)]
pub enum OptionOverride {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
}

/// The compile options PJRT needs (a serialized `xla.CompileOptionsProto`).
///
/// XLA aborts the process on an empty proto (`replica_count > 0`), so `num_replicas` and `num_partitions` are
/// always written.
#[derive(Clone, Debug, PartialEq)]
pub struct CompileOptions {
    pub num_replicas: i64,
    pub num_partitions: i64,
    /// The device to build for; `-1` (the default) lets the client choose.
    pub device_ordinal: i64,
    /// Flag overrides, e.g. `("xla_cpu_enable_fast_math", OptionOverride::Bool(false))`.
    pub env_option_overrides: Vec<(String, OptionOverride)>,
    /// Partition the program with XLA's SPMD partitioner (for `num_partitions > 1`).
    pub use_spmd_partitioning: bool,
    /// Partition with Shardy (for modules whose shardings are Shardy's `sdy` ops).
    pub use_shardy_partitioner: bool,
    /// The device id of each partition (one replica); empty: the client chooses.
    pub device_assignment: Vec<i64>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            num_replicas: 1,
            num_partitions: 1,
            device_ordinal: -1,
            env_option_overrides: Vec::new(),
            use_spmd_partitioning: false,
            use_shardy_partitioner: false,
            device_assignment: Vec::new(),
        }
    }
}

impl CompileOptions {
    /// The serialized `xla.CompileOptionsProto` (see `proto.rs` for the field numbers).
    pub fn to_proto(&self) -> Vec<u8> {
        let mut w = proto::Writer::default();
        // executable_build_options = 3: ExecutableBuildOptionsProto
        w.message(3, |b| {
            b.int64(1, self.device_ordinal); // device_ordinal
            b.int64(4, self.num_replicas); // num_replicas
            b.int64(5, self.num_partitions); // num_partitions
            if self.use_spmd_partitioning {
                b.bool(6, true); // use_spmd_partitioning
            }
            if !self.device_assignment.is_empty() {
                // device_assignment = 9: DeviceAssignmentProto { replica_count = 1, computation_count = 2,
                // computation_devices = 3: repeated { replica_device_ids = 1 } }
                b.message(9, |d| {
                    d.int64(1, 1);
                    d.int64(2, self.device_assignment.len() as i64);
                    for &id in &self.device_assignment {
                        d.message(3, |c| c.int64(1, id));
                    }
                });
            }
            if self.use_shardy_partitioner {
                b.bool(19, true); // use_shardy_partitioner
            }
        });
        // env_option_overrides = 7: map<string, OptionOverrideProto>, one entry message {key = 1, value = 2} each
        for (key, value) in &self.env_option_overrides {
            w.message(7, |entry| {
                entry.string(1, key);
                entry.message(2, |v| match value {
                    OptionOverride::String(s) => v.string(1, s),
                    OptionOverride::Bool(b) => v.bool(2, *b),
                    OptionOverride::Int(i) => v.int64(3, *i),
                    OptionOverride::Double(d) => v.double(4, *d),
                });
            });
        }
        w.into_bytes()
    }
}

/// A `PJRT_Program` in the "mlir" format (text or bytecode), with storage that outlives the call it is used in.
pub(crate) struct Program {
    _code: Vec<u8>,
    raw: ffi::PJRT_Program,
}

const MLIR_FORMAT: &str = "mlir";

impl Program {
    pub(crate) fn mlir(code: &[u8]) -> Program {
        // A private copy: `PJRT_Program.code` is a mutable `char*`.
        let mut code = code.to_vec();
        let mut raw = ffi::PJRT_Program::new();
        raw.code = code.as_mut_ptr().cast();
        raw.code_size = code.len();
        raw.format = MLIR_FORMAT.as_ptr().cast();
        raw.format_size = MLIR_FORMAT.len();
        Program { _code: code, raw }
    }

    pub(crate) fn raw(&self) -> *const ffi::PJRT_Program {
        &self.raw
    }
}

// ------------------------------------------------------------------------------------------------ executables

/// Memory use of a compiled executable (`PJRT_Executable_GetCompiledMemoryStats`). Fields the plugin's API
/// version does not have are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompiledMemoryStats {
    pub generated_code_size_in_bytes: i64,
    pub argument_size_in_bytes: i64,
    pub output_size_in_bytes: i64,
    pub alias_size_in_bytes: i64,
    pub temp_size_in_bytes: i64,
    pub host_generated_code_size_in_bytes: i64,
    pub host_argument_size_in_bytes: i64,
    pub host_output_size_in_bytes: i64,
    pub host_alias_size_in_bytes: i64,
    pub host_temp_size_in_bytes: i64,
    /// API >= 0.72.
    pub peak_memory_in_bytes: Option<i64>,
    /// API >= 0.90.
    pub total_size_in_bytes: Option<i64>,
    /// API >= 0.104.
    pub total_allocation_bytes: Option<i64>,
    /// API >= 0.104.
    pub indefinite_allocations: Option<i64>,
    /// API >= 0.104.
    pub peak_unpadded_heap_bytes: Option<i64>,
}

/// A compiled program (`PJRT_Executable`): introspection and serialization. Returned by
/// [`compile_for_topology`]; a [`LoadedExecutable`] derefs to one.
pub struct Executable {
    plugin: Arc<Plugin>,
    raw: *mut ffi::PJRT_Executable,
    /// The client of the loaded executable this one was obtained from, kept alive.
    _client: Option<Arc<ClientInner>>,
}

// SAFETY: a compiled executable is immutable; PJRT's accessors on it are thread-safe.
unsafe impl Send for Executable {}
// SAFETY: as above.
unsafe impl Sync for Executable {}

impl Drop for Executable {
    fn drop(&mut self) {
        if let Ok(f) = api_fn!(self.plugin, PJRT_Executable_Destroy) {
            let mut args = ffi::PJRT_Executable_Destroy_Args::new();
            args.executable = self.raw;
            // SAFETY: `raw` is a live executable, destroyed exactly once.
            let _ = self.plugin.check(unsafe { f(&mut args) });
        }
    }
}

impl fmt::Debug for Executable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executable").field("name", &self.name().ok()).finish_non_exhaustive()
    }
}

impl Executable {
    pub(crate) fn from_raw(
        plugin: Arc<Plugin>,
        raw: *mut ffi::PJRT_Executable,
        client: Option<Arc<ClientInner>>,
    ) -> Executable {
        Executable { plugin, raw, _client: client }
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// The module name.
    pub fn name(&self) -> Result<String> {
        let f = api_fn!(self.plugin, PJRT_Executable_Name)?;
        let mut args = ffi::PJRT_Executable_Name_Args::new();
        args.executable = self.raw;
        // SAFETY: valid args, live executable; the name is owned by the executable and copied right away.
        unsafe {
            self.plugin.check(f(&mut args))?;
            Ok(lossy_string(args.executable_name, args.executable_name_size))
        }
    }

    /// Outputs per device.
    pub fn num_outputs(&self) -> Result<usize> {
        let f = api_fn!(self.plugin, PJRT_Executable_NumOutputs)?;
        let mut args = ffi::PJRT_Executable_NumOutputs_Args::new();
        args.executable = self.raw;
        // SAFETY: valid args, live executable.
        self.plugin.check(unsafe { f(&mut args) })?;
        Ok(args.num_outputs)
    }

    /// Size of the generated code in bytes (`PJRT_Executable_SizeOfGeneratedCodeInBytes`; may be -1 when the
    /// backend does not know).
    pub fn code_size(&self) -> Result<i64> {
        let f = api_fn!(self.plugin, PJRT_Executable_SizeOfGeneratedCodeInBytes)?;
        let mut args = ffi::PJRT_Executable_SizeOfGeneratedCodeInBytes_Args::new();
        args.executable = self.raw;
        // SAFETY: valid args, live executable.
        self.plugin.check(unsafe { f(&mut args) })?;
        Ok(args.size_in_bytes)
    }

    /// The compiler's cost analysis (e.g. `flops`, `bytes accessed`, `utilization*`), as named values.
    pub fn cost_analysis(&self) -> Result<BTreeMap<String, NamedValue>> {
        let f = api_fn!(self.plugin, PJRT_Executable_GetCostAnalysis)?;
        let mut args = ffi::PJRT_Executable_GetCostAnalysis_Args::new();
        args.executable = self.raw;
        // SAFETY: valid args, live executable; the properties are owned by the executable (alive while `self`
        // is) and copied right away.
        unsafe {
            self.plugin.check(f(&mut args))?;
            read_named_values(args.properties, args.num_properties)
        }
    }

    /// Compiled memory statistics (`PJRT_Executable_GetCompiledMemoryStats`).
    pub fn memory_stats(&self) -> Result<CompiledMemoryStats> {
        let f = api_fn!(self.plugin, PJRT_Executable_GetCompiledMemoryStats)?;
        let mut a = ffi::PJRT_Executable_GetCompiledMemoryStats_Args::new();
        a.executable = self.raw;
        // SAFETY: valid args, live executable; the plugin writes only fields it knows, all within our struct.
        self.plugin.check(unsafe { f(&mut a) })?;
        let minor = self.plugin.api_version().minor;
        let since = |v: i32, x: i64| (minor >= v).then_some(x);
        Ok(CompiledMemoryStats {
            generated_code_size_in_bytes: a.generated_code_size_in_bytes,
            argument_size_in_bytes: a.argument_size_in_bytes,
            output_size_in_bytes: a.output_size_in_bytes,
            alias_size_in_bytes: a.alias_size_in_bytes,
            temp_size_in_bytes: a.temp_size_in_bytes,
            host_generated_code_size_in_bytes: a.host_generated_code_size_in_bytes,
            host_argument_size_in_bytes: a.host_argument_size_in_bytes,
            host_output_size_in_bytes: a.host_output_size_in_bytes,
            host_alias_size_in_bytes: a.host_alias_size_in_bytes,
            host_temp_size_in_bytes: a.host_temp_size_in_bytes,
            peak_memory_in_bytes: since(72, a.peak_memory_in_bytes),
            total_size_in_bytes: since(90, a.total_size_in_bytes),
            total_allocation_bytes: since(104, a.total_allocation_bytes),
            indefinite_allocations: since(104, a.indefinite_allocations),
            peak_unpadded_heap_bytes: since(104, a.peak_unpadded_heap_bytes),
        })
    }

    /// Element types of the outputs (raw `PJRT_Buffer_Type`s; see [`dtype_of_buffer_type`]).
    pub fn output_buffer_types(&self) -> Result<Vec<ffi::PJRT_Buffer_Type>> {
        let f = api_fn!(self.plugin, PJRT_Executable_OutputElementTypes)?;
        let mut args = ffi::PJRT_Executable_OutputElementTypes_Args::new();
        args.executable = self.raw;
        // SAFETY: valid args, live executable; the array is owned by the executable and copied right away.
        unsafe {
            self.plugin.check(f(&mut args))?;
            Ok(if args.output_types.is_null() || args.num_output_types == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(args.output_types, args.num_output_types).to_vec()
            })
        }
    }

    /// Output dtypes (`None` for a PJRT type rpa has no [`DType`] for).
    pub fn output_dtypes(&self) -> Result<Vec<Option<DType>>> {
        Ok(self.output_buffer_types()?.into_iter().map(dtype_of_buffer_type).collect())
    }

    /// Output shapes.
    pub fn output_shapes(&self) -> Result<Vec<Vec<i64>>> {
        let f = api_fn!(self.plugin, PJRT_Executable_OutputDimensions)?;
        let mut args = ffi::PJRT_Executable_OutputDimensions_Args::new();
        args.executable = self.raw;
        // SAFETY: valid args, live executable; `dim_sizes` has `num_outputs` entries and `dims` their sum, owned
        // by the executable and copied right away.
        unsafe {
            self.plugin.check(f(&mut args))?;
            if args.num_outputs == 0 || args.dim_sizes.is_null() {
                return Ok(Vec::new());
            }
            let sizes = std::slice::from_raw_parts(args.dim_sizes, args.num_outputs);
            let total: usize = sizes.iter().sum();
            let dims =
                if total == 0 || args.dims.is_null() { &[][..] } else { std::slice::from_raw_parts(args.dims, total) };
            let mut out = Vec::with_capacity(sizes.len());
            let mut at = 0;
            for &n in sizes {
                out.push(dims[at..at + n].to_vec());
                at += n;
            }
            Ok(out)
        }
    }

    /// The plugin's serialization of the executable (`PJRT_Executable_Serialize`).
    pub fn serialize(&self) -> Result<Vec<u8>> {
        let f = api_fn!(self.plugin, PJRT_Executable_Serialize)?;
        let mut args = ffi::PJRT_Executable_Serialize_Args::new();
        args.executable = self.raw;
        // SAFETY: valid args, live executable; the bytes live as long as `serialized_executable`, which we free
        // with the plugin's deleter exactly once, after copying them.
        unsafe {
            self.plugin.check(f(&mut args))?;
            let bytes = if args.serialized_bytes.is_null() || args.serialized_bytes_size == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(args.serialized_bytes.cast::<u8>(), args.serialized_bytes_size).to_vec()
            };
            if let (Some(deleter), false) = (args.serialized_executable_deleter, args.serialized_executable.is_null()) {
                deleter(args.serialized_executable);
            }
            Ok(bytes)
        }
    }

    /// The optimized program (`PJRT_Executable_OptimizedProgram`): its format (XLA's is `"hlo"`, a
    /// serialized `HloModuleProto`) and bytes.
    pub fn optimized_program(&self) -> Result<(String, Vec<u8>)> {
        let f = api_fn!(self.plugin, PJRT_Executable_OptimizedProgram)?;
        let mut program = ffi::PJRT_Program::new();
        let mut args = ffi::PJRT_Executable_OptimizedProgram_Args::new();
        args.executable = self.raw;
        args.program = &mut program;
        // SAFETY: valid args, live executable; with a null `code` the plugin only sets `code_size` and the
        // (plugin-owned) format.
        self.plugin.check(unsafe { f(&mut args) })?;
        let mut code = vec![0u8; program.code_size];
        program.code = code.as_mut_ptr().cast();
        // SAFETY: as above; `code` has `code_size` writable bytes for the plugin to fill, alive for the call.
        self.plugin.check(unsafe { f(&mut args) })?;
        // SAFETY: the format is owned by the executable, alive while `self` is.
        let format = unsafe { lossy_string(program.format, program.format_size) };
        code.truncate(program.code_size);
        Ok((format, code))
    }

    /// How many instructions of each of `opcodes` (HLO opcode names, e.g. `"all-reduce"`) the
    /// optimized program has, read from its `HloModuleProto` (`HloInstructionProto.opcode` is
    /// field 2, a string: the bytes `0x12, len, name`).
    pub fn count_opcodes(&self, opcodes: &[&str]) -> Result<Vec<usize>> {
        let (_, proto) = self.optimized_program()?;
        Ok(opcodes
            .iter()
            .map(|op| {
                let mut pattern = vec![0x12, op.len() as u8];
                pattern.extend_from_slice(op.as_bytes());
                proto.windows(pattern.len()).filter(|w| *w == pattern.as_slice()).count()
            })
            .collect())
    }

    /// The size of [`Executable::serialize`]'s output.
    pub fn serialized_size(&self) -> Result<usize> {
        Ok(self.serialize()?.len())
    }
}

// ------------------------------------------------------------------------------------------------ loaded executables

/// Owns a `PJRT_LoadedExecutable*` and keeps its client alive.
pub(crate) struct LoadedHandle {
    pub(crate) client: Arc<ClientInner>,
    pub(crate) raw: *mut ffi::PJRT_LoadedExecutable,
}

impl Drop for LoadedHandle {
    fn drop(&mut self) {
        let plugin = &self.client.plugin;
        if let Ok(f) = api_fn!(plugin, PJRT_LoadedExecutable_Destroy) {
            let mut args = ffi::PJRT_LoadedExecutable_Destroy_Args::new();
            args.executable = self.raw;
            // SAFETY: `raw` is a live loaded executable, destroyed exactly once.
            let _ = plugin.check(unsafe { f(&mut args) });
        }
    }
}

/// An executable loaded on a client's device(s), ready to run. Derefs to [`Executable`] for introspection.
pub struct LoadedExecutable {
    // Field order is drop order: the `PJRT_Executable` view goes before the loaded executable it came from.
    pub(crate) exec: Executable,
    pub(crate) loaded: LoadedHandle,
}

// SAFETY: `xla::PjRtLoadedExecutable::Execute` and the accessors are thread-safe.
unsafe impl Send for LoadedExecutable {}
// SAFETY: as above.
unsafe impl Sync for LoadedExecutable {}

impl Deref for LoadedExecutable {
    type Target = Executable;
    fn deref(&self) -> &Executable {
        &self.exec
    }
}

impl fmt::Debug for LoadedExecutable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedExecutable").field("name", &self.name().ok()).finish_non_exhaustive()
    }
}

impl LoadedExecutable {
    /// Runs on the (single) device it was compiled for and waits for completion. Inputs are never donated:
    /// they stay valid.
    pub fn execute(&self, args: &[&Buffer]) -> Result<Vec<Buffer>> {
        self.run(args, false)
    }

    /// Like [`LoadedExecutable::execute`], but the inputs may be donated to outputs that alias them (per the
    /// module's `tf.aliasing_output` / `jax.buffer_donor` attributes), saving a copy; the inputs are consumed.
    pub fn execute_donating(&self, args: Vec<Buffer>) -> Result<Vec<Buffer>> {
        let refs: Vec<&Buffer> = args.iter().collect();
        self.run(&refs, true)
    }

    fn run(&self, args: &[&Buffer], donate: bool) -> Result<Vec<Buffer>> {
        let mut outs = self.run_on_devices(&[args.to_vec()], donate, std::ptr::null_mut())?;
        Ok(outs.pop().unwrap_or_default())
    }

    /// The devices the executable runs on (one per partition), in the order of
    /// [`LoadedExecutable::execute_sharded`]'s argument lists.
    pub fn addressable_devices(&self) -> Result<Vec<Device>> {
        let client = &self.loaded.client;
        let f = api_fn!(client.plugin, PJRT_LoadedExecutable_AddressableDevices)?;
        let mut args = ffi::PJRT_LoadedExecutable_AddressableDevices_Args::new();
        args.executable = self.loaded.raw;
        // SAFETY: valid args, live loaded executable; the device array is owned by it and copied right away.
        let raw = unsafe {
            client.plugin.check(f(&mut args))?;
            device_list(args.addressable_devices, args.num_addressable_devices)
        };
        Ok(raw.into_iter().map(|raw| Device { client: client.clone(), raw }).collect())
    }

    /// Runs on every device of the executable at once (an SPMD program compiled with
    /// `num_partitions > 1`) and waits for all of them: `args[i]` are the arguments of
    /// [`LoadedExecutable::addressable_devices`]`[i]`, each on that device. Returns each device's
    /// outputs. Inputs are never donated.
    pub fn execute_sharded(&self, args: &[Vec<&Buffer>]) -> Result<Vec<Vec<Buffer>>> {
        self.check_lists(args.len())?;
        self.run_on_devices(args, false, std::ptr::null_mut())
    }

    /// [`LoadedExecutable::execute_sharded`], but the inputs may be donated to outputs that alias
    /// them (as in [`LoadedExecutable::execute_donating`]); the inputs are consumed.
    pub fn execute_sharded_donating(&self, args: Vec<Vec<Buffer>>) -> Result<Vec<Vec<Buffer>>> {
        self.check_lists(args.len())?;
        let refs: Vec<Vec<&Buffer>> = args.iter().map(|l| l.iter().collect()).collect();
        self.run_on_devices(&refs, true, std::ptr::null_mut())
    }

    /// One argument list per device of the executable.
    fn check_lists(&self, lists: usize) -> Result<()> {
        let devices = self.addressable_devices()?.len();
        if lists == devices {
            return Ok(());
        }
        Err(PjrtError::usage(format!(
            "execute_sharded: the executable runs on {devices} devices, got {lists} argument lists"
        )))
    }

    fn run_on_devices(
        &self,
        args: &[Vec<&Buffer>],
        donate: bool,
        device: *mut ffi::PJRT_Device,
    ) -> Result<Vec<Vec<Buffer>>> {
        let client = &self.loaded.client;
        let plugin = &client.plugin;
        let num_args = args.first().map_or(0, Vec::len);
        for (d, list) in args.iter().enumerate() {
            if list.len() != num_args {
                return Err(PjrtError::usage(format!(
                    "execute: device {d} has {} arguments, device 0 has {num_args}",
                    list.len()
                )));
            }
            if let Some(i) = list.iter().position(|b| !Arc::ptr_eq(&b.client, client)) {
                return Err(PjrtError::usage(format!("execute: argument {i} is a buffer of another client")));
            }
        }
        let f = api_fn!(plugin, PJRT_LoadedExecutable_Execute)?;
        let num_outputs = self.num_outputs()?;
        let n = args.len();

        let non_donatable: Vec<i64> = if donate { Vec::new() } else { (0..num_args as i64).collect() };
        let mut options = ffi::PJRT_ExecuteOptions::new();
        options.non_donatable_input_indices = non_donatable.as_ptr();
        options.num_non_donatable_input_indices = non_donatable.len();

        let arg_lists: Vec<Vec<*mut ffi::PJRT_Buffer>> =
            args.iter().map(|l| l.iter().map(|b| b.raw).collect()).collect();
        let arg_ptrs: Vec<*const *mut ffi::PJRT_Buffer> = arg_lists.iter().map(|l| l.as_ptr()).collect();
        let mut outputs: Vec<Vec<*mut ffi::PJRT_Buffer>> = vec![vec![std::ptr::null_mut(); num_outputs]; n];
        let output_ptrs: Vec<*mut *mut ffi::PJRT_Buffer> = outputs.iter_mut().map(|l| l.as_mut_ptr()).collect();
        let mut complete: Vec<*mut ffi::PJRT_Event> = vec![std::ptr::null_mut(); n];

        let mut exec_args = ffi::PJRT_LoadedExecutable_Execute_Args::new();
        exec_args.executable = self.loaded.raw;
        exec_args.options = &mut options;
        exec_args.argument_lists = arg_ptrs.as_ptr();
        exec_args.num_devices = n;
        exec_args.num_args = num_args;
        exec_args.output_lists = output_ptrs.as_ptr();
        exec_args.device_complete_events = complete.as_mut_ptr();
        exec_args.execute_device = device;
        // SAFETY: valid args and live loaded executable; the argument buffers are live buffers of the same client
        // (checked above) kept alive by `args`; each of the `n` output lists has room for `num_outputs` buffers;
        // all arrays outlive the call.
        let launched = plugin.check(unsafe { f(&mut exec_args) });
        // Take ownership of whatever outputs were produced, so they are freed on every path.
        let outputs: Vec<Vec<Buffer>> = outputs
            .into_iter()
            .map(|l| l.into_iter().filter(|p| !p.is_null()).map(|raw| Buffer { client: client.clone(), raw }).collect())
            .collect();
        launched?;
        let mut awaited = Ok(());
        for event in complete {
            let r = plugin.await_event(event);
            awaited = awaited.and(r);
        }
        awaited?;
        if let Some(l) = outputs.iter().find(|l| l.len() != num_outputs) {
            return Err(PjrtError::contract(format!("execute: expected {num_outputs} outputs, got {}", l.len())));
        }
        Ok(outputs)
    }
}

// ------------------------------------------------------------------------------------------------ topologies

/// A device topology for ahead-of-time compilation (`PJRT_TopologyDescription`), e.g. libtpu's `"v5e:1x1"`.
pub struct Topology {
    plugin: Arc<Plugin>,
    raw: *mut ffi::PJRT_TopologyDescription,
}

// SAFETY: a topology description is immutable after creation; its accessors are thread-safe.
unsafe impl Send for Topology {}
// SAFETY: as above.
unsafe impl Sync for Topology {}

impl Drop for Topology {
    fn drop(&mut self) {
        if let Ok(f) = api_fn!(self.plugin, PJRT_TopologyDescription_Destroy) {
            let mut args = ffi::PJRT_TopologyDescription_Destroy_Args::new();
            args.topology = self.raw;
            // SAFETY: `raw` is a live topology we created, destroyed exactly once.
            let _ = self.plugin.check(unsafe { f(&mut args) });
        }
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topology").field("platform", &self.platform_name().ok()).finish_non_exhaustive()
    }
}

impl Topology {
    /// Creates the topology `name` with platform-specific options (for libtpu e.g.
    /// `[("chips_per_host_bounds", vec![1, 1, 1].into())]`).
    pub fn new(plugin: &Arc<Plugin>, name: &str, options: &[(&str, NamedValue)]) -> Result<Topology> {
        let f = api_fn!(plugin, PJRT_TopologyDescription_Create)?;
        let options = RawNamedValues::new(options);
        let mut args = ffi::PJRT_TopologyDescription_Create_Args::new();
        args.topology_name = name.as_ptr().cast();
        args.topology_name_size = name.len();
        args.create_options = options.as_ptr();
        args.num_options = options.len();
        // SAFETY: valid args; `name` and `options` (with what they point into) outlive the call.
        plugin.check(unsafe { f(&mut args) })?;
        if args.topology.is_null() {
            return Err(PjrtError::contract("PJRT_TopologyDescription_Create returned no topology"));
        }
        Ok(Topology { plugin: plugin.clone(), raw: args.topology })
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    pub fn platform_name(&self) -> Result<String> {
        let f = api_fn!(self.plugin, PJRT_TopologyDescription_PlatformName)?;
        let mut args = ffi::PJRT_TopologyDescription_PlatformName_Args::new();
        args.topology = self.raw;
        // SAFETY: valid args, live topology; the string is owned by the topology and copied right away.
        unsafe {
            self.plugin.check(f(&mut args))?;
            Ok(lossy_string(args.platform_name, args.platform_name_size))
        }
    }

    pub fn platform_version(&self) -> Result<String> {
        let f = api_fn!(self.plugin, PJRT_TopologyDescription_PlatformVersion)?;
        let mut args = ffi::PJRT_TopologyDescription_PlatformVersion_Args::new();
        args.topology = self.raw;
        // SAFETY: as in `platform_name`.
        unsafe {
            self.plugin.check(f(&mut args))?;
            Ok(lossy_string(args.platform_version, args.platform_version_size))
        }
    }

    /// The kind of each device in the topology, e.g. `["TPU v5 lite"]`.
    pub fn device_kinds(&self) -> Result<Vec<String>> {
        let f = api_fn!(self.plugin, PJRT_TopologyDescription_GetDeviceDescriptions)?;
        let mut args = ffi::PJRT_TopologyDescription_GetDeviceDescriptions_Args::new();
        args.topology = self.raw;
        // SAFETY: valid args, live topology; the descriptions are owned by the topology, alive while `self` is.
        let descriptions = unsafe {
            self.plugin.check(f(&mut args))?;
            if args.descriptions.is_null() || args.num_descriptions == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(args.descriptions, args.num_descriptions).to_vec()
            }
        };
        descriptions.into_iter().map(|d| device_kind(&self.plugin, d)).collect()
    }

    /// Compiles an MLIR module for this topology without a client (no device needed).
    pub fn compile(&self, mlir: impl AsRef<[u8]>, options: &CompileOptions) -> Result<Executable> {
        let f = api_fn!(self.plugin, PJRT_Compile)?;
        let program = Program::mlir(mlir.as_ref());
        let options = options.to_proto();
        let mut args = ffi::PJRT_Compile_Args::new();
        args.topology = self.raw;
        args.program = program.raw();
        args.compile_options = options.as_ptr().cast();
        args.compile_options_size = options.len();
        args.client = std::ptr::null_mut();
        // SAFETY: valid args, live topology; `program` and `options` outlive the call; a null client is allowed
        // ("optionally provided for performance-guided optimizations").
        self.plugin.check(unsafe { f(&mut args) })?;
        if args.executable.is_null() {
            return Err(PjrtError::contract("PJRT_Compile returned no executable"));
        }
        Ok(Executable::from_raw(self.plugin.clone(), args.executable, None))
    }
}

/// Compiles `mlir` for `topology` with `plugin` (the topology's plugin) and no client: ahead-of-time compilation.
pub fn compile_for_topology(
    plugin: &Arc<Plugin>,
    topology: &Topology,
    mlir: impl AsRef<[u8]>,
    options: &CompileOptions,
) -> Result<Executable> {
    if !Arc::ptr_eq(plugin, &topology.plugin) {
        return Err(PjrtError::usage("compile_for_topology: the topology belongs to another plugin"));
    }
    topology.compile(mlir, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_compile_options_proto() {
        // CompileOptionsProto { executable_build_options: { device_ordinal: -1, num_replicas: 1, num_partitions: 1 } }
        let mut expected = vec![0x1a, 15, 0x08];
        expected.extend([0xff; 9]);
        expected.extend([0x01, 0x20, 0x01, 0x28, 0x01]);
        assert_eq!(CompileOptions::default().to_proto(), expected);
    }

    #[test]
    fn spmd_options_proto() {
        let opts = CompileOptions {
            device_ordinal: 0,
            num_partitions: 2,
            use_spmd_partitioning: true,
            device_assignment: vec![0, 1],
            ..CompileOptions::default()
        };
        // build options { 1: 0, 4: 1, 5: 2, 6: true, 9: { 1: 1, 2: 2, 3: { 1: 0 }, 3: { 1: 1 } } }
        let build =
            [0x08, 0, 0x20, 1, 0x28, 2, 0x30, 1, 0x4a, 12, 0x08, 1, 0x10, 2, 0x1a, 2, 0x08, 0, 0x1a, 2, 0x08, 1];
        let mut expected = vec![0x1a, build.len() as u8];
        expected.extend(build);
        assert_eq!(opts.to_proto(), expected);
    }

    #[test]
    fn option_overrides_proto() {
        let opts = CompileOptions {
            device_ordinal: 0,
            env_option_overrides: vec![("k".into(), OptionOverride::Int(2))],
            ..CompileOptions::default()
        };
        let bytes = opts.to_proto();
        // ... then field 7 { key = "k", value = { int_field = 2 } }
        assert_eq!(&bytes[bytes.len() - 9..], [0x3a, 7, 0x0a, 1, b'k', 0x12, 2, 0x18, 2]);
    }
}
