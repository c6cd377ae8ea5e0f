//! Broker configuration: one TOML file plus `PORTER_*` environment overrides
//! (ICD §10).
//!
//! Every struct rejects unknown fields, so a typo is an error rather than a
//! silently ignored setting. Every field has a default, documented here: the
//! structs are the reference. Relative paths are resolved against the
//! directory of the configuration file. Secrets (such as the store URL's
//! password) come from the environment, never from the repository.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod partners;
mod secret;
mod topology;

pub use partners::{CletsConfig, DojConfig, LeaAgencyConfig, LeaConfig, PartnersConfig, RetryConfig};
pub use secret::Secret;
pub use topology::{MIN_DELIVERY_LIMIT, TopologyConfig, default_password_variable};

/// A configuration problem; it names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole broker configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub amqp: AmqpConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub intake: IntakeConfig,
    #[serde(default)]
    pub paths: PathsConfig,
    #[serde(default)]
    pub partners: PartnersConfig,
    /// RabbitMQ policies and court users (`porter topology`).
    #[serde(default)]
    pub topology: TopologyConfig,
    /// The courts this broker serves; the topology is declared for each.
    #[serde(default, rename = "courts")]
    pub courts: Vec<CourtConfig>,
    /// Where the configuration was read from (set by [`Config::load`]).
    #[serde(skip)]
    pub source: PathBuf,
}

/// RabbitMQ connection and flow control (`[amqp]`).
///
/// The nodes are written either as `urls = ["amqp://…", …]` (the nodes of a
/// RabbitMQ cluster, tried in order) or as `url = "amqp://…"` (one node, the
/// same as a one-element `urls`); giving both is an error, and neither means
/// the local default. The broker's supervisor connects to the first node
/// that answers and, when its node fails, moves on to the next one (see
/// [`crate::transport::supervisor`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "AmqpToml")]
pub struct AmqpConfig {
    /// The nodes, in the order they are tried; never empty. Overrides:
    /// `PORTER_AMQP_URLS` (comma-separated) or `PORTER_AMQP_URL` (one node).
    pub urls: Vec<String>,
    /// The first node of `urls`: the commands that talk to RabbitMQ once
    /// (`porter topology`, `porter court file-drop`, `porter sim court`'s
    /// default) connect to it.
    pub url: String,
    /// Unacknowledged inbound deliveries per court queue (`basic.qos`).
    pub prefetch: u16,
    /// Publisher confirms kept in flight at once.
    pub confirm_window: usize,
    /// Delay before reconnecting after the connection is lost, in ms; it
    /// doubles up to 30 s. Also the first wait before a court's queue that
    /// failed (refused declare, cancelled consumer) is tried again.
    pub reconnect_ms: u64,
    /// The AMQP heartbeat the broker asks for on its connection, in seconds
    /// (1 to [`MAX_HEARTBEAT_SECS`], default 10). RabbitMQ closes a
    /// connection after two missed heartbeats, so a frozen broker's
    /// unacknowledged deliveries go back to their queues within 30 s. A
    /// shorter `heartbeat` in the URL's query is kept.
    pub heartbeat_secs: u16,
}

/// The `[amqp]` table as written; [`AmqpConfig`] is what it means.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AmqpToml {
    /// One node's AMQP URL (the same as `urls = [url]`).
    #[serde(default)]
    url: Option<String>,
    /// The nodes of a RabbitMQ cluster, tried in order (not empty).
    #[serde(default)]
    urls: Option<Vec<String>>,
    /// See [`AmqpConfig::prefetch`].
    #[serde(default = "default_prefetch")]
    prefetch: u16,
    /// See [`AmqpConfig::confirm_window`].
    #[serde(default = "default_confirm_window")]
    confirm_window: usize,
    /// See [`AmqpConfig::reconnect_ms`].
    #[serde(default = "default_reconnect_ms")]
    reconnect_ms: u64,
    /// See [`AmqpConfig::heartbeat_secs`].
    #[serde(default = "default_heartbeat_secs")]
    heartbeat_secs: u16,
}

impl TryFrom<AmqpToml> for AmqpConfig {
    type Error = String;

