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
        /// Run only this source file instead of every file of the connectors directory (one
        /// systemd instance per source: `cdc-agent@NAME` passes `connectors/NAME.toml`).
        #[arg(long, value_name = "FILE")]
        source_file: Option<PathBuf>,
    },
    /// Print events of the event store (ledger) as JSON lines in ledger order (per key:
    /// commit order), or re-publish them into a topic.
    Replay {
        /// Main configuration file (Kafka, registry, event-store topic).
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Start: `beginning`, an RFC 3339 UTC time, epoch milliseconds, or an LSN (X/X).
        #[arg(long, default_value = "beginning")]
        from: crate::ledger::From,
        /// Only events of this source.
        #[arg(long)]
        source: Option<String>,
        /// Only events of this table (`schema.table`).
        #[arg(long)]
        table: Option<String>,
        /// Only events of this key, as JSON: e.g. '{"id":42}'.
        #[arg(long)]
        key: Option<String>,
        /// Re-publish the selection into this topic (created when missing) instead of
        /// printing it.
        #[arg(long)]
        to_topic: Option<String>,
        /// Keep printing new events until interrupted.
        #[arg(long, conflicts_with = "to_topic")]
        follow: bool,
    },
    /// Print every version of one row, oldest first, with commit time, op and transaction id.
    History {
        /// Main configuration file.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Source name.
        #[arg(long)]
        source: String,
        /// Table (`schema.table`).
        #[arg(long)]
        table: String,
        /// Key as JSON: e.g. '{"id":42}'.
        #[arg(long)]
        key: String,
    },
    /// Print one PostgreSQL source's live changes as JSON lines on stdout, without Kafka.
    ///
    /// Reads through a temporary replication slot, which the server drops when tail exits.
    Tail {
        /// Main configuration file; the source is read from its connectors directory.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Name of the source (`name` in its connector file).
        #[arg(long)]
        source: String,
    },
    /// Snapshot tables of a running source (incremental: chunk by chunk while it streams),
    /// stop, pause or resume its snapshots, or show where they stand.
    ///
    /// The request travels through the database as a signal (PostgreSQL: a logical decoding
    /// message; MySQL: a row in the signal table), so the agent that owns the source acts on
    /// it wherever it runs, and after a restart too.
    Snapshot {
        /// Main configuration file; the source is read from its connectors directory.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Name of the source (`name` in its connector file).
        #[arg(long)]
        source: String,
        /// Table to snapshot, `schema.table` (MySQL `database.table`); repeatable.
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
        /// Only rows matching this SQL condition (e.g. "created_at > '2026-01-01'").
        #[arg(long = "where", value_name = "SQL", requires = "tables")]
        filter: Option<String>,
        /// Stop the snapshots of the given tables (all when no --table).
        #[arg(long, conflicts_with_all = ["pause", "resume", "status", "filter"])]
        stop: bool,
        /// Pause reading snapshot chunks (the stream goes on).
        #[arg(long, conflicts_with_all = ["resume", "status", "tables"])]
        pause: bool,
        /// Resume reading snapshot chunks.
        #[arg(long, conflicts_with_all = ["status", "tables"])]
        resume: bool,
        /// Show every table's progress from the source's newest checkpoint.
        #[arg(long, conflicts_with = "tables")]
        status: bool,
    },
    /// Preflight: check every source, Kafka and the schema registry, print a PASS/WARN/FAIL
    /// table with the fix of every problem, and exit non-zero when a check fails.
    Check {
        /// Main configuration file.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Check only this source file instead of every file of the connectors directory.
        #[arg(long, value_name = "FILE")]
        source_file: Option<PathBuf>,
    },
    /// Apply the table topics to a database (PostgreSQL or SQLite) by primary key, exactly
    /// once: a read model kept up to date. Runs until SIGTERM/SIGINT.
    Apply {
        /// The apply configuration (see apply.toml.example).
        #[arg(long, short)]
        config: PathBuf,
        /// Check the configuration, print a summary and exit.
        #[arg(long)]
        validate: bool,
        /// Where partitions the target holds no offset for start: `earliest`, `latest`, an
        /// RFC 3339 UTC time (`2026-12-01T00:00:00Z`: the first record at or after it), or
        /// offsets `topic:partition=offset[,…]` (unlisted partitions: earliest). Offsets the
        /// target already holds always win, so a restart continues where it stopped.
        #[arg(long, value_name = "WHERE", default_value = "earliest")]
        from: crate::apply::config::StartAt,
    },
    /// Load and validate the configuration, print a summary, and exit.
    Validate {
        /// Main configuration file.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Run only this source file instead of every file of the connectors directory (one
        /// systemd instance per source: `cdc-agent@NAME` passes `connectors/NAME.toml`).
        #[arg(long, value_name = "FILE")]
        source_file: Option<PathBuf>,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Validate {
            config,
            source_file,
        } => match load_config(&config, source_file.as_deref()) {
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
        Command::Replay {
            config,
            from,
            source,
            table,
            key,
            to_topic,
            follow,
        } => {
            let cfg = match config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => return config_error(&e),
            };
            let key = match key.map(|k| parse_key(&k)).transpose() {
                Ok(k) => k,
                Err(code) => return code,
            };
            let sel = crate::ledger::Selection {
                from,
                source,
                table,
                key,
                follow,
            };
            with_runtime(|| async move {
                let (trigger, stop) = crate::shutdown::channel();
                crate::shutdown::install_signal_handlers(trigger)?;
                match to_topic {
                    Some(topic) => {
                        let n = crate::ledger::replay_to_topic(&cfg, &sel, stop, &topic).await?;
                        eprintln!("replayed {n} events into {topic}");
                    }
                    None => {
                        let mut out = std::io::stdout();
                        crate::ledger::replay_json(&cfg, &sel, stop, &mut out).await?;
                    }
                }
                Ok(())
            })
        }
        Command::History {
            config,
            source,
            table,
            key,
        } => {
            let cfg = match config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => return config_error(&e),
            };
            let key = match parse_key(&key) {
                Ok(k) => k,
                Err(code) => return code,
            };
            let sel = crate::ledger::Selection {
                source: Some(source),
                table: Some(table),
                key: Some(key),
                ..Default::default()
            };
            with_runtime(|| async move {
                let (_trigger, stop) = crate::shutdown::channel();
                let mut out = std::io::stdout();
                crate::ledger::history(&cfg, &sel, stop, &mut out).await?;
                Ok(())
            })
        }
        Command::Tail { config, source } => {
            let cfg = match config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => return config_error(&e),
            };
            let Some(src) = cfg.sources.iter().find(|s| s.name == source).cloned() else {
                let names: Vec<&str> = cfg.sources.iter().map(|s| s.name.as_str()).collect();
                return config_error(&config::ConfigError {
                    origin: cfg.path.display().to_string(),
                    key: None,
                    problem: format!("no source named `{source}`"),
                    fix: format!("pass --source with one of: {}", names.join(", ")),
                });
            };
            if src.kind != config::SourceKind::Postgres {
                eprintln!("error: source `{source}`: tail supports postgres sources only");
                return ExitCode::from(exit::FAILURE);
            }
            let settings = crate::source::postgres::PgSourceSettings::new(src, cfg.main);
            with_runtime(|| async move {
                let (trigger, stop) = crate::shutdown::channel();
                crate::shutdown::install_signal_handlers(trigger)?;
                let mut out = std::io::stdout();
                // The message already words its cause: keep the one line as it was rather
                // than let `{e:#}` append the source chain.
                crate::source::postgres::tail::run(&settings, stop, &mut out)
                    .await
                    .map_err(|e| anyhow::Error::msg(e.to_string()))?;
                Ok(())
            })
        }
        Command::Snapshot {
            config,
            source,
            tables,
            filter,
            stop,
            pause,
            resume,
            status,
        } => {
            let cfg = match config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => return config_error(&e),
            };
            let Some(src) = cfg.sources.iter().find(|s| s.name == source).cloned() else {
                let names: Vec<&str> = cfg.sources.iter().map(|s| s.name.as_str()).collect();
                return config_error(&config::ConfigError {
                    origin: cfg.path.display().to_string(),
                    key: None,
                    problem: format!("no source named `{source}`"),
                    fix: format!("pass --source with one of: {}", names.join(", ")),
                });
            };
            use crate::ops::snapshot::{self, Request};
            let req = if status {
                None
            } else if stop {
                Some(Request::Stop(tables))
            } else if pause {
                Some(Request::Pause)
            } else if resume {
                Some(Request::Resume)
            } else if tables.is_empty() {
                eprintln!(
                    "error: nothing to do; fix: pass --table schema.table (repeatable), or one \
                     of --status, --stop, --pause, --resume"
                );
                return ExitCode::from(exit::CONFIG);
            } else {
                Some(Request::Execute { tables, filter })
            };
            with_runtime(|| async move {
                match req {
                    None => {
                        let (s, c) = (src.clone(), cfg.clone());
                        let text =
                            tokio::task::spawn_blocking(move || snapshot::status(&s, &c)).await??;
                        print!("{text}");
                    }
                    Some(req) => {
                        snapshot::send(&src, &cfg, &req).await?;
                        eprintln!(
                            "signal sent to source `{}`: {}; the agent acts on it when its \
                             stream reaches it (see its log or cdc-agent snapshot --status)",
                            src.name,
                            req.signal().0
                        );
                    }
                }
                Ok(())
            })
        }
        Command::Check {
            config,
            source_file,
        } => {
            let cfg = match load_config(&config, source_file.as_deref()) {
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
            let findings = runtime.block_on(crate::ops::check::run(&cfg));
            print!("{}", crate::ops::check::render(&findings));
            if crate::ops::check::worst(&findings) == crate::ops::check::Status::Fail {
                ExitCode::from(exit::FAILURE)
            } else {
                ExitCode::from(exit::OK)
            }
        }
        Command::Apply {
            config,
            validate,
            from,
        } => {
            let mut cfg = match crate::apply::config::load(&config) {
                Ok(cfg) => cfg,
                Err(e) => return config_error(&e),
            };
            cfg.start = from;
            if validate {
                println!(
                    "config ok: {} (apply `{}` into {:?})",
                    cfg.path.display(),
                    cfg.apply.name,
                    cfg.target.kind
                );
                return ExitCode::from(exit::OK);
            }
            with_runtime(|| async move {
                let (trigger, stop) = crate::shutdown::channel();
                crate::shutdown::install_signal_handlers(trigger)?;
                crate::apply::run(cfg, stop).await?;
                Ok(())
            })
        }
        Command::Run {
            config,
            source_file,
        } => {
            let cfg = match load_config(&config, source_file.as_deref()) {
                Ok(cfg) => cfg,
                Err(e) => return config_error(&e),
            };
            with_runtime(|| crate::app::run(cfg))
        }
    }
}

/// Loads the main file with every source of its connectors directory, or with only
/// `source_file`.
fn load_config(
    config: &std::path::Path,
    source_file: Option<&std::path::Path>,
) -> Result<config::Config, config::ConfigError> {
    config::load_selected(config, source_file, std::env::vars())
}

fn parse_key(key: &str) -> Result<serde_json::Value, ExitCode> {
    serde_json::from_str(key).map_err(|e| {
        eprintln!("error: --key `{key}` is not JSON ({e}); fix: give the key columns as a JSON object, e.g. '{{\"id\":42}}'");
        ExitCode::from(exit::CONFIG)
    })
}

/// Runs `f` on a fresh multi-threaded runtime; errors become one line and exit code 1.
fn with_runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
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
    match runtime.block_on(f()) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("error: {e:#}");
            let code = e
                .downcast_ref::<crate::app::ExitWith>()
                .map_or(exit::FAILURE, |x| x.code);
            ExitCode::from(code)
        }
    }
}

fn config_error(e: &config::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(exit::CONFIG)
}
