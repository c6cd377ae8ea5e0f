//! A CLETS/CARPOS simulator for testers (ICD §6 and §11): a TCP endpoint that speaks the framed CLETS
//! protocol and keeps a CARPOS record table, plus an HTTP control API to inspect it and inject faults.
//!
//! Design note:
//! - [`run`] takes two bound listeners and a shutdown future, so tests bind `127.0.0.1:0` and run it
//!   in-process; the default addresses are TCP `127.0.0.1:7001` and control `127.0.0.1:7101`.
//! - All state (records, counters, remembered replies, message log, faults) sits behind one mutex in
//!   [`Simulator`]; it is never held across an `.await`, so requests are applied one at a time, in arrival
//!   order, like a single CARPOS update queue.
//! - A request goes through these steps:
//!   1. It counts as `received`.
//!   2. The `latency_ms` fault delays it.
//!   3. The `disconnect_rate` fault closes the connection without an answer.
//!   4. The `busy_rate` fault answers `BSY`, counted as `busy`.
//!   5. A repeated `(ORI, MCN)` gets the remembered answer (`ACK` or `REJ`), byte for byte, counted
//!      as a `duplicate`.
//!   6. The `reject_rate` fault answers `REJ` `E03`.
//!   7. Otherwise the request is checked and applied ([`records`]) and counted as `accepted` or
//!      `rejected`.
//!
//!   So `received` = `accepted` + `rejected` + `busy` + `duplicates` + the disconnects.
//! - Final answers (`ACK` and `REJ`) are remembered for repeated MCNs, as ICD §6 requires; `BSY` is
//!   not (it is transient). A corrected message reaches CARPOS under a new MCN: Porter's
//!   edit-and-replay increments the MCN's revision digit (ICD §5).
//! - `double_records` counts applications of an `(ORI, PNO, sequence)` that was already applied under
//!   another MCN. A well-behaved broker keeps it at 0. Each one is also logged at WARN.
//! - `down` refuses connections (accepted sockets are closed at once and not counted in `connections`)
//!   and drops the open ones. The refused ones are counted in `refused_connections`, beside the ICD
//!   counters in `GET /_sim/state`: it is how a test sees how often a client tried to reconnect while
//!   CLETS was down (a broker whose circuit breaker works tries only a few times).
//! - Logs carry the message key, ORI, MCN and NIC, never names, dates of birth or other field values.
//!   The control API does show full requests: it is the tester's view of what the partner received.

#![warn(missing_docs)]

pub mod control;
pub mod records;
pub mod server;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use porter_adapters::clets::reply::CletsReply;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use records::{RecordTable, RejectCode};

pub use crate::common::{Counters, Faults};
use crate::common::{MessageLog, default_message_log_capacity};

/// Configuration of the CLETS simulator (a section of the broker's `--config` file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CletsSimConfig {
    /// ORIs allowed to send requests. Empty allows any well-formed ORI (9 characters `[A-Z0-9]`).
    #[serde(default)]
    pub valid_oris: Vec<String>,
    /// Letter that starts every NIC the simulator gives out.
    #[serde(default = "default_nic_prefix")]
    pub nic_prefix: char,
    /// Digits that start every FCN; the rest of the 13 digits is a counter. At most 7 digits.
    #[serde(default = "default_fcn_prefix")]
    pub fcn_prefix: String,
    /// Most CLETS connections served at once; further ones wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How many requests `GET /_sim/messages` keeps (the oldest are dropped first).
    #[serde(default = "default_message_log_capacity")]
    pub message_log_capacity: usize,
}

fn default_nic_prefix() -> char {
    'H'
}

fn default_fcn_prefix() -> String {
    "034".to_owned()
}

fn default_max_connections() -> usize {
    256
}

impl Default for CletsSimConfig {
    fn default() -> Self {
        Self {
            valid_oris: Vec::new(),
            nic_prefix: default_nic_prefix(),
            fcn_prefix: default_fcn_prefix(),
            max_connections: default_max_connections(),
            message_log_capacity: default_message_log_capacity(),
        }
    }
}

