//! The court simulator against a real RabbitMQ (`PORTER_TEST_AMQP_URL`, default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`).
//!
//! Porter's broker is not part of these tests. Each test declares what it needs
//! itself: `por.inbound` as the broker declares it (a durable topic exchange;
//! declaring it again is harmless), and throwaway queues for fake court ORIs
//! `ZZ…` that no real configuration uses. Where a test needs Porter's answers,
//! it plays Porter: it reads the court's messages and publishes hand-made ICD §4
//! statuses to the court's status queue.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use porter_simulators::court::{
    self, CourtFormat, CourtSimConfig, GeneratedMessage, PublishEvent, Publisher, SimCourt, publish_all,
};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use rand::Rng;

fn amqp_url() -> String {
    std::env::var("PORTER_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn connect() -> Connection {
    Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("RabbitMQ must be reachable at PORTER_TEST_AMQP_URL for the court simulator tests")
}

/// A fake court ORI: `ZZ` and seven random characters.
fn fake_ori() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..7)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect();
    format!("ZZ{tail}")
}

/// Declares `por.inbound` as the broker does, and a private queue bound to it
/// for each of `oris` (the court's inbound queue, as Porter would read it).
async fn inbound_queue(channel: &Channel, oris: &[&str]) -> String {
    channel
        .exchange_declare(
            "por.inbound".into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let name = queue.name().as_str().to_string();
    for ori in oris {
        channel
            .queue_bind(
                name.as_str().into(),
                "por.inbound".into(),
                (*ori).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    name
}

/// The court's status queue, as the broker would declare it; it goes away
/// when the simulator stops consuming it, or a minute later at most.
async fn response_queue(channel: &Channel, ori: &str) -> String {
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongUInt(60_000));
    let name = court::response_queue(ori);
    channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            args,
        )
        .await
        .unwrap();
    name
}

fn sim_court(ori: &str, format: CourtFormat) -> SimCourt {
    SimCourt {
        ori: ori.into(),
        name: format!("Test court {ori}"),
        format,
    }
}

/// Checks that an XML body is well formed and returns its namespaced
/// `por:CourtORI`, `nc:IdentificationID` and `por:Sequence`.
fn read_xml(body: &[u8]) -> (String, String, u32) {
    let mut reader = quick_xml::NsReader::from_reader(body);
    let mut current = String::new();
    let mut found: HashMap<String, String> = HashMap::new();
    let mut depth = 0usize;
    let mut root = None;
    loop {
        let (ns, event) = reader.read_resolved_event().expect("well-formed XML");
        let ns = match ns {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(e) => {
                depth += 1;
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if depth == 1 {
                    root = Some((ns.clone(), local.clone()));
                }
                current = format!("{ns}|{local}");
            }
            Event::Text(t) if !t.decode().unwrap().trim().is_empty() => {
                found
                    .entry(current.clone())
                    .or_insert_with(|| t.decode().unwrap().into_owned());
            }
            Event::End(_) => depth -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0);
    assert_eq!(root, Some(("urn:por:order:1".into(), "ProtectiveOrderMessage".into())));
    let get = |k: &str| found.get(k).cloned().unwrap_or_else(|| panic!("{k} missing"));
    (
        get("urn:por:order:1|CourtORI"),
        get("http://release.niem.gov/niem/niem-core/4.0/|IdentificationID"),
        get("urn:por:order:1|Sequence").parse().unwrap(),
    )
}

/// Checks that a fixed-width body is 200-byte ASCII records with LF and
/// returns the O record's court ORI, order number and sequence.
fn read_fixed(body: &[u8]) -> (String, String, u32) {
    assert!(body.is_ascii());
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with('\n'));
    let records: Vec<&str> = text.strip_suffix('\n').unwrap().split('\n').collect();
    assert!(records.iter().all(|r| r.len() == 200), "every record is 200 bytes");
    let o = records[0];
    assert_eq!(&o[..1], "O");
    let action = &o[45..47];
    let kinds: String = records.iter().map(|r| &r[..1]).collect();
    match action {
        "IS" | "MD" => assert!(
            kinds.starts_with("ORP")
                && kinds
                    .trim_start_matches("OR")
                    .trim_start_matches('P')
                    .chars()
                    .all(|c| c == 'M')
        ),
        "SV" => assert_eq!(kinds, "OS"),
        other => panic!("unexpected action {other}"),
    }
    (
        o[1..10].to_string(),
        o[30..45].trim_end().to_string(),
        o[47..51].parse().unwrap(),
    )
}

/// Published messages reach the court's queue with the ICD §1 properties, in
/// sequence order per order, with well-formed XML and fixed-width bodies.
#[tokio::test]
async fn publisher_sends_icd_messages() {
    let xml_ori = fake_ori();
    let fixed_ori = fake_ori();
    let conn = connect().await;
    let channel = conn.create_channel().await.unwrap();
    let queue = inbound_queue(&channel, &[&xml_ori, &fixed_ori]).await;

    let config = CourtSimConfig {
        courts: vec![
            sim_court(&xml_ori, CourtFormat::Xml),
            sim_court(&fixed_ori, CourtFormat::Fixed),
        ],
        orders_per_court: 3,
        lifecycle: true,
        close: false,
        seed: 11,
        ..Default::default()
    };
    let orders = court::plan(&config, court::orders::now_pacific(), "it");
    let publisher = Publisher::open(&conn).await.unwrap();
    let mut published: HashMap<String, GeneratedMessage> = HashMap::new();
    let summary = publish_all(
        &publisher,
        orders,
        0.0,
        |e| {
            if let PublishEvent::Confirmed(m) = e {
                published.insert(m.message_id.clone(), m.clone());
            }
        },
        std::pin::pin!(std::future::pending::<()>()),
    )
    .await;
    assert_eq!(summary.confirmed.len(), 18, "{summary:?}");
    assert!(summary.failed.is_empty() && summary.not_sent == 0);

    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    let mut ids = HashSet::new();
    let mut last_sequence: HashMap<(String, String), u32> = HashMap::new();
    for _ in 0..18 {
        let d = tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        d.ack(BasicAckOptions::default()).await.unwrap();
        let p = &d.properties;
        let id = p.message_id().as_ref().unwrap().as_str().to_string();
        assert!(id.len() <= 64 && ids.insert(id.clone()), "message ids are unique");
        let sent = &published[&id];
        assert_eq!(d.exchange.as_str(), "por.inbound");
        assert_eq!(d.routing_key.as_str(), sent.court_ori);
        assert!(id.starts_with(&sent.court_ori.to_ascii_lowercase()));
        assert_eq!(*p.delivery_mode(), Some(2));
        assert_eq!(p.app_id().as_ref().unwrap().as_str(), "porter-sim-court");
        assert!(p.timestamp().unwrap().abs_diff(now) < 60);
        let content_type = p.content_type().as_ref().unwrap().as_str().to_string();
        let (ori, order, sequence) = if sent.court_ori == xml_ori {
            assert_eq!(content_type, "application/xml");
            read_xml(&d.data)
        } else {
            assert_eq!(content_type, "text/plain");
            read_fixed(&d.data)
        };
        assert_eq!(
            (ori.as_str(), order.as_str(), sequence),
            (sent.court_ori.as_str(), sent.order.order_number.as_str(), sent.sequence)
        );
        let last = last_sequence.insert((ori, order), sequence).unwrap_or(0);
        assert_eq!(sequence, last + 1, "an order's messages arrive in sequence order");
    }
    assert_eq!(last_sequence.len(), 6);
    assert!(last_sequence.values().all(|s| *s == 3));
    let _ = conn.close(200, "OK".into()).await;
}

/// An ICD §4 status, hand-made.
fn status_xml(
    ori: &str,
    order: &str,
    seq: u32,
    message_id: &str,
    status_seq: u32,
    status: &str,
    extra: &str,
) -> String {
    format!(
        r#"<por:OrderStatusMessage xmlns:por="urn:por:order:1">
  <por:CourtORI>{ori}</por:CourtORI><por:OrderNumber>{order}</por:OrderNumber><por:Sequence>{seq}</por:Sequence>
  <por:CorrelatesTo>{message_id}</por:CorrelatesTo><por:StatusSequence>{status_seq}</por:StatusSequence>
  <por:StatusDateTime>2026-11-25T10:15:01.250-08:00</por:StatusDateTime>
  <por:Status>{status}</por:Status>{extra}
</por:OrderStatusMessage>"#
    )
}

async fn send_status(channel: &Channel, queue: &str, correlation: &str, body: String) {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default()
                .with_content_type("application/xml".into())
                .with_type("order-status".into())
                .with_correlation_id(correlation.into())
                .with_message_id(format!("st-{correlation}-{}", body.len()).as_str().into()),
        )
        .await
        .unwrap();
}

