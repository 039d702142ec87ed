//! Secrets (never printed) and the files they and certificates are read from.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::*;

/// A secret string: deserialized like a string, never printed.
///
/// Numbers and booleans are taken as their text, because an environment override such as
/// `CDC_AGENT__SOURCES__X__PASSWORD=0123` reaches us parsed as a number.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
        }
        // Asked for as a string (so schema tracers such as the example-config test can
        // follow it); figment still hands numbers and booleans to the visitor as they are.
        d.deserialize_string(V)
    }
}

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is handed to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Reads a `*_file` secret: its first line, without the line break.
pub(crate) fn read_secret_file(
    path: &Path,
    origin: &str,
    key: &str,
) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            origin,
            Some(key.into()),
            format!("cannot read {}: {e}", path.display()),
            "point it at a readable file whose first line is the secret",
        )
    })?;
    let first = text.lines().next().unwrap_or_default();
    if first.is_empty() {
        return Err(ConfigError::new(
            origin,
            Some(key.into()),
            format!("{} is empty", path.display()),
            "write the secret on the file's first line",
        ));
    }
    Ok(Secret::new(first))
}

/// A certificate or key file must be readable now, not at the first connection hours later.
pub(crate) fn check_readable(path: &Path, origin: &str, key: &str) -> Result<(), ConfigError> {
    std::fs::File::open(path).map(drop).map_err(|e| {
        ConfigError::new(
            origin,
            Some(key.into()),
            format!("cannot read {}: {e}", path.display()),
            "point it at a readable PEM file",
        )
    })
}
