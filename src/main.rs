//! The `cdc-agent` binary: parse the command line, hand over to [`cdc_agent::cli`].

fn main() -> std::process::ExitCode {
    cdc_agent::cli::main()
}