/// A full run completes when "Porter" answers: accepted messages once every
/// routed partner has answered (statuses out of order and repeated), rejected
/// ones at once; statuses of earlier runs are ignored.
#[tokio::test]
async fn run_completes_on_porter_statuses() {
    let xml_ori = fake_ori();
    let fixed_ori = fake_ori();
    let conn = connect().await;
    let channel = conn.create_channel().await.unwrap();
    let inbound = inbound_queue(&channel, &[&xml_ori, &fixed_ori]).await;
    let xml_statuses = response_queue(&channel, &xml_ori).await;
    response_queue(&channel, &fixed_ori).await;
    // A status left over from an earlier run.
    send_status(
        &channel,
        &xml_statuses,
        "old-run-1",
        status_xml(&xml_ori, "25DV00001", 1, "old-run-1", 1, "ACCEPTED", ""),
    )
    .await;

    // Fake Porter: XML court accepted and routed to CLETS and an LEA; the
    // fixed-width court's messages are all rejected.
    let porter_channel = conn.create_channel().await.unwrap();
    let mut inbound_consumer = porter_channel
        .basic_consume(
            inbound.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let porter_xml_ori = xml_ori.clone();
    let porter = tokio::spawn(async move {
        let mut n = 0;
        while let Some(Ok(d)) = inbound_consumer.next().await {
            d.ack(BasicAckOptions::default()).await.unwrap();
            n += 1;
            let id = d.properties.message_id().as_ref().unwrap().as_str().to_string();
            let routing_key = d.routing_key.as_str().to_string();
            if routing_key == porter_xml_ori {
                let (ori, order, seq) = read_xml(&d.data);
                let queue = court::response_queue(&ori);
                let lea = "<por:Partner>LEA:CA0341100</por:Partner>";
                let clets = format!(
                    "<por:Partner>CLETS</por:Partner><por:PartnerRecordID scheme=\"NIC\">H{n:09}</por:PartnerRecordID><por:PartnerRecordID scheme=\"FCN\">03400000{n:05}</por:PartnerRecordID>"
                );
                let routed =
                    "<por:RoutedPartner>CLETS</por:RoutedPartner><por:RoutedPartner>LEA:CA0341100</por:RoutedPartner>";
                for (sseq, status, extra) in [
                    (3, "PARTNER_ACCEPTED", lea.to_string()),
                    (1, "ACCEPTED", routed.to_string()),
                    (1, "ACCEPTED", routed.to_string()),
                    (2, "PARTNER_ACCEPTED", clets),
                ] {
                    send_status(
                        &porter_channel,
                        &queue,
                        &id,
                        status_xml(&ori, &order, seq, &id, sseq, status, &extra),
                    )
                    .await;
                }
            } else {
                let (ori, order, seq) = read_fixed(&d.data);
                let error = "<por:Error><por:Code>INVALID_CODE</por:Code><por:Field>protected_persons[0].relationship</por:Field><por:Location>3:82</por:Location><por:Text>not a relationship code</por:Text></por:Error>";
                send_status(
                    &porter_channel,
                    &court::response_queue(&ori),
                    &id,
                    status_xml(&ori, &order, seq, &id, 1, "REJECTED", error),
                )
                .await;
            }
        }
    });

    let config = CourtSimConfig {
        amqp_url: amqp_url(),
        courts: vec![
            sim_court(&xml_ori, CourtFormat::Xml),
            sim_court(&fixed_ori, CourtFormat::Fixed),
        ],
        orders_per_court: 2,
        lifecycle: true,
        close: false,
        rate_per_sec: 200.0,
        status_timeout_secs: 8,
        seed: 5,
        ..Default::default()
    };
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let printed = lines.clone();
    let started = std::time::Instant::now();
    let report = court::run_with_printer(config, std::future::pending(), move |l| {
        printed.lock().unwrap().push(l.to_string())
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "completes without waiting for the timeout"
    );
    porter.abort();

    assert_eq!(report.sent, 12, "{}", report.summary());
    assert_eq!(report.complete, 12, "{}", report.summary());
    assert!(report.incomplete.is_empty());
    assert_eq!(report.rejected, 6);
    assert_eq!(report.partner_accepted, 12);
    assert_eq!(
        (report.partner_rejected, report.dead_lettered, report.not_sent),
        (0, 0, 0)
    );
    assert!(
        report.publish_failed.is_empty() && report.anomalies.is_empty(),
        "{}",
        report.summary()
    );

    let lines = lines.lock().unwrap().clone();
    assert_eq!(
        lines.len(),
        6 * 4 + 6,
        "every status of this run is printed, the old one is not"
    );
    assert!(lines.iter().all(|l| !l.contains("old-run-1")));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&xml_ori) && l.contains("PARTNER_ACCEPTED CLETS NIC=H"))
    );
    assert!(lines.iter().any(|l| l.starts_with(&fixed_ori)
        && l.contains(
            "REJECTED | ERROR INVALID_CODE protected_persons[0].relationship @3:82: not a relationship code"
        )));
    let _ = conn.close(200, "OK".into()).await;
}

