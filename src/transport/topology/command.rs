//! `porter topology [--config FILE] [--apply] [--management-url URL] [--json]`
//! (ICD §1, §10): prints, and with `--apply` applies, the RabbitMQ
//! definitions Porter needs.
//!
//! - Without `--apply` it only reads the configuration: a summary, then the
//!   definitions document (with `--json`, the document alone), which
//!   `rabbitmqctl import_definitions FILE` or `POST /api/definitions` take.
//! - With `--apply` it declares the exchanges and queues over AMQP (the
//!   broker's own [`super::declare`]), then puts the policies, court users,
//!   permissions and topic permissions through the management API. Every
//!   step is idempotent. Nothing is deleted: a court removed from the
//!   configuration keeps its user until an operator removes it.
//!
//! # Passwords
//! A court user's password is a secret reference: `[topology.passwords]`
//! names it, or by default `env:PORTER_AMQP_PASSWORD_<USER>`. Only its
//! salted hash leaves the process ([`super::password`]). A configured
//! reference that cannot be read is an error. An unset default variable is
//! not: the user is printed with `password_hash: ""` (it cannot log in with
//! a password), and `--apply` creates it so, or leaves an existing user's
//! password as it is.
//!
//! Porter refuses to manage, as a court user, the user it connects as.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use serde_json::json;

use super::definitions::{Definitions, court_users};
use super::management::{Management, redact};
use super::password::hash_password;
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct TopologyArgs {
    /// The broker configuration: its courts, `[amqp] url` and `[topology]`.
    #[arg(long, env = "PORTER_CONFIG", default_value = "deploy/local/porter.toml")]
    pub config: PathBuf,
    /// Declare the topology and apply policies, users and permissions.
    #[arg(long)]
    pub apply: bool,
    /// The management API, `http://[USER:PASSWORD@]HOST:PORT` (default:
    /// `[topology] management_url`, with the AMQP URL's credentials).
    #[arg(long, env = "PORTER_MANAGEMENT_URL", hide_env_values = true)]
    pub management_url: Option<String>,
    /// Print only the definitions document.
    #[arg(long)]
    pub json: bool,
}

/// Whether a court user's password could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordState {
    /// Read; the definitions carry its hash.
    Set,
    /// The default variable is not set: no password (`password_hash: ""`).
    Unset,
}

/// What `porter topology` prints and applies.
#[derive(Debug, Clone)]
pub struct Plan {
    pub vhost: String,
    pub definitions: Definitions,
    /// Per court user: where its password comes from (safe to show) and
    /// whether it was read.
    pub passwords: BTreeMap<String, (String, PasswordState)>,
}

/// What `--apply` did about each court user's password.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Users whose password was set from its reference.
    pub password_set: Vec<String>,
    /// Existing users without a configured password: left as they were.
    pub password_kept: Vec<String>,
    /// New users without a configured password: created without one.
    pub passwordless: Vec<String>,
}

/// Builds the plan from a loaded configuration; reads password references.
pub fn plan(config: &Config) -> anyhow::Result<Plan> {
    plan_with_env(config, &|k| std::env::var(k).ok())
}

