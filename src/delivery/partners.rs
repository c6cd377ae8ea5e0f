//! Starting one delivery loop per partner kind: CLETS always, DOJ and LEA
//! when the configuration has their sections. The three share one set of
//! circuit breakers (each partner, and each LEA agency, has its own).

use std::sync::Arc;
use std::time::Duration;

use porter_adapters::clets::client::CletsClient;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::circuit::{CircuitConfig, Circuits};
use super::clets::CletsPartner;
use super::doj::DojPartner;
use super::lea::LeaPartner;
use super::retry::RetryPolicy;
use super::{DeliveryLoop, Lease, PartnerAdapter};
use crate::config::Config;
use crate::mapping::clets::CletsTables;
use crate::status::Relay;
use crate::store::Store;

/// What every loop shares.
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub relay: Relay,
    /// Woken when the intake commits new work.
    pub wake: Arc<Notify>,
    pub stop: CancellationToken,
    /// This broker's claims on deliveries.
    pub lease: Lease,
}

/// Starts the loops; each ends when `shared.stop` fires, after recording
/// what it has in flight.
pub fn spawn(config: &Config, clets_tables: CletsTables, shared: &Shared) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let circuits = Arc::new(Circuits::new(CircuitConfig::default()));
    let clets = &config.partners.clets;
    let client = CletsClient::new(
        clets.address.clone(),
        clets.connections,
        Duration::from_millis(clets.timeout_ms),
    );
    let adapter = CletsPartner {
        client,
        tables: Arc::new(clets_tables),
        retry: RetryPolicy::new("CLETS", &clets.retry),
        circuits: circuits.clone(),
    };
    let limits = Limits {
        batch: clets.batch,
        per_partner: clets.connections,
        concurrency: clets.connections,
    };
    let mut tasks = vec![start(adapter, limits, &circuits, shared)];
    if let Some(doj) = &config.partners.doj {
        let adapter = DojPartner::new(doj, RetryPolicy::new("DOJ", &doj.retry))?
            .with_circuits(circuits.clone())
            .with_images(shared.store.clone());
        let limits = Limits {
            batch: doj.batch,
            per_partner: doj.concurrency,
            concurrency: doj.concurrency,
        };
        tasks.push(start(adapter, limits, &circuits, shared));
    }
    if let Some(lea) = &config.partners.lea {
        let retry = RetryPolicy::new("LEA", &lea.retry);
        let adapter = LeaPartner::new(lea, config.http.public_base_url.clone(), retry)?.with_circuits(circuits.clone());
        let limits = Limits {
            batch: lea.batch,
            per_partner: lea.per_agency,
            concurrency: lea.concurrency,
        };
        tasks.push(start(adapter, limits, &circuits, shared));
    }
    Ok(tasks)
}

/// A loop's claim size and in-flight limits.
struct Limits {
    batch: u32,
    per_partner: usize,
    concurrency: usize,
}

fn start<A: PartnerAdapter>(adapter: A, limits: Limits, circuits: &Arc<Circuits>, shared: &Shared) -> JoinHandle<()> {
    let owner = format!("{}/{}", shared.lease.owner, adapter.partner());
    let delivery = DeliveryLoop {
        store: shared.store.clone(),
        adapter: Arc::new(adapter),
        relay: shared.relay.clone(),
        batch: limits.batch,
        per_partner: limits.per_partner,
        concurrency: limits.concurrency,
        // Each loop holds its leases under a name of its own, so that one
        // loop's release at shutdown never frees another's attempts in flight.
        lease: Lease {
            owner,
            duration: shared.lease.duration,
        },
        wake: shared.wake.clone(),
        circuits: circuits.clone(),
    };
    tokio::spawn(delivery.run(shared.stop.clone()))
}
