//! `porter dlq`: dead-letter operations from the command line (ICD §9, §10).
//!
//! ```text
//! porter dlq list [--stage S] [--court ORI] [--partner P] [--reason CODE] [--since T] [--until T]
//!                 [--open] [--limit N] [--json]
//! porter dlq show ID [--json]
//! porter dlq replay ID --reason WHY
//! porter dlq replay --all [--stage deliver] [--court ORI] [--partner P] [--code CODE] [--since T]
//!                   [--until T] [--limit N] --rate N --reason WHY
//! porter dlq edit ID --file order.json --reason WHY
//! porter dlq discard ID --reason WHY
//! porter dlq audit [--dead-letter ID] [--operator NAME] [--since T] [--until T] [--limit N] [--json]
//! ```
//! Common options: `--api URL` (default `http://127.0.0.1:8080`, or
//! `PORTER_API`) and `--operator NAME` (default `$USER`).
//!
//! # Design note
//! The command is a client of the running broker's HTTP API (`/api/v1`), not
//! of the store: the broker then publishes what an action produced and wakes
//! its delivery loops, and every action is audited in one place. `--reason`
//! is the operator's reason on the actions; on `replay --all` the filter on
//! the dead letters' reason code is `--code`. Times are RFC 3339. The edit
//! file holds the canonical order (the JSON of an `OrderMessage`; `show
//! --json` of a dead letter shows the original bytes, not the canonical form).

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct DlqArgs {
    /// The broker's HTTP API.
    #[arg(long, global = true, env = "PORTER_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Who acts, for the audit table (default: $USER).
    #[arg(long, global = true, env = "USER", hide_env_values = true)]
    pub operator: Option<String>,
    #[command(subcommand)]
    pub command: DlqCommand,
}

/// Dead-letter filters (the reason code is per subcommand).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct FilterArgs {
    /// validate | sequence | deliver
    #[arg(long)]
    pub stage: Option<String>,
    /// The court ORI.
    #[arg(long)]
    pub court: Option<String>,
    /// CLETS | DOJ | LEA:<ORI>
    #[arg(long)]
    pub partner: Option<String>,
    /// Created at or after (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// At most this many (API default 100).
    #[arg(long)]
    pub limit: Option<u32>,
}

#[derive(clap::Subcommand, Debug)]
pub enum DlqCommand {
    /// List dead letters, newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// The reason code (PARTNER_REJECTED, RETRIES_EXHAUSTED, MISSING, …).
        #[arg(long)]
        reason: Option<String>,
        /// Only open (not yet replayed or discarded) ones.
        #[arg(long)]
        open: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter with its original body.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Replay one dead letter, or (--all) the open ones matching filters at a limited rate.
    Replay {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Replay every open deliver-stage dead letter matching the filters.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        filter: FilterArgs,
        /// With --all: the dead letters' reason code.
        #[arg(long, requires = "all")]
        code: Option<String>,
        /// With --all: replays per second.
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// Why (audited).
        #[arg(long)]
        reason: String,
    },
    /// Replay a dead letter with an edited canonical order (a new revision).
    Edit {
        id: i64,
        /// The edited canonical order (JSON).
        #[arg(long)]
        file: PathBuf,
        /// Why (audited).
        #[arg(long)]
        reason: String,
    },
    /// Discard a dead letter (releases the later messages of its order).
    Discard {
        id: i64,
        /// Why (required, audited).
        #[arg(long)]
        reason: String,
    },
    /// The audit log of operator actions, newest first.
    Audit {
        #[arg(long)]
        dead_letter: Option<i64>,
        #[arg(long = "by")]
        by: Option<String>,
        #[arg(long)]
        since: Option<DateTime<Utc>>,
        #[arg(long)]
        until: Option<DateTime<Utc>>,
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long)]
        json: bool,
    },
}

