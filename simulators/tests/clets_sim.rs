//! End-to-end test of the CLETS simulator: `run` on ephemeral ports, driven over real TCP with the
//! broker's CLETS client and over real HTTP with reqwest.

use std::time::Duration;

use porter_adapters::clets::{CletsClient, CletsError, CletsReply};
use porter_simulators::clets::{CletsSimConfig, MessageEntry, StateView, run};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const ORI: &str = "CA034025J";

fn mcn(sequence: u16) -> String {
    format!("{sequence:04}0ABCDEFGHIJKLMNO")
}

fn epo(sequence: u16) -> String {
    format!(
        "EPO.{ORI}.{}.NAM/DOE, JOHN ALLEN.SEX/M.RAC/W.DOB/19850214.HGT/510.WGT/185.EYE/BRO.HAI/BLK.\
         OLN/D1234567.OLS/CA.PNO/24DV01234.OCA/24FL001234.TYP/DV.ISD/20261125.EXP/20311125.EXT/2359.\
         BRD/Y.PCO/01.PCO/05.PCO/07.PPN/DOE, JANE B.PSX/F.PPR/W.PPB/19870302.\
         MIS/STAY AT LEAST 100 YARDS AWAY FROM PROTECTED PERSON, HOME, WORK AND VEHICLE.",
        mcn(sequence)
    )
}

fn mpo(sequence: u16, nic: &str) -> String {
    format!(
        "MPO.{ORI}.{}.NIC/{nic}.NAM/DOE, JOHN ALLEN.SEX/M.RAC/W.DOB/19850214.PNO/24DV01234.OCA/24FL001234.\
         TYP/DV.ISD/20261125.EXP/20311125.BRD/Y.PCO/01.PCO/07.PPN/DOE, JANE B.PSX/F.",
        mcn(sequence)
    )
}

fn cpo(sequence: u16, nic: &str) -> String {
    format!("CPO.{ORI}.{}.NIC/{nic}.PNO/24DV01234.DOC/20270101.", mcn(sequence))
}

