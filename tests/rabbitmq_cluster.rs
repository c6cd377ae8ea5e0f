//! Failover across a RabbitMQ cluster (ICD §12, issue 15 item 3): three
//! private nodes on loopback, started by the test with their own names,
//! ports and data folders ([`PrivateCluster`]); the shared node on 5672 is
//! never touched. Every `por.*` queue is declared through node A, so that
//! A leads them all, and A is SIGKILLed in the middle of a flow of order
//! lifecycles. RabbitMQ here is 3.10, and nothing relies on single active
//! consumer (ICD §1 allows no `x-` argument but the queue type).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lapin::{Connection, ConnectionProperties};
use porter::config::CourtConfig;
use porter_simulators::court::publisher::APP_ID as COURT_SIM_CONNECTION;
use porter_simulators::court::{CourtFormat, CourtSimConfig, SimCourt};
use serde_json::Value;

use common::rabbit_cluster::PrivateCluster;
use common::*;

/// Orders per court: ISSUE, MODIFY and SERVICE each; 3 courts, 270 messages.
const ORDERS: u32 = 30;
/// Messages per second over all courts: publishing takes about 9 s, so most
/// of it comes after the kill.
const RATE: f64 = 30.0;
/// Node A is killed once the court simulator has seen this many statuses.
const KILL_AFTER_STATUSES: usize = 40;
/// The connection name the broker gives its connections.
const BROKER_CONNECTION: &str = "porter-broker";

