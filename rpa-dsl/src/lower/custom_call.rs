//! The StableHLO module that carries a Mosaic kernel to XLA: one `stablehlo.custom_call
//! @tpu_custom_call` whose backend config holds the Mosaic text (base64) and the kernel's cost
//! estimate ([`crate::ir::cost`]), with operand/result layouts, input/output aliases and the VMEM
//! limit.

use super::mlir::{dims, sanitize};
use crate::error::KernelError;
use crate::ir::{Kernel, RefType, Role};

/// The wrapping module for `mosaic` (the text [`super::mosaic::lower`] produced for `kernel`).
pub fn wrap(kernel: &Kernel, mosaic: &str) -> Result<String, KernelError> {
    let tensor = |r: &RefType| {
        let shape = r.static_shape().unwrap_or_default();
        format!("tensor<{}{}>", dims(&shape), r.dtype.mlir())
    };
    let layout = |r: &RefType| {
        let rank = r.shape.len();
        match rank {
            0 => "dense<> : tensor<0xindex>".to_string(),
            1 => "dense<0> : tensor<1xindex>".to_string(),
            _ => format!(
                "dense<[{}]> : tensor<{rank}xindex>",
                (0..rank).rev().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
            ),
        }
    };
    let inputs: Vec<_> = kernel.inputs().collect();
    let outputs: Vec<_> = kernel.outputs().collect();
    let in_types: Vec<String> = inputs.iter().map(|p| tensor(p.array.as_ref().expect("operand"))).collect();
    let out_types: Vec<String> = outputs.iter().map(|p| tensor(p.array.as_ref().expect("operand"))).collect();
    let args: Vec<String> = in_types.iter().enumerate().map(|(i, t)| format!("%arg{i}: {t}")).collect();
    let operands: Vec<String> = (0..inputs.len()).map(|i| format!("%arg{i}")).collect();
    let single = outputs.len() == 1;
    let aliases: Vec<String> = outputs
        .iter()
        .enumerate()
        .filter_map(|(oi, p)| {
            let alias = p.alias_of?;
            // `alias_of` indexes the operands (non-scratch params); inputs come first.
            let operand = kernel.operands().nth(alias)?;
            let ii = inputs.iter().position(|q| q.name == operand.name)?;
            let tuple = if single { String::new() } else { oi.to_string() };
            Some(format!(
                "#stablehlo.output_operand_alias<output_tuple_indices = [{tuple}], operand_index = {ii}, operand_tuple_indices = []>"
            ))
        })
        .collect();
    let config = backend_config(kernel, mosaic).replace('"', "\\22");
    let in_layouts: Vec<String> = inputs.iter().map(|p| layout(p.array.as_ref().unwrap())).collect();
    let out_layouts: Vec<String> = outputs.iter().map(|p| layout(p.array.as_ref().unwrap())).collect();
    let result_ty = if single { out_types[0].clone() } else { format!("({})", out_types.join(", ")) };
    let lhs = if single { "%0".to_string() } else { format!("%0:{}", outputs.len()) };
    let rets: Vec<String> =
        if single { vec!["%0".into()] } else { (0..outputs.len()).map(|i| format!("%0#{i}")).collect() };
    let mut attrs = vec![
        format!("backend_config = \"{config}\""),
        format!("kernel_name = \"{}\"", sanitize(&kernel.name)),
        format!("operand_layouts = [{}]", in_layouts.join(", ")),
    ];
    if !aliases.is_empty() {
        attrs.push(format!("output_operand_aliases = [{}]", aliases.join(", ")));
    }
    attrs.push(format!("result_layouts = [{}]", out_layouts.join(", ")));
    if outputs.is_empty() {
        return Err(KernelError::single(
            &kernel.name,
            None,
            kernel.loc,
            "a kernel launched through XLA needs an output",
        ));
    }
    let _ = Role::Output;
    Ok(format!(
        "module @{} attributes {{mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32}} {{\n  \
         func.func public @main({}) -> {result_ty} {{\n    \
         {lhs} = stablehlo.custom_call @tpu_custom_call({}) {{{}}} : ({}) -> {result_ty}\n    \
         return {} : {}\n  }}\n}}\n",
        sanitize(&kernel.name),
        args.join(", "),
        operands.join(", "),
        attrs.join(", "),
        in_types.join(", "),
        rets.join(", "),
        out_types.join(", ")
    ))
}

/// The custom call's backend config (JSON): the Mosaic text `mosaic` of `kernel` (base64) and,
/// when the kernel sets one, its scoped VMEM limit.
pub fn backend_config(kernel: &Kernel, mosaic: &str) -> String {
    let body = base64(mosaic.as_bytes());
    let cost = crate::ir::cost::estimate(kernel);
    let mut config = format!(
        "{{\"custom_call_config\": {{\"body\": \"{body}\", \"cost_estimate\": {{\"flops\": {}, \"transcendentals\": {}, \"bytes_accessed\": {}}}, \"needs_layout_passes\": true}}",
        cost.flops, cost.transcendentals, cost.bytes_accessed
    );
    if let Some(limit) = kernel.vmem_limit {
        config.push_str(&format!(
            ", \"scoped_memory_configs\": [{{\"memory_space\": 1, \"offset\": 0, \"size\": {limit}}}]"
        ));
    }
    config.push('}');
    config
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if chunk.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(super::base64(i.as_bytes()), o);
        }
    }
}
