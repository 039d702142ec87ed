//! The `cdc-agent` binary: parse the command line, hand over to [`cdc_agent::cli`].

/// mimalloc rather than glibc's malloc: apply's decode makes many short-lived allocations, and
/// glibc's spent about a third of its CPU in malloc/free and in faulting trimmed pages back.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cdc_agent::cli::main()
}