impl CletsSimConfig {
    /// Checks the values serde cannot: ORI shapes, the NIC letter, the FCN prefix and the limits.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(bad) = self.valid_oris.iter().find(|o| !records::is_ori(o)) {
            anyhow::bail!("valid_oris: {bad:?} is not 9 characters [A-Z0-9]");
        }
        anyhow::ensure!(self.nic_prefix.is_ascii_uppercase(), "nic_prefix must be a letter A-Z");
        anyhow::ensure!(
            self.fcn_prefix.len() <= 7 && self.fcn_prefix.bytes().all(|b| b.is_ascii_digit()),
            "fcn_prefix must be at most 7 digits"
        );
        anyhow::ensure!(self.max_connections > 0, "max_connections must be at least 1");
        Ok(())
    }
}

/// One record as `GET /_sim/state` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordView {
    /// CARPOS record id.
    pub nic: String,
    /// File control number.
    pub fcn: String,
    /// Entering agency.
    pub ori: String,
    /// Order number.
    pub pno: String,
    /// `active`, `cleared` or `cancelled`.
    pub status: records::RecordStatus,
    /// Entry fields, then clear, cancel and service fields, as `[tag, value]` pairs.
    pub fields: Vec<(String, String)>,
    /// MCNs applied to the record, oldest first.
    pub mcns: Vec<String>,
}

/// The body of `GET /_sim/state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateView {
    /// The ICD §11 counters.
    pub counters: Counters,
    /// The faults in force.
    pub faults: Faults,
    /// The CARPOS records, in entry order.
    pub records: Vec<RecordView>,
    /// Connections accepted and closed at once because the `down` fault was on (not in `connections`,
    /// which counts the connections served). Reset by `POST /_sim/reset`.
    #[serde(default)]
    pub refused_connections: u64,
}

/// One entry of `GET /_sim/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageEntry {
    /// When the request was answered (RFC 3339, UTC).
    pub at: String,
    /// The request frame's text.
    pub request: String,
    /// The reply frame's text; `null` when the connection was dropped instead (`disconnect_rate`).
    pub reply: Option<String>,
}

/// The simulator's shared state, used by the TCP server and the control API.
#[derive(Debug)]
pub struct Simulator {
    /// The configuration, fixed for the run.
    config: CletsSimConfig,
    /// Everything that changes.
    state: Mutex<State>,
    /// Whether the `down` fault is on; connections watch it to drop themselves.
    down: watch::Sender<bool>,
}

#[derive(Debug)]
struct State {
    counters: Counters,
    /// Connections refused while down.
    refused_connections: u64,
    table: RecordTable,
    /// Final replies (`ACK`, `REJ`) by `(ORI, MCN)`, for repeated MCNs.
    acks: HashMap<(String, String), String>,
    messages: MessageLog<MessageEntry>,
    faults: Faults,
}