/// A court whose routing key has no queue gets its messages back
/// (`basic.return`): they are publish failures, and the rest of each order is
/// not sent.
#[tokio::test]
async fn unroutable_court_is_reported() {
    let ori = fake_ori();
    let conn = connect().await;
    let channel = conn.create_channel().await.unwrap();
    inbound_queue(&channel, &[]).await;
    let config = CourtSimConfig {
        amqp_url: amqp_url(),
        courts: vec![sim_court(&ori, CourtFormat::Xml)],
        orders_per_court: 2,
        lifecycle: true,
        close: false,
        rate_per_sec: 0.0,
        status_timeout_secs: 1,
        seed: 1,
        ..Default::default()
    };
    let report = court::run_with_printer(config, std::future::pending(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.sent, 0);
    assert_eq!(report.publish_failed.len(), 2, "{}", report.summary());
    assert!(report.publish_failed.iter().all(|(_, why)| why.contains("NO_ROUTE")));
    assert_eq!(report.not_sent, 4);
    assert!(!report.is_clean());
    let _ = conn.close(200, "OK".into()).await;
}

/// Shutdown before the first publish sends nothing and returns at once.
#[tokio::test]
async fn shutdown_stops_the_run() {
    let ori = fake_ori();
    let conn = connect().await;
    let channel = conn.create_channel().await.unwrap();
    inbound_queue(&channel, &[&ori]).await;
    let config = CourtSimConfig {
        amqp_url: amqp_url(),
        courts: vec![sim_court(&ori, CourtFormat::Fixed)],
        orders_per_court: 5,
        seed: 2,
        ..Default::default()
    };
    let report = tokio::time::timeout(
        Duration::from_secs(5),
        court::run_with_printer(config, std::future::ready(()), |_| {}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((report.sent, report.not_sent), (0, 5));
    let _ = conn.close(200, "OK".into()).await;
}
