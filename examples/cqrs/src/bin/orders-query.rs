//! `orders-query`: the example's read side, an HTTP service over the read model.
//!
//! ```sh
//! orders-query --database-url postgres://user:pw@host/orders_read --listen 127.0.0.1:8080
//! curl http://127.0.0.1:8080/customers/1/totals
//! ```

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

/// HTTP queries over the orders read model kept by `cdc-agent apply`.
#[derive(Parser)]
struct Args {
    /// The read-model database (tokio-postgres connection string).
    #[arg(long, env = "ORDERS_READ_URL")]
    database_url: String,
    /// Address to listen on.
    #[arg(long, env = "ORDERS_QUERY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let (client, connection) = tokio_postgres::connect(&args.database_url, tokio_postgres::NoTls)
        .await
        .context("connecting to the read-model database (--database-url)")?;
    // One connection, pipelined by tokio-postgres; a production service would use a pool
    // (deadpool-postgres, bb8) that also reconnects.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "read-model connection lost");
        }
    });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {} (--listen)", args.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "orders-query serving");
    cqrs_example::query::serve(listener, Arc::new(client), shutdown_signal()).await?;
    Ok(())
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
