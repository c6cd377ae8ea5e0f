//! `[topology]`: the RabbitMQ policies and court users `porter topology`
//! prints and applies (ICD §1). Every key has a default; the section may be
//! left out.
//!
//! ```toml
//! [topology]
//! delivery_limit = 20                    # ≥ 20; redeliveries before a dead letter
//! dead_max_length = 1000000              # messages kept on por.dead
//! dead_max_length_bytes = 2147483648     # bytes kept on por.dead (2 GiB)
//! management_url = "http://127.0.0.1:15672"
//! policy_priority = 10
//!
//! [topology.passwords]                   # optional: where a court user's password is
//! "court-ca034025j" = "file:var/secrets/court-ca034025j"
//! ```
//!
//! A court user not listed under `passwords` takes its password from
//! `env:PORTER_AMQP_PASSWORD_<USER>`, `<USER>` uppercased with every
//! character outside `[A-Z0-9]` replaced by `_` (`court-ca034025j` →
//! `PORTER_AMQP_PASSWORD_COURT_CA034025J`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Secret;

/// The smallest delivery limit Porter accepts (the issue's requirement).
pub const MIN_DELIVERY_LIMIT: u32 = 20;

/// RabbitMQ policies and court users.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyConfig {
    /// `delivery-limit` of the court queues: a message returned this many
    /// times is dead-lettered to `por.dead`. At least 20.
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
    /// `max-length` of `por.dead`, in messages.
    #[serde(default = "default_dead_max_length")]
    pub dead_max_length: u64,
    /// `max-length-bytes` of `por.dead` (message bodies).
    #[serde(default = "default_dead_max_length_bytes")]
    pub dead_max_length_bytes: u64,
    /// The management HTTP API. Its `user:password@`, if any, are the
    /// credentials; otherwise those of the AMQP URL are used.
    /// Override: `PORTER_MANAGEMENT_URL` (or `--management-url`).
    #[serde(default = "default_management_url")]
    pub management_url: String,
    /// Priority of Porter's policies, so that they win over a catch-all
    /// policy of lower priority (RabbitMQ applies one policy per queue).
    #[serde(default = "default_policy_priority")]
    pub policy_priority: i32,
    /// Court user → password reference (`env:NAME` or `file:PATH`).
    #[serde(default)]
    pub passwords: BTreeMap<String, Secret>,
}

impl TopologyConfig {
    /// The password reference of `user`: the configured one, or
    /// `env:PORTER_AMQP_PASSWORD_<USER>`. The flag says whether it was
    /// configured (an unresolved configured reference is an error; an unset
    /// default variable only a warning).
    pub fn password_for(&self, user: &str) -> (Secret, bool) {
        match self.passwords.get(user) {
            Some(s) => (s.clone(), true),
            None => (Secret::from(format!("env:{}", default_password_variable(user))), false),
        }
    }

    /// Checks the limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.delivery_limit < MIN_DELIVERY_LIMIT {
            return Err(format!(
                "topology.delivery_limit = {} is below the minimum of {MIN_DELIVERY_LIMIT}",
                self.delivery_limit
            ));
        }
        if self.dead_max_length == 0 || self.dead_max_length_bytes == 0 {
            return Err("topology.dead_max_length and dead_max_length_bytes must be at least 1".into());
        }
        Ok(())
    }
}

/// `PORTER_AMQP_PASSWORD_<USER>` for `user`.
pub fn default_password_variable(user: &str) -> String {
    let tail: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("PORTER_AMQP_PASSWORD_{tail}")
}

fn default_delivery_limit() -> u32 {
    MIN_DELIVERY_LIMIT
}
fn default_dead_max_length() -> u64 {
    1_000_000
}
fn default_dead_max_length_bytes() -> u64 {
    2 * 1024 * 1024 * 1024
}
fn default_management_url() -> String {
    "http://127.0.0.1:15672".into()
}
fn default_policy_priority() -> i32 {
    10
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig {
            delivery_limit: default_delivery_limit(),
            dead_max_length: default_dead_max_length(),
            dead_max_length_bytes: default_dead_max_length_bytes(),
            management_url: default_management_url(),
            policy_priority: default_policy_priority(),
            passwords: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The section is optional and its defaults are the documented ones.
    #[test]
    fn defaults() {
        let t: TopologyConfig = toml::from_str("").unwrap();
        assert_eq!(t.delivery_limit, 20);
        assert_eq!(t.dead_max_length, 1_000_000);
        assert_eq!(t.dead_max_length_bytes, 2_147_483_648);
        assert_eq!(t.management_url, "http://127.0.0.1:15672");
        t.validate().unwrap();
    }

    /// A delivery limit under 20 and a misspelt key are refused.
    #[test]
    fn low_limit_and_unknown_key_are_refused() {
        let t: TopologyConfig = toml::from_str("delivery_limit = 19").unwrap();
        assert!(t.validate().unwrap_err().contains("19"));
        assert!(toml::from_str::<TopologyConfig>("delivery_limt = 30").is_err());
    }

    /// A user's password is the configured reference, or the conventional
    /// environment variable.
    #[test]
    fn password_references() {
        let t: TopologyConfig = toml::from_str("[passwords]\n\"court-a\" = \"file:pw\"\n").unwrap();
        assert_eq!(t.password_for("court-a").0.spec(), "file:pw");
        assert!(t.password_for("court-a").1);
        let (s, configured) = t.password_for("court-ca034025j");
        assert_eq!(s.spec(), "env:PORTER_AMQP_PASSWORD_COURT_CA034025J");
        assert!(!configured);
    }
}
