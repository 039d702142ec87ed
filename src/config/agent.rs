//! `[agent]`: settings of the daemon itself.

use std::path::PathBuf;

use serde::Deserialize;

use super::*;

/// `[agent]`: settings of the daemon itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Directory holding one TOML file per source. Relative paths are resolved against the
    /// main file's directory. Default: `connectors`.
    #[serde(default = "default_connectors_dir")]
    pub connectors_dir: PathBuf,
    /// Directory for local state. Default: `/var/lib/cdc-agent` (systemd's `StateDirectory`).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            connectors_dir: default_connectors_dir(),
            state_dir: default_state_dir(),
        }
    }
}
