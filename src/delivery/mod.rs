//! Delivery: taking accepted messages to their partners, once and in order.
//!
//! # Design note: lanes, leases, one scheduler per partner kind
//! Work waiting for a partner lives in the store's `deliveries` table, not
//! in RabbitMQ. A **lane** is one order at one partner (each LEA agency is a
//! partner of its own). A lane has at most one message in flight, across
//! every broker sharing the store: only its lowest unfinished sequence can
//! be claimed, and only once every earlier one was accepted (or discarded by
//! an operator). Different lanes run in parallel.
//!
//! One [`DeliveryLoop`] per partner kind (CLETS, DOJ, all LEA agencies)
//! schedules its lanes:
//! 1. **Claim.** It asks the store for due deliveries
//!    ([`Store::claim_deliveries`]) up to what each partner may hold:
//!    [`HOLD_FACTOR`] times its room (`concurrency` per partner, per agency
//!    for LEA) minus the attempts it has not finished yet, and none for a
//!    partner whose circuit is open. The store leases each claimed delivery
//!    to this broker for `lease` under a new fencing token. A claim reads
//!    only deliveries whose turn has come (`in_turn`, an index range), so
//!    its cost does not grow with the backlog.
//! 2. **Attempt.** Each claimed job runs in a task of its own, so store
//!    work never stops the polling of requests already in flight. The task
//!    first waits for its partner's room (a semaphore per partner, and one
//!    for the loop), so a slow or failing partner fills only its own room
//!    and takes nothing from other partners' or agencies' lanes, while the
//!    extra claimed jobs are at hand the moment a request ends. A job whose
//!    lease ran out before it could start (the broker was frozen, or the
//!    partner was slow) is not sent.
//! 3. **Record.** The room is free again as soon as the attempt ends. A
//!    recorder task takes results as they come, records all that are ready
//!    in one store call ([`Store::record_deliveries`]; only under the
//!    current fencing token), and hands statuses and dead letters to the
//!    [`Relay`]. The record passes the lane's turn to its next sequence.
//! 4. **Wait.** The scheduler sleeps until the first of: an attempt ended,
//!    new work committed (`wake`: the waiter is registered *before* the
//!    claim, so a wake-up during the claim is not lost), the next delivery
//!    due or lease ending ([`Store::next_due_at`]), or [`IDLE_CHECK`] for
//!    work committed by another broker. There is no polling delay on the
//!    hot path.
//!
//! The store commits the claims, records and intake batches that wait at
//! the same moment in one transaction (group commit, `store::sql::group`).
//!
//! While attempts are in flight their leases are renewed every third of
//! the lease. On shutdown the loop finishes and records what is in flight,
//! then releases its leases, so another broker takes its lanes at once; a
//! killed broker's lanes are taken once its leases run out.
//!
//! A crash between a send and its record means the send is repeated. That
//! is safe: the request carries the same MCN (CLETS) or Idempotency-Key,
//! and the partner answers a repeat with its first answer (ICD §5, §6).
//! Under one key the content is byte-identical too (DOJ answers a repeated
//! key with another body `422`, ICD §7): every request is a pure function
//! of stored data and never reads the clock, so a resend, however late, and
//! a plain replay send the same bytes. Where a request needs a time (the
//! LEA image link's expiry) it counts from the job's `key_created_at`, the
//! instant the content under the key was made.
//! Transient failures are retried with exponential backoff and jitter
//! ([`retry`]) until the maximum age has passed since the delivery's first
//! attempt and it had at least three attempts, then dead-lettered.
//!
//! The HTTP partners ([`doj`], [`lea`]) share one answer classification
//! ([`http`]) and report each attempt to a per-partner circuit breaker
//! ([`circuit`]); LEA bodies carry the signed image as a link
//! ([`image_link`]).

pub mod circuit;
pub mod clets;
pub mod doj;
pub mod http;
pub mod image_link;
pub mod lea;
pub mod partners;
pub mod retry;
#[cfg(test)]
mod testing;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::model::PartnerId;
use crate::status::Relay;
use crate::store::{ClaimRequest, DeliveryJob, DeliveryResult, PartnerSet, Store};
use circuit::{CircuitState, Circuits};

/// The longest the scheduler sleeps without looking for work: work another
/// broker committed wakes nobody here.
pub const IDLE_CHECK: Duration = Duration::from_secs(2);

/// How many deliveries a partner may hold claimed, per request it may have
/// in flight: the extra ones wait, leased, for the partner's room, so that
/// the partner has its next requests at hand while the results of the last
/// ones are recorded and the next claim is made.
pub const HOLD_FACTOR: usize = 4;

