//! Routing: which partners an accepted message goes to (ICD §7, §8).
//!
//! # Design note
//! Routing happens in two stages.
//! 1. **Examine** (stateless, at intake): what the message alone decides.
//!    Every order goes to CLETS/CARPOS, so the intake's verdict names CLETS
//!    — and checks there that the message translates to CLETS.
//! 2. **Apply** (in the store, in sequence order): what the order's state
//!    decides. When a message is applied, the store asks a [`Route`] for its
//!    partners, given the order before and after the message and the
//!    order's [`Sticky`] routing memory. Deliveries are created then, and the
//!    `ACCEPTED` status lists them. A message waiting behind a sequence gap
//!    is routed when its turn comes.
//!
//! The production [`Router`]:
//! - **CLETS**: every message (the verdict's candidates).
//! - **DOJ** (when configured): when the order's state prohibits firearms
//!   — PCO `07`, Brady `Y`, or relinquishment ordered — and, once DOJ has
//!   received any message of the order, every later one.
//! - **LEA** (when configured): the court's sheriff always; the agency with
//!   jurisdiction over the restrained person's residence ([`lea_table`]);
//!   that county's sheriff when it is not the court's county. An agency that
//!   has received a message of the order receives every later one, except
//!   that a MODIFY which moves the residence still goes to the agencies of
//!   the old residence and nothing after it does. An agency named twice gets
//!   one delivery.

pub mod lea_table;

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::model::{OrderMessage, PartnerId};
pub use lea_table::LeaTable;

/// What an order remembers about its routing: the partners that keep
/// receiving its messages whatever its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sticky {
    /// DOJ has received a message of the order.
    #[serde(default)]
    pub doj: bool,
    /// Agencies that receive every later message.
    #[serde(default)]
    pub lea: BTreeSet<String>,
}

/// A message being applied, as routing sees it.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    pub court_ori: &'a str,
    /// The order before this message (`None` for its first).
    pub before: Option<&'a OrderMessage>,
    /// The order once this message is applied.
    pub after: &'a OrderMessage,
    /// What the intake's verdict routed the message to.
    pub candidates: &'a [PartnerId],
    pub sticky: &'a Sticky,
}

/// A routing policy, used by the store when it applies a message.
pub trait Route: Send + Sync + std::fmt::Debug {
    /// The partners of `message` (no repeats) and the order's new memory.
    fn route(&self, message: Applied<'_>) -> (Vec<PartnerId>, Sticky);
}

/// Routes every message to its verdict's candidates and nothing else: the
/// store's default, for tools and for tests of the store itself.
#[derive(Debug, Default)]
pub struct Candidates;

impl Route for Candidates {
    fn route(&self, message: Applied<'_>) -> (Vec<PartnerId>, Sticky) {
        (dedup(message.candidates.to_vec()), message.sticky.clone())
    }
}

/// Porter's routing: CLETS, DOJ and the LEA agencies.
#[derive(Debug, Clone)]
pub struct Router {
    /// DOJ is configured.
    pub doj: bool,
    /// The LEA table, when LEA is configured.
    pub lea: Option<LeaTable>,
    /// Court ORI → its sheriff's ORI.
    pub sheriffs: HashMap<String, String>,
}

impl Router {
    /// The router the configuration calls for. With LEA configured it loads
    /// `mappings/lea-agencies.toml` and checks that every agency it can
    /// route to (and every court's sheriff) has a signing secret.
    pub fn from_config(config: &Config) -> anyhow::Result<Router> {
        let lea = match &config.partners.lea {
            None => None,
            Some(lea) => {
                let table =
                    LeaTable::load(&config.paths.mappings.join(LEA_TABLE)).map_err(|e| anyhow::anyhow!("{e}"))?;
                if let Some(ori) = table.oris().find(|ori| !lea.has_secret(ori)) {
                    anyhow::bail!(
                        "LEA agency {ori} (in {LEA_TABLE}) has no signing secret: set partners.lea.default_secret \
                         or give it one under [[partners.lea.agencies]]"
                    );
                }
                Some(table)
            }
        };
        Ok(Router {
            doj: config.partners.doj.is_some(),
            lea,
            sheriffs: config
                .courts
                .iter()
                .map(|c| (c.ori.clone(), c.sheriff_ori.clone()))
                .collect(),
        })
    }
}

/// The LEA jurisdiction table, under the mappings folder.
pub const LEA_TABLE: &str = "lea-agencies.toml";

impl Route for Router {
    fn route(&self, m: Applied<'_>) -> (Vec<PartnerId>, Sticky) {
        let mut partners = m.candidates.to_vec();
        let mut sticky = m.sticky.clone();
        if self.doj && (sticky.doj || prohibits_firearms(m.after)) {
            partners.push(PartnerId::Doj);
            sticky.doj = true;
        }
        if let Some(table) = &self.lea {
            let sheriff = self.sheriffs.get(m.court_ori).map(String::as_str);
            let now = agencies(table, sheriff, m.after);
            let departed: BTreeSet<String> = match m.before {
                Some(before) if moved(before, m.after) => {
                    agencies(table, sheriff, before).difference(&now).cloned().collect()
                }
                _ => BTreeSet::new(),
            };
            sticky.lea = sticky.lea.difference(&departed).cloned().chain(now).collect();
            let routed = sticky.lea.iter().chain(&departed).cloned().collect::<BTreeSet<_>>();
            partners.extend(routed.into_iter().map(PartnerId::Lea));
        }
        (dedup(partners), sticky)
    }
}

/// ICD §7: PCO 07, Brady `Y`, or relinquishment ordered.
pub fn prohibits_firearms(order: &OrderMessage) -> bool {
    let o = &order.order;
    o.condition_codes.iter().any(|c| c == "07")
        || o.brady.as_deref() == Some("Y")
        || o.firearm_relinquishment == Some(true)
}

/// The agencies an order's state calls for: the court's sheriff, the
/// residence's agency and, in another county, that county's sheriff.
fn agencies(table: &LeaTable, court_sheriff: Option<&str>, order: &OrderMessage) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = court_sheriff.map(str::to_string).into_iter().collect();
    let residence = order.restrained_person.as_ref().and_then(|p| p.residence.as_ref());
    if let Some(agency) = residence.and_then(|r| table.jurisdiction(r)) {
        set.insert(agency.ori.clone());
        if let Some(county_sheriff) = table.sheriff(&agency.county)
            && Some(county_sheriff) != court_sheriff
        {
            set.insert(county_sheriff.to_string());
        }
    }
    set
}

/// The restrained person's residence changed.
fn moved(before: &OrderMessage, after: &OrderMessage) -> bool {
    let residence = |o: &OrderMessage| o.restrained_person.as_ref().and_then(|p| p.residence.clone());
    residence(before) != residence(after)
}

fn dedup(partners: Vec<PartnerId>) -> Vec<PartnerId> {
    let mut out: Vec<PartnerId> = Vec::with_capacity(partners.len());
    for p in partners {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests;
