//! The `cdc-agent` binary: parse the command line, hand over to [`cdc_agent::cli`].

/// jemalloc as the allocator of the whole process, librdkafka's C code included (the crate's
/// `unprefixed` feature puts jemalloc behind `malloc`/`free`): most of a row's allocations are
/// librdkafka's messages and headers, made on the pipeline's thread and freed on librdkafka's,
/// which glibc's malloc serves slowly. Decision 0012 has the measurements.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its start (`MALLOC_CONF` in the environment overrides them).
/// One arena (the agent has few busy threads, each with its own cache) and freed pages given
/// back after a second keep the resident set below glibc's; jemalloc's defaults (an arena per
/// two threads and ten-second decay) doubled it (decision 0012).
#[cfg(target_os = "linux")]
#[allow(non_upper_case_globals)] // jemalloc looks the setting up by this C name
#[no_mangle]
pub static malloc_conf: &[u8; 47] = b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> std::process::ExitCode {
    cdc_agent::cli::main()
}
