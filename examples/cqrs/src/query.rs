//! The query side: a small HTTP service answering from the read model, never from the write
//! database. The read model holds copies of `customers`, `orders` and `order_lines` that
//! `cdc-agent apply` keeps up to date (same table and column names as the source); the
//! queries below are ordinary SQL over them.
//!
//! - `GET /customers`: every customer with its number of orders and their total;
//! - `GET /customers/{id}/totals`: the same for one customer;
//! - `GET /orders/{id}`: one order with its lines and total.
//!
//! Amounts are decimal strings (`"123.40"`), as PostgreSQL's `numeric` prints them, so no
//! cent is lost to floating point on the way to the client.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Row};

/// One customer's orders and their total, as `GET /customers/{id}/totals` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerTotals {
    /// The customer's id.
    pub customer_id: i32,
    /// The customer's name.
    pub name: String,
    /// How many orders the customer has.
    pub orders: i64,
    /// Sum of quantity × unit price over every line of those orders, two decimals.
    pub total: String,
}

/// One order, as `GET /orders/{id}` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// The order's id.
    pub id: i32,
    /// The customer who placed it.
    pub customer_id: i32,
    /// `new`, `paid`, `shipped`, ...
    pub status: String,
    /// Sum of quantity × unit price over its lines, two decimals.
    pub total: String,
    /// Its lines by line number.
    pub lines: Vec<LineView>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineView {
    /// The line's number within its order.
    pub line_no: i32,
    /// The product.
    pub sku: String,
    /// How many.
    pub qty: i32,
    /// Price of one, two decimals.
    pub unit_price: String,
}

/// Totals per customer. Shared with the example's test, which runs the same query on the
/// write database to check the read side's answers.
pub const CUSTOMER_TOTALS: &str = "
    SELECT c.id, c.name, count(DISTINCT o.id) AS orders,
           coalesce(sum(l.qty * l.unit_price), 0)::numeric(14,2)::text AS total
    FROM customers c
    LEFT JOIN orders o ON o.customer_id = c.id
    LEFT JOIN order_lines l ON l.order_id = o.id
    WHERE $1::int IS NULL OR c.id = $1
    GROUP BY c.id, c.name
    ORDER BY c.id";

const ORDER: &str = "
    SELECT o.id, o.customer_id, o.status,
           (SELECT coalesce(sum(l.qty * l.unit_price), 0)::numeric(14,2)::text
            FROM order_lines l WHERE l.order_id = o.id) AS total
    FROM orders o WHERE o.id = $1";

const ORDER_LINES: &str = "
    SELECT line_no, sku, qty, unit_price::text FROM order_lines
    WHERE order_id = $1 ORDER BY line_no";

/// The service's routes over a connection to the read-model database.
pub fn router(db: Arc<Client>) -> Router {
    Router::new()
        .route("/customers", get(all_customers))
        .route("/customers/{id}/totals", get(customer_totals))
        .route("/orders/{id}", get(order))
        .with_state(db)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then lets running requests end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: Arc<Client>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(db))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn all_customers(
    State(db): State<Arc<Client>>,
) -> Result<Json<Vec<CustomerTotals>>, ApiError> {
    let rows = db.query(CUSTOMER_TOTALS, &[&None::<i32>]).await?;
    Ok(Json(rows.iter().map(customer_totals_of).collect()))
}

async fn customer_totals(
    State(db): State<Arc<Client>>,
    Path(id): Path<i32>,
) -> Result<Json<CustomerTotals>, ApiError> {
    let row = db.query_opt(CUSTOMER_TOTALS, &[&Some(id)]).await?;
    let row = row.ok_or(ApiError::NotFound("customer", id))?;
    Ok(Json(customer_totals_of(&row)))
}

async fn order(
    State(db): State<Arc<Client>>,
    Path(id): Path<i32>,
) -> Result<Json<OrderView>, ApiError> {
    let row = db.query_opt(ORDER, &[&id]).await?;
    let row = row.ok_or(ApiError::NotFound("order", id))?;
    let lines = db
        .query(ORDER_LINES, &[&id])
        .await?
        .iter()
        .map(|l| LineView {
            line_no: l.get(0),
            sku: l.get(1),
            qty: l.get(2),
            unit_price: l.get(3),
        })
        .collect();
    Ok(Json(OrderView {
        id: row.get(0),
        customer_id: row.get(1),
        status: row.get(2),
        total: row.get(3),
        lines,
    }))
}

fn customer_totals_of(row: &Row) -> CustomerTotals {
    CustomerTotals {
        customer_id: row.get(0),
        name: row.get(1),
        orders: row.get(2),
        total: row.get(3),
    }
}

/// What a request can fail with, as an HTTP status and a JSON `{"error": ...}` body.
enum ApiError {
    NotFound(&'static str, i32),
    Database(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApiError::Database(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::NotFound(what, id) => (StatusCode::NOT_FOUND, format!("no {what} {id}")),
            // Until `apply` has seen the first event of a table, the table does not exist.
            ApiError::Database(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the read model is not built yet; retry shortly".to_string(),
            ),
            ApiError::Database(e) => {
                tracing::warn!(error = %e, "read model query failed");
                (StatusCode::SERVICE_UNAVAILABLE, format!("read model: {e}"))
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}