/// [`plan`], reading environment variables through `env`.
pub fn plan_with_env(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Plan> {
    let uri = AMQPUri::from_str(&config.amqp.url)
        .map_err(|e| anyhow::anyhow!("[amqp] url {:?} is not an AMQP URL: {e}", redact(&config.amqp.url)))?;
    let base = config.source.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut hashes = BTreeMap::new();
    let mut passwords = BTreeMap::new();
    for user in court_users(&config.courts) {
        if user.name == uri.authority.userinfo.username {
            bail!(
                "court user {:?} is the user Porter connects to RabbitMQ as; give the court its own user",
                user.name
            );
        }
        let (mut secret, configured) = config.topology.password_for(&user.name);
        let state = match secret.resolve(&base, env) {
            Ok(()) => {
                let password = secret.expose().expect("resolved");
                hashes.insert(user.name.clone(), hash_password(password));
                PasswordState::Set
            }
            Err(e) if configured => bail!("[topology.passwords] {:?}: {e}", user.name),
            Err(_) => PasswordState::Unset,
        };
        passwords.insert(user.name, (secret.spec().to_string(), state));
    }
    let definitions = Definitions::build(&uri.vhost, &config.courts, &config.topology, &hashes);
    Ok(Plan {
        vhost: uri.vhost,
        definitions,
        passwords,
    })
}

/// Applies `plan`: AMQP declarations, then policies, users and permissions
/// through the management API at `management_url` (default: the
/// configuration's).
pub async fn apply(config: &Config, plan: &Plan, management_url: Option<&str>) -> anyhow::Result<Applied> {
    let uri = AMQPUri::from_str(&config.amqp.url).map_err(|e| anyhow::anyhow!("[amqp] url: {e}"))?;
    let url = management_url.unwrap_or(&config.topology.management_url);
    let api = Management::new(
        url,
        (&uri.authority.userinfo.username, &uri.authority.userinfo.password),
    )?;
    if plan.passwords.contains_key(api.user()) {
        bail!(
            "court user {:?} is the management API user; use an administrator of its own",
            api.user()
        );
    }
    // First the management API, so a missing plugin stops before any change.
    api.check().await?;

    let conn = Connection::connect(&config.amqp.url, ConnectionProperties::default())
        .await
        .with_context(|| format!("cannot connect to RabbitMQ at {}", redact(&config.amqp.url)))?;
    let channel = conn.create_channel().await?;
    super::declare(&channel, &config.courts)
        .await
        .context("declaring the topology")?;
    let _ = conn.close(200, "topology declared".into()).await;

    let d = &plan.definitions;
    for p in &d.policies {
        let body = json!({
            "pattern": p.pattern,
            "definition": p.definition,
            "priority": p.priority,
            "apply-to": p.apply_to,
        });
        api.put(&["policies", &p.vhost, &p.name], &body).await?;
    }
    let mut applied = Applied::default();
    for user in &d.users {
        let set = !user.password_hash.is_empty();
        let exists = !set && api.get(&["users", &user.name]).await?.is_some();
        if set || !exists {
            let body = json!({
                "password_hash": user.password_hash,
                "hashing_algorithm": user.hashing_algorithm,
                "tags": user.tags.join(","),
            });
            api.put(&["users", &user.name], &body).await?;
        }
        match (set, exists) {
            (true, _) => applied.password_set.push(user.name.clone()),
            (false, true) => applied.password_kept.push(user.name.clone()),
            (false, false) => applied.passwordless.push(user.name.clone()),
        }
    }
    for p in &d.permissions {
        let body = json!({"configure": p.configure, "write": p.write, "read": p.read});
        api.put(&["permissions", &p.vhost, &p.user], &body).await?;
    }
    for t in &d.topic_permissions {
        let body = json!({"exchange": t.exchange, "write": t.write, "read": t.read});
        api.put(&["topic-permissions", &t.vhost, &t.user], &body).await?;
    }
    Ok(applied)
}

/// The human-readable summary.
pub fn write_summary(plan: &Plan, out: &mut dyn Write) -> std::io::Result<()> {
    let d = &plan.definitions;
    writeln!(out, "RabbitMQ topology for vhost {:?}", plan.vhost)?;
    let exchanges: Vec<String> = d.exchanges.iter().map(|e| format!("{} ({})", e.name, e.kind)).collect();
    writeln!(out, "exchanges: {}", exchanges.join(", "))?;
    let queues: Vec<&str> = d.queues.iter().map(|q| q.name.as_str()).collect();
    writeln!(out, "quorum queues: {}", queues.join(", "))?;
    writeln!(
        out,
        "policies (priority {}):",
        d.policies.first().map_or(0, |p| p.priority)
    )?;
    for p in &d.policies {
        let settings: Vec<String> = p.definition.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(out, "  {:<14} {:<20} {}", p.name, p.pattern, settings.join(" "))?;
    }
    writeln!(out, "court users (no tags):")?;
    for (p, t) in d.permissions.iter().zip(&d.topic_permissions) {
        let (reference, state) = &plan.passwords[&p.user];
        let password = match state {
            PasswordState::Set => format!("password from {reference}"),
            PasswordState::Unset => format!("NO PASSWORD ({reference} is not set)"),
        };
        writeln!(out, "  {}: {password}", p.user)?;
        writeln!(
            out,
            "    configure {}  write {}  read {}  topic {}: write {} read {}",
            p.configure, p.write, p.read, t.exchange, t.write, t.read
        )?;
    }
    Ok(())
}

/// `porter topology`.
pub async fn run(args: TopologyArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let plan = plan(&config)?;
    let mut out = std::io::stdout().lock();
    if args.apply {
        let applied = apply(&config, &plan, args.management_url.as_deref()).await?;
        if !args.json {
            write_summary(&plan, &mut out)?;
            writeln!(
                out,
                "applied: topology declared; {} policies; {} users ({} passwords set, {} kept, {} without password)",
                plan.definitions.policies.len(),
                plan.definitions.users.len(),
                applied.password_set.len(),
                applied.password_kept.len(),
                applied.passwordless.len()
            )?;
            return Ok(());
        }
    } else if !args.json {
        write_summary(&plan, &mut out)?;
        writeln!(
            out,
            "\ndefinitions (`rabbitmqctl import_definitions FILE`; `porter topology --json` prints only these):"
        )?;
    }
    serde_json::to_writer_pretty(&mut out, &plan.definitions)?;
    writeln!(out)?;
    Ok(())
}
