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
use porter_simulators::court::image::{MAX_PDF_BYTES, MIN_PDF_BYTES};
use porter_simulators::court::{
    self, CloseMode, CourtFormat, CourtSimConfig, FormatChoice, GeneratedMessage, PublishEvent, Publisher, SimCourt,
    publish_all,
};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use rand::Rng;
use sha2::Digest as _;

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
        "TM" | "CX" => assert_eq!(kinds, "O"),
        other => panic!("unexpected action {other}"),
    }
    (
        o[1..10].to_string(),
        o[30..45].trim_end().to_string(),
        o[47..51].parse().unwrap(),
    )
}

/// What [`read_xml_extras`] finds: the action and the `por:OrderImage`.
struct XmlExtras {
    action: String,
    /// `mimeType`, `sha256` and the decoded bytes.
    image: Option<(String, String, Vec<u8>)>,
}

/// Reads an XML body's `por:Action` and its `por:OrderImage`, if any.
fn read_xml_extras(body: &[u8]) -> XmlExtras {
    let mut reader = quick_xml::NsReader::from_reader(body);
    let mut current = String::new();
    let mut action = String::new();
    let mut image: Option<(String, String, String)> = None;
    loop {
        let (ns, event) = reader.read_resolved_event().expect("well-formed XML");
        let in_por = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == b"urn:por:order:1");
        match event {
            Event::Start(e) => {
                current = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if in_por && current == "OrderImage" {
                    let attr = |name: &str| {
                        e.try_get_attribute(name)
                            .unwrap()
                            .map(|a| a.unescape_value().unwrap().into_owned())
                            .unwrap_or_default()
                    };
                    image = Some((attr("mimeType"), attr("sha256"), String::new()));
                }
            }
            Event::Text(t) => {
                let text = t.decode().unwrap();
                match current.as_str() {
                    "Action" => action.push_str(text.trim()),
                    "OrderImage" => {
                        if let Some(i) = image.as_mut() {
                            i.2.extend(text.chars().filter(|c| !c.is_whitespace()));
                        }
                    }
                    _ => {}
                }
            }
            Event::End(_) => current.clear(),
            Event::Eof => break,
            _ => {}
        }
    }
    XmlExtras {
        action,
        image: image.map(|(mime, sha, b64)| {
            let data = data_encoding::BASE64.decode(b64.as_bytes()).expect("valid base64");
            (mime, sha, data)
        }),
    }
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
        config.order_window,
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
    let mut sequences = Vec::new();
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
        sequences.push(sequence);
    }
    // The three orders of each court fit in one `order_window` (8), so the
    // orders are interleaved on the wire: the six ISSUEs, then the six
    // MODIFYs, then the six SERVICEs (one order at a time would give 1, 1, 2, …).
    assert_eq!(sequences, [[1; 6], [2; 6], [3; 6]].concat());
    assert_eq!(last_sequence.len(), 6);
    assert!(last_sequence.values().all(|s| *s == 3));
    let _ = conn.close(200, "OK".into()).await;
}

