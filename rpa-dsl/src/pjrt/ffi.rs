//! `#[repr(C)]` declarations of the subset of the PJRT C API that [`super`] uses.
//!
//! Transcribed from `xla/pjrt/c/pjrt_c_api.h` of openxla/xla at **PJRT_API_MAJOR 0, PJRT_API_MINOR 105**
//! (commit 0c79bedb2270e6b11bd27d6807e39c09bcf50284), and checked against the 0.81 header that ships in the
//! `xla-cpu-pjrt` 0.0.1 wheel: every struct below that did not change between 0.81 and 0.105 has the same
//! `*_STRUCT_SIZE`, and the `PJRT_Api` offsets agree (see the tests at the end of this file).
//!
//! Rules that keep this sound:
//! * Names and field order are the header's, so a declaration can be diffed against it by eye.
//! * C enums are `c_int` aliases (never Rust enums): a plugin may hand back a value this file does not know.
//! * Each argument struct gets `STRUCT_SIZE` = `offsetof(last field) + sizeof(last field)`, exactly the header's
//!   `PJRT_DEFINE_STRUCT_TRAITS`; `new()` zero-fills the struct (valid for every field type used here: integers,
//!   `bool`, raw pointers, `Option<fn>`) and sets `struct_size` to that value, i.e. to *our* declared size.
//!   Plugins accept a caller struct that is at least as large as theirs and read only the fields they know.
//! * `PJRT_Api` lists every function pointer of 0.105, in order. A plugin's table may be shorter (older) or longer
//!   (newer); the caller must check `PJRT_Api.struct_size` before reading a slot (`super::Plugin` does).
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals, dead_code)]

use std::ffi::{c_char, c_int, c_void};
use std::mem::offset_of;

pub const PJRT_API_MAJOR: c_int = 0;
pub const PJRT_API_MINOR: c_int = 105;
/// `PJRT_Api` was rearranged in 0.57 (CHANGELOG: "Rearranged fields in the PJRT_Api"); older tables have another
/// function order, so they must not be read with this declaration.
pub const PJRT_API_MIN_SUPPORTED_MINOR: c_int = 57;

macro_rules! opaque {
    ($($name:ident),* $(,)?) => {$(
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
            _not_send_sync: std::marker::PhantomData<(*mut u8, std::marker::PhantomPinned)>,
        }
    )*};
}

opaque!(
    PJRT_Extension_Base,
    PJRT_Error,
    PJRT_Event,
    PJRT_Client,
    PJRT_Device,
    PJRT_Memory,
    PJRT_DeviceDescription,
    PJRT_TopologyDescription,
    PJRT_Executable,
    PJRT_LoadedExecutable,
    PJRT_Buffer,
    PJRT_SerializedExecutable,
    PJRT_ExecuteContext,
    PJRT_MultiSlice_Config,
    PJRT_SendCallbackInfo,
    PJRT_RecvCallbackInfo,
);

