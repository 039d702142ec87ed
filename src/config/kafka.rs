//! `[kafka]`: the brokers, producer settings and their security keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::*;

/// `[kafka]`: where events are published.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list. Required.
    pub bootstrap_servers: String,
    /// Compression codec: `none`, `gzip`, `snappy`, `lz4` or `zstd`. Default: `lz4`, the
    /// cheapest in agent CPU per event (bench/RESULTS.md); `zstd` packs tighter.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// Partitions of topics the agent creates. Default: 1.
    #[serde(default = "default_topic_partitions")]
    pub topic_partitions: i32,
    /// Partitions of particular topics the agent creates: `"<topic regex>" = N`, the whole
    /// name matched; patterns are tried in sorted order, the first match wins over
    /// `topic_partitions` (e.g. `"shop\\.public\\.orders" = 12`). Default: none.
    #[serde(default)]
    pub partitions_by_topic: BTreeMap<String, i32>,
    /// Replication factor of topics the agent creates. Default: 1.
    #[serde(default = "default_topic_replication")]
    pub topic_replication_factor: i32,
    /// Create missing topics (table topics, event store, offsets) with the settings above.
    /// With `false` every topic must exist: a missing one stops the source with its name.
    /// Default: true.
    #[serde(default = "default_true")]
    pub create_topics: bool,
    /// Exactly-once: close a Kafka transaction after this many records. Default: 50000.
    #[serde(default = "default_txn_max_records")]
    pub transaction_max_records: usize,
    /// Exactly-once: close a Kafka transaction after this many milliseconds under load (it
    /// closes at once when nothing more is waiting). Default: 250.
    #[serde(default = "default_txn_max_ms")]
    pub transaction_max_ms: u64,
    /// How clients reach the brokers: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    /// Default: `PLAINTEXT`.
    #[serde(default)]
    pub security_protocol: KafkaSecurityProtocol,
    /// SASL mechanism with `SASL_*`: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`. Required
    /// with `SASL_PLAINTEXT`/`SASL_SSL` (unless `properties` set `sasl.mechanism` for another
    /// mechanism such as OAUTHBEARER). Default: none.
    #[serde(default)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name. Default: none.
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// SASL password. Prefer `sasl_password_file` or the environment override
    /// `CDC_AGENT__KAFKA__SASL_PASSWORD`. Default: none.
    #[serde(default)]
    pub sasl_password: Option<Secret>,
    /// File whose first line is the SASL password; wins over `sasl_password`. Default: none.
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
    /// PEM file of the CA certificate(s) that signed the brokers' certificates, with `SSL` or
    /// `SASL_SSL`. Default: none (the system's trusted roots).
    #[serde(default)]
    pub ssl_ca_location: Option<PathBuf>,
    /// PEM file of a client certificate, for brokers that authenticate clients by TLS
    /// (`ssl.client.auth=required`). Needs `ssl_key_location`. Default: none.
    #[serde(default)]
    pub ssl_certificate_location: Option<PathBuf>,
    /// PEM file of the client certificate's private key. Default: none.
    #[serde(default)]
    pub ssl_key_location: Option<PathBuf>,
    /// Password of an encrypted `ssl_key_location`. Default: none.
    #[serde(default)]
    pub ssl_key_password: Option<Secret>,
    /// Topic for events Kafka cannot take: a record larger than its topic's
    /// `max.message.bytes` (or the producer's `message.max.bytes`), or a table whose schema the
    /// registry rejects. Such an event goes there instead (in the same Kafka transaction),
    /// with headers saying why, and the source goes on. Unset, such an event stops the source
    /// with the fix. Shared by every source (headers name the source). Default: none (off).
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Topic configs of the table topics the agent creates (`[kafka.topic_config]`), e.g.
    /// `"cleanup.policy" = "compact"` to keep the latest event per key. Applied at creation
    /// only: an existing topic is left as it is. Default: none (the brokers' defaults).
    #[serde(default)]
    pub topic_config: BTreeMap<String, String>,
    /// Extra librdkafka properties passed to every client after the keys above, so they win,
    /// e.g. `"ssl.endpoint.identification.algorithm" = "none"`. Values are treated as secrets
    /// (never logged). Default: none.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
}

/// `[kafka] security_protocol`, as librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum KafkaSecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    #[serde(rename = "PLAINTEXT", alias = "plaintext")]
    Plaintext,
    /// TLS.
    #[serde(rename = "SSL", alias = "ssl")]
    Ssl,
    /// SASL authentication without TLS.
    #[serde(rename = "SASL_PLAINTEXT", alias = "sasl_plaintext")]
    SaslPlaintext,
    /// SASL authentication over TLS.
    #[serde(rename = "SASL_SSL", alias = "sasl_ssl")]
    SaslSsl,
}

impl KafkaSecurityProtocol {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether the protocol authenticates with SASL.
    pub fn is_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// Whether the protocol uses TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }
}

/// `[kafka] sasl_mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// User name and password in clear (use it only with `SASL_SSL`).
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// Checks that the `[kafka]` security keys fit together and reads `sasl_password_file`.
pub(crate) fn resolve_kafka_security(k: &mut KafkaConfig, origin: &str) -> Result<(), ConfigError> {
    let bad = |key: &str, problem: String, fix: String| {
        Err(ConfigError::new(
            origin,
            Some(format!("kafka.{key}")),
            problem,
            fix,
        ))
    };
    if let Some(file) = &k.sasl_password_file {
        k.sasl_password = Some(read_secret_file(file, origin, "kafka.sasl_password_file")?);
    }
    let protocol = k.security_protocol;
    let sasl_keys = [
        ("sasl_mechanism", k.sasl_mechanism.is_some()),
        ("sasl_username", k.sasl_username.is_some()),
        ("sasl_password", k.sasl_password.is_some()),
    ];
    if protocol.is_sasl() {
        let custom = k.properties.contains_key("sasl.mechanism")
            || k.properties.contains_key("sasl.mechanisms");
        if !custom {
            for (key, set) in sasl_keys {
                if !set {
                    return bad(
                        key,
                        format!("security_protocol = {} needs `{key}`", protocol.as_str()),
                        format!("add `{key} = …` to [kafka] (a password may come from sasl_password_file or CDC_AGENT__KAFKA__SASL_PASSWORD)"),
                    );
                }
            }
        }
    } else if let Some((key, _)) = sasl_keys.iter().find(|(_, set)| *set) {
        return bad(
            key,
            format!(
                "`{key}` is set but security_protocol = {} does not use SASL",
                protocol.as_str()
            ),
            "set security_protocol = \"SASL_SSL\" (or SASL_PLAINTEXT), or remove the sasl_* keys"
                .into(),
        );
    }
    let tls_files = [
        ("ssl_ca_location", &k.ssl_ca_location),
        ("ssl_certificate_location", &k.ssl_certificate_location),
        ("ssl_key_location", &k.ssl_key_location),
    ];
    for (key, path) in tls_files {
        let Some(path) = path else { continue };
        if !protocol.is_tls() {
            return bad(
                key,
                format!(
                    "`{key}` is set but security_protocol = {} does not use TLS",
                    protocol.as_str()
                ),
                "set security_protocol = \"SSL\" (or SASL_SSL), or remove the ssl_* keys".into(),
            );
        }
        check_readable(path, origin, &format!("kafka.{key}"))?;
    }
    if k.ssl_certificate_location.is_some() != k.ssl_key_location.is_some() {
        return bad(
            "ssl_key_location",
            "a client certificate needs both ssl_certificate_location and ssl_key_location".into(),
            "set both keys, or neither".into(),
        );
    }
    Ok(())
}
