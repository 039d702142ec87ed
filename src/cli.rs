//! Command line. Each subcommand is a thin call into the library; errors become one line on
//! stderr and a documented exit code (see [`crate::ops::exit`]), never a panic or backtrace.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;
use crate::ops::exit;
use crate::ops::logging::{self, LogFormat};

/// Default main configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/cdc-agent/cdc-agent.toml";

/// cdc-agent: committed row changes from PostgreSQL and MySQL/MariaDB to Debezium-compatible
/// Avro events in Kafka.
#[derive(Debug, Parser)]
#[command(name = "cdc-agent", version, about, long_about = None)]
pub struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "CDC_AGENT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Log level or tracing filter (RUST_LOG wins when set).
    #[arg(
        long,
        global = true,
        default_value = "info",
        env = "CDC_AGENT_LOG_LEVEL"
    )]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: stream every configured source into Kafka until SIGTERM/SIGINT.
    Run {
        /// Main configuration file; sources are read from its connectors directory.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Load and validate the configuration, print a summary, and exit.
    Validate {
        /// Main configuration file.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Validate { config } => match config::load(&config) {
            Ok(cfg) => {
                println!(
                    "config ok: {} ({} source{})",
                    cfg.path.display(),
                    cfg.sources.len(),
                    if cfg.sources.len() == 1 { "" } else { "s" }
                );
                for s in &cfg.sources {
                    println!("  {} ({}) from {}", s.name, s.kind, s.file.display());
                }
                ExitCode::from(exit::OK)
            }
            Err(e) => config_error(&e),
        },
        Command::Run { config } => {
            let cfg = match config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => return config_error(&e),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::from(exit::FAILURE);
                }
            };
            match runtime.block_on(crate::app::run(cfg)) {
                Ok(()) => ExitCode::from(exit::OK),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "stopped");
                    eprintln!("error: {e:#}");
                    ExitCode::from(exit::FAILURE)
                }
            }
        }
    }
}

fn config_error(e: &config::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(exit::CONFIG)
}
