//! `porter publish`: publish one order message as a court would (ICD §1):
//! to `por.inbound` with the court's ORI as routing key, persistent, with
//! publisher confirms and `mandatory`, treating a return as a failure.
//! With `--watch`, it then follows the message's statuses through the HTTP
//! API until every routed partner has answered.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use serde_json::Value;

use crate::transport::topology::INBOUND_EXCHANGE;

/// What to publish, and where.
#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// AMQP URL.
    #[arg(
        long,
        env = "PORTER_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// The court's ORI (the routing key).
    #[arg(long)]
    pub court: String,
    /// The message_id; defaults to `<ori>-<unix millis>`.
    #[arg(long)]
    pub message_id: Option<String>,
    /// `application/xml` or `text/plain`; defaults from the file extension.
    #[arg(long)]
    pub content_type: Option<String>,
    /// The `x-por-layout` header, for fixed-width.
    #[arg(long)]
    pub layout: Option<String>,
    /// Follow the statuses through Porter's HTTP API at this base URL.
    #[arg(long, value_name = "URL")]
    pub watch: Option<String>,
    /// How long to follow, in seconds.
    #[arg(long, default_value_t = 30)]
    pub watch_secs: u64,
    /// The message file.
    pub file: PathBuf,
}

/// Publishes and, with `--watch`, prints the statuses.
pub async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let body = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let content_type = args.content_type.clone().unwrap_or_else(|| {
        if args.file.extension().is_some_and(|e| e == "xml") {
            "application/xml".into()
        } else {
            "text/plain".into()
        }
    });
    let message_id = args.message_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            args.court.to_lowercase(),
            chrono::Utc::now().timestamp_millis()
        )
    });
    let conn = Connection::connect(&args.amqp_url, ConnectionProperties::default()).await?;
    let channel = conn.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut properties = BasicProperties::default()
        .with_message_id(message_id.as_str().into())
        .with_content_type(content_type.as_str().into())
        .with_delivery_mode(2)
        .with_timestamp(chrono::Utc::now().timestamp() as u64)
        .with_app_id("porter-publish".into());
    if let Some(layout) = &args.layout {
        let mut headers = FieldTable::default();
        headers.insert("x-por-layout".into(), AMQPValue::LongString(layout.as_str().into()));
        properties = properties.with_headers(headers);
    }
    let confirm = channel
        .basic_publish(
            INBOUND_EXCHANGE.into(),
            args.court.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            &body,
            properties,
        )
        .await?
        .await?;
    match confirm {
        Confirmation::Ack(None) => println!(
            "published {message_id} for {} ({content_type}, {} bytes)",
            args.court,
            body.len()
        ),
        Confirmation::Ack(Some(r)) => bail!(
            "RabbitMQ returned the message ({}): is court {} configured?",
            r.reply_text,
            args.court
        ),
        Confirmation::Nack(_) => bail!("RabbitMQ refused the message"),
        Confirmation::NotRequested => bail!("publisher confirms were not enabled"),
    }
    let _ = conn.close(200, "done".into()).await;
    if let Some(base) = &args.watch {
        watch(base, &args.court, &message_id, Duration::from_secs(args.watch_secs)).await?;
    }
    Ok(())
}

async fn watch(base: &str, court: &str, message_id: &str, limit: Duration) -> anyhow::Result<()> {
    let url = format!(
        "{}/api/v1/courts/{court}/messages/{message_id}",
        base.trim_end_matches('/')
    );
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut printed = 0;
    while started.elapsed() < limit {
        if let Ok(resp) = client.get(&url).send().await
            && resp.status().is_success()
        {
            let view: Value = resp.json().await?;
            let statuses = view["statuses"].as_array().cloned().unwrap_or_default();
            for s in statuses.iter().skip(printed) {
                println!("{}", describe(s));
            }
            printed = printed.max(statuses.len());
            // A repeat of an earlier message adds no status row; give its
            // answer (re-sent statuses, or CONFLICT_REJECTED) a moment.
            if complete(&statuses) && started.elapsed() > Duration::from_secs(2) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!("not complete after {} s", limit.as_secs())
}

/// One status as a line of text.
pub fn describe(s: &Value) -> String {
    let mut line = format!(
        "#{} {} {}",
        s["status_sequence"],
        s["status"].as_str().unwrap_or("?"),
        s["partner"].as_str().unwrap_or("")
    );
    for p in s["routed_partners"].as_array().into_iter().flatten() {
        line.push_str(&format!(" →{}", p.as_str().unwrap_or("?")));
    }
    for id in s["partner_record_ids"].as_array().into_iter().flatten() {
        line.push_str(&format!(
            " {}={}",
            id["scheme"].as_str().unwrap_or("?"),
            id["id"].as_str().unwrap_or("?")
        ));
    }
    for (kind, list) in [("error", &s["errors"]), ("warning", &s["warnings"])] {
        for e in list.as_array().into_iter().flatten() {
            line.push_str(&format!(
                "\n    {kind} {} {} {} {}",
                e["code"].as_str().unwrap_or("?"),
                e["field"].as_str().unwrap_or("?"),
                e["location"].as_str().unwrap_or("-"),
                e["text"].as_str().unwrap_or("")
            ));
        }
    }
    line
}

fn complete(statuses: &[Value]) -> bool {
    if statuses.iter().any(|s| s["status"] == "CONFLICT_REJECTED") {
        return true;
    }
    let first = statuses.iter().find_map(|s| {
        s["status"]
            .as_str()
            .filter(|k| ["ACCEPTED", "REJECTED", "CONFLICT_REJECTED"].contains(k))
    });
    match first {
        Some("ACCEPTED") => {
            let routed = statuses
                .iter()
                .find(|s| s["status"] == "ACCEPTED")
                .and_then(|s| s["routed_partners"].as_array())
                .cloned()
                .unwrap_or_default();
            routed.iter().all(|p| statuses.iter().any(|s| s["partner"] == *p))
        }
        Some(_) => true,
        None => false,
    }
}
