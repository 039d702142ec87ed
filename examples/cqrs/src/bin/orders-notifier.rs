//! `orders-notifier`: publishes a notification record for every order that becomes
//! `shipped`, exactly once (see the `notifier` module of the library).
//!
//! ```sh
//! orders-notifier --bootstrap-servers 127.0.0.1:19092 \
//!   --registry-url http://127.0.0.1:18081/apis/ccompat/v7 \
//!   --orders-topic cqrs.public.orders --notifications-topic cqrs.notifications
//! ```

use clap::Parser;
use cqrs_example::notifier::{self, Config};

/// Notifications for shipped orders, from the `orders` table topic.
#[derive(Parser)]
struct Args {
    /// Kafka's bootstrap servers.
    #[arg(long, env = "KAFKA_BOOTSTRAP", default_value = "127.0.0.1:19092")]
    bootstrap_servers: String,
    /// The Confluent-compatible schema registry API.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    registry_url: String,
    /// The table topic of `orders`.
    #[arg(long, default_value = "cqrs.public.orders")]
    orders_topic: String,
    /// The topic notifications go to.
    #[arg(long, default_value = "cqrs.notifications")]
    notifications_topic: String,
    /// The consumer group.
    #[arg(long, default_value = "orders-notifier")]
    group_id: String,
    /// The producer's transactional.id, unique per running instance.
    #[arg(long, default_value = "orders-notifier-1")]
    transactional_id: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = Config {
        bootstrap_servers: args.bootstrap_servers,
        registry_url: args.registry_url,
        orders_topic: args.orders_topic,
        notifications_topic: args.notifications_topic,
        group_id: args.group_id,
        transactional_id: args.transactional_id,
    };
    notifier::run(&config, shutdown_signal()).await
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
