//! Partner configuration: CLETS/CARPOS (always), DOJ and the LEA agencies
//! (each enabled by the presence of its section).

use std::path::Path;

use serde::Deserialize;

use super::secret::Secret;

/// The partners Porter delivers to.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PartnersConfig {
    #[serde(default)]
    pub clets: CletsConfig,
    /// The DOJ firearms unit (ICD §7); absent = DOJ is not routed to.
    #[serde(default)]
    pub doj: Option<DojConfig>,
    /// Local law-enforcement RMSs (ICD §8); absent = no agency is routed to.
    #[serde(default)]
    pub lea: Option<LeaConfig>,
}

/// Retry timing and the maximum age of a message (ICD §9), per partner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// First delay, in ms.
    #[serde(default = "default_retry_min_ms")]
    pub min_ms: u64,
    /// Longest delay, in ms.
    #[serde(default = "default_retry_max_ms")]
    pub max_ms: u64,
    /// How long a delivery is retried, counted from its first attempt,
    /// before it becomes a dead letter (after at least 3 attempts; see
    /// `delivery::retry`), in seconds (ICD §9: 24 h).
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
}

/// CLETS/CARPOS over framed TCP (ICD §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CletsConfig {
    /// `host:port`. Override: `PORTER_CLETS_ADDRESS`.
    #[serde(default = "default_clets_address")]
    pub address: String,
    /// TCP connections kept to CLETS.
    #[serde(default = "default_clets_connections")]
    pub connections: usize,
    /// Time allowed for one request's answer, in ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Deliveries taken from the store per round.
    #[serde(default = "default_delivery_batch")]
    pub batch: u32,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// The DOJ firearms interface over HTTP (ICD §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DojConfig {
    /// Base URL; notices go to `<url>/doj/firearms/v1/notices`.
    /// Override: `PORTER_DOJ_URL`.
    #[serde(default = "default_doj_url")]
    pub url: String,
    /// The bearer token (a [`Secret`] reference). Override: `PORTER_DOJ_TOKEN`.
    pub token: Secret,
    /// Requests in flight at once.
    #[serde(default = "default_http_concurrency")]
    pub concurrency: usize,
    /// Time allowed for one request, in ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Deliveries taken from the store per round.
    #[serde(default = "default_delivery_batch")]
    pub batch: u32,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// Local law-enforcement records systems over HTTP (ICD §8).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaConfig {
    /// An agency without its own `endpoint` is at `<base_url>/<ORI>`.
    /// Override: `PORTER_LEA_BASE_URL`.
    #[serde(default = "default_lea_base_url")]
    pub base_url: String,
    /// Signing secret of every agency without its own. Override: `PORTER_LEA_SECRET`.
    #[serde(default)]
    pub default_secret: Option<Secret>,
    /// Agencies with their own endpoint or secret.
    #[serde(default)]
    pub agencies: Vec<LeaAgencyConfig>,
    /// Requests in flight at once, over all agencies.
    #[serde(default = "default_http_concurrency")]
    pub concurrency: usize,
    /// Requests in flight at once to one agency, so that a slow agency
    /// cannot take every slot.
    #[serde(default = "default_per_agency")]
    pub per_agency: usize,
    /// Time allowed for one request, in ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Deliveries taken from the store per round.
    #[serde(default = "default_delivery_batch")]
    pub batch: u32,
    /// How long a signed image link stays valid, in days (ICD §8: 7).
    #[serde(default = "default_image_link_days")]
    pub image_link_days: u32,
    #[serde(default)]
    pub retry: RetryConfig,
}

/// One agency's own settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaAgencyConfig {
    pub ori: String,
    #[serde(default)]
    pub name: String,
    /// Default: `<base_url>/<ORI>`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Default: the section's `default_secret`.
    #[serde(default)]
    pub secret: Option<Secret>,
}

impl LeaConfig {
    fn agency(&self, ori: &str) -> Option<&LeaAgencyConfig> {
        self.agencies.iter().find(|a| a.ori == ori)
    }