/// The partners one delivery loop serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serves {
    One(PartnerId),
    /// Every LEA agency (each job names its agency).
    AllLea,
}

/// One partner's adapter, as the delivery loop sees it.
pub trait PartnerAdapter: Send + Sync + 'static {
    fn partner(&self) -> PartnerId;
    /// The partners whose deliveries this adapter takes.
    fn serves(&self) -> Serves {
        Serves::One(self.partner())
    }
    /// Attempts one delivery and classifies the answer.
    fn attempt(&self, job: DeliveryJob) -> impl Future<Output = DeliveryResult> + Send;
}

/// This broker's claims on deliveries.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The name the store records as the lease holder (unique per broker
    /// process).
    pub owner: String,
    /// How long a claim lasts unless renewed.
    pub duration: Duration,
}

impl Lease {
    /// A lease owner name unique to this process: host, PID and start time.
    pub fn for_this_process(duration: Duration) -> Lease {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let started = Utc::now().timestamp_millis();
        Lease {
            owner: format!("{}:{}:{started}", host.trim(), std::process::id()),
            duration,
        }
    }
}

/// The delivery loop for one partner kind.
pub struct DeliveryLoop<A> {
    pub store: Arc<dyn Store>,
    pub adapter: Arc<A>,
    pub relay: Relay,
    /// Deliveries claimed per round, at most.
    pub batch: u32,
    /// Attempts in flight at once per partner (per agency for LEA).
    pub per_partner: usize,
    /// Attempts in flight at once over all the partners this loop serves.
    pub concurrency: usize,
    /// Woken when new work is committed.
    pub wake: Arc<Notify>,
    /// The partners' circuit breakers, which the adapter records into.
    pub circuits: Arc<Circuits>,
    pub lease: Lease,
}

/// An attempt that ended, from its task to the recorder.
enum Ended {
    /// The partner answered (or the request failed): record it.
    Result(DeliveryResult),
    /// Not sent: the lease had run out, or the circuit refused it. Its
    /// lease is ended at once so that the lane is not held up.
    NotSent {
        delivery_id: i64,
        lease_token: i64,
        partner: PartnerId,
    },
}

impl Ended {
    fn delivery_id(&self) -> i64 {
        match self {
            Ended::Result(r) => r.delivery_id,
            Ended::NotSent { delivery_id, .. } => *delivery_id,
        }
    }
}

/// How a claim round went, which decides how long the scheduler may sleep.
enum Round {
    /// No partner had room (or every one's circuit is open): a result or a
    /// wake-up comes first.
    NoRoom,
    /// The claim took all it asked for: more may be due at once.
    Full,
    /// It took less than it asked for: nothing more is due before
    /// [`Store::next_due_at`].
    Drained,
}

/// What the recorder tells the scheduler: these deliveries (id, fencing
/// token) are recorded, so their leases need no more renewing.
type Freed = Vec<(i64, i64)>;

/// The deliveries this loop holds: claimed and not yet recorded (their
/// leases are renewed), and among them those whose attempt has not ended
/// yet (waiting for their partner's room, or in flight), which count
/// against what a partner may hold.
#[derive(Default)]
struct InFlight {
    /// Delivery id → (partner, fencing token), until recorded.
    jobs: HashMap<i64, (PartnerId, i64)>,
    /// Attempts not ended yet, per partner.
    active: HashMap<PartnerId, usize>,
    active_total: usize,
}

impl InFlight {
    /// Counts a claimed job. A delivery this loop claimed again (its
    /// earlier lease ran out while the store was unreachable) replaces its
    /// entry; each claim's attempt counts until it ends.
    fn add(&mut self, job: &DeliveryJob) {
        self.jobs.insert(job.id, (job.partner.clone(), job.lease_token));
        *self.active.entry(job.partner.clone()).or_default() += 1;
        self.active_total += 1;
    }

    /// An attempt for `partner` ended (sent or not). Returns the partner
    /// when none of its attempts is left.
    fn ended(&mut self, partner: &PartnerId) -> Option<PartnerId> {
        self.active_total = self.active_total.saturating_sub(1);
        let n = self.active.get_mut(partner)?;
        *n = n.saturating_sub(1);
        if *n > 0 {
            return None;
        }
        self.active.remove(partner);
        Some(partner.clone())
    }