    fn try_from(t: AmqpToml) -> Result<AmqpConfig, String> {
        let urls = match (t.url, t.urls) {
            (Some(_), Some(_)) => return Err("[amqp]: give either `url` or `urls`, not both".into()),
            (Some(url), None) => vec![url],
            (None, Some(urls)) if urls.is_empty() => return Err("[amqp] urls: list at least one node".into()),
            (None, Some(urls)) => urls,
            (None, None) => vec![default_amqp_url()],
        };
        Ok(AmqpConfig {
            url: urls[0].clone(),
            urls,
            prefetch: t.prefetch,
            confirm_window: t.confirm_window,
            reconnect_ms: t.reconnect_ms,
            heartbeat_secs: t.heartbeat_secs,
        })
    }
}

impl AmqpConfig {
    /// Replaces the nodes (`url` follows the first); an empty list changes
    /// nothing.
    pub fn set_urls(&mut self, urls: Vec<String>) {
        if let Some(first) = urls.first() {
            self.url = first.clone();
            self.urls = urls;
        }
    }
}

/// The longest AMQP heartbeat the broker accepts, in seconds: two missed
/// heartbeats (20 s) plus RabbitMQ's own timing stay within 30 s.
pub const MAX_HEARTBEAT_SECS: u16 = 10;

/// The store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (default) or `postgres://…`. Override: `PORTER_STORE_URL`.
    #[serde(default = "default_store_url")]
    pub url: String,
    /// How long deduplication records are kept, in days (ICD §5).
    #[serde(default = "default_dedup_days")]
    pub dedup_retention_days: u32,
    /// How long a broker's claim on a delivery lasts unless renewed, in
    /// seconds (1 to 20). A broker that stops renewing (killed, frozen)
    /// loses its deliveries to the other brokers this long after its last
    /// renewal.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

/// The operations HTTP surface.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address. Override: `PORTER_HTTP_LISTEN`.
    #[serde(default = "default_http_listen")]
    pub listen: SocketAddr,
    /// The address partners reach this surface at, for the signed image
    /// links of ICD §8 (`<public_base_url>/images/<sha256>?…`).
    /// Override: `PORTER_PUBLIC_BASE_URL`.
    #[serde(default = "default_public_base_url")]
    pub public_base_url: String,
}

/// Intake batching (group commit).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeConfig {
    /// Most inbound messages committed in one transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

/// Where the declarative files live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// Holds `layouts/*.toml`.
    #[serde(default = "default_schemas")]
    pub schemas: PathBuf,
    /// Holds code tables and CLETS tables.
    #[serde(default = "default_mappings")]
    pub mappings: PathBuf,
}

/// One court.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourtConfig {
    /// The court's ORI (9 characters `[A-Z0-9]`).
    pub ori: String,
    /// Human name, for operators.
    #[serde(default)]
    pub name: String,
    /// The county sheriff's ORI (required for every court, ICD §8).
    pub sheriff_ori: String,
    /// Layouts this court may send (`x-por-layout`); the first is the default.
    #[serde(default = "default_layouts")]
    pub layouts: Vec<String>,
    /// The code-map set (`name` of a file in `mappings/code-maps/`) through
    /// which this court's fixed-width codes are mapped to the canonical ones,
    /// for every one of its layouts. Default: each layout's own `code_map`
    /// (none for `cms-a/1`, whose codes are canonical).
    #[serde(default)]
    pub code_map: Option<String>,
    /// How long a message may wait for a missing earlier sequence before it
    /// is `DEAD_LETTERED` with `SEQUENCE_GAP`, in seconds (ICD §5: 1 h).
    #[serde(default = "default_gap_timeout_secs")]
    pub gap_timeout_secs: u64,
    /// AMQP users allowed to publish for this court (`user_id`). A message
    /// that carries a `user_id` not in this list is `ORI_MISMATCH`.
    #[serde(default)]
    pub amqp_users: Vec<String>,
}

impl CourtConfig {
    /// The layout used when a message names none.
    pub fn default_layout(&self) -> &str {
        self.layouts.first().map(String::as_str).unwrap_or("cms-a/1")
    }

    /// The queue this court publishes to.
    pub fn inbound_queue(&self) -> String {
        format!("por.inbound.{}", self.ori)
    }