/// Runs `porter dlq …` against the broker's API.
pub async fn run(args: DlqArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.api);
    let operator = args.operator.filter(|o| !o.trim().is_empty());
    match args.command {
        DlqCommand::List {
            filter,
            reason,
            open,
            json,
        } => {
            let mut query = filter_query(&filter, reason);
            if open {
                query.push(("open", "true".into()));
            }
            let list = api.get("/api/v1/dead-letters", &query).await?;
            print(&list, json, table)
        }
        DlqCommand::Show { id, json } => {
            let one = api.get(&format!("/api/v1/dead-letters/{id}"), &[]).await?;
            print(&one, json, details)
        }
        DlqCommand::Audit {
            dead_letter,
            by,
            since,
            until,
            limit,
            json,
        } => {
            let mut query = Vec::new();
            push(&mut query, "dead_letter", dead_letter);
            push(&mut query, "operator", by);
            push(&mut query, "since", since.map(|t| t.to_rfc3339()));
            push(&mut query, "until", until.map(|t| t.to_rfc3339()));
            push(&mut query, "limit", limit);
            let rows = api.get("/api/v1/audit", &query).await?;
            print(&rows, json, audit_table)
        }
        action => {
            act(
                &api,
                operator.context("--operator is required ($USER is not set)")?,
                action,
            )
            .await
        }
    }
}

async fn act(api: &Api, operator: String, action: DlqCommand) -> anyhow::Result<()> {
    let done = match action {
        DlqCommand::Replay {
            id: Some(id), reason, ..
        } => {
            let body = json!({ "operator": operator, "reason": reason });
            api.post(&format!("/api/v1/dead-letters/{id}/replay"), body).await?
        }
        DlqCommand::Replay {
            filter,
            code,
            rate,
            reason,
            ..
        } => {
            let body = json!({
                "operator": operator, "reason": reason, "rate_per_sec": rate,
                "filter": {
                    "court": filter.court, "stage": filter.stage, "partner": filter.partner, "reason": code,
                    "since": filter.since, "until": filter.until, "limit": filter.limit,
                }
            });
            let report = api.post("/api/v1/dead-letters/replay", body).await?;
            return bulk_summary(&report);
        }
        DlqCommand::Edit { id, file, reason } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let order: Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
            let body = json!({ "operator": operator, "reason": reason, "order": order });
            api.post(&format!("/api/v1/dead-letters/{id}/edit"), body).await?
        }
        DlqCommand::Discard { id, reason } => {
            let body = json!({ "operator": operator, "reason": reason });
            api.post(&format!("/api/v1/dead-letters/{id}/discard"), body).await?
        }
        DlqCommand::List { .. } | DlqCommand::Show { .. } | DlqCommand::Audit { .. } => unreachable!("not an action"),
    };
    println!("{}", done_line(&done));
    Ok(())
}

fn filter_query(filter: &FilterArgs, reason: Option<String>) -> Vec<(&'static str, String)> {
    let mut query = Vec::new();
    push(&mut query, "stage", filter.stage.clone());
    push(&mut query, "court", filter.court.clone());
    push(&mut query, "partner", filter.partner.clone());
    push(&mut query, "reason", reason);
    push(&mut query, "since", filter.since.map(|t| t.to_rfc3339()));
    push(&mut query, "until", filter.until.map(|t| t.to_rfc3339()));
    push(&mut query, "limit", filter.limit);
    query
}

fn push(query: &mut Vec<(&'static str, String)>, name: &'static str, value: Option<impl ToString>) {
    if let Some(v) = value {
        query.push((name, v.to_string()));
    }
}

fn print(value: &Value, json: bool, human: fn(&Value) -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", human(value));
    }
    Ok(())
}

