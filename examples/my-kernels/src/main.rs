//! `my-kernels`: the rpa tools (list, ir, mosaic, stablehlo, compile, run, trace) for this crate's
//! kernels. Try `cargo run -p my-kernels -- list`.

fn main() -> std::process::ExitCode {
    rpa_dsl::tool::main(&my_kernels::registry())
}
