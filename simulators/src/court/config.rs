//! The court simulator's configuration: which courts to play, how many orders
//! each one issues, in which formats, how they close, whether they carry a
//! signed-order image, how fast, and how long to wait for statuses.

use serde::{Deserialize, Serialize};

/// Configuration of one court-simulator run (`porter sim court`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourtSimConfig {
    /// The RabbitMQ URL the simulated courts connect to, when `amqp_urls`
    /// is empty.
    #[serde(default = "default_amqp_url")]
    pub amqp_url: String,
    /// The nodes of a RabbitMQ cluster (the broker's `[amqp] urls`), tried in
    /// order: the simulator connects to the first that accepts and, when its
    /// connection fails, to the next ones ([`super::link`]). When it lists
    /// any node, `amqp_url` is not used.
    #[serde(default)]
    pub amqp_urls: Vec<String>,
    /// The courts to play. Each publishes with routing key = its ORI and
    /// reads its statuses from `por.responses.<ORI>`.
    #[serde(default = "default_courts")]
    pub courts: Vec<SimCourt>,
    /// How many orders each court issues.
    #[serde(default = "default_orders_per_court")]
    pub orders_per_court: u32,
    /// Messages per second over all courts together; `0` publishes as fast as
    /// publisher confirms allow.
    #[serde(default = "default_rate_per_sec")]
    pub rate_per_sec: f64,
    /// How many orders of one court are in flight together: the court
    /// publishes the first message of `order_window` of its orders, then the
    /// second message of each, and so on, and only then starts its next
    /// `order_window` orders (see [`super::publisher::schedule`]). So an
    /// order's MODIFY usually reaches Porter while its ISSUE is still being
    /// delivered, as when a clerk works on several cases at once. `1`
    /// publishes each order's messages before the court's next order.
    /// Each order's messages always go in sequence order.
    #[serde(default = "default_order_window")]
    pub order_window: usize,
    /// `false`: every order is one ISSUE. `true`: each ISSUE is followed by a
    /// MODIFY (sequence 2) and a SERVICE (sequence 3).
    #[serde(default)]
    pub lifecycle: bool,
    /// With `lifecycle`: each order is then closed (sequence 4), the way
    /// `close_mode` says.
    #[serde(default)]
    pub close: bool,
    /// How `close` closes an order: always TERMINATE, always CANCEL, or mixed
    /// (a CANCEL for about one order in ten, a TERMINATE otherwise).
    #[serde(default)]
    pub close_mode: CloseMode,
    /// Overrides every court's own `format`: all XML, all fixed-width, or
    /// `mixed` (each order's format drawn from the seed, half and half; the
    /// messages of one order keep one format). `None`: each court's format.
    #[serde(default)]
    pub format_override: Option<FormatChoice>,
    /// Whether XML orders carry a signed-order image (`por:OrderImage`, a
    /// generated PDF of 20 KiB to 3 MiB): every XML ISSUE, and about one XML
    /// MODIFY in three. Fixed-width has no image record, so fixed-width
    /// orders never carry one.
    #[serde(default)]
    pub images: bool,
    /// After the last publish, how long to wait at most for outstanding
    /// statuses. The run ends sooner, as soon as every sent message is
    /// complete.
    #[serde(default = "default_status_timeout_secs")]
    pub status_timeout_secs: u64,
    /// Seed of the order generator: the same seed regenerates the same
    /// orders. The default is taken from the clock, so that two runs against
    /// the same broker do not reuse order numbers.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

/// One simulated court CMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimCourt {
    /// The court's 9-character ORI, e.g. `CA034025J`.
    pub ori: String,
    /// A display name, e.g. `Sacramento Superior Court`.
    #[serde(default)]
    pub name: String,
    /// Which wire format this court's CMS writes.
    #[serde(default)]
    pub format: CourtFormat,
}

/// The wire format a simulated CMS writes (ICD §2 or §3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CourtFormat {
    /// `application/xml`, ICD §2.
    #[default]
    Xml,
    /// `text/plain`, fixed-width layout `cms-a/1`, ICD §3.
    Fixed,
}

/// How the simulator closes an order (`close_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloseMode {
    /// Always a TERMINATE, dated today.
    Terminate,
    /// Always a CANCEL (entered in error).
    Cancel,
    /// A CANCEL for about one order in ten, a TERMINATE otherwise.
    #[default]
    Mixed,
}

/// The format every court writes, overriding its own (`format_override`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatChoice {
    /// Every order in XML (ICD §2).
    Xml,
    /// Every order in fixed-width `cms-a/1` (ICD §3).
    Fixed,
    /// Each order's format drawn from the seed, XML or fixed-width half and
    /// half; all messages of one order share it.
    Mixed,
}

impl CourtFormat {
    /// The AMQP `content_type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            CourtFormat::Xml => "application/xml",
            CourtFormat::Fixed => "text/plain",
        }
    }
}

impl Default for CourtSimConfig {
    fn default() -> Self {
        CourtSimConfig {
            amqp_url: default_amqp_url(),
            amqp_urls: Vec::new(),
            courts: default_courts(),
            orders_per_court: default_orders_per_court(),
            rate_per_sec: default_rate_per_sec(),
            order_window: default_order_window(),
            lifecycle: false,
            close: false,
            close_mode: CloseMode::default(),
            format_override: None,
            images: false,
            status_timeout_secs: default_status_timeout_secs(),
            seed: default_seed(),
        }
    }
}

impl CourtSimConfig {
    /// The RabbitMQ nodes to try, in order: `amqp_urls`, or else `amqp_url`.
    pub fn nodes(&self) -> Vec<String> {
        if self.amqp_urls.is_empty() {
            vec![self.amqp_url.clone()]
        } else {
            self.amqp_urls.clone()
        }
    }