    /// Forgets the job claimed under `token` once recorded; an older
    /// claim's record forgets nothing.
    fn recorded(&mut self, id: i64, token: i64) {
        if self.jobs.get(&id).is_some_and(|(_, t)| *t == token) {
            self.jobs.remove(&id);
        }
    }

    /// Whether the loop holds nothing at all.
    fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.active_total == 0
    }

    fn held(&self) -> Vec<(i64, i64)> {
        self.jobs.iter().map(|(id, (_, token))| (*id, *token)).collect()
    }
}

/// Room at the partners: requests in flight at once, per partner (per
/// agency for LEA) and over all the partners of the loop. A claimed job
/// takes its partner's room and then the loop's for its attempt only.
struct Room {
    per_partner: usize,
    partners: HashMap<PartnerId, Arc<Semaphore>>,
    total: Arc<Semaphore>,
}

impl Room {
    fn new(per_partner: usize, total: usize) -> Room {
        Room {
            per_partner: per_partner.max(1),
            partners: HashMap::new(),
            total: Arc::new(Semaphore::new(total.max(1))),
        }
    }

    fn of(&mut self, partner: &PartnerId) -> Arc<Semaphore> {
        self.partners
            .entry(partner.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_partner)))
            .clone()
    }

    /// Forgets a partner the loop holds no job for (so no task holds its
    /// room either).
    fn forget(&mut self, partner: &PartnerId) {
        self.partners.remove(partner);
    }

    /// Waits for room at `partner` and in the loop, until `deadline`.
    async fn take(
        partner: Arc<Semaphore>,
        total: Arc<Semaphore>,
        deadline: Instant,
    ) -> Option<(tokio::sync::OwnedSemaphorePermit, tokio::sync::OwnedSemaphorePermit)> {
        let both = async {
            let one = partner.acquire_owned().await.ok()?;
            let all = total.acquire_owned().await.ok()?;
            Some((one, all))
        };
        tokio::time::timeout_at(deadline.into(), both).await.ok().flatten()
    }
}