/// The broker's `porter_amqp_reconnects_total`.
async fn reconnects(h: &Harness) -> u64 {
    h.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("porter_amqp_reconnects_total "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// Declares the topology for `courts` (the exchanges, `por.dead`, each
/// court's two queues and bindings) through the node at `url`, with
/// Porter's own declarations, so that this node leads every queue
/// (RabbitMQ's default `queue_leader_locator` is `client-local`).
async fn declare_through(url: &str, courts: &[String]) {
    let courts: Vec<CourtConfig> = courts
        .iter()
        .map(|ori| serde_json::from_value(serde_json::json!({"ori": ori, "sheriff_ori": "CA0340000"})).unwrap())
        .collect();
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("node A accepts a connection");
    let channel = conn.create_channel().await.unwrap();
    porter::transport::topology::declare(&channel, &courts)
        .await
        .expect("the topology is declared through node A");
    let _ = conn.close(200, "declared".into()).await;
}

/// The node (index) each named client's connections are on, as node
/// `via` reports them.
fn nodes_of(cluster: &PrivateCluster, via: usize, client: &str) -> Vec<usize> {
    cluster
        .connections(via)
        .iter()
        .filter(|c| c.client_name.as_deref() == Some(client))
        .map(|c| cluster.node_of_port(c.port).expect("a connection to one of the nodes"))
        .collect()
}

/// Proves that a broker and a court simulator, both given the cluster's
/// three nodes `[A, B, C]`, survive the SIGKILL of node A, which leads
/// every `por.*` queue (asserted before the kill: declared through A, each
/// queue has A as leader and all three nodes as members), while the
/// broker and the simulator are both connected to A and order lifecycles
/// (3 courts × 30 orders, ISSUE/MODIFY/SERVICE, interleaved) are flowing:
/// the kill comes after the court has seen some statuses and while it is
/// still publishing. With nothing restarted, the broker moves to B or C by
/// itself (its reconnect counter rises, `/readyz` is green again and its
/// connection is on a surviving node), the queues get new leaders on B or
/// C, and the run ends clean: every message sent, complete and
/// `PARTNER_ACCEPTED` at every partner it was routed to (the court
/// simulator's `is_clean()`), one CARPOS record per order, `double_records`
/// 0 at every partner, and each order in sequence at CLETS, DOJ and every
/// LEA agency (no `out_of_order`, no `gaps`). It fails if either side stays
/// on the dead node, if a message in flight through A is lost (never
/// complete), or if a redelivery after the failover is applied twice.
///
/// Both sides reconnect within a second, while B and C are still electing
/// the queues' new leaders. RabbitMQ 3.10 nacks, for as long as the channel
/// lives, every publish of a channel to a quorum queue whose first publish
/// on that channel came in that window; so this test also fails unless the
/// broker (`transport::publisher`) and the court simulator (`court::link`)
/// move to a new channel after a nack: without that, the statuses stay
/// nacked and the run never completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_a_killed_mid_flow_loses_nothing_and_everyone_moves_on() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,porter=info".into()))
        .try_init();
    let began = Instant::now();
    let cluster = tokio::task::spawn_blocking(|| PrivateCluster::start(3)).await.unwrap();
    let cluster = Arc::new(std::sync::Mutex::new(cluster));
    let (urls, names) = {
        let c = cluster.lock().unwrap();
        (c.urls(), c.names())
    };
    let mut sorted_names = names.clone();
    sorted_names.sort();
    println!(
        "cluster of {names:?} running after {:.1} s",
        began.elapsed().as_secs_f64()
    );

    // Every por.* queue declared through A: A leads each, all three are
    // members.
    let courts = vec![unique_ori(), unique_ori(), unique_ori()];
    declare_through(&urls[0], &courts).await;
    let c = cluster.clone();
    let queues = tokio::task::spawn_blocking(move || c.lock().unwrap().quorum_queues(0))
        .await
        .unwrap();
    let mut expected: Vec<String> = courts
        .iter()
        .flat_map(|ori| [format!("por.inbound.{ori}"), format!("por.responses.{ori}")])
        .collect();
    expected.push("por.dead".into());
    expected.sort();
    let mut listed: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
    listed.sort();
    assert_eq!(listed, expected, "the quorum queues on the cluster: {queues:#?}");
    for q in &queues {
        assert_eq!(q.leader, names[0], "{} is not led by node A: {q:?}", q.name);
        assert_eq!(q.members, sorted_names, "{} is not on all three nodes: {q:?}", q.name);
    }

    // The broker (in-process, SQLite or PORTER_TEST_STORE_URL) on
    // [A, B, C]; the harness's own connection is on B.
    let court_refs: Vec<&str> = courts.iter().map(String::as_str).collect();
    let setup = Setup {
        amqp_urls: Some(urls.clone()),
        ..Setup::ALL_PARTNERS
    };
    let h = Harness::start_with(&court_refs, &urls[1], setup).await;
    let c = cluster.clone();
    let broker_on = tokio::task::spawn_blocking(move || {
        let c = c.lock().unwrap();
        // Asked now, so that the kill is immediate later.
        c.nodes[0].beam_pid();
        nodes_of(&c, 0, BROKER_CONNECTION)
    })
    .await
    .unwrap();
    assert!(
        !broker_on.is_empty() && broker_on.iter().all(|&n| n == 0),
        "the broker's connections are not (all) on node A: {broker_on:?}"
    );

    let statuses = Arc::new(AtomicUsize::new(0));
    let seen = statuses.clone();
    let load = CourtSimConfig {
        amqp_url: urls[0].clone(),
        amqp_urls: urls.clone(),
        courts: courts
            .iter()
            .enumerate()
            .map(|(i, ori)| SimCourt {
                ori: ori.clone(),
                name: format!("cluster court {i}"),
                format: if i % 2 == 0 {
                    CourtFormat::Xml
                } else {
                    CourtFormat::Fixed
                },
            })
            .collect(),
        orders_per_court: ORDERS,
        rate_per_sec: RATE,
        lifecycle: true,
        status_timeout_secs: 90,
        ..CourtSimConfig::default()
    };
    let flow_started = Instant::now();
    let simulation = tokio::spawn(porter_simulators::court::run_with_printer(
        load,
        std::future::pending::<()>(),
        move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        },
    ));

    // Mid-flow: statuses are coming back through A.
    while statuses.load(Ordering::Relaxed) < KILL_AFTER_STATUSES {
        assert!(!simulation.is_finished(), "the court simulator ended before the kill");
        assert!(
            flow_started.elapsed() < Duration::from_secs(60),
            "fewer than {KILL_AFTER_STATUSES} statuses within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = cluster.clone();
    let sim_on = tokio::task::spawn_blocking(move || nodes_of(&c.lock().unwrap(), 0, COURT_SIM_CONNECTION))
        .await
        .unwrap();
    assert!(
        !sim_on.is_empty() && sim_on.iter().all(|&n| n == 0),
        "the court simulator's connections are not (all) on node A: {sim_on:?}"
    );
    let before = reconnects(&h).await;
    assert!(!simulation.is_finished(), "the court simulator ended before the kill");
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.lock().unwrap().sigkill(0))
        .await
        .unwrap();
    let killed = Instant::now();
    let at_kill = statuses.load(Ordering::Relaxed);
    println!(
        "node A SIGKILLed {:.1} s into the flow, after {at_kill} statuses",
        flow_started.elapsed().as_secs_f64()
    );

    // The broker moves to a surviving node by itself.
    loop {
        let ready = reqwest::get(format!("{}/readyz", h.http))
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready && reconnects(&h).await > before {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "the broker was not ready on another node within 60 s of the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "broker ready again {:.1} s after the kill",
        killed.elapsed().as_secs_f64()
    );

    let report = tokio::time::timeout(Duration::from_secs(150), simulation)
        .await
        .expect("the court simulator ends within 150 s of the kill")
        .unwrap()
        .expect("court simulator");
    let total = statuses.load(Ordering::Relaxed);
    println!("{}", report.summary());
    println!(
        "flow done {:.1} s after the kill: {total} statuses, {at_kill} of them before it",
        killed.elapsed().as_secs_f64()
    );

    // Where everyone is now, and who leads the queues.
    let c = cluster.clone();
    let (broker_on, queues) = tokio::task::spawn_blocking(move || {
        let c = c.lock().unwrap();
        (nodes_of(&c, 1, BROKER_CONNECTION), c.quorum_queues(1))
    })
    .await
    .unwrap();
    println!("after the kill: broker on nodes {broker_on:?}");
    assert!(
        !broker_on.is_empty() && broker_on.iter().all(|&n| n != 0),
        "the broker is not connected to B or C: {broker_on:?}"
    );
    let leaders: BTreeMap<&str, &str> = queues.iter().map(|q| (q.name.as_str(), q.leader.as_str())).collect();
    println!("leaders after the kill: {leaders:?}");
    for q in &queues {
        assert!(
            names[1..].contains(&q.leader),
            "{} has no leader on B or C: {q:?}",
            q.name
        );
    }

    // Nothing lost, nothing applied twice, every order in sequence.
    assert_eq!(report.sent, 9 * ORDERS as usize, "{}", report.summary());
    assert!(
        report.is_clean(),
        "every message complete and PARTNER_ACCEPTED: {}",
        report.summary()
    );
    assert!(
        at_kill * 2 < total,
        "the kill came late in the flow: {at_kill} of {total} statuses before it"
    );
    let clets = h.sim_state().await;
    let c = &clets["counters"];
    println!("CLETS: {c}");
    assert_eq!(
        clets["records"].as_array().map(Vec::len),
        Some(3 * ORDERS as usize),
        "one CARPOS record per order"
    );
    assert_eq!(c["double_records"], 0, "CLETS applied a message twice: {c}");
    assert_eq!(c["out_of_order"], 0, "CLETS received an order out of sequence: {c}");
    let doj = Harness::http_sim_state(h.doj.as_deref().unwrap()).await;
    println!("DOJ: {}", doj["counters"]);
    assert_in_order(&doj["counters"], "DOJ");
    assert_sequences_rise(&doj["records"], "DOJ");
    let lea = Harness::http_sim_state(h.lea.as_deref().unwrap()).await;
    println!("LEA: {}", lea["counters"]);
    assert_in_order(&lea["counters"], "LEA");
    let agencies = lea["agencies"].as_object().expect("LEA agencies");
    assert!(!agencies.is_empty(), "no LEA agency received anything");
    for (agency, state) in agencies {
        assert_in_order(&state["counters"], agency);
        assert_sequences_rise(&state["records"], agency);
    }

    // The queues go away with the cluster.
    h.stop_leaving_queues().await;
    let stopping = Instant::now();
    tokio::task::spawn_blocking(move || drop(cluster)).await.unwrap();
    println!(
        "B and C stopped in {:.1} s; test took {:.1} s",
        stopping.elapsed().as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}

/// Each order's sequences at an HTTP partner (DOJ, or one LEA agency), in
/// the order it applied them, rise strictly.
fn assert_sequences_rise(records: &Value, who: &str) {
    let mut orders: Vec<&str> = records
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["order_number"].as_str())
        .collect();
    orders.sort();
    orders.dedup();
    for order in orders {
        let applied = applied_sequences(records, order);
        assert!(
            applied.windows(2).all(|w| w[0] < w[1]),
            "{who}, order {order}: applied {applied:?}"
        );
    }
}