impl Simulator {
    /// A simulator with empty state. The configuration should have been validated.
    pub fn new(config: CletsSimConfig) -> Self {
        let table = RecordTable::new(config.nic_prefix, config.fcn_prefix.clone());
        let state = State {
            counters: Counters::default(),
            refused_connections: 0,
            table,
            acks: HashMap::new(),
            messages: MessageLog::new(config.message_log_capacity),
            faults: Faults::default(),
        };
        Self {
            config,
            state: Mutex::new(state),
            down: watch::Sender::new(false),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CletsSimConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that matters to a
        // test tool, so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a connection that is being served.
    pub fn connection_opened(&self) {
        self.lock().counters.connections += 1;
    }

    /// Counts a connection refused because the `down` fault is on.
    pub fn connection_refused(&self) {
        self.lock().refused_connections += 1;
    }

    /// Whether the `down` fault is on.
    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    /// A receiver that sees the `down` fault change.
    pub fn watch_down(&self) -> watch::Receiver<bool> {
        self.down.subscribe()
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        let down = faults.down;
        self.lock().faults = faults;
        self.down.send_replace(down);
    }

    /// Forgets records, remembered replies, messages and counters, and clears the faults.
    pub fn reset(&self) {
        {
            let mut state = self.lock();
            state.counters = Counters::default();
            state.refused_connections = 0;
            state.table.clear();
            state.acks.clear();
            state.messages.clear();
            state.faults = Faults::default();
        }
        self.down.send_replace(false);
    }

    /// Counters, faults and records.
    pub fn state(&self) -> StateView {
        let state = self.lock();
        let records = state
            .table
            .records()
            .map(|r| RecordView {
                nic: r.nic.clone(),
                fcn: r.fcn.clone(),
                ori: r.ori.clone(),
                pno: r.pno.clone(),
                status: r.status,
                fields: r.fields().cloned().collect(),
                mcns: r.mcns.clone(),
            })
            .collect();
        StateView {
            counters: state.counters,
            faults: state.faults.clone(),
            records,
            refused_connections: state.refused_connections,
        }
    }

    /// The logged requests, oldest first.
    pub fn messages(&self) -> Vec<MessageEntry> {
        self.lock().messages.to_vec()
    }

    /// Answers one request frame's text; `None` means "close the connection without answering".
    pub async fn answer(&self, request: &str) -> Option<String> {
        let faults = {
            let mut state = self.lock();
            state.counters.received += 1;
            state.faults.clone()
        };
        if faults.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
        }
        let roll = faults.roll();
        let mut state = self.lock();
        let reply = (!roll.disconnect).then(|| state.process(request, roll.busy, roll.reject, &self.config));
        state.messages.push(MessageEntry {
            at: crate::common::now_rfc3339(),
            request: request.to_owned(),
            reply: reply.clone(),
        });
        reply
    }
}

impl State {
    /// Steps 4 to 7 of the module doc.
    fn process(&mut self, request: &str, busy: bool, reject: bool, config: &CletsSimConfig) -> String {
        let [mke, ori, mcn] = echo_header(request);
        if busy {
            self.counters.busy += 1;
            return CletsReply::Bsy {
                mke,
                ori,
                mcn,
                message: "CARPOS BUSY, RETRY LATER".into(),
            }
            .to_frame_text();
        }
        if let Some(ack) = self.acks.get(&(ori.clone(), mcn.clone())) {
            self.counters.duplicates += 1;
            return ack.clone();
        }
        let rejection = |code: RejectCode, message: String| CletsReply::Rej {
            mke: mke.clone(),
            ori: ori.clone(),
            mcn: mcn.clone(),
            code: code.as_str().to_owned(),
            message,
        };
        if reject {
            self.counters.rejected += 1;
            let rej = rejection(RejectCode::E03, "INVALID VALUE (SIMULATED FAULT)".into()).to_frame_text();
            self.remember(&ori, &mcn, &rej);
            return rej;
        }
        let outcome = records::parse_request(request, &config.valid_oris)
            .and_then(|req| self.table.apply(&req).map(|applied| (req, applied)));
        match outcome {
            Ok((req, applied)) => {
                self.counters.accepted += 1;
                if applied.double_record {
                    self.counters.double_records += 1;
                    warn!(
                        mke = req.mke.as_str(), ori = %req.ori, mcn = %req.mcn, nic = %applied.nic,
                        "Order sequence applied a second time under a new MCN (double record)."
                    );
                }
                let ack = CletsReply::Ack {
                    mke: mke.clone(),
                    ori: ori.clone(),
                    mcn: mcn.clone(),
                    nic: applied.nic,
                    fcn: applied.fcn,
                }
                .to_frame_text();
                self.acks.insert((req.ori, req.mcn), ack.clone());
                ack
            }
            Err(rej) => {
                self.counters.rejected += 1;
                let rej = rejection(rej.code, rej.message).to_frame_text();
                self.remember(&ori, &mcn, &rej);
                rej
            }
        }
    }