    /// Checks what serde cannot: ORIs, duplicates and the rate.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.courts.is_empty() {
            anyhow::bail!("court simulator: no courts configured");
        }
        let mut seen = std::collections::HashSet::new();
        for court in &self.courts {
            if court.ori.len() != 9 || !court.ori.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
                anyhow::bail!("court simulator: ORI {:?} is not 9 characters [A-Z0-9]", court.ori);
            }
            if !seen.insert(court.ori.as_str()) {
                anyhow::bail!("court simulator: court {} is configured twice", court.ori);
            }
        }
        if self.order_window == 0 {
            anyhow::bail!("court simulator: order_window must be at least 1");
        }
        if !self.rate_per_sec.is_finite() || !(0.0..=MAX_RATE_PER_SEC).contains(&self.rate_per_sec) {
            anyhow::bail!("court simulator: rate_per_sec must be 0 (unthrottled) or a number up to {MAX_RATE_PER_SEC}");
        }
        Ok(())
    }
}

/// The highest rate the publisher can pace: above it the interval between two
/// messages would round to nothing. Use 0 for as fast as possible.
pub const MAX_RATE_PER_SEC: f64 = 1_000_000.0;

fn default_amqp_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".into()
}

fn default_courts() -> Vec<SimCourt> {
    vec![
        SimCourt {
            ori: "CA034025J".into(),
            name: "Sacramento Superior Court".into(),
            format: CourtFormat::Xml,
        },
        SimCourt {
            ori: "CA019015J".into(),
            name: "Los Angeles Superior Court".into(),
            format: CourtFormat::Fixed,
        },
    ]
}

fn default_orders_per_court() -> u32 {
    2
}

fn default_rate_per_sec() -> f64 {
    5.0
}

fn default_order_window() -> usize {
    8
}

fn default_status_timeout_secs() -> u64 {
    60
}

fn default_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty document gets every default, including the two sample courts.
    #[test]
    fn empty_config_takes_defaults() {
        let c: CourtSimConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(c.nodes(), vec!["amqp://guest:guest@127.0.0.1:5672/%2f"]);
        assert_eq!(c.orders_per_court, 2);
        assert_eq!(c.rate_per_sec, 5.0);
        assert_eq!(c.order_window, 8);
        assert!(!c.lifecycle);
        assert!(!c.close && c.close_mode == CloseMode::Mixed);
        assert_eq!(c.format_override, None);
        assert!(!c.images);
        assert_eq!(c.status_timeout_secs, 60);
        assert_eq!(c.courts.len(), 2);
        c.validate().unwrap();
    }

    /// `amqp_urls` lists a cluster's nodes in order and then replaces `amqp_url`.
    #[test]
    fn amqp_urls_replace_amqp_url() {
        let c: CourtSimConfig =
            serde_json::from_str(r#"{"amqp_url": "amqp://a/%2f", "amqp_urls": ["amqp://b/%2f", "amqp://c/%2f"]}"#)
                .unwrap();
        assert_eq!(c.nodes(), vec!["amqp://b/%2f", "amqp://c/%2f"]);
        let one: CourtSimConfig = serde_json::from_str(r#"{"amqp_url": "amqp://a/%2f"}"#).unwrap();
        assert_eq!(one.nodes(), vec!["amqp://a/%2f"]);
    }

    /// Close modes and format overrides are spelt in lowercase; others are refused.
    #[test]
    fn close_modes_and_format_overrides_are_read() {
        let c: CourtSimConfig = serde_json::from_str(
            r#"{"close": true, "close_mode": "cancel", "format_override": "mixed", "images": true}"#,
        )
        .unwrap();
        assert!(c.close && c.images);
        assert_eq!(c.close_mode, CloseMode::Cancel);
        assert_eq!(c.format_override, Some(FormatChoice::Mixed));
        assert!(serde_json::from_str::<CourtSimConfig>(r#"{"close_mode": "sometimes"}"#).is_err());
        assert!(serde_json::from_str::<CourtSimConfig>(r#"{"format_override": "json"}"#).is_err());
    }

    /// A misspelt key is an error, not silently ignored.
    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<CourtSimConfig>(r#"{"orders_per_cort": 3}"#).is_err());
        let court = r#"{"courts": [{"ori": "CA034025J", "fromat": "xml"}]}"#;
        assert!(serde_json::from_str::<CourtSimConfig>(court).is_err());
    }

    /// Formats are spelt `xml` and `fixed`; bad ORIs and duplicates fail validation.
    #[test]
    fn courts_are_checked() {
        let c: CourtSimConfig =
            serde_json::from_str(r#"{"courts": [{"ori": "CA034025J", "name": "S", "format": "fixed"}], "seed": 7}"#)
                .unwrap();
        assert_eq!(c.courts[0].format, CourtFormat::Fixed);
        assert_eq!(c.seed, 7);
        c.validate().unwrap();

        let mut bad = c.clone();
        bad.courts[0].ori = "ca034025j".into();
        assert!(bad.validate().is_err());
        let mut twice = c.clone();
        twice.courts.push(c.courts[0].clone());
        assert!(twice.validate().is_err());
        let mut window = c.clone();
        window.order_window = 0;
        assert!(window.validate().is_err());
        let mut rate = c;
        rate.rate_per_sec = -1.0;
        assert!(rate.validate().is_err());
        rate.rate_per_sec = 2e9;
        assert!(rate.validate().is_err(), "a rate the publisher cannot pace is refused");
        rate.rate_per_sec = MAX_RATE_PER_SEC;
        rate.validate().unwrap();
    }
}