impl<A: PartnerAdapter> DeliveryLoop<A> {
    /// Runs until `stop`; attempts in flight are finished and recorded
    /// first, then the loop's leases are released. See the module note.
    pub async fn run(self, stop: CancellationToken) {
        let partner = self.adapter.partner();
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let (freed_tx, mut freed_rx) = mpsc::unbounded_channel::<Freed>();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<PartnerId>();
        let recorder = tokio::spawn(record_loop(
            self.store.clone(),
            self.relay.clone(),
            self.lease.owner.clone(),
            ended_rx,
            freed_tx,
        ));
        let mut in_flight = InFlight::default();
        let mut room = Room::new(self.per_partner, self.concurrency);
        let mut renew = tokio::time::interval(self.lease.duration / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if stop.is_cancelled() && in_flight.is_empty() {
                break;
            }
            // Registered before the claim: a wake-up from now on is kept.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let round = match stop.is_cancelled() {
                true => Round::NoRoom,
                false => self.claim_round(&mut in_flight, &mut room, &ended_tx, &done_tx).await,
            };
            let next = match round {
                Round::Full => Duration::ZERO,
                // A result will free room; the idle check covers circuits.
                Round::NoRoom => IDLE_CHECK,
                Round::Drained => self.until_next_due().await,
            };
            tokio::select! {
                Some(partner) = done_rx.recv() => {
                    let more = std::iter::from_fn(|| done_rx.try_recv().ok());
                    for partner in std::iter::once(partner).chain(more) {
                        if let Some(idle) = in_flight.ended(&partner) {
                            room.forget(&idle);
                        }
                    }
                }
                Some(freed) = freed_rx.recv() => {
                    let more = std::iter::from_fn(|| freed_rx.try_recv().ok());
                    for (id, token) in std::iter::once(freed).chain(more).flatten() {
                        in_flight.recorded(id, token);
                    }
                }
                () = &mut woken => {}
                () = tokio::time::sleep(next) => {}
                _ = renew.tick() => self.renew(&in_flight).await,
                () = stop.cancelled(), if !stop.is_cancelled() => {}
            }
        }
        drop(ended_tx);
        let _ = recorder.await;
        match self.store.release_leases(&self.lease.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(partner = %partner, released = n, "Released delivery leases."),
            Err(e) => {
                tracing::warn!(partner = %partner, error = %e, "Could not release delivery leases; they run out by themselves.")
            }
        }
    }

    /// Claims what the partners may hold and starts each job in a task of
    /// its own, which waits for its partner's room.
    async fn claim_round(
        &self,
        in_flight: &mut InFlight,
        room: &mut Room,
        ended: &mpsc::UnboundedSender<Ended>,
        done: &mpsc::UnboundedSender<PartnerId>,
    ) -> Round {
        // Attempts waiting or in flight are bounded by what the partners may
        // hold; results not recorded yet, by a few times that.
        let hold = HOLD_FACTOR * self.concurrency.max(1);
        let room_left = hold
            .saturating_sub(in_flight.active_total)
            .min((4 * hold).saturating_sub(in_flight.jobs.len()));
        let Some(request) = self.claim_request(in_flight, room_left) else {
            return Round::NoRoom;
        };
        // The lease runs from before the claim, so a claim that waited for
        // the store leaves its jobs less time, never more.
        let started = Instant::now();
        let deadline = started + self.lease.duration.mul_f32(0.8);
        let jobs = match self.store.claim_deliveries(&request).await {
            Ok(jobs) => {
                tracing::debug!(
                    partner = %self.adapter.partner(),
                    limit = request.limit,
                    claimed = jobs.len(),
                    active = in_flight.active_total,
                    unrecorded = in_flight.jobs.len(),
                    claim_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "Claimed deliveries."
                );
                jobs
            }
            Err(e) => {
                tracing::warn!(partner = %self.adapter.partner(), error = %e, "Could not claim deliveries; will try again.");
                return Round::Drained;
            }
        };
        let round = match jobs.len() as u32 >= request.limit {
            true => Round::Full,
            false => Round::Drained,
        };
        for job in jobs {
            in_flight.add(&job);
            let adapter = self.adapter.clone();
            let circuits = self.circuits.clone();
            let ended = ended.clone();
            let done = done.clone();
            let (partner_room, total_room) = (room.of(&job.partner), room.total.clone());
            tokio::spawn(async move {
                let partner = job.partner.clone();
                let not_sent = Ended::NotSent {
                    delivery_id: job.id,
                    lease_token: job.lease_token,
                    partner: job.partner.clone(),
                };
                // Held until the attempt ends: the partner's room is free
                // again before the result is recorded.
                let permits = Room::take(partner_room, total_room, deadline).await;
                let outcome =
                    if permits.is_none() || Instant::now() >= deadline || !circuits.allow(&job.partner, Instant::now())
                    {
                        not_sent
                    } else {
                        // A panic in an adapter must not keep the lane's slot
                        // and lease for good.
                        match AssertUnwindSafe(adapter.attempt(job)).catch_unwind().await {
                            Ok(result) => {
                                crate::failpoint::hit(crate::failpoint::AFTER_PARTNER_SEND);
                                Ended::Result(result)
                            }
                            Err(_) => {
                                tracing::error!(
                                    delivery_id = not_sent.delivery_id(),
                                    "A partner attempt panicked; the delivery will be tried again."
                                );
                                not_sent
                            }
                        }
                    };
                drop(permits);
                let _ = done.send(partner);
                let _ = ended.send(outcome);
            });
        }
        round
    }

    /// What to claim now: `None` when no partner has room.
    fn claim_request(&self, in_flight: &InFlight, room_left: usize) -> Option<ClaimRequest> {
        if room_left == 0 {
            return None;
        }
        // What a partner may hold claimed, not what it may have in flight.
        let per_partner = HOLD_FACTOR * self.per_partner.max(1);
        let now = Instant::now();
        let mut room: Vec<(PartnerId, u32)> = in_flight
            .active
            .iter()
            .map(|(p, n)| (p.clone(), per_partner.saturating_sub(*n) as u32))
            .collect();
        let partners = match self.adapter.serves() {
            Serves::One(partner) => {
                let blocked = matches!(
                    self.circuits.state(&partner, now),
                    CircuitState::Open { .. } | CircuitState::HalfOpen { probing: true }
                );
                let left = per_partner.saturating_sub(in_flight.active.get(&partner).copied().unwrap_or(0));
                if blocked || left == 0 {
                    return None;
                }
                PartnerSet::One(partner)
            }
            Serves::AllLea => {
                for p in self.circuits.open_partners(now) {
                    room.retain(|(q, _)| *q != p);
                    room.push((p, 0));
                }
                PartnerSet::Lea { except: Vec::new() }
            }
        };
        Some(ClaimRequest {
            partners,
            per_partner: per_partner as u32,
            room,
            limit: (self.batch.max(1) as usize).min(room_left) as u32,
            owner: self.lease.owner.clone(),
            now: Utc::now(),
            until: Utc::now() + self.lease.duration,
        })
    }

    /// How long until a delivery falls due (a retry), at most
    /// [`IDLE_CHECK`], which also covers leases other brokers let run out.
    async fn until_next_due(&self) -> Duration {
        let partners = match self.adapter.serves() {
            Serves::One(partner) => PartnerSet::One(partner),
            Serves::AllLea => PartnerSet::Lea { except: Vec::new() },
        };
        let now = Utc::now();
        match self.store.next_due_at(&partners, now).await {
            Ok(Some(at)) => (at - now).to_std().unwrap_or(Duration::ZERO).min(IDLE_CHECK),
            _ => IDLE_CHECK,
        }
    }

    /// Renews the leases of the attempts in flight.
    async fn renew(&self, in_flight: &InFlight) {
        let held = in_flight.held();
        if held.is_empty() {
            return;
        }
        let until = Utc::now() + self.lease.duration;
        match self.store.renew_leases(&self.lease.owner, &held, until).await {
            Ok(lost) if !lost.is_empty() => {
                tracing::warn!(partner = %self.adapter.partner(), lost = lost.len(), "Delivery leases lost to another broker; their results will not be recorded.");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(partner = %self.adapter.partner(), error = %e, "Could not renew delivery leases."),
        }
    }
}

