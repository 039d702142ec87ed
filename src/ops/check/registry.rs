//! Preflight of the schema registry: reachable at the configured URL and accepting the
//! configured credentials.

use super::Finding;
use crate::config::SchemaRegistryConfig;
use crate::registry::{Registry, RegistryError};

const TARGET: &str = "schema registry";

/// Checks the registry with one `GET /subjects`.
pub async fn check(cfg: &SchemaRegistryConfig) -> Vec<Finding> {
    let registry = match Registry::new(cfg) {
        Ok(r) => r,
        Err(e) => {
            return vec![Finding::fail(
                TARGET,
                "connect",
                e.to_string(),
                "check [schema_registry]",
            )]
        }
    };
    let finding = match registry.probe().await {
        Ok((200, body)) => {
            let subjects = serde_json::from_str::<Vec<serde_json::Value>>(&body).map(|v| v.len());
            match subjects {
                Ok(n) => Finding::pass(TARGET, "connect", format!("{}: {n} subject(s)", cfg.url)),
                Err(_) => Finding::fail(
                    TARGET,
                    "connect",
                    format!(
                        "{} answered GET /subjects with something other than a list",
                        cfg.url
                    ),
                    "point schema_registry.url at the Confluent-compatible API (Apicurio: \
                     http://host:8080/apis/ccompat/v7)",
                ),
            }
        }
        Ok((status @ (401 | 403), _)) => Finding::fail(
            TARGET,
            "credentials",
            format!("{} refused the credentials (http {status})", cfg.url),
            "set schema_registry.username and schema_registry.password (or password_file)",
        ),
        Ok((404, _)) => Finding::fail(
            TARGET,
            "connect",
            format!("{}/subjects is not found (http 404)", cfg.url),
            "point schema_registry.url at the Confluent-compatible API (Apicurio: \
             http://host:8080/apis/ccompat/v7)",
        ),
        Ok((status, body)) => Finding::fail(
            TARGET,
            "connect",
            format!(
                "{} answered http {status}: {}",
                cfg.url,
                body.chars().take(200).collect::<String>()
            ),
            "check the registry's own logs",
        ),
        Err(RegistryError::Unavailable(e)) => Finding::fail(
            TARGET,
            "connect",
            format!("cannot reach {}: {e}", cfg.url),
            "check schema_registry.url and the network",
        ),
        Err(e) => Finding::fail(TARGET, "connect", e.to_string(), "check [schema_registry]"),
    };
    vec![finding]
}
