//! `porter topology` (ICD §1, §10). The `--apply` tests run against a
//! private RabbitMQ node with the management plugin (the shared node on
//! 5672 is never changed), then read the result back through the
//! management API and over AMQP as a court.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::rabbit::PrivateRabbit;
use lapin::options::{
    BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicRejectOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use porter::config::Config;
use porter::transport::topology::command::{Plan, apply, plan};
use serde_json::{Value, json};

const A: &str = "CA034025J";
const B: &str = "CA019015J";
const A_USER: &str = "court-ca034025j";
const A_PASSWORD: &str = "test-only-court-a-password";

/// A configuration for courts A and B on `node`, with a literal (test-only)
/// password for A's user; B's user has none.
fn config_for(node: &PrivateRabbit, dir: &Path) -> Config {
    let toml = format!(
        "[amqp]\nurl = {:?}\n[topology]\nmanagement_url = {:?}\n[topology.passwords]\n{A_USER:?} = {A_PASSWORD:?}\n\
         [[courts]]\nori = \"{A}\"\nsheriff_ori = \"CA0340000\"\n[[courts]]\nori = \"{B}\"\nsheriff_ori = \"CA0190000\"\n",
        node.url,
        node.management_url.as_deref().unwrap(),
    );
    let path = dir.join("porter.toml");
    std::fs::write(&path, &toml).unwrap();
    let config = Config::from_toml_str(&toml, &path).unwrap();
    config.validate().unwrap();
    config
}

async fn applied(node: &PrivateRabbit, dir: &Path) -> (Config, Plan) {
    let config = config_for(node, dir);
    let plan = plan(&config).unwrap();
    apply(&config, &plan, None).await.unwrap();
    (config, plan)
}

async fn management_get(node: &PrivateRabbit, path: &str) -> Value {
    let url = format!("{}/api/{path}", node.management_url.as_deref().unwrap());
    let response = reqwest::Client::new()
        .get(&url)
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response.json().await.unwrap()
}

/// The policies as RabbitMQ holds them: name → (pattern, apply-to, definition).
async fn policies(node: &PrivateRabbit) -> Vec<(String, String, String, Value)> {
    let mut v: Vec<_> = management_get(node, "policies/%2F")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["pattern"].as_str().unwrap().to_string(),
                p["apply-to"].as_str().unwrap().to_string(),
                p["definition"].clone(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn court_url(node: &PrivateRabbit, user: &str, password: &str) -> String {
    node.url.replacen("guest:guest", &format!("{user}:{password}"), 1)
}

async fn confirmed_publish(ch: &Channel, key: &str, body: &[u8]) -> lapin::Result<Confirmation> {
    let options = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let props = BasicProperties::default().with_delivery_mode(2);
    ch.basic_publish("por.inbound".into(), key.into(), options, body, props)
        .await?
        .await
}

/// Waits for a message on `por.dead` (dead-lettering is asynchronous).
async fn take_dead(ch: &Channel) -> lapin::message::BasicGetMessage {
    let started = Instant::now();
    loop {
        if let Some(m) = ch
            .basic_get("por.dead".into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            return m;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "nothing reached por.dead");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn header(m: &lapin::message::BasicGetMessage, name: &str) -> Option<String> {
    match m.delivery.properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// Proves the printed definitions carry the court user's salted SHA-256
/// hash and never its password, through the built binary: with `--json`
/// stdout is exactly the definitions document.
#[test]
fn printed_definitions_carry_hashes_not_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("porter.toml");
    std::fs::write(
        &path,
        format!("[[courts]]\nori = \"{A}\"\nsheriff_ori = \"CA0340000\"\n[topology]\ndelivery_limit = 25\n"),
    )
    .unwrap();
    let secret = "printed-never-7f3a";
    let out = Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["topology", "--json", "--config"])
        .arg(&path)
        .env("PORTER_AMQP_PASSWORD_COURT_CA034025J", secret)
        .env_remove("PORTER_AMQP_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains(secret) && !String::from_utf8_lossy(&out.stderr).contains(secret));
    let d: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(d["users"][0]["name"], A_USER);
    let hash = data_encoding::BASE64
        .decode(d["users"][0]["password_hash"].as_str().unwrap().as_bytes())
        .unwrap();
    let salt: [u8; 4] = hash[..4].try_into().unwrap();
    assert_eq!(
        d["users"][0]["password_hash"],
        porter::transport::topology::password::hash_with_salt(salt, secret)
    );
    assert_eq!(d["policies"][0]["definition"]["delivery-limit"], 25);

    // Without --json: a summary first, which names the reference only.
    let out = Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["topology", "--config"])
        .arg(&path)
        .env_remove("PORTER_AMQP_PASSWORD_COURT_CA034025J")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("NO PASSWORD (env:PORTER_AMQP_PASSWORD_COURT_CA034025J"),
        "{stdout}"
    );
}

/// Proves `porter topology --apply` (the built binary, then the library a
/// second time) leaves exactly Porter's three policies with the right
/// patterns and definitions, applied to the court queues and `por.dead`,
/// and that applying twice changes nothing; queues keep only
/// `x-queue-type=quorum`.
#[tokio::test(flavor = "multi_thread")]
async fn apply_sets_the_policies_idempotently() {
    let node = PrivateRabbit::start_with_management();
    let dir = tempfile::tempdir().unwrap();
    config_for(&node, dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_porter"))
        .args(["topology", "--apply", "--config"])
        .arg(dir.path().join("porter.toml"))
        .env_remove("PORTER_AMQP_URL")
        .env_remove("PORTER_MANAGEMENT_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied:"));

    let dead_lettering = json!({
        "delivery-limit": 20,
        "dead-letter-exchange": "",
        "dead-letter-routing-key": "por.dead",
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
    });
    let expected = vec![
        (
            "por-dead".to_string(),
            r"^por\.dead$".to_string(),
            "queues".to_string(),
            json!({"max-length": 1_000_000, "max-length-bytes": 2_147_483_648u64, "overflow": "reject-publish"}),
        ),
        (
            "por-inbound".into(),
            r"^por\.inbound\.".into(),
            "queues".into(),
            dead_lettering.clone(),
        ),
        (
            "por-responses".into(),
            r"^por\.responses\.".into(),
            "queues".into(),
            dead_lettering,
        ),
    ];
    assert_eq!(policies(&node).await, expected);
    let users_before = management_get(&node, "users").await.as_array().unwrap().len();

    applied(&node, dir.path()).await;
    assert_eq!(policies(&node).await, expected, "a second apply changes the policies");
    assert_eq!(
        management_get(&node, "users").await.as_array().unwrap().len(),
        users_before
    );

    for (queue, policy) in [
        (format!("por.inbound.{A}"), "por-inbound"),
        (format!("por.responses.{B}"), "por-responses"),
        ("por.dead".to_string(), "por-dead"),
    ] {
        // The management API reports a queue's policy with its statistics,
        // every few seconds.
        let started = Instant::now();
        let q = loop {
            let q = management_get(&node, &format!("queues/%2F/{queue}")).await;
            if q["policy"] == policy || started.elapsed() > Duration::from_secs(30) {
                break q;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(q["policy"], policy, "{queue}");
        assert_eq!(q["arguments"], json!({"x-queue-type": "quorum"}), "{queue}");
    }
    let permissions = management_get(&node, &format!("users/{A_USER}/permissions")).await;
    assert_eq!(
        permissions[0],
        json!({"user": A_USER, "vhost": "/", "configure": "^$", "write": r"^por\.inbound$",
               "read": format!(r"^por\.responses\.{A}$")})
    );
}

/// Proves a court user made by `--apply` can log in with its password,
/// publish to `por.inbound` under its own ORI and read its own status
/// queue, but is refused (ACCESS_REFUSED) another court's status queue and
/// another court's routing key.
#[tokio::test(flavor = "multi_thread")]
async fn court_user_is_confined_to_its_court() {
    let node = PrivateRabbit::start_with_management();
    let dir = tempfile::tempdir().unwrap();
    applied(&node, dir.path()).await;

    let conn = Connection::connect(&court_url(&node, A_USER, A_PASSWORD), ConnectionProperties::default())
        .await
        .expect("the court user logs in");
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let confirm = confirmed_publish(&ch, A, b"order").await.unwrap();
    assert!(matches!(confirm, Confirmation::Ack(None)), "{confirm:?}");
    ch.basic_get(format!("por.responses.{A}").as_str().into(), BasicGetOptions::default())
        .await
        .expect("a court reads its own status queue");

    let other = conn.create_channel().await.unwrap();
    let err = other
        .basic_get(format!("por.responses.{B}").as_str().into(), BasicGetOptions::default())
        .await
        .expect_err("another court's status queue is refused");
    assert!(err.to_string().contains("ACCESS_REFUSED"), "{err}");

    let topic = conn.create_channel().await.unwrap();
    let refused = confirmed_publish(&topic, B, b"order").await;
    match refused {
        Err(e) => assert!(e.to_string().contains("ACCESS_REFUSED"), "{e}"),
        // The publish is asynchronous: the refusal closes the channel, and
        // lapin may settle the confirm before or after it sees the close.
        Ok(confirm) => {
            assert!(
                !matches!(confirm, Confirmation::Ack(None)),
                "refused publish confirmed: {confirm:?}"
            );
            let after = topic
                .basic_get(format!("por.responses.{A}").as_str().into(), BasicGetOptions::default())
                .await
                .expect_err("the channel is closed by the refusal")
                .to_string();
            assert!(after.contains("ACCESS_REFUSED") || after.contains("Closed"), "{after}");
        }
    }
    // Whichever way lapin reported it, nothing reached the other court.
    let admin = Connection::connect(&node.url, ConnectionProperties::default())
        .await
        .unwrap();
    let peek = admin.create_channel().await.unwrap();
    let b_queue = peek
        .queue_declare(
            format!("por.inbound.{B}").as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(b_queue.message_count(), 0, "a refused publish reached court B's queue");
    let _ = admin.close(200, "done".into()).await;

    let conn_b = Connection::connect(
        &court_url(&node, "court-ca019015j", "anything"),
        ConnectionProperties::default(),
    )
    .await;
    assert!(conn_b.is_err(), "a user without a configured password cannot log in");
    let _ = conn.close(200, "done".into()).await;
}

/// Proves the dead-letter policy is live: a message rejected without
/// requeue on a court queue, and one returned more than the delivery limit
/// allows, both end in `por.dead`, with RabbitMQ's death headers.
#[tokio::test(flavor = "multi_thread")]
async fn rejected_inbound_messages_end_in_por_dead() {
    let node = PrivateRabbit::start_with_management();
    let dir = tempfile::tempdir().unwrap();
    applied(&node, dir.path()).await;
    let conn = Connection::connect(&node.url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let inbound = format!("por.inbound.{A}");

    confirmed_publish(&ch, A, b"rejected").await.unwrap();
    let m = ch
        .basic_get(inbound.as_str().into(), BasicGetOptions::default())
        .await
        .unwrap()
        .expect("the message is on the court queue");
    m.delivery
        .acker
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    let dead = take_dead(&ch).await;
    assert_eq!(dead.delivery.data, b"rejected");
    assert_eq!(header(&dead, "x-first-death-queue").as_deref(), Some(inbound.as_str()));
    assert_eq!(header(&dead, "x-first-death-reason").as_deref(), Some("rejected"));

    confirmed_publish(&ch, A, b"poison").await.unwrap();
    // Returned (nacked with requeue) until RabbitMQ dead-letters it: the
    // queue then stays empty.
    let (mut returns, mut empty_polls) = (0, 0);
    while empty_polls < 20 {
        match ch
            .basic_get(inbound.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap()
        {
            Some(m) => {
                returns += 1;
                empty_polls = 0;
                assert!(returns <= 25, "the delivery limit did not apply");
                let requeue = BasicNackOptions {
                    requeue: true,
                    multiple: false,
                };
                m.delivery.acker.nack(requeue).await.unwrap();
            }
            None => {
                empty_polls += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert!(returns >= 20, "dead-lettered after only {returns} deliveries");
    let dead = take_dead(&ch).await;
    assert_eq!(dead.delivery.data, b"poison");
    assert_eq!(header(&dead, "x-first-death-reason").as_deref(), Some("delivery_limit"));
    let _ = conn.close(200, "done".into()).await;
}