/// Records ended attempts as they come (all that are ready in one
/// transaction), relays what they produced, and frees their room. A store
/// failure keeps the results and tries again, so a lane is never freed
/// before its outcome is durable.
async fn record_loop(
    store: Arc<dyn Store>,
    relay: Relay,
    owner: String,
    mut ended: mpsc::UnboundedReceiver<Ended>,
    freed: mpsc::UnboundedSender<Freed>,
) {
    let mut batch = Vec::new();
    while ended.recv_many(&mut batch, 256).await > 0 {
        let mut results = Vec::new();
        let mut ids = Vec::new();
        let mut unsent = Vec::new();
        for e in batch.drain(..) {
            match e {
                Ended::Result(r) => {
                    ids.push((r.delivery_id, r.lease_token));
                    results.push(r);
                }
                Ended::NotSent {
                    delivery_id,
                    lease_token,
                    partner,
                } => {
                    tracing::debug!(delivery_id, partner = %partner, "Claimed delivery not sent.");
                    ids.push((delivery_id, lease_token));
                    unsent.push((delivery_id, lease_token));
                }
            }
        }
        if !results.is_empty() {
            record(&*store, &relay, results).await;
        }
        // Ending a lease is renewing it until now.
        if !unsent.is_empty()
            && let Err(e) = store.renew_leases(&owner, &unsent, Utc::now()).await
        {
            tracing::warn!(error = %e, "Could not end the leases of unsent deliveries; they run out by themselves.");
        }
        let _ = freed.send(ids);
    }
}

/// How long the recorder keeps trying to record one batch of results. After
/// that they are dropped: the deliveries stay pending, their leases run out,
/// and they are attempted again under the same key.
const RECORD_PATIENCE: Duration = Duration::from_secs(60);

/// Records `results`, trying again while the store fails.
async fn record(store: &dyn Store, relay: &Relay, results: Vec<DeliveryResult>) {
    let mut wait = Duration::from_millis(200);
    let started = Instant::now();
    loop {
        match store.record_deliveries(results.clone()).await {
            Ok(produced) => {
                let relay = relay.clone();
                tokio::spawn(async move {
                    if let Err(e) = relay.send(&produced.statuses, &produced.dead_letters).await {
                        tracing::warn!(error = %e, "Partner statuses not confirmed yet; the outbox sweep will resend them.");
                    }
                });
                return;
            }
            // A result the store refuses for its own data must not hold up
            // the others: record them one by one, and give up on the bad one.
            Err(e) if !e.is_outage() && results.len() > 1 => {
                tracing::warn!(error = %e, results = results.len(), "A batch of partner results was refused; recording them one by one.");
                for one in results {
                    Box::pin(record(store, relay, vec![one])).await;
                }
                return;
            }
            Err(e) if !e.is_outage() => {
                metrics::counter!("porter_delivery_results_unrecordable_total").increment(1);
                tracing::error!(error = %e, delivery_id = results[0].delivery_id, "A partner result cannot be recorded; the delivery will be attempted again.");
                return;
            }
            Err(e) if started.elapsed() >= RECORD_PATIENCE => {
                tracing::error!(error = %e, results = results.len(), "Could not record partner results; they will be attempted again.");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, results = results.len(), "Could not record partner results; trying again.");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