/// `format_override = mixed`, images and `close_mode = cancel` reach the wire:
/// each order is in one format with its content type, both formats occur
/// whatever the courts' own, every XML ISSUE carries a PDF whose SHA-256
/// matches its declared digest and whose size is in range, fixed-width
/// orders carry none, and every order ends with a CANCEL at sequence 4.
#[tokio::test]
async fn options_reach_the_wire() {
    let oris = [fake_ori(), fake_ori()];
    let conn = connect().await;
    let channel = conn.create_channel().await.unwrap();
    let queue = inbound_queue(&channel, &[&oris[0], &oris[1]]).await;
    let config = CourtSimConfig {
        courts: vec![
            sim_court(&oris[0], CourtFormat::Xml),
            sim_court(&oris[1], CourtFormat::Xml),
        ],
        orders_per_court: 4,
        lifecycle: true,
        close: true,
        close_mode: CloseMode::Cancel,
        format_override: Some(FormatChoice::Mixed),
        images: true,
        seed: 21,
        ..Default::default()
    };
    let orders = court::plan(&config, court::orders::now_pacific(), "opt");
    let publisher = Publisher::open(&conn).await.unwrap();
    let summary = publish_all(
        &publisher,
        orders,
        config.order_window,
        0.0,
        |_| {},
        std::pin::pin!(std::future::pending::<()>()),
    )
    .await;
    assert_eq!(summary.confirmed.len(), 32, "{summary:?}");

    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    // Per order (ORI, order number): its content type and the actions seen, by sequence.
    type Seen = (String, Vec<(u32, String)>);
    let mut per_order: HashMap<(String, String), Seen> = HashMap::new();
    let mut images = 0;
    for _ in 0..32 {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        d.ack(BasicAckOptions::default()).await.unwrap();
        assert!(d.data.len() < 16 * 1024 * 1024);
        let content_type = d.properties.content_type().as_ref().unwrap().as_str().to_string();
        let (ori, order, sequence, action) = match content_type.as_str() {
            "application/xml" => {
                let (ori, order, sequence) = read_xml(&d.data);
                let extras = read_xml_extras(&d.data);
                match (extras.action.as_str(), extras.image) {
                    ("ISSUE" | "MODIFY", Some((mime, sha, data))) => {
                        assert_eq!(mime, "application/pdf");
                        assert_eq!(hex::encode(sha2::Sha256::digest(&data)), sha);
                        assert!(data.starts_with(b"%PDF-1.4\n") && data.ends_with(b"%%EOF\n"));
                        assert!((MIN_PDF_BYTES..=MAX_PDF_BYTES).contains(&data.len()));
                        images += 1;
                    }
                    ("ISSUE", None) => panic!("an XML ISSUE without its image"),
                    (_, None) => {}
                    (other, Some(_)) => panic!("{other} carries an image"),
                }
                (ori, order, sequence, extras.action)
            }
            "text/plain" => {
                let (ori, order, sequence) = read_fixed(&d.data);
                let action = match &d.data[45..47] {
                    b"IS" => "ISSUE",
                    b"MD" => "MODIFY",
                    b"SV" => "SERVICE",
                    b"TM" => "TERMINATE",
                    b"CX" => "CANCEL",
                    other => panic!("action {other:?}"),
                };
                (ori, order, sequence, action.to_string())
            }
            other => panic!("content type {other}"),
        };
        let entry = per_order
            .entry((ori, order))
            .or_insert_with(|| (content_type.clone(), Vec::new()));
        assert_eq!(entry.0, content_type, "all messages of an order share one format");
        entry.1.push((sequence, action));
    }
    assert_eq!(per_order.len(), 8);
    let types: HashSet<&str> = per_order.values().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, HashSet::from(["application/xml", "text/plain"]));
    let xml_orders = per_order.values().filter(|(t, _)| t == "application/xml").count();
    assert!(images >= xml_orders, "every XML ISSUE has an image");
    for (_, actions) in per_order.values() {
        let names: Vec<(u32, &str)> = actions.iter().map(|(s, a)| (*s, a.as_str())).collect();
        assert_eq!(names, [(1, "ISSUE"), (2, "MODIFY"), (3, "SERVICE"), (4, "CANCEL")]);
    }
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

    // Timings: the six accepted XML messages are measured to ACCEPTED and to
    // their last PARTNER_ACCEPTED; the rejected ones are not. Each message's
    // CLETS status is sent after its ACCEPTED, so every percentile of the
    // second is at least that of the first.
    let t = &report.timings;
    let (accepted, partners) = (t.accepted.unwrap(), t.partner_accepted.unwrap());
    for stats in [accepted, partners] {
        assert_eq!(stats.count, 6);
        assert!(stats.p50_ms <= stats.p95_ms && stats.p95_ms <= stats.p99_ms && stats.p99_ms <= stats.max_ms);
    }
    assert!(partners.p50_ms >= accepted.p50_ms && partners.max_ms >= accepted.max_ms);
    assert!(t.published_per_sec.is_some_and(|r| r > 0.0) && t.completed_per_sec.is_some_and(|r| r > 0.0));
    assert!(t.complete_secs > 0.0);
    // The JSON document parses back with every field.
    let json: serde_json::Value = serde_json::from_str(&report.to_json().to_string()).unwrap();
    assert_eq!(json["sent"], 12);
    assert_eq!(json["rejected"], 6);
    assert_eq!(json["seed"], 5);
    assert_eq!(json["clean"], false, "rejections make a run unclean");
    assert_eq!(json["timings"]["accepted"]["count"], 6);
    for field in ["p50_ms", "p95_ms", "p99_ms", "max_ms"] {
        assert!(json["timings"]["partner_accepted"][field].is_f64(), "{field}");
    }
    assert!(json["timings"]["published_per_sec"].is_f64() && json["timings"]["completed_per_sec"].is_f64());

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

/// Without answers, the run waits `status_timeout_secs` (`--wait`) after
/// the last publish, no longer, and reports every sent message incomplete.
#[tokio::test]
async fn run_waits_at_most_the_wait() {
    let ori = fake_ori();
    let conn = connect().await;
    let channel = conn.create_channel().await.unwrap();
    inbound_queue(&channel, &[&ori]).await;
    response_queue(&channel, &ori).await;
    let config = CourtSimConfig {
        amqp_url: amqp_url(),
        courts: vec![sim_court(&ori, CourtFormat::Xml)],
        orders_per_court: 2,
        rate_per_sec: 0.0,
        status_timeout_secs: 2,
        seed: 3,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        court::run_with_printer(config, std::future::pending(), |_| {}),
    )
    .await
    .expect("the run ends after its wait")
    .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "it waited for statuses");
    assert_eq!((report.sent, report.complete, report.incomplete.len()), (2, 0, 2));
    assert_eq!(report.timings.accepted, None);
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
