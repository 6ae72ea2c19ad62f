//! `rpa`: the command-line tool. Everything lives in `rpa_kernels::cli` (run `rpa --help`).

fn main() -> std::process::ExitCode {
    rpa_kernels::cli::main()
}