/// Declares a PJRT argument struct: `struct_size` and `extension_start` come first (as in every such struct of
/// the header), then the listed fields; the last listed field is the header's `last_field`.
macro_rules! pjrt_args {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty),* ; $last:ident : $last_ty:ty $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        pub struct $name {
            pub struct_size: usize,
            pub extension_start: *mut PJRT_Extension_Base,
            $(pub $field: $ty,)*
            pub $last: $last_ty,
        }

        impl $name {
            /// `PJRT_STRUCT_SIZE(struct, last_field)` of the header.
            pub const STRUCT_SIZE: usize = offset_of!($name, $last) + std::mem::size_of::<$last_ty>();

            /// All fields zero / null / `None`, `struct_size` = [`Self::STRUCT_SIZE`].
            pub fn new() -> Self {
                // SAFETY: every field is an integer, bool, raw pointer, `Option` of a fn pointer, or a union or
                // struct of those; the all-zero bit pattern is a valid value (0 / false / null / None) for each.
                let mut s: Self = unsafe { std::mem::zeroed() };
                s.struct_size = Self::STRUCT_SIZE;
                s
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

// ------------------------------------------------------------------ enums (as c_int)

pub type PJRT_Error_Code = c_int;
pub type PJRT_NamedValue_Type = c_int;
pub const PJRT_NamedValue_kString: PJRT_NamedValue_Type = 0;
pub const PJRT_NamedValue_kInt64: PJRT_NamedValue_Type = 1;
pub const PJRT_NamedValue_kInt64List: PJRT_NamedValue_Type = 2;
pub const PJRT_NamedValue_kFloat: PJRT_NamedValue_Type = 3;
pub const PJRT_NamedValue_kBool: PJRT_NamedValue_Type = 4;

pub type PJRT_Buffer_Type = c_int;
pub const PJRT_Buffer_Type_INVALID: PJRT_Buffer_Type = 0;
pub const PJRT_Buffer_Type_PRED: PJRT_Buffer_Type = 1;
pub const PJRT_Buffer_Type_S8: PJRT_Buffer_Type = 2;
pub const PJRT_Buffer_Type_S16: PJRT_Buffer_Type = 3;
pub const PJRT_Buffer_Type_S32: PJRT_Buffer_Type = 4;
pub const PJRT_Buffer_Type_S64: PJRT_Buffer_Type = 5;
pub const PJRT_Buffer_Type_U8: PJRT_Buffer_Type = 6;
pub const PJRT_Buffer_Type_U16: PJRT_Buffer_Type = 7;
pub const PJRT_Buffer_Type_U32: PJRT_Buffer_Type = 8;
pub const PJRT_Buffer_Type_U64: PJRT_Buffer_Type = 9;
pub const PJRT_Buffer_Type_F16: PJRT_Buffer_Type = 10;
pub const PJRT_Buffer_Type_F32: PJRT_Buffer_Type = 11;
pub const PJRT_Buffer_Type_F64: PJRT_Buffer_Type = 12;
pub const PJRT_Buffer_Type_BF16: PJRT_Buffer_Type = 13;
pub const PJRT_Buffer_Type_C64: PJRT_Buffer_Type = 14;
pub const PJRT_Buffer_Type_C128: PJRT_Buffer_Type = 15;
pub const PJRT_Buffer_Type_F8E5M2: PJRT_Buffer_Type = 16;
pub const PJRT_Buffer_Type_F8E4M3FN: PJRT_Buffer_Type = 17;
pub const PJRT_Buffer_Type_F8E4M3B11FNUZ: PJRT_Buffer_Type = 18;
pub const PJRT_Buffer_Type_F8E5M2FNUZ: PJRT_Buffer_Type = 19;
pub const PJRT_Buffer_Type_F8E4M3FNUZ: PJRT_Buffer_Type = 20;
pub const PJRT_Buffer_Type_S4: PJRT_Buffer_Type = 21;
pub const PJRT_Buffer_Type_U4: PJRT_Buffer_Type = 22;
pub const PJRT_Buffer_Type_TOKEN: PJRT_Buffer_Type = 23;
pub const PJRT_Buffer_Type_S2: PJRT_Buffer_Type = 24;
pub const PJRT_Buffer_Type_U2: PJRT_Buffer_Type = 25;
pub const PJRT_Buffer_Type_F8E4M3: PJRT_Buffer_Type = 26;
pub const PJRT_Buffer_Type_F8E3M4: PJRT_Buffer_Type = 27;
pub const PJRT_Buffer_Type_F8E8M0FNU: PJRT_Buffer_Type = 28;
pub const PJRT_Buffer_Type_F4E2M1FN: PJRT_Buffer_Type = 29;
pub const PJRT_Buffer_Type_S1: PJRT_Buffer_Type = 30;
pub const PJRT_Buffer_Type_U1: PJRT_Buffer_Type = 31;

pub type PJRT_HostBufferSemantics = c_int;
pub const PJRT_HostBufferSemantics_kImmutableOnlyDuringCall: PJRT_HostBufferSemantics = 0;
pub const PJRT_HostBufferSemantics_kImmutableUntilTransferCompletes: PJRT_HostBufferSemantics = 1;
pub const PJRT_HostBufferSemantics_kImmutableZeroCopy: PJRT_HostBufferSemantics = 2;
pub const PJRT_HostBufferSemantics_kMutableZeroCopy: PJRT_HostBufferSemantics = 3;

pub type PJRT_Buffer_MemoryLayout_Type = c_int;
pub const PJRT_Buffer_MemoryLayout_Type_Tiled: PJRT_Buffer_MemoryLayout_Type = 0;
pub const PJRT_Buffer_MemoryLayout_Type_Strides: PJRT_Buffer_MemoryLayout_Type = 1;

// ------------------------------------------------------------------ version, errors, named values

#[repr(C)]
pub struct PJRT_Api_Version {
    pub struct_size: usize,
    pub extension_start: *mut PJRT_Extension_Base,
    pub major_version: c_int,
    pub minor_version: c_int,
}

pjrt_args!(PJRT_Error_Destroy_Args { ; error: *mut PJRT_Error });
pjrt_args!(PJRT_Error_Message_Args { error: *const PJRT_Error, message: *const c_char; message_size: usize });
pjrt_args!(PJRT_Error_GetCode_Args { error: *const PJRT_Error; code: PJRT_Error_Code });

#[repr(C)]
#[derive(Clone, Copy)]
pub union PJRT_NamedValue_Value {
    pub string_value: *const c_char,
    pub int64_value: i64,
    pub int64_array_value: *const i64,
    pub float_value: f32,
    /// C `bool`; read as a byte so that no value a plugin writes can be an invalid Rust `bool`.
    pub bool_value: u8,
}

pjrt_args!(PJRT_NamedValue {
    name: *const c_char,
    name_size: usize,
    type_: PJRT_NamedValue_Type,
    value: PJRT_NamedValue_Value;
    value_size: usize
});

// ------------------------------------------------------------------ plugin, events

pjrt_args!(PJRT_Plugin_Initialize_Args { ; _no_fields: [u8; 0] });
pjrt_args!(PJRT_Plugin_Attributes_Args { attributes: *const PJRT_NamedValue; num_attributes: usize });
pjrt_args!(PJRT_Event_Destroy_Args { ; event: *mut PJRT_Event });
pjrt_args!(PJRT_Event_Await_Args { ; event: *mut PJRT_Event });

// ------------------------------------------------------------------ client

/// Placeholder for callback pointers this binding always passes as null.
pub type Callback = Option<unsafe extern "C" fn()>;

pjrt_args!(PJRT_Client_Create_Args {
    create_options: *const PJRT_NamedValue,
    num_options: usize,
    kv_get_callback: Callback,
    kv_get_user_arg: *mut c_void,
    kv_put_callback: Callback,
    kv_put_user_arg: *mut c_void,
    client: *mut PJRT_Client,
    kv_try_get_callback: Callback;
    kv_try_get_user_arg: *mut c_void
});
pjrt_args!(PJRT_Client_Destroy_Args { ; client: *mut PJRT_Client });
pjrt_args!(PJRT_Client_PlatformName_Args {
    client: *mut PJRT_Client,
    platform_name: *const c_char;
    platform_name_size: usize
});
pjrt_args!(PJRT_Client_PlatformVersion_Args {
    client: *mut PJRT_Client,
    platform_version: *const c_char;
    platform_version_size: usize
});
pjrt_args!(PJRT_Client_Devices_Args {
    client: *mut PJRT_Client,
    devices: *const *mut PJRT_Device;
    num_devices: usize
});
pjrt_args!(PJRT_Client_AddressableDevices_Args {
    client: *mut PJRT_Client,
    addressable_devices: *const *mut PJRT_Device;
    num_addressable_devices: usize
});
pjrt_args!(PJRT_Program { code: *mut c_char, code_size: usize, format: *const c_char; format_size: usize });
pjrt_args!(PJRT_Client_Compile_Args {
    client: *mut PJRT_Client,
    program: *const PJRT_Program,
    compile_options: *const c_char,
    compile_options_size: usize;
    executable: *mut PJRT_LoadedExecutable
});

pjrt_args!(PJRT_Buffer_MemoryLayout_Tiled {
    minor_to_major: *const i64,
    minor_to_major_size: usize,
    tile_dims: *const i64,
    tile_dim_sizes: *const usize;
    num_tiles: usize
});
pjrt_args!(PJRT_Buffer_MemoryLayout_Strides { byte_strides: *const i64; num_byte_strides: usize });

#[repr(C)]
pub union PJRT_Buffer_MemoryLayout_Union {
    pub tiled: std::mem::ManuallyDrop<PJRT_Buffer_MemoryLayout_Tiled>,
    pub strides: std::mem::ManuallyDrop<PJRT_Buffer_MemoryLayout_Strides>,
}

pjrt_args!(PJRT_Buffer_MemoryLayout { layout: PJRT_Buffer_MemoryLayout_Union; type_: PJRT_Buffer_MemoryLayout_Type });

pjrt_args!(PJRT_Client_BufferFromHostBuffer_Args {
    client: *mut PJRT_Client,
    data: *const c_void,
    type_: PJRT_Buffer_Type,
    dims: *const i64,
    num_dims: usize,
    byte_strides: *const i64,
    num_byte_strides: usize,
    host_buffer_semantics: PJRT_HostBufferSemantics,
    device: *mut PJRT_Device,
    memory: *mut PJRT_Memory,
    device_layout: *mut PJRT_Buffer_MemoryLayout,
    done_with_host_buffer: *mut PJRT_Event;
    buffer: *mut PJRT_Buffer
});

// ------------------------------------------------------------------ devices

pjrt_args!(PJRT_DeviceDescription_Id_Args { device_description: *mut PJRT_DeviceDescription; id: c_int });
pjrt_args!(PJRT_DeviceDescription_Kind_Args {
    device_description: *mut PJRT_DeviceDescription,
    device_kind: *const c_char;
    device_kind_size: usize
});
pjrt_args!(PJRT_Device_GetDescription_Args {
    device: *mut PJRT_Device;
    device_description: *mut PJRT_DeviceDescription
});

// ------------------------------------------------------------------ executables

pjrt_args!(PJRT_Executable_Destroy_Args { ; executable: *mut PJRT_Executable });
pjrt_args!(PJRT_LoadedExecutable_Destroy_Args { ; executable: *mut PJRT_LoadedExecutable });
pjrt_args!(PJRT_LoadedExecutable_GetExecutable_Args {
    loaded_executable: *mut PJRT_LoadedExecutable;
    executable: *mut PJRT_Executable
});
pjrt_args!(PJRT_LoadedExecutable_AddressableDevices_Args {
    executable: *mut PJRT_LoadedExecutable,
    addressable_devices: *const *mut PJRT_Device;
    num_addressable_devices: usize
});
pjrt_args!(PJRT_Executable_Name_Args {
    executable: *mut PJRT_Executable,
    executable_name: *const c_char;
    executable_name_size: usize
});
pjrt_args!(PJRT_Executable_NumOutputs_Args { executable: *mut PJRT_Executable; num_outputs: usize });
pjrt_args!(PJRT_Executable_SizeOfGeneratedCodeInBytes_Args { executable: *mut PJRT_Executable; size_in_bytes: i64 });
pjrt_args!(PJRT_Executable_OptimizedProgram_Args { executable: *mut PJRT_Executable; program: *mut PJRT_Program });
pjrt_args!(PJRT_Executable_GetCostAnalysis_Args {
    executable: *mut PJRT_Executable,
    num_properties: usize;
    properties: *const PJRT_NamedValue
});
pjrt_args!(PJRT_Executable_GetCompiledMemoryStats_Args {
    executable: *mut PJRT_Executable,
    generated_code_size_in_bytes: i64,
    argument_size_in_bytes: i64,
    output_size_in_bytes: i64,
    alias_size_in_bytes: i64,
    temp_size_in_bytes: i64,
    host_generated_code_size_in_bytes: i64,
    host_argument_size_in_bytes: i64,
    host_output_size_in_bytes: i64,
    host_alias_size_in_bytes: i64,
    host_temp_size_in_bytes: i64,
    // 0.72
    peak_memory_in_bytes: i64,
    // 0.90
    total_size_in_bytes: i64,
    // 0.104
    total_allocation_bytes: i64,
    indefinite_allocations: i64;
    peak_unpadded_heap_bytes: i64
});
pjrt_args!(PJRT_Executable_Serialize_Args {
    executable: *const PJRT_Executable,
    serialized_bytes: *const c_char,
    serialized_bytes_size: usize,
    serialized_executable: *mut PJRT_SerializedExecutable;
    serialized_executable_deleter: Option<unsafe extern "C" fn(exec: *mut PJRT_SerializedExecutable)>
});
pjrt_args!(PJRT_Executable_OutputElementTypes_Args {
    executable: *mut PJRT_Executable,
    output_types: *mut PJRT_Buffer_Type;
    num_output_types: usize
});
pjrt_args!(PJRT_Executable_OutputDimensions_Args {
    executable: *mut PJRT_Executable,
    num_outputs: usize,
    dims: *const i64;
    dim_sizes: *const usize
});

pjrt_args!(PJRT_ExecuteOptions {
    send_callbacks: *mut *mut PJRT_SendCallbackInfo,
    recv_callbacks: *mut *mut PJRT_RecvCallbackInfo,
    num_send_ops: usize,
    num_recv_ops: usize,
    launch_id: c_int,
    non_donatable_input_indices: *const i64,
    num_non_donatable_input_indices: usize,
    context: *mut PJRT_ExecuteContext,
    // 0.76
    call_location: *const c_char,
    // 0.78
    num_tasks: usize,
    task_ids: *mut c_int,
    incarnation_ids: *mut i64;
    // 0.97
    multi_slice_config: *mut PJRT_MultiSlice_Config
});
pjrt_args!(PJRT_LoadedExecutable_Execute_Args {
    executable: *mut PJRT_LoadedExecutable,
    options: *mut PJRT_ExecuteOptions,
    argument_lists: *const *const *mut PJRT_Buffer,
    num_devices: usize,
    num_args: usize,
    output_lists: *const *mut *mut PJRT_Buffer,
    device_complete_events: *mut *mut PJRT_Event;
    execute_device: *mut PJRT_Device
});

// ------------------------------------------------------------------ buffers

pjrt_args!(PJRT_Buffer_Destroy_Args { ; buffer: *mut PJRT_Buffer });
pjrt_args!(PJRT_Buffer_ElementType_Args { buffer: *mut PJRT_Buffer; type_: PJRT_Buffer_Type });
pjrt_args!(PJRT_Buffer_Dimensions_Args { buffer: *mut PJRT_Buffer, dims: *const i64; num_dims: usize });
pjrt_args!(PJRT_Buffer_ToHostBuffer_Args {
    src: *mut PJRT_Buffer,
    host_layout: *mut PJRT_Buffer_MemoryLayout,
    dst: *mut c_void,
    dst_size: usize;
    event: *mut PJRT_Event
});

// ------------------------------------------------------------------ topology, compile

pjrt_args!(PJRT_TopologyDescription_Create_Args {
    topology_name: *const c_char,
    topology_name_size: usize,
    create_options: *const PJRT_NamedValue,
    num_options: usize;
    topology: *mut PJRT_TopologyDescription
});
pjrt_args!(PJRT_TopologyDescription_Destroy_Args { ; topology: *mut PJRT_TopologyDescription });
pjrt_args!(PJRT_TopologyDescription_PlatformName_Args {
    topology: *const PJRT_TopologyDescription,
    platform_name: *const c_char;
    platform_name_size: usize
});
pjrt_args!(PJRT_TopologyDescription_PlatformVersion_Args {
    topology: *mut PJRT_TopologyDescription,
    platform_version: *const c_char;
    platform_version_size: usize
});
pjrt_args!(PJRT_TopologyDescription_GetDeviceDescriptions_Args {
    topology: *const PJRT_TopologyDescription,
    descriptions: *const *mut PJRT_DeviceDescription;
    num_descriptions: usize
});
pjrt_args!(PJRT_Compile_Args {
    topology: *const PJRT_TopologyDescription,
    program: *const PJRT_Program,
    compile_options: *const c_char,
    compile_options_size: usize,
    client: *mut PJRT_Client;
    executable: *mut PJRT_Executable
});

// ------------------------------------------------------------------ the API table

/// A PJRT entry point taking `*mut Args` and returning an owned `PJRT_Error*` (null on success).
pub type Fn<Args> = Option<unsafe extern "C" fn(args: *mut Args) -> *mut PJRT_Error>;
/// An entry point returning nothing (`PJRT_Error_Destroy`, `PJRT_Error_Message`).
pub type VoidFn<Args> = Option<unsafe extern "C" fn(args: *mut Args)>;
/// A slot this binding never calls (declared only to keep the later slots at their offsets).
pub type Unused = Option<unsafe extern "C" fn()>;

/// `PJRT_Api` of header 0.105: all slots, in the header's order. Never read by value or through a reference: a
/// plugin's table may be shorter; read a slot only after checking that `struct_size` covers it.
#[repr(C)]
pub struct PJRT_Api {
    pub struct_size: usize,
    pub extension_start: *mut PJRT_Extension_Base,
    pub pjrt_api_version: PJRT_Api_Version,

    pub PJRT_Error_Destroy: VoidFn<PJRT_Error_Destroy_Args>,
    pub PJRT_Error_Message: VoidFn<PJRT_Error_Message_Args>,
    pub PJRT_Error_GetCode: Fn<PJRT_Error_GetCode_Args>,

    pub PJRT_Plugin_Initialize: Fn<PJRT_Plugin_Initialize_Args>,
    pub PJRT_Plugin_Attributes: Fn<PJRT_Plugin_Attributes_Args>,

    pub PJRT_Event_Destroy: Fn<PJRT_Event_Destroy_Args>,
    pub PJRT_Event_IsReady: Unused,
    pub PJRT_Event_Error: Unused,
    pub PJRT_Event_Await: Fn<PJRT_Event_Await_Args>,
    pub PJRT_Event_OnReady: Unused,

    pub PJRT_Client_Create: Fn<PJRT_Client_Create_Args>,
    pub PJRT_Client_Destroy: Fn<PJRT_Client_Destroy_Args>,
    pub PJRT_Client_PlatformName: Fn<PJRT_Client_PlatformName_Args>,
    pub PJRT_Client_ProcessIndex: Unused,
    pub PJRT_Client_PlatformVersion: Fn<PJRT_Client_PlatformVersion_Args>,
    pub PJRT_Client_Devices: Fn<PJRT_Client_Devices_Args>,
    pub PJRT_Client_AddressableDevices: Fn<PJRT_Client_AddressableDevices_Args>,
    pub PJRT_Client_LookupDevice: Unused,
    pub PJRT_Client_LookupAddressableDevice: Unused,
    pub PJRT_Client_AddressableMemories: Unused,
    pub PJRT_Client_Compile: Fn<PJRT_Client_Compile_Args>,
    pub PJRT_Client_DefaultDeviceAssignment: Unused,
    pub PJRT_Client_BufferFromHostBuffer: Fn<PJRT_Client_BufferFromHostBuffer_Args>,

    pub PJRT_DeviceDescription_Id: Fn<PJRT_DeviceDescription_Id_Args>,
    pub PJRT_DeviceDescription_ProcessIndex: Unused,
    pub PJRT_DeviceDescription_Attributes: Unused,
    pub PJRT_DeviceDescription_Kind: Fn<PJRT_DeviceDescription_Kind_Args>,
    pub PJRT_DeviceDescription_DebugString: Unused,
    pub PJRT_DeviceDescription_ToString: Unused,

    pub PJRT_Device_GetDescription: Fn<PJRT_Device_GetDescription_Args>,
    pub PJRT_Device_IsAddressable: Unused,
    pub PJRT_Device_LocalHardwareId: Unused,
    pub PJRT_Device_AddressableMemories: Unused,
    pub PJRT_Device_DefaultMemory: Unused,
    pub PJRT_Device_MemoryStats: Unused,

    pub PJRT_Memory_Id: Unused,
    pub PJRT_Memory_Kind: Unused,
    pub PJRT_Memory_DebugString: Unused,
    pub PJRT_Memory_ToString: Unused,
    pub PJRT_Memory_AddressableByDevices: Unused,

    pub PJRT_Executable_Destroy: Fn<PJRT_Executable_Destroy_Args>,
    pub PJRT_Executable_Name: Fn<PJRT_Executable_Name_Args>,
    pub PJRT_Executable_NumReplicas: Unused,
    pub PJRT_Executable_NumPartitions: Unused,
    pub PJRT_Executable_NumOutputs: Fn<PJRT_Executable_NumOutputs_Args>,
    pub PJRT_Executable_SizeOfGeneratedCodeInBytes: Fn<PJRT_Executable_SizeOfGeneratedCodeInBytes_Args>,
    pub PJRT_Executable_GetCostAnalysis: Fn<PJRT_Executable_GetCostAnalysis_Args>,
    pub PJRT_Executable_OutputMemoryKinds: Unused,
    pub PJRT_Executable_OptimizedProgram: Fn<PJRT_Executable_OptimizedProgram_Args>,
    pub PJRT_Executable_Serialize: Fn<PJRT_Executable_Serialize_Args>,

    pub PJRT_LoadedExecutable_Destroy: Fn<PJRT_LoadedExecutable_Destroy_Args>,
    pub PJRT_LoadedExecutable_GetExecutable: Fn<PJRT_LoadedExecutable_GetExecutable_Args>,
    pub PJRT_LoadedExecutable_AddressableDevices: Fn<PJRT_LoadedExecutable_AddressableDevices_Args>,
    pub PJRT_LoadedExecutable_Delete: Unused,
    pub PJRT_LoadedExecutable_IsDeleted: Unused,
    pub PJRT_LoadedExecutable_Execute: Fn<PJRT_LoadedExecutable_Execute_Args>,
    pub PJRT_Executable_DeserializeAndLoad: Unused,
    pub PJRT_LoadedExecutable_Fingerprint: Unused,

    pub PJRT_Buffer_Destroy: Fn<PJRT_Buffer_Destroy_Args>,
    pub PJRT_Buffer_ElementType: Fn<PJRT_Buffer_ElementType_Args>,
    pub PJRT_Buffer_Dimensions: Fn<PJRT_Buffer_Dimensions_Args>,
    pub PJRT_Buffer_UnpaddedDimensions: Unused,
    pub PJRT_Buffer_DynamicDimensionIndices: Unused,
    pub PJRT_Buffer_GetMemoryLayout: Unused,
    pub PJRT_Buffer_OnDeviceSizeInBytes: Unused,
    pub PJRT_Buffer_Device: Unused,
    pub PJRT_Buffer_Memory: Unused,
    pub PJRT_Buffer_Delete: Unused,
    pub PJRT_Buffer_IsDeleted: Unused,
    pub PJRT_Buffer_CopyToDevice: Unused,
    pub PJRT_Buffer_ToHostBuffer: Fn<PJRT_Buffer_ToHostBuffer_Args>,
    pub PJRT_Buffer_IsOnCpu: Unused,
    pub PJRT_Buffer_ReadyEvent: Unused,
    pub PJRT_Buffer_UnsafePointer: Unused,
    pub PJRT_Buffer_IncreaseExternalReferenceCount: Unused,
    pub PJRT_Buffer_DecreaseExternalReferenceCount: Unused,
    pub PJRT_Buffer_OpaqueDeviceMemoryDataPointer: Unused,

    pub PJRT_CopyToDeviceStream_Destroy: Unused,
    pub PJRT_CopyToDeviceStream_AddChunk: Unused,
    pub PJRT_CopyToDeviceStream_TotalBytes: Unused,
    pub PJRT_CopyToDeviceStream_GranuleSize: Unused,
    pub PJRT_CopyToDeviceStream_CurrentBytes: Unused,

    pub PJRT_TopologyDescription_Create: Fn<PJRT_TopologyDescription_Create_Args>,
    pub PJRT_TopologyDescription_Destroy: Fn<PJRT_TopologyDescription_Destroy_Args>,
    pub PJRT_TopologyDescription_PlatformName: Fn<PJRT_TopologyDescription_PlatformName_Args>,
    pub PJRT_TopologyDescription_PlatformVersion: Fn<PJRT_TopologyDescription_PlatformVersion_Args>,
    pub PJRT_TopologyDescription_GetDeviceDescriptions: Fn<PJRT_TopologyDescription_GetDeviceDescriptions_Args>,
    pub PJRT_TopologyDescription_Serialize: Unused,
    pub PJRT_TopologyDescription_Attributes: Unused,

    pub PJRT_Compile: Fn<PJRT_Compile_Args>,

    pub PJRT_Executable_OutputElementTypes: Fn<PJRT_Executable_OutputElementTypes_Args>,
    pub PJRT_Executable_OutputDimensions: Fn<PJRT_Executable_OutputDimensions_Args>,

    pub PJRT_Buffer_CopyToMemory: Unused,

    pub PJRT_Client_CreateViewOfDeviceBuffer: Unused,

    pub PJRT_Executable_Fingerprint: Unused,

    pub PJRT_Client_TopologyDescription: Unused,

    pub PJRT_Executable_GetCompiledMemoryStats: Fn<PJRT_Executable_GetCompiledMemoryStats_Args>,

    pub PJRT_Memory_Kind_Id: Unused,

    pub PJRT_ExecuteContext_Create: Unused,
    pub PJRT_ExecuteContext_Destroy: Unused,
    pub PJRT_Buffer_CopyRawToHost: Unused,
    pub PJRT_AsyncHostToDeviceTransferManager_Destroy: Unused,
    pub PJRT_AsyncHostToDeviceTransferManager_TransferData: Unused,
    pub PJRT_Client_CreateBuffersForAsyncHostToDevice: Unused,
    pub PJRT_AsyncHostToDeviceTransferManager_RetrieveBuffer: Unused,
    pub PJRT_AsyncHostToDeviceTransferManager_Device: Unused,
    pub PJRT_AsyncHostToDeviceTransferManager_BufferCount: Unused,
    pub PJRT_AsyncHostToDeviceTransferManager_BufferSize: Unused,
    pub PJRT_AsyncHostToDeviceTransferManager_SetBufferError: Unused,
    pub PJRT_AsyncHostToDeviceTransferManager_AddMetadata: Unused,
    pub PJRT_Client_DmaMap: Unused,
    pub PJRT_Client_DmaUnmap: Unused,

    pub PJRT_Client_CreateUninitializedBuffer: Unused,
    pub PJRT_Client_UpdateGlobalProcessInfo: Unused,
    pub PJRT_TopologyDescription_Deserialize: Unused,
    pub PJRT_Client_CreateAliasBuffer: Unused,
    pub PJRT_Client_FulfillAliasBuffer: Unused,
    pub PJRT_LoadedExecutable_GetDeviceAssignment: Unused,
    pub PJRT_Client_CreateErrorBuffer: Unused,
    pub PJRT_AsyncHostToDeviceTransferManager_TransferLiteral: Unused,
    pub PJRT_Buffer_CopyRawToHostFuture: Unused,
    pub PJRT_Device_PoisonExecution: Unused,
    pub PJRT_Device_CreateAsyncTrackingEvent: Unused,
    pub PJRT_AsyncTrackingEvent_Destroy: Unused,
    pub PJRT_Executable_GetCompileOptions: Unused,
    pub PJRT_Buffer_DonateWithControlDependency: Unused,
    pub PJRT_Event_Create: Unused,
    pub PJRT_Event_Set: Unused,
    pub PJRT_Device_GetAttributes: Unused,

    pub PJRT_Client_Load: Unused,
    pub PJRT_LoadedExecutable_AddressableDeviceLogicalIds: Unused,
    pub PJRT_Buffer_Bitcast: Unused,

    pub PJRT_Error_ForEachPayload: Unused,
    pub PJRT_TopologyDescription_Fingerprint: Unused,
    pub PJRT_Executable_ParameterMemoryKinds: Unused,
    pub PJRT_Buffer_CopyRawFromHost: Unused,
}

/// `PJRT_Api_STRUCT_SIZE` of header 0.105.
pub const PJRT_Api_STRUCT_SIZE: usize = offset_of!(PJRT_Api, PJRT_Buffer_CopyRawFromHost) + size_of::<Unused>();

/// The end of the last slot this binding calls: a plugin whose table is shorter is refused at load time.
pub const PJRT_Api_REQUIRED_SIZE: usize =
    offset_of!(PJRT_Api, PJRT_Executable_GetCompiledMemoryStats) + size_of::<Unused>();

#[cfg(test)]
mod tests {
    use super::*;

    /// `*_STRUCT_SIZE` values printed by a C program that includes the 0.81 header of the xla-cpu-pjrt wheel
    /// (structs unchanged up to 0.105), and 0.81 + the fields added since for the two that grew.
    #[test]
    fn struct_sizes_match_the_header() {
        let sizes = [
            (PJRT_Error_Destroy_Args::STRUCT_SIZE, 24),
            (PJRT_Error_Message_Args::STRUCT_SIZE, 40),
            (PJRT_Error_GetCode_Args::STRUCT_SIZE, 28),
            (PJRT_NamedValue::STRUCT_SIZE, 56),
            (PJRT_Plugin_Initialize_Args::STRUCT_SIZE, 16),
            (PJRT_Plugin_Attributes_Args::STRUCT_SIZE, 32),
            (PJRT_Event_Destroy_Args::STRUCT_SIZE, 24),
            (PJRT_Event_Await_Args::STRUCT_SIZE, 24),
            (PJRT_Client_Create_Args::STRUCT_SIZE, 88),
            (PJRT_Client_Destroy_Args::STRUCT_SIZE, 24),
            (PJRT_Client_PlatformName_Args::STRUCT_SIZE, 40),
            (PJRT_Client_PlatformVersion_Args::STRUCT_SIZE, 40),
            (PJRT_Client_Devices_Args::STRUCT_SIZE, 40),
            (PJRT_Client_AddressableDevices_Args::STRUCT_SIZE, 40),
            (PJRT_Program::STRUCT_SIZE, 48),
            (PJRT_Client_Compile_Args::STRUCT_SIZE, 56),
            (PJRT_Client_BufferFromHostBuffer_Args::STRUCT_SIZE, 120),
            (PJRT_DeviceDescription_Id_Args::STRUCT_SIZE, 28),
            (PJRT_DeviceDescription_Kind_Args::STRUCT_SIZE, 40),
            (PJRT_Device_GetDescription_Args::STRUCT_SIZE, 32),
            (PJRT_Executable_Destroy_Args::STRUCT_SIZE, 24),
            (PJRT_LoadedExecutable_Destroy_Args::STRUCT_SIZE, 24),
            (PJRT_LoadedExecutable_GetExecutable_Args::STRUCT_SIZE, 32),
            (PJRT_LoadedExecutable_AddressableDevices_Args::STRUCT_SIZE, 40),
            (PJRT_Executable_OptimizedProgram_Args::STRUCT_SIZE, 32),
            (PJRT_Executable_Name_Args::STRUCT_SIZE, 40),
            (PJRT_Executable_NumOutputs_Args::STRUCT_SIZE, 32),
            (PJRT_Executable_SizeOfGeneratedCodeInBytes_Args::STRUCT_SIZE, 32),
            (PJRT_Executable_GetCostAnalysis_Args::STRUCT_SIZE, 40),
            // 112 at 0.81; + total_size_in_bytes (0.90) + 3 fields (0.104).
            (PJRT_Executable_GetCompiledMemoryStats_Args::STRUCT_SIZE, 112 + 8 + 24),
            (PJRT_Executable_Serialize_Args::STRUCT_SIZE, 56),
            (PJRT_Executable_OutputElementTypes_Args::STRUCT_SIZE, 40),
            (PJRT_Executable_OutputDimensions_Args::STRUCT_SIZE, 48),
            // 112 at 0.81; + multi_slice_config (0.97).
            (PJRT_ExecuteOptions::STRUCT_SIZE, 112 + 8),
            (PJRT_LoadedExecutable_Execute_Args::STRUCT_SIZE, 80),
            (PJRT_Buffer_Destroy_Args::STRUCT_SIZE, 24),
            (PJRT_Buffer_ElementType_Args::STRUCT_SIZE, 28),
            (PJRT_Buffer_Dimensions_Args::STRUCT_SIZE, 40),
            (PJRT_Buffer_MemoryLayout_Tiled::STRUCT_SIZE, 56),
            (PJRT_Buffer_MemoryLayout_Strides::STRUCT_SIZE, 32),
            (PJRT_Buffer_MemoryLayout::STRUCT_SIZE, 76),
            (PJRT_Buffer_ToHostBuffer_Args::STRUCT_SIZE, 56),
            (PJRT_TopologyDescription_Create_Args::STRUCT_SIZE, 56),
            (PJRT_TopologyDescription_Destroy_Args::STRUCT_SIZE, 24),
            (PJRT_TopologyDescription_PlatformName_Args::STRUCT_SIZE, 40),
            (PJRT_TopologyDescription_PlatformVersion_Args::STRUCT_SIZE, 40),
            (PJRT_TopologyDescription_GetDeviceDescriptions_Args::STRUCT_SIZE, 40),
            (PJRT_Compile_Args::STRUCT_SIZE, 64),
        ];
        for (i, (ours, header)) in sizes.iter().enumerate() {
            assert_eq!(ours, header, "struct #{i}");
        }
        assert_eq!(std::mem::size_of::<PJRT_NamedValue>(), 56, "plugins hand out arrays of PJRT_NamedValue");
        assert_eq!(std::mem::size_of::<PJRT_Api_Version>(), 24);
    }

    /// Offsets printed from the 0.81 header; its table ends after `PJRT_LoadedExecutable_GetDeviceAssignment`
    /// (struct_size 984, which the xla-cpu-pjrt plugin reports), 0.105 adds 18 slots after it.
    #[test]
    fn api_offsets_match_the_header() {
        assert_eq!(offset_of!(PJRT_Api, PJRT_Error_Destroy), 40);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Plugin_Initialize), 64);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Client_Create), 120);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Client_Compile), 200);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Client_BufferFromHostBuffer), 216);
        assert_eq!(offset_of!(PJRT_Api, PJRT_DeviceDescription_Kind), 248);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Device_GetDescription), 272);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Executable_Destroy), 360);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Executable_Serialize), 432);
        assert_eq!(offset_of!(PJRT_Api, PJRT_LoadedExecutable_Execute), 480);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Buffer_Destroy), 504);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Buffer_ToHostBuffer), 600);
        assert_eq!(offset_of!(PJRT_Api, PJRT_TopologyDescription_Create), 696);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Compile), 752);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Executable_OutputElementTypes), 760);
        assert_eq!(offset_of!(PJRT_Api, PJRT_Executable_GetCompiledMemoryStats), 808);
        assert_eq!(offset_of!(PJRT_Api, PJRT_LoadedExecutable_GetDeviceAssignment), 976);
        assert_eq!(PJRT_Api_REQUIRED_SIZE, 816);
        assert_eq!(PJRT_Api_STRUCT_SIZE, 984 + 18 * 8);
    }
}