    /// The queue this court reads its statuses from.
    pub fn responses_queue(&self) -> String {
        format!("por.responses.{}", self.ori)
    }
}

fn default_amqp_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".into()
}
fn default_prefetch() -> u16 {
    64
}
fn default_confirm_window() -> usize {
    512
}
fn default_reconnect_ms() -> u64 {
    500
}
fn default_heartbeat_secs() -> u16 {
    MAX_HEARTBEAT_SECS
}
fn default_store_url() -> String {
    "sqlite://var/porter.db".into()
}
fn default_dedup_days() -> u32 {
    400
}
fn default_lease_secs() -> u64 {
    20
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_public_base_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_batch_size() -> usize {
    256
}
fn default_schemas() -> PathBuf {
    "schemas".into()
}
fn default_mappings() -> PathBuf {
    "mappings".into()
}
fn default_gap_timeout_secs() -> u64 {
    3600
}
fn default_layouts() -> Vec<String> {
    vec!["cms-a/1".into()]
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: default_amqp_url(),
            urls: vec![default_amqp_url()],
            prefetch: default_prefetch(),
            confirm_window: default_confirm_window(),
            reconnect_ms: default_reconnect_ms(),
            heartbeat_secs: default_heartbeat_secs(),
        }
    }
}
impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: default_store_url(),
            dedup_retention_days: default_dedup_days(),
            lease_secs: default_lease_secs(),
        }
    }
}
impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_http_listen(),
            public_base_url: default_public_base_url(),
        }
    }
}
impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            batch_size: default_batch_size(),
        }
    }
}
impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            schemas: default_schemas(),
            mappings: default_mappings(),
        }
    }
}
impl Config {
    /// Reads, overrides from the environment, resolves paths and checks.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_toml_str(&text, path)?;
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML; relative paths are resolved against `path`'s folder.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.paths.schemas = base.join(&config.paths.schemas);
        config.paths.mappings = base.join(&config.paths.mappings);
        if let Some(file) = config.store.url.strip_prefix("sqlite://")
            && !file.starts_with('/')
        {
            config.store.url = format!("sqlite://{}", base.join(file).display());
        }
        config.source = path.to_path_buf();
        Ok(config)
    }

    /// Applies `PORTER_*` overrides; a malformed value is an error.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("PORTER_AMQP_URLS") {
            let urls: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(String::from)
                .collect();
            if urls.is_empty() {
                return Err(ConfigError::Invalid {
                    path: self.source.clone(),
                    message: "PORTER_AMQP_URLS lists no node".into(),
                });
            }
            self.amqp.set_urls(urls);
        } else if let Some(v) = get("PORTER_AMQP_URL") {
            self.amqp.set_urls(vec![v]);
        }
        if let Some(v) = get("PORTER_STORE_URL") {
            self.store.url = v;
        }
        if let Some(v) = get("PORTER_HTTP_LISTEN") {
            self.http.listen = v.parse().map_err(|_| ConfigError::Invalid {
                path: self.source.clone(),
                message: format!("PORTER_HTTP_LISTEN={v:?} is not an address such as 127.0.0.1:8080"),
            })?;
        }
        if let Some(v) = get("PORTER_PUBLIC_BASE_URL") {
            self.http.public_base_url = v;
        }
        if let Some(v) = get("PORTER_CLETS_ADDRESS") {
            self.partners.clets.address = v;
        }
        if let Some(doj) = &mut self.partners.doj {
            if let Some(v) = get("PORTER_DOJ_URL") {
                doj.url = v;
            }
            if let Some(v) = get("PORTER_DOJ_TOKEN") {
                doj.token = Secret::literal(v);
            }
        }
        if let Some(lea) = &mut self.partners.lea {
            if let Some(v) = get("PORTER_LEA_BASE_URL") {
                lea.base_url = v;
            }
            if let Some(v) = get("PORTER_LEA_SECRET") {
                lea.default_secret = Some(Secret::literal(v));
            }
        }
        Ok(())
    }

    /// Checks what serde cannot: ORIs, duplicates, required values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: self.source.clone(),
            message,
        };
        if !(1..=20).contains(&self.store.lease_secs) {
            return Err(invalid(format!(
                "store.lease_secs {} is not between 1 and 20",
                self.store.lease_secs
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for court in &self.courts {
            if !is_ori(&court.ori) {
                return Err(invalid(format!(
                    "court ori {:?} is not 9 characters [A-Z0-9]",
                    court.ori
                )));
            }
            if !seen.insert(court.ori.as_str()) {
                return Err(invalid(format!("court {} is configured twice", court.ori)));
            }
            if !is_ori(&court.sheriff_ori) {
                return Err(invalid(format!(
                    "court {}: sheriff_ori {:?} is not a valid ORI",
                    court.ori, court.sheriff_ori
                )));
            }
            if court.layouts.is_empty() {
                return Err(invalid(format!("court {}: layouts must not be empty", court.ori)));
            }
        }
        for url in &self.amqp.urls {
            if let Err(e) = url.parse::<lapin::uri::AMQPUri>() {
                return Err(invalid(format!(
                    "[amqp] {} is not an AMQP URL: {e}",
                    crate::transport::topology::management::redact(url)
                )));
            }
        }
        if !(1..=MAX_HEARTBEAT_SECS).contains(&self.amqp.heartbeat_secs) {
            return Err(invalid(format!(
                "amqp.heartbeat_secs {} is not between 1 and {MAX_HEARTBEAT_SECS}",
                self.amqp.heartbeat_secs
            )));
        }
        if self.amqp.confirm_window == 0 || self.intake.batch_size == 0 {
            return Err(invalid("confirm_window and batch_size must be at least 1".into()));
        }
        let sheriffs = self.courts.iter().map(|c| c.sheriff_ori.as_str());
        self.partners.validate(sheriffs).map_err(invalid)?;
        self.topology.validate().map_err(invalid)?;
        Ok(())
    }

    /// Reads the partner secrets' `env:` and `file:` references (see
    /// [`Secret`]). Only what talks to partners needs them: the broker and
    /// the simulators, not `porter validate` or the court adapters.
    pub fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        let base = self.source.parent().map(Path::to_path_buf).unwrap_or_default();
        self.partners
            .resolve_secrets(&base, &|k| std::env::var(k).ok())
            .map_err(|message| ConfigError::Invalid {
                path: self.source.clone(),
                message,
            })
    }

    pub fn court(&self, ori: &str) -> Option<&CourtConfig> {
        self.courts.iter().find(|c| c.ori == ori)
    }
}

/// ICD §0: an ORI is 9 characters `[A-Z0-9]`.
pub fn is_ori(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A misspelt key is an error naming the file, not a silently ignored setting.
    #[test]
    fn unknown_field_is_rejected() {
        let err = Config::from_toml_str("[amqp]\nurll = \"x\"\n", Path::new("a/porter.toml")).unwrap_err();
        assert!(err.to_string().contains("a/porter.toml"), "{err}");
        assert!(err.to_string().contains("urll"), "{err}");
    }

    /// Relative paths resolve against the configuration file's folder.
    #[test]
    fn paths_resolve_against_the_file() {
        let c = Config::from_toml_str("", Path::new("/etc/porter/porter.toml")).unwrap();
        assert_eq!(c.paths.schemas, PathBuf::from("/etc/porter/schemas"));
        assert_eq!(c.store.url, "sqlite:///etc/porter/var/porter.db");
    }

    /// Environment overrides win over the file.
    #[test]
    fn env_overrides_apply() {
        let mut c = Config::from_toml_str("", Path::new("p.toml")).unwrap();
        c.apply_env(|k| (k == "PORTER_STORE_URL").then(|| "postgres://x/y".to_string()))
            .unwrap();
        assert_eq!(c.store.url, "postgres://x/y");
        assert!(
            c.apply_env(|k| (k == "PORTER_HTTP_LISTEN").then(|| "nonsense".to_string()))
                .is_err()
        );
    }

    /// A court with a malformed ORI stops the broker at start.
    #[test]
    fn bad_court_ori_is_rejected() {
        let text = "[[courts]]\nori = \"CA03\"\nsheriff_ori = \"CA0340000\"\n";
        let c = Config::from_toml_str(text, Path::new("p.toml")).unwrap();
        assert!(c.validate().is_err());
    }

    /// The heartbeat is 10 s unless set, and may be 1 to 10 s: longer would
    /// let a frozen broker keep its unacknowledged deliveries past 30 s; 0
    /// would turn it off.
    #[test]
    fn heartbeat_is_at_most_ten_seconds() {
        let c = Config::from_toml_str("[amqp]\nprefetch = 8\n", Path::new("p.toml")).unwrap();
        assert_eq!(c.amqp.heartbeat_secs, 10);
        for (secs, ok) in [(0, false), (1, true), (10, true), (11, false), (60, false)] {
            let text = format!("[amqp]\nheartbeat_secs = {secs}\n");
            let c = Config::from_toml_str(&text, Path::new("p.toml")).unwrap();
            assert_eq!(c.validate().is_ok(), ok, "heartbeat_secs = {secs}");
        }
    }

    /// `url` is one node; `urls` lists several, in order; neither is the
    /// local default; both, or an empty list, are errors naming the file;
    /// a misspelt key is still refused.
    #[test]
    fn amqp_nodes_are_read_from_url_or_urls() {
        let one = Config::from_toml_str("[amqp]\nurl = \"amqp://a:1/%2f\"\n", Path::new("p.toml")).unwrap();
        assert_eq!(one.amqp.urls, vec!["amqp://a:1/%2f"]);
        assert_eq!(one.amqp.url, "amqp://a:1/%2f");
        let text = "[amqp]\nurls = [\"amqp://a:1/%2f\", \"amqp://b:2/%2f\"]\n";
        let two = Config::from_toml_str(text, Path::new("p.toml")).unwrap();
        assert_eq!(two.amqp.urls, vec!["amqp://a:1/%2f", "amqp://b:2/%2f"]);
        assert_eq!(two.amqp.url, "amqp://a:1/%2f");
        two.validate().unwrap();
        let none = Config::from_toml_str("[amqp]\nprefetch = 8\n", Path::new("p.toml")).unwrap();
        assert_eq!(none.amqp.urls, vec!["amqp://guest:guest@127.0.0.1:5672/%2f"]);
        assert_eq!(none.amqp.prefetch, 8);
        let absent = Config::from_toml_str("", Path::new("p.toml")).unwrap();
        assert_eq!(absent.amqp.urls, none.amqp.urls);
        let both = "[amqp]\nurl = \"amqp://a/%2f\"\nurls = [\"amqp://b/%2f\"]\n";
        let err = Config::from_toml_str(both, Path::new("a/p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a/p.toml") && err.contains("not both"), "{err}");
        let err = Config::from_toml_str("[amqp]\nurls = []\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least one node"), "{err}");
        let typo = Config::from_toml_str("[amqp]\nurlz = []\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(typo.contains("urlz"), "{typo}");
    }

    /// `PORTER_AMQP_URLS` (comma-separated) and `PORTER_AMQP_URL` replace the
    /// file's nodes; a URL that is not an AMQP URL fails validation without
    /// showing its password.
    #[test]
    fn amqp_nodes_env_overrides_and_validation() {
        let mut c = Config::from_toml_str("[amqp]\nurl = \"amqp://a/%2f\"\n", Path::new("p.toml")).unwrap();
        c.apply_env(|k| (k == "PORTER_AMQP_URLS").then(|| "amqp://x/%2f, amqp://y/%2f".to_string()))
            .unwrap();
        assert_eq!(c.amqp.urls, vec!["amqp://x/%2f", "amqp://y/%2f"]);
        assert_eq!(c.amqp.url, "amqp://x/%2f");
        c.apply_env(|k| (k == "PORTER_AMQP_URL").then(|| "amqp://z/%2f".to_string()))
            .unwrap();
        assert_eq!(c.amqp.urls, vec!["amqp://z/%2f"]);
        assert!(
            c.apply_env(|k| (k == "PORTER_AMQP_URLS").then(|| " , ".to_string()))
                .is_err()
        );
        let text = "[amqp]\nurls = [\"amqp://a/%2f\", \"http://u:s3cret@b/\"]\n";
        let err = Config::from_toml_str(text, Path::new("p.toml"))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an AMQP URL") && !err.contains("s3cret"), "{err}");
    }
}
