//! `[schema_registry]`: the Confluent-compatible schema registry.

use std::path::PathBuf;

use serde::Deserialize;

use super::*;

/// `[schema_registry]`: a Confluent-compatible registry (Confluent, Apicurio ccompat, Karapace,
/// Redpanda).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// Base URL of the Confluent REST API, e.g. `http://127.0.0.1:8081` or Apicurio's
    /// `http://host:8080/apis/ccompat/v7`. Required unless every source writes JSON
    /// (`format = "json"`).
    #[serde(default)]
    pub url: String,
    /// Basic-auth user name. Default: none.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password. Default: none.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File whose first line is the basic-auth password; wins over `password`. Default: none.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// PEM file of CA certificate(s) trusted for an `https://` registry, in addition to the
    /// system's roots. Default: none.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}