    /// Where `ori`'s orders go (`POST <endpoint>/orders`).
    pub fn endpoint(&self, ori: &str) -> String {
        match self.agency(ori).and_then(|a| a.endpoint.clone()) {
            Some(endpoint) => endpoint.trim_end_matches('/').to_string(),
            None => format!("{}/{ori}", self.base_url.trim_end_matches('/')),
        }
    }

    /// The secret `ori`'s requests and image links are signed with, once
    /// resolved ([`PartnersConfig::resolve_secrets`]).
    pub fn secret(&self, ori: &str) -> Option<&str> {
        self.secret_ref(ori).and_then(Secret::expose)
    }

    /// Whether `ori` has a secret configured (resolved or not).
    pub fn has_secret(&self, ori: &str) -> bool {
        self.secret_ref(ori).is_some()
    }

    fn secret_ref(&self, ori: &str) -> Option<&Secret> {
        let own = self.agency(ori).and_then(|a| a.secret.as_ref());
        own.or(self.default_secret.as_ref())
    }
}

impl PartnersConfig {
    /// Resolves every secret reference (see [`Secret`]).
    pub fn resolve_secrets(&mut self, base: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
        if let Some(doj) = &mut self.doj {
            doj.token.resolve(base, env)?;
        }
        if let Some(lea) = &mut self.lea {
            if let Some(secret) = &mut lea.default_secret {
                secret.resolve(base, env)?;
            }
            for agency in &mut lea.agencies {
                if let Some(secret) = &mut agency.secret {
                    secret.resolve(base, env)?;
                }
            }
        }
        Ok(())
    }

    /// Checks what serde cannot: ORIs, URLs, limits, and that every agency
    /// Porter may route to (`routable`) has a signing secret.
    pub fn validate<'a>(&self, routable: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
        if self.clets.connections == 0 {
            return Err("partners.clets.connections must be at least 1".into());
        }
        if let Some(doj) = &self.doj {
            check_url("partners.doj.url", &doj.url)?;
            if doj.concurrency == 0 {
                return Err("partners.doj.concurrency must be at least 1".into());
            }
        }
        let Some(lea) = &self.lea else { return Ok(()) };
        check_url("partners.lea.base_url", &lea.base_url)?;
        if lea.concurrency == 0 || lea.per_agency == 0 {
            return Err("partners.lea.concurrency and per_agency must be at least 1".into());
        }
        for agency in &lea.agencies {
            if !super::is_ori(&agency.ori) {
                return Err(format!("partners.lea.agencies: {:?} is not a valid ORI", agency.ori));
            }
            if let Some(endpoint) = &agency.endpoint {
                check_url(&format!("partners.lea.agencies {} endpoint", agency.ori), endpoint)?;
            }
        }
        for ori in routable {
            if !lea.has_secret(ori) {
                return Err(format!(
                    "LEA agency {ori} can be routed to but has no secret: set partners.lea.default_secret \
                     or give it one under [[partners.lea.agencies]]"
                ));
            }
        }
        Ok(())
    }
}

fn check_url(what: &str, url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{what} {url:?} must start with http:// or https://"))
    }
}

fn default_retry_min_ms() -> u64 {
    1_000
}
fn default_retry_max_ms() -> u64 {
    300_000
}
fn default_max_age_secs() -> u64 {
    24 * 3600
}
fn default_clets_address() -> String {
    "127.0.0.1:7001".into()
}
fn default_clets_connections() -> usize {
    4
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_delivery_batch() -> u32 {
    128
}
fn default_doj_url() -> String {
    "http://127.0.0.1:7002".into()
}
fn default_lea_base_url() -> String {
    "http://127.0.0.1:7003".into()
}
fn default_http_concurrency() -> usize {
    16
}
fn default_per_agency() -> usize {
    4
}
fn default_image_link_days() -> u32 {
    7
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            min_ms: default_retry_min_ms(),
            max_ms: default_retry_max_ms(),
            max_age_secs: default_max_age_secs(),
        }
    }
}

impl Default for CletsConfig {
    fn default() -> Self {
        CletsConfig {
            address: default_clets_address(),
            connections: default_clets_connections(),
            timeout_ms: default_timeout_ms(),
            batch: default_delivery_batch(),
            retry: RetryConfig::default(),
        }
    }
}