/// A JSON field as text (`-` when absent).
fn field(v: &Value, name: &str) -> String {
    match &v[name] {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The dead-letter list as a table.
pub fn table(list: &Value) -> String {
    let mut out = format!(
        "{:>6}  {:<24}  {:<8}  {:<9}  {:<15}  {:>4}  {:<13}  {:<17}  {:>3}  {}\n",
        "ID", "CREATED", "STAGE", "COURT", "ORDER", "SEQ", "PARTNER", "REASON", "TRY", "STATE"
    );
    for d in list.as_array().into_iter().flatten() {
        let state = match &d["resolution"] {
            Value::String(s) => s.clone(),
            _ => "OPEN".into(),
        };
        out.push_str(&format!(
            "{:>6}  {:<24}  {:<8}  {:<9}  {:<15}  {:>4}  {:<13}  {:<17}  {:>3}  {}\n",
            field(d, "id"),
            field(d, "created_at"),
            field(d, "stage"),
            field(d, "court_ori"),
            field(d, "order_number"),
            field(d, "sequence"),
            field(d, "partner"),
            field(d, "reason"),
            field(d, "attempts"),
            state
        ));
    }
    out
}

fn details(d: &Value) -> String {
    let mut out = String::new();
    for name in [
        "id",
        "created_at",
        "court_ori",
        "message_id",
        "order_number",
        "sequence",
        "stage",
        "partner",
        "reason",
        "attempts",
        "content_type",
        "resolution",
        "resolved_at",
        "resolved_by",
    ] {
        out.push_str(&format!("{name:<13} {}\n", field(d, name)));
    }
    for e in d["errors"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "error         {} {}: {}\n",
            field(e, "code"),
            field(e, "field"),
            field(e, "text")
        ));
    }
    out.push_str(&format!("body:\n{}\n", field(d, "body")));
    out
}

fn audit_table(rows: &Value) -> String {
    let mut out = format!(
        "{:>6}  {:<30}  {:<12}  {:<11}  {:>6}  {}\n",
        "ID", "AT", "OPERATOR", "ACTION", "DL", "REASON"
    );
    for a in rows.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:>6}  {:<30}  {:<12}  {:<11}  {:>6}  {}\n",
            field(a, "id"),
            field(a, "at"),
            field(a, "operator"),
            field(a, "action"),
            field(a, "dead_letter_id"),
            field(a, "reason")
        ));
    }
    out
}

fn done_line(done: &Value) -> String {
    let mut line = format!(
        "dead letter {}: done (delivery {}, revision {}, audit {})",
        field(done, "dead_letter_id"),
        field(done, "delivery_id"),
        field(done, "revision"),
        field(done, "audit_id")
    );
    if let Some(ids) = done["dead_letters"].as_array().filter(|a| !a.is_empty()) {
        let ids: Vec<String> = ids.iter().map(Value::to_string).collect();
        line.push_str(&format!("; new dead letters (UNKNOWN_ORDER): {}", ids.join(", ")));
    }
    line
}

fn bulk_summary(report: &Value) -> anyhow::Result<()> {
    let replayed = report["replayed"].as_array().map_or(0, Vec::len);
    println!("replayed {replayed} dead letter(s)");
    let refused = report["refused"].as_array().cloned().unwrap_or_default();
    for r in &refused {
        println!("refused {}: {}", field(r, "id"), field(r, "error"));
    }
    if !refused.is_empty() {
        bail!("{} dead letter(s) refused", refused.len());
    }
    Ok(())
}

/// The broker's API, with errors an operator can act on.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(base: &str) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let request = self.http.get(format!("{}{path}", self.base)).query(query);
        self.send(request).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let request = self.http.post(format!("{}{path}", self.base)).json(&body);
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.send().await.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the Porter broker at {} ({e}); is it running? (--api URL)",
                self.base
            )
        })?;
        let status = response.status();
        let text = response.text().await.context("reading the broker's answer")?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(body);
        }
        let mut message = match &body["error"] {
            Value::String(e) => e.clone(),
            _ => body.to_string(),
        };
        for e in body["errors"].as_array().into_iter().flatten() {
            message.push_str(&format!(
                "\n  {} {}: {}",
                field(e, "code"),
                field(e, "field"),
                field(e, "text")
            ));
        }
        bail!("{message} (HTTP {status})")
    }
}
