//! The partner simulators' settings, taken from the broker's configuration
//! (ICD §11: "from the same `--config` file as the broker"), so that tokens
//! and signing secrets agree on both sides without being written twice.

use anyhow::Context as _;
use porter_simulators::doj::DojSimConfig;
use porter_simulators::lea::{LeaSimAgency, LeaSimConfig};

use crate::config::Config;

/// The DOJ simulator accepts the broker's DOJ token.
pub fn doj(config: &Config) -> anyhow::Result<DojSimConfig> {
    let mut config = config.clone();
    config.resolve_secrets()?;
    let doj = config
        .partners
        .doj
        .as_ref()
        .context("the configuration has no [partners.doj] section")?;
    let token = doj.token.expose().context("partners.doj.token is not resolved")?;
    Ok(DojSimConfig {
        tokens: vec![token.to_string()],
        ..DojSimConfig::default()
    })
}

/// The LEA simulator serves the broker's agencies with their secrets, and
/// any other agency with the default secret.
pub fn lea(config: &Config) -> anyhow::Result<LeaSimConfig> {
    let mut config = config.clone();
    config.resolve_secrets()?;
    let lea = config
        .partners
        .lea
        .as_ref()
        .context("the configuration has no [partners.lea] section")?;
    let agencies = lea
        .agencies
        .iter()
        .filter_map(|a| {
            let secret = a.secret.as_ref()?.expose()?;
            Some(LeaSimAgency {
                ori: a.ori.clone(),
                secret: secret.to_string(),
            })
        })
        .collect();
    Ok(LeaSimConfig {
        agencies,
        default_secret: lea.default_secret.as_ref().and_then(|s| s.expose()).map(str::to_string),
        ..LeaSimConfig::default()
    })
}