/// A simulator running in-process, with a CLETS client and an HTTP client for its control API.
struct Harness {
    clets: CletsClient,
    http: reqwest::Client,
    control: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    async fn start() -> Self {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let clets_addr = tcp.local_addr().unwrap().to_string();
        let control_url = format!("http://{}", control.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let config = CletsSimConfig {
            valid_oris: vec![ORI.into()],
            ..CletsSimConfig::default()
        };
        let task = tokio::spawn(run(tcp, control, config, async move {
            let _ = stopped.await;
        }));
        let clets = CletsClient::new(clets_addr, 2, Duration::from_secs(5));
        Self {
            clets,
            http: reqwest::Client::new(),
            control: control_url,
            stop,
            task,
        }
    }

    async fn send(&self, request: &str) -> CletsReply {
        self.clets.send(request.as_bytes()).await.unwrap()
    }

    async fn state(&self) -> StateView {
        let response = self
            .http
            .get(format!("{}/_sim/state", self.control))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        response.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::StatusCode {
        self.http
            .post(format!("{}{path}", self.control))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

fn rejection_code(reply: &CletsReply) -> &str {
    match reply {
        CletsReply::Rej { code, .. } => code,
        other => panic!("expected REJ, got {other}"),
    }
}

/// The simulator keeps CARPOS state over real TCP and reports it over HTTP, through a whole order life.
#[tokio::test]
async fn order_lifecycle_faults_and_reset() {
    let h = Harness::start().await;

    // EPO accepted with a NIC and FCN.
    let first = h.send(&epo(1)).await;
    let CletsReply::Ack { nic, fcn, .. } = &first else {
        panic!("expected ACK, got {first}")
    };
    assert!(nic.starts_with('H') && nic.len() == 10, "{nic}");
    assert_eq!(fcn.len(), 13);
    let nic = nic.clone();

    // The same MCN again: the same reply, counted as a duplicate.
    let again = h.send(&epo(1)).await;
    assert_eq!(again.to_frame_text(), first.to_frame_text());
    assert_eq!(h.state().await.counters.duplicates, 1);

    // Same order under a new MCN while active: E05 (a sequence of its own:
    // answers are remembered per MCN, and the MPO below is sequence 2).
    let duplicate_entry = epo(9);
    assert_eq!(rejection_code(&h.send(&duplicate_entry).await), "E05");
    // Sent again, the REJ comes back unchanged from memory (ICD §6).
    assert_eq!(rejection_code(&h.send(&duplicate_entry).await), "E05");
    assert_eq!(h.state().await.counters.duplicates, 2);

    // MPO and CPO on the NIC.
    match h.send(&mpo(2, &nic)).await {
        CletsReply::Ack { nic: n, .. } => assert_eq!(n, nic),
        other => panic!("expected ACK, got {other}"),
    }
    assert!(matches!(h.send(&cpo(3, &nic)).await, CletsReply::Ack { .. }));

    // After the clear, the NIC is no longer usable: E04.
    assert_eq!(rejection_code(&h.send(&mpo(4, &nic)).await), "E04");

    let state = h.state().await;
    let c = state.counters;
    assert_eq!(
        (
            c.received,
            c.accepted,
            c.rejected,
            c.busy,
            c.duplicates,
            c.double_records
        ),
        (7, 3, 2, 0, 2, 0)
    );
    assert!(c.connections >= 1);
    assert_eq!(state.records.len(), 1);
    let record = &state.records[0];
    assert_eq!(
        (record.nic.as_str(), record.ori.as_str(), record.pno.as_str()),
        (nic.as_str(), ORI, "24DV01234")
    );
    assert_eq!(serde_json::to_value(record.status).unwrap(), "cleared");
    assert_eq!(record.mcns, vec![mcn(1), mcn(2), mcn(3)]);

    let messages: Vec<MessageEntry> = h
        .http
        .get(format!("{}/_sim/messages", h.control))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(messages.len(), 7);
    assert_eq!(messages[0].request, epo(1));
    assert_eq!(messages[0].reply.as_deref(), Some(first.to_frame_text().as_str()));
    chrono::DateTime::parse_from_rfc3339(&messages[0].at).unwrap();

    // Busy fault: BSY, counted.
    let body = json!({"latency_ms": 0, "busy_rate": 1.0, "reject_rate": 0.0, "disconnect_rate": 0.0, "down": false, "agency": "CA0341100"});
    assert!(h.post("/_sim/faults", body).await.is_success());
    assert!(matches!(h.send(&epo(5)).await, CletsReply::Bsy { .. }));
    assert_eq!(h.state().await.counters.busy, 1);

    // Invalid faults are refused.
    assert_eq!(
        h.post("/_sim/faults", json!({"busy_rate": 2.0})).await,
        reqwest::StatusCode::BAD_REQUEST
    );

    // Down: connections are refused (a transient transport error), and come back when it is lifted.
    // A refused connection counts in `refused_connections`, not in `connections`.
    let served = h.state().await.counters.connections;
    assert!(h.post("/_sim/faults", json!({"down": true})).await.is_success());
    // A pooled connection the simulator just dropped may fail a send without a new connection, so a
    // few sends: each fails, and once the pool's connections are gone the next one is refused.
    for _ in 0..3 {
        let err = h.clets.send(epo(5).as_bytes()).await.unwrap_err();
        assert!(matches!(err, CletsError::Transport(_)) && err.is_transient(), "{err:?}");
    }
    let down = h.state().await;
    assert!(down.refused_connections >= 1, "the refused connection is counted");
    assert_eq!(down.counters.connections, served, "and not as served");
    assert!(h.post("/_sim/faults", json!({})).await.is_success());

    // Reset: everything forgotten, faults cleared, a new entry accepted.
    assert!(h.post("/_sim/reset", json!({})).await.is_success());
    let state = h.state().await;
    assert_eq!(
        serde_json::to_value(state.counters).unwrap(),
        json!({
            "received": 0, "accepted": 0, "rejected": 0, "busy": 0, "connections": 0, "duplicates": 0, "double_records": 0,
            "out_of_order": 0, "gaps": 0
        })
    );
    assert!(state.records.is_empty());
    assert_eq!(state.refused_connections, 0, "reset forgets the refused connections");
    assert!(matches!(h.send(&epo(1)).await, CletsReply::Ack { .. }));
    assert_eq!(h.state().await.counters.accepted, 1);

    h.stop().await;
}

/// A request from an ORI off the configured list is rejected E06 over the wire.
#[tokio::test]
async fn unlisted_ori_is_e06() {
    let h = Harness::start().await;
    let request = epo(1).replacen(ORI, "CA0341100", 1);
    assert_eq!(rejection_code(&h.send(&request).await), "E06");
    h.stop().await;
}
