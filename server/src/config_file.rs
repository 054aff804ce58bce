//! The optional TOML configuration file (`--config`): the same settings as the flags, with
//! the same names, plus static keys. Flags win over environment variables, which win over
//! the file, which wins over the defaults. `server/README.md` is the reference.

use std::{net::SocketAddr, path::PathBuf};

use clap::{ArgMatches, parser::ValueSource};
use serde::Deserialize;
use weft::sync::Access;
use weft_relay::auth::{Anonymous, Grant};

use crate::{LogFormat, ServeArgs};

/// The file's settings; every one optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ConfigFile {
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    anonymous: Option<Anonymous>,
    log_format: Option<LogFormat>,
    jwt_secret_file: Option<Vec<PathBuf>>,
    jwt_public_key_file: Option<Vec<PathBuf>>,
    max_connections: Option<usize>,
    max_handshaking: Option<usize>,
    max_message_bytes: Option<usize>,
    max_queued_bytes: Option<usize>,
    handshake_timeout: Option<u64>,
    keepalive: Option<u64>,
    message_rate: Option<u32>,
    idle_unload: Option<u64>,
    message_burst: Option<u32>,
    metrics_listen: Option<SocketAddr>,
    web: Option<PathBuf>,
    upstream: Option<Vec<String>>,
    upstream_token_file: Option<PathBuf>,
    upstream_ca_file: Option<PathBuf>,
    follower: Option<bool>,
    #[serde(default)]
    static_key: Vec<StaticKey>,
}

/// A key given to a client as is (`?token=<key>`), for simple setups.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct StaticKey {
    /// Shown in logs instead of the key.
    name: String,
    /// The key itself (keep the file readable by the relay only).
    key: String,
    #[serde(default)]
    read: Grant,
    #[serde(default)]
    write: Grant,
}

impl ConfigFile {
    /// Reads and checks the file at `path`.
    pub(crate) fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Fills in `args` from the file where neither a flag nor an environment variable set
    /// the value; returns the static keys.
    pub(crate) fn apply(
        self,
        args: &mut ServeArgs,
        matches: &ArgMatches,
    ) -> Result<Vec<(String, String, Access)>, String> {
        let unset = |id: &str| {
            matches!(
                matches.value_source(id),
                None | Some(ValueSource::DefaultValue)
            )
        };
        macro_rules! fill {
            ($($field:ident <- $key:ident),* $(,)?) => {
                $(if let Some(value) = self.$key && unset(stringify!($field)) {
                    args.$field = value;
                })*
            };
        }
        fill!(
            listen <- listen,
            data <- data,
            log_format <- log_format,
            jwt_secret_files <- jwt_secret_file,
            jwt_public_key_files <- jwt_public_key_file,
            max_connections <- max_connections,
            max_handshaking <- max_handshaking,
            max_message_bytes <- max_message_bytes,
            max_queued_bytes <- max_queued_bytes,
            handshake_timeout <- handshake_timeout,
            keepalive <- keepalive,
            message_rate <- message_rate,
            idle_unload <- idle_unload,
            message_burst <- message_burst,
            upstreams <- upstream,
            follower <- follower,
        );
        if self.anonymous.is_some() && unset("anonymous") {
            args.anonymous = self.anonymous;
        }
        if self.metrics_listen.is_some() && unset("metrics_listen") {
            args.metrics_listen = self.metrics_listen;
        }
        if self.web.is_some() && unset("web") {
            args.web = self.web;
        }
        if self.upstream_token_file.is_some() && unset("upstream_token_file") {
            args.upstream_token_file = self.upstream_token_file;
        }
        if self.upstream_ca_file.is_some() && unset("upstream_ca_file") {
            args.upstream_ca_file = self.upstream_ca_file;
        }
        self.static_key
            .into_iter()
            .map(|key| {
                let access = Access::new(
                    key.read
                        .scope()
                        .map_err(|e| format!("static key {}: {e}", key.name))?,
                    key.write
                        .scope()
                        .map_err(|e| format!("static key {}: {e}", key.name))?,
                );
                Ok((key.name, key.key, access))
            })
            .collect()
    }
}