    /// Remembers a final answer (`ACK` or `REJ`) for a well-formed
    /// `(ORI, MCN)`, so a repeat gets it unchanged (ICD §6).
    fn remember(&mut self, ori: &str, mcn: &str, reply: &str) {
        if ori != "?" && mcn != "?" {
            self.acks.insert((ori.to_owned(), mcn.to_owned()), reply.to_owned());
        }
    }
}

/// The request's first three fields, to echo in the reply. A field that could not be echoed safely
/// (empty, holding `/`, unprintable or over 20 characters) is echoed as `?`.
fn echo_header(request: &str) -> [String; 3] {
    let mut parts = request.split('.');
    std::array::from_fn(|_| {
        let part = parts.next().unwrap_or_default();
        let echoable = !part.is_empty()
            && part.len() <= records::MCN_LEN
            && part.bytes().all(|b| (0x20..=0x7E).contains(&b) && b != b'/');
        if echoable { part.to_owned() } else { "?".to_owned() }
    })
}

/// Runs the simulator on `tcp` (CLETS frames) and `control` (HTTP) until `shutdown` completes.
///
/// On shutdown it stops accepting, closes the open connections and waits for them, then returns.
pub async fn run(
    tcp: TcpListener,
    control: TcpListener,
    config: CletsSimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate().context("invalid CLETS simulator configuration")?;
    let tcp_addr = tcp.local_addr()?;
    let control_addr = control.local_addr()?;
    let sim = Arc::new(Simulator::new(config));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tcp_task = tokio::spawn(server::serve(tcp, sim.clone(), stop_rx.clone()));
    let mut control_task = tokio::spawn(control::serve(control, sim, stop_rx));
    info!(clets = %tcp_addr, control = %control_addr, "CLETS simulator started.");

    let early = tokio::select! {
        () = shutdown => None,
        res = &mut tcp_task => Some(("CLETS server", res)),
        res = &mut control_task => Some(("control API", res)),
    };
    stop_tx.send_replace(true);
    let stopped_early = early.as_ref().map(|(what, _)| *what);
    let (tcp_res, control_res) = match early {
        None => (tcp_task.await, control_task.await),
        Some(("CLETS server", res)) => (res, control_task.await),
        Some((_, res)) => (tcp_task.await, res),
    };
    info!("CLETS simulator stopped.");
    tcp_res
        .context("CLETS server task failed")?
        .context("CLETS server failed")?;
    control_res
        .context("control API task failed")?
        .context("control API failed")?;
    if let Some(what) = stopped_early {
        anyhow::bail!("the {what} stopped before shutdown was requested");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::records::tests::{ORI, cpo, epo, mcn, mpo};
    use super::*;

    fn sim() -> Simulator {
        Simulator::new(CletsSimConfig::default())
    }

    /// A repeated (ORI, MCN) of an accepted request gets the same bytes back and counts as a duplicate.
    #[tokio::test]
    async fn repeated_mcn_gets_remembered_ack() {
        let sim = sim();
        let first = sim.answer(&epo(1)).await.unwrap();
        assert!(
            first.starts_with(&format!("ACK.EPO.{ORI}.{}.NIC/H000000001.FCN/", mcn(1))),
            "{first}"
        );
        assert_eq!(sim.answer(&epo(1)).await.unwrap(), first);
        let counters = sim.state().counters;
        assert_eq!((counters.received, counters.accepted, counters.duplicates), (2, 1, 1));
    }

    /// A rejected MCN sent again gets the same REJ unchanged, counted as a duplicate (ICD §6).
    #[tokio::test]
    async fn rejected_mcn_gets_the_same_rej_again() {
        let sim = sim();
        let bad = epo(1).replacen("SEX/M.", "SEX/Q.", 1);
        let first = sim.answer(&bad).await.unwrap();
        assert!(first.starts_with("REJ.EPO.CA034025J.00010ABCDEFGHIJKLMNO.ERR/E03.MSG/"));
        assert_eq!(
            sim.answer(&epo(1)).await.unwrap(),
            first,
            "same MCN: the earlier answer"
        );
        assert_eq!(sim.state().counters.duplicates, 1);
        assert!(sim.state().records.is_empty());
    }

    /// Busy, reject and disconnect faults answer BSY, REJ E03 and nothing, and are counted.
    #[tokio::test]
    async fn faults_change_the_answer() {
        let sim = sim();
        sim.set_faults(Faults {
            busy_rate: 1.0,
            ..Faults::default()
        });
        assert_eq!(
            sim.answer(&epo(1)).await.unwrap(),
            format!("BSY.EPO.{ORI}.{}.MSG/CARPOS BUSY, RETRY LATER", mcn(1))
        );
        sim.set_faults(Faults {
            reject_rate: 1.0,
            ..Faults::default()
        });
        assert!(sim.answer(&epo(1)).await.unwrap().contains(".ERR/E03."));
        sim.set_faults(Faults {
            disconnect_rate: 1.0,
            ..Faults::default()
        });
        assert_eq!(sim.answer(&epo(1)).await, None);
        let state = sim.state();
        assert_eq!(
            (state.counters.received, state.counters.busy, state.counters.rejected),
            (3, 1, 1)
        );
        assert!(state.records.is_empty());
        let messages = sim.messages();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[2].reply, None);
    }

    /// Latency delays the answer by the configured time.
    #[tokio::test]
    async fn latency_delays_the_answer() {
        let sim = sim();
        sim.set_faults(Faults {
            latency_ms: 100,
            ..Faults::default()
        });
        let started = tokio::time::Instant::now();
        sim.answer(&epo(1)).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    /// The state lists records with their status, fields and MCNs, and reset empties everything.
    #[tokio::test]
    async fn state_lists_records_and_reset_empties_it() {
        let sim = sim();
        sim.answer(&epo(1)).await.unwrap();
        sim.answer(&mpo(2, "H000000001")).await.unwrap();
        sim.answer(&cpo(3, "H000000001")).await.unwrap();
        let state = sim.state();
        assert_eq!(state.records.len(), 1);
        let record = &state.records[0];
        assert_eq!(record.status, records::RecordStatus::Cleared);
        assert_eq!(record.mcns, vec![mcn(1), mcn(2), mcn(3)]);
        assert_eq!(
            record.fields.last().unwrap(),
            &("DOC".to_owned(), "20270101".to_owned())
        );
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["records"][0]["status"], "cleared");
        assert_eq!(
            json["records"][0]["fields"][0],
            serde_json::json!(["NAM", "DOE, JOHN ALLEN"])
        );

        sim.set_faults(Faults {
            down: true,
            ..Faults::default()
        });
        sim.reset();
        let state = sim.state();
        assert_eq!(state.counters, Counters::default());
        assert!(state.records.is_empty() && sim.messages().is_empty());
        assert!(!sim.is_down());
    }

    /// The message log keeps only the configured number of newest entries.
    #[tokio::test]
    async fn message_log_is_bounded() {
        let sim = Simulator::new(CletsSimConfig {
            message_log_capacity: 2,
            ..CletsSimConfig::default()
        });
        for seq in 1..=3 {
            sim.answer(&format!("ZPO.{ORI}.{}.", mcn(seq))).await.unwrap();
        }
        let messages = sim.messages();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].request.contains(&mcn(2)));
    }

    /// A request whose header cannot be echoed is still answered, with `?` in its place.
    #[tokio::test]
    async fn unechoable_header_is_replaced() {
        let sim = sim();
        let reply = sim.answer("NAM/DOE, JOHN.").await.unwrap();
        assert_eq!(reply, "REJ.?.?.?.ERR/E01.MSG/HEADER MUST BE MKE, ORI AND MCN");
        assert!(CletsReply::parse_str(&reply).is_ok());
    }

    /// The configuration reads from TOML-like JSON with defaults and refuses unknown fields.
    #[test]
    fn config_defaults_and_unknown_fields() {
        let config: CletsSimConfig = serde_json::from_str(r#"{"valid_oris":["CA034025J"]}"#).unwrap();
        assert_eq!((config.nic_prefix, config.fcn_prefix.as_str()), ('H', "034"));
        config.validate().unwrap();
        assert!(serde_json::from_str::<CletsSimConfig>(r#"{"valid_ori":[]}"#).is_err());
        let bad = CletsSimConfig {
            valid_oris: vec!["CA034".into()],
            ..CletsSimConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    /// The faults body accepts every ICD field, ignores `agency`, and refuses rates outside 0..1.
    #[test]
    fn faults_body_follows_icd() {
        let body = r#"{"latency_ms":0,"busy_rate":0.5,"reject_rate":0.0,"disconnect_rate":0.0,"down":false,"agency":"CA0341100"}"#;
        let faults: Faults = serde_json::from_str(body).unwrap();
        assert!(faults.validate().is_ok());
        assert_eq!(serde_json::from_str::<Faults>("{}").unwrap(), Faults::default());
        assert!(
            Faults {
                busy_rate: 1.5,
                ..Faults::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Faults {
                reject_rate: f64::NAN,
                ..Faults::default()
            }
            .validate()
            .is_err()
        );
        assert!(serde_json::from_str::<Faults>(r#"{"busy":1.0}"#).is_err());
    }
}
