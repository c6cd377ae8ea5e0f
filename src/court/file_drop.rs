//! `porter court file-drop`: a court's CMS drops batch files (ICD §3) into a
//! directory; this adapter checks each file's framing and publishes its
//! order messages to `por.inbound`, one AMQP message per order.
//!
//! # Design note
//!
//! **Directory layout.** Under `--dir` the adapter keeps three folders, made
//! at start:
//!
//! | folder | holds |
//! |---|---|
//! | `work/` | the file being published (at most one, unless a publish is failing) |
//! | `done/` | files whose every order message RabbitMQ confirmed |
//! | `error/` | files refused for framing errors, each with `<file>.report.txt` |
//!
//! The CMS writes a file under a name the adapter ignores (a dotfile, or one
//! ending in `.tmp` or `.part`) and renames it when it is complete. As a
//! second guard, a new file is taken only once its size and modification
//! time are the same on two polls in a row (`--once` takes what is there).
//! Files are taken in name order, one at a time; directories, symlinks and
//! other non-regular files are left alone.
//!
//! **One file.**
//! 1. The file is renamed into `work/` (an atomic rename within one file
//!    system; `work/` must be on the same one as `--dir`).
//! 2. It is read and its framing checked ([`crate::formats::batch`]) with the
//!    record length and order record type of the layout its header names,
//!    if that is one of the court's layouts (otherwise the court's default
//!    layout). The header's ORI must be `--court` (`ORI_MISMATCH`) and its
//!    layout one of the court's layouts (`INVALID_CODE`).
//! 3. On any framing error nothing is published: the report
//!    `error/<file>.report.txt` is written (to a temporary name, synced, then
//!    renamed) and then the file is moved to `error/`. The report has one
//!    line per error: `CODE field record:column text`.
//! 4. Otherwise every order message is published with `mandatory`, keeping
//!    up to the confirm window of publishes unconfirmed at once (it does not
//!    wait for one confirm before the next publish). Its properties:
//!    `message_id` = `<ORI>-B<batch number>-<position>`, `content_type`
//!    `text/plain`, `delivery_mode` 2, `timestamp`, `app_id`
//!    `porter-file-drop` and the header `x-por-layout` = the header's layout.
//!    A return (no queue for the court), a nack, a channel error or a confirm
//!    that does not come within 60 s fails the whole file.
//! 5. When every message is confirmed, the file is moved to `done/`.
//!
//! A name already taken in `done/` or `error/` gets a suffix (`.1`, `.2`, …)
//! rather than replacing the earlier file.
//!
//! **Failure and recovery.** A publish failure leaves the file in `work/`;
//! the adapter drops its connection, waits (1 s, doubling up to 60 s) and
//! publishes the whole file again, before it takes any new file, so batches
//! go out in order. At start it first re-publishes whatever is in `work/`:
//! a file there is one a previous run took and did not finish.
//!
//! **Crash safety.** Killing the adapter at any point has no duplicate
//! effect, because every step is either atomic on disk or safe to repeat:
//! - before the rename into `work/`: the file is still in `--dir` and is
//!   taken again;
//! - while in `work/` (some, all or none of its messages published): the
//!   next run re-publishes all of them. Message ids are deterministic and the
//!   bodies are byte-for-byte the same (CRLF normalised to LF), so the broker
//!   recognises each repeat (ICD §5: same court, `message_id` and body),
//!   applies nothing twice and re-sends its statuses;
//! - between the report and the move to `error/`: the file is checked again
//!   and the report rewritten.
//!
//! Only the AMQP `timestamp` differs on a re-publish; it is not part of the
//! deduplication key. Run one adapter per directory: two would both claim
//! `work/` at start (harmless, by the argument above, but wasteful).
//!
//! **Shutdown.** When the shutdown future resolves, the adapter stops where
//! it is; a file it was publishing stays in `work/` for the next run.
//!
//! **Logs and metrics.** Lifecycle and each file's outcome are logged with
//! the court, the file name, the batch number and counts, never the file's
//! content. Counters: `porter_file_drop_files_total{outcome="done"|"error"}`
//! and `porter_file_drop_messages_total` (messages confirmed).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tracing::{error, info, warn};

use crate::broker::load_formats;
use crate::config::Config;
use crate::formats::batch::{Batch, read_batch};
use crate::formats::fixed::Layout;
use crate::model::{ErrorCode, FieldError};
use crate::transport::topology::INBOUND_EXCHANGE;

/// Largest batch file taken; a larger one is refused with a report. Each
/// message is also bounded by the broker (16 MiB, ICD §0).
pub const MAX_BATCH_BYTES: u64 = 256 * 1024 * 1024;

/// The `app_id` of every message this adapter publishes.
pub const APP_ID: &str = "porter-file-drop";

/// How long to wait for the next publisher confirm before the file's
/// publish is given up (and retried).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);
/// First and longest wait before a failed file is published again.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// `porter court file-drop`: the command-line arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct FileDropArgs {
    /// The court's ORI: the routing key, and the ORI every batch header must carry.
    #[arg(long)]
    pub court: String,
    /// The drop directory; `work/`, `done/` and `error/` are made under it.
    #[arg(long)]
    pub dir: PathBuf,
    /// Porter's configuration, for the court's layouts and the AMQP defaults.
    #[arg(long, env = "PORTER_CONFIG", default_value = "deploy/local/porter.toml")]
    pub config: PathBuf,
    /// AMQP URL, with the court's own credentials; defaults to the
    /// configuration's `amqp.url` (which `PORTER_AMQP_URL` overrides).
    #[arg(long)]
    pub amqp_url: Option<String>,
    /// Process the files there now (and any unfinished one in `work/`), then exit.
    #[arg(long)]
    pub once: bool,
    /// How often the directory is looked at, in milliseconds.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub poll_ms: u64,
    /// Publisher confirms kept in flight at once; defaults to the
    /// configuration's `amqp.confirm_window`.
    #[arg(long)]
    pub confirm_window: Option<usize>,
    /// For tests: a pause after each publish, in milliseconds, so that a
    /// file's publishing can be interrupted half-way.
    #[arg(long, hide = true, default_value_t = 0)]
    pub publish_pause_ms: u64,
}

/// Runs the adapter until `shutdown` resolves (or, with `--once`, until the
/// directory has been processed). Configuration problems (unknown court,
/// unreadable directory, a layout unusable for batches) are errors before
/// anything is touched.
pub async fn run(args: FileDropArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let config = Config::load(&args.config).with_context(|| format!("loading {}", args.config.display()))?;
    let court = config
        .court(&args.court)
        .with_context(|| format!("court {} is not configured in {}", args.court, args.config.display()))?;
    let formats = load_formats(&config)?;
    let mut layouts = Vec::new();
    for name in &court.layouts {
        let layout = formats
            .layouts
            .get(name)
            .with_context(|| format!("layout {name:?} is not loaded"))?;
        layouts.push(BatchLayout::of(layout));
    }
    if let Some(Err(why)) = layouts.first().map(|l| &l.order_type) {
        bail!(
            "court {}: its default layout {:?} cannot be read in batch files: {why}",
            court.ori,
            layouts[0].name
        );
    }
    let dirs = Dirs::make(&args.dir)?;
    let mut adapter = FileDrop {
        court: court.ori.clone(),
        layouts,
        dirs,
        amqp_url: args.amqp_url.clone().unwrap_or_else(|| config.amqp.url.clone()),
        window: args.confirm_window.unwrap_or(config.amqp.confirm_window).max(1),
        poll: Duration::from_millis(args.poll_ms.max(10)),
        pause: Duration::from_millis(args.publish_pause_ms),
        amqp: None,
        seen: HashMap::new(),
    };
    info!(court = %adapter.court, dir = %args.dir.display(), once = args.once, "File drop started.");
    let result = tokio::select! {
        r = adapter.run(args.once) => r,
        () = shutdown => Ok(()),
    };
    adapter.disconnect().await;
    info!(court = %adapter.court, "File drop stopped.");
    result
}

/// What the batch reader needs of a layout.
struct BatchLayout {
    name: String,
    record_length: usize,
    /// The record type that begins each order message, or why the layout
    /// cannot be read in batch files.
    order_type: Result<u8, String>,
}

impl BatchLayout {
    /// Batch files tell messages apart by column 1 ([`read_batch`]'s
    /// `order_record_type`); [`Layout::batch_record_type`] says which
    /// record type begins an order message, or why there is none.
    fn of(layout: &Layout) -> BatchLayout {
        BatchLayout {
            name: layout.name().to_string(),
            record_length: layout.record_length(),
            order_type: layout.batch_record_type(),
        }
    }
}

/// The folders under `--dir`.
struct Dirs {
    root: PathBuf,
    work: PathBuf,
    done: PathBuf,
    error: PathBuf,
}

impl Dirs {
    fn make(root: &Path) -> anyhow::Result<Dirs> {
        anyhow::ensure!(root.is_dir(), "{} is not a directory", root.display());
        let dirs = Dirs {
            root: root.to_path_buf(),
            work: root.join("work"),
            done: root.join("done"),
            error: root.join("error"),
        };
        for d in [&dirs.work, &dirs.done, &dirs.error] {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        Ok(dirs)
    }
}

struct Amqp {
    connection: Connection,
    channel: Channel,
}

struct FileDrop {
    /// The court's ORI: routing key and the ORI batch headers must carry.
    court: String,
    /// The court's layouts, the default first.
    layouts: Vec<BatchLayout>,
    dirs: Dirs,
    amqp_url: String,
    window: usize,
    poll: Duration,
    pause: Duration,
    /// The connection, made when first needed and dropped after a failure.
    amqp: Option<Amqp>,
    /// Size and modification time of each new file at the previous poll: a
    /// file is taken once they stop changing.
    seen: HashMap<OsString, (u64, Option<SystemTime>)>,
}

impl FileDrop {
    async fn run(&mut self, once: bool) -> anyhow::Result<()> {
        let mut retry = RETRY_MIN;
        loop {
            match self.pass(once).await {
                Ok(()) if once => return Ok(()),
                Ok(()) => {
                    retry = RETRY_MIN;
                    tokio::time::sleep(self.poll).await;
                }
                Err(e) if once => return Err(e),
                Err(e) => {
                    warn!(court = %self.court, error = %format!("{e:#}"), retry_secs = retry.as_secs(), "Batch file not published; will retry.");
                    self.disconnect().await;
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// One look at the folders: unfinished files in `work/` first, then the
    /// new files that are ready. Stops at the first publish failure.
    async fn pass(&mut self, once: bool) -> anyhow::Result<()> {
        for name in list_files(&self.dirs.work)? {
            self.process(&name).await?;
        }
        let names = list_files(&self.dirs.root)?;
        let mut still = HashMap::new();
        for name in names {
            let path = self.dirs.root.join(&name);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let now = (meta.len(), meta.modified().ok());
            if !once && self.seen.get(&name) != Some(&now) {
                still.insert(name, now);
                continue;
            }
            let target = free_name(&self.dirs.work, &name)?;
            match std::fs::rename(&path, self.dirs.work.join(&target)) {
                Ok(()) => {}
                // Gone since it was listed (taken by someone else): not ours.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("moving {} into work/", path.display())),
            }
            self.process(&target).await?;
        }
        self.seen = still;
        Ok(())
    }

    /// Checks and publishes `work/<name>`, then moves it to `done/` or
    /// `error/`. An error leaves it in `work/`.
    async fn process(&mut self, name: &std::ffi::OsStr) -> anyhow::Result<()> {
        let path = self.dirs.work.join(name);
        let file = name.to_string_lossy().into_owned();
        let size = std::fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        let checked = if size > MAX_BATCH_BYTES {
            Err(vec![FieldError::new(
                ErrorCode::TooLong,
                "batch",
                format!("the file is {size} bytes; a batch file may be at most {MAX_BATCH_BYTES}"),
            )])
        } else {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            self.check(&bytes)
        };
        match checked {
            Err(errors) => {
                let moved = self.refuse(name, &errors)?;
                error!(
                    court = %self.court, file = %file, errors = errors.len(), report = %format!("error/{}.report.txt", moved.to_string_lossy()),
                    "Batch file refused for framing errors; nothing of it was published."
                );
                metrics::counter!("porter_file_drop_files_total", "outcome" => "error").increment(1);
                Ok(())
            }
            Ok(batch) => {
                self.publish(&batch)
                    .await
                    .with_context(|| format!("batch file {file}"))?;
                let target = free_name(&self.dirs.done, name)?;
                std::fs::rename(&path, self.dirs.done.join(&target))
                    .with_context(|| format!("moving {file} to done/"))?;
                info!(
                    court = %self.court, file = %file, batch = %batch.header.batch_number, messages = batch.messages.len(),
                    "Batch file published; every message confirmed."
                );
                metrics::counter!("porter_file_drop_files_total", "outcome" => "done").increment(1);
                Ok(())
            }
        }
    }

    /// The batch's framing, and its header against this court.
    fn check(&self, bytes: &[u8]) -> Result<Batch, Vec<FieldError>> {
        let peeked = peek_header(bytes);
        let named = peeked
            .as_ref()
            .and_then(|(_, layout)| self.layouts.iter().find(|l| &l.name == layout));
        let layout = named.unwrap_or(&self.layouts[0]);
        let mut errors = Vec::new();
        if let Some((ori, name)) = &peeked {
            if crate::config::is_ori(ori) && *ori != self.court {
                errors.push(
                    FieldError::new(
                        ErrorCode::OriMismatch,
                        "batch.header.court_ori",
                        format!("the header's court {ori} is not this adapter's court {}", self.court),
                    )
                    .at("1:2"),
                );
            }
            if !name.is_empty() && named.is_none() {
                let known: Vec<&str> = self.layouts.iter().map(|l| l.name.as_str()).collect();
                errors.push(
                    FieldError::new(
                        ErrorCode::InvalidCode,
                        "batch.header.layout",
                        format!(
                            "layout {name:?} is not configured for court {} (its layouts: {})",
                            self.court,
                            known.join(", ")
                        ),
                    )
                    .at("1:35"),
                );
            }
        }
        let order_type = match &layout.order_type {
            Ok(t) => *t,
            Err(why) => {
                errors.push(
                    FieldError::new(
                        ErrorCode::InvalidFormat,
                        "batch.header.layout",
                        format!("layout {:?} cannot be read in batch files: {why}", layout.name),
                    )
                    .at("1:35"),
                );
                return Err(errors);
            }
        };
        match read_batch(bytes, layout.record_length, order_type) {
            Ok(batch) if errors.is_empty() => Ok(batch),
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more);
                Err(errors)
            }
        }
    }

    /// Writes the report, then moves the file to `error/`. Returns the name
    /// the file has there.
    fn refuse(&self, name: &std::ffi::OsStr, errors: &[FieldError]) -> anyhow::Result<OsString> {
        let target = free_name(&self.dirs.error, name)?;
        let mut report_name = target.clone();
        report_name.push(".report.txt");
        let mut tmp_name = OsString::from(".");
        tmp_name.push(&report_name);
        tmp_name.push(".tmp");
        let tmp = self.dirs.error.join(&tmp_name);
        let text = report(&name.to_string_lossy(), &self.court, errors);
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, self.dirs.error.join(&report_name))
            .with_context(|| format!("writing the report for {}", name.to_string_lossy()))?;
        std::fs::rename(self.dirs.work.join(name), self.dirs.error.join(&target))
            .with_context(|| format!("moving {} to error/", name.to_string_lossy()))?;
        Ok(target)
    }

    /// The connection's channel, connecting first if needed.
    async fn channel(&mut self) -> anyhow::Result<Channel> {
        if let Some(a) = &self.amqp
            && a.connection.status().connected()
            && a.channel.status().connected()
        {
            return Ok(a.channel.clone());
        }
        self.disconnect().await;
        let properties =
            ConnectionProperties::default().with_connection_name(format!("porter-file-drop {}", self.court).into());
        let connection = Connection::connect(&self.amqp_url, properties)
            .await
            .context("connecting to RabbitMQ")?;
        let channel = connection.create_channel().await.context("opening a channel")?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling publisher confirms")?;
        self.amqp = Some(Amqp {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    async fn disconnect(&mut self) {
        if let Some(a) = self.amqp.take() {
            let _ = a.connection.close(200, "file drop done".into()).await;
        }
    }

    /// Publishes every message of the batch, with up to `window` confirms
    /// outstanding, and returns once all are confirmed or at the first failure.
    async fn publish(&mut self, batch: &Batch) -> anyhow::Result<()> {
        let channel = self.channel().await?;
        let timestamp = chrono::Utc::now().timestamp().max(0) as u64;
        let mut headers = FieldTable::default();
        headers.insert(
            "x-por-layout".into(),
            AMQPValue::LongString(batch.header.layout.as_str().into()),
        );
        let mut in_flight = FuturesUnordered::new();
        for m in &batch.messages {
            while in_flight.len() >= self.window {
                settle(next_confirm(&mut in_flight).await, &self.court)?;
            }
            let id = crate::formats::batch::message_id(&self.court, &batch.header.batch_number, m.position);
            let properties = BasicProperties::default()
                .with_message_id(id.as_str().into())
                .with_content_type("text/plain".into())
                .with_delivery_mode(2)
                .with_timestamp(timestamp)
                .with_app_id(APP_ID.into())
                .with_headers(headers.clone());
            let confirm = channel
                .basic_publish(
                    INBOUND_EXCHANGE.into(),
                    self.court.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &m.body,
                    properties,
                )
                .await
                .with_context(|| format!("publishing message {}", m.position))?;
            let position = m.position;
            in_flight.push(async move { (position, confirm.await) });
            if !self.pause.is_zero() {
                tokio::time::sleep(self.pause).await;
            }
        }
        while !in_flight.is_empty() {
            settle(next_confirm(&mut in_flight).await, &self.court)?;
        }
        metrics::counter!("porter_file_drop_messages_total").increment(batch.messages.len() as u64);
        Ok(())
    }
}

type ConfirmResult = Option<(usize, lapin::Result<Confirmation>)>;

async fn next_confirm<F>(in_flight: &mut FuturesUnordered<F>) -> ConfirmResult
where
    F: Future<Output = (usize, lapin::Result<Confirmation>)>,
{
    tokio::time::timeout(CONFIRM_TIMEOUT, in_flight.next())
        .await
        .unwrap_or(None)
}

/// A confirm as a result: only a plain ack is a success.
fn settle(confirm: ConfirmResult, court: &str) -> anyhow::Result<()> {
    match confirm {
        None => bail!("no publisher confirm within {} s", CONFIRM_TIMEOUT.as_secs()),
        Some((_, Ok(Confirmation::Ack(None)))) => Ok(()),
        Some((position, Ok(Confirmation::Ack(Some(returned))))) => bail!(
            "message {position} was returned by RabbitMQ ({} {}): is court {court} configured on the broker?",
            returned.reply_code,
            returned.reply_text
        ),
        Some((position, Ok(Confirmation::Nack(_)))) => bail!("message {position} was refused (nack) by RabbitMQ"),
        Some((position, Ok(Confirmation::NotRequested))) => {
            bail!("message {position}: publisher confirms are not enabled")
        }
        Some((position, Err(e))) => bail!("message {position}: channel failed: {e}"),
    }
}

/// The header's ORI and layout name (trimmed), when record 1 is a header
/// long enough to hold them and they are ASCII.
fn peek_header(bytes: &[u8]) -> Option<(String, String)> {
    let first = bytes.split(|&b| b == b'\n').next()?;
    if first.first() != Some(&b'H') {
        return None;
    }
    let ori = std::str::from_utf8(first.get(1..10)?).ok().filter(|s| s.is_ascii())?;
    let layout = std::str::from_utf8(first.get(34..44)?).ok().filter(|s| s.is_ascii())?;
    Some((ori.to_string(), layout.trim_end().to_string()))
}

/// The regular files in `dir` that are ready to be looked at, in name order:
/// no dotfiles, no `*.tmp` or `*.part`, no folders or symlinks.
fn list_files(dir: &Path) -> anyhow::Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with('.') || text.ends_with(".tmp") || text.ends_with(".part") {
            continue;
        }
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// `name`, or `name.1`, `name.2`, … : the first that is free in `dir`.
fn free_name(dir: &Path, name: &std::ffi::OsStr) -> anyhow::Result<OsString> {
    let taken = |n: &std::ffi::OsStr| {
        let mut report = n.to_os_string();
        report.push(".report.txt");
        dir.join(n).symlink_metadata().is_ok() || dir.join(report).symlink_metadata().is_ok()
    };
    if !taken(name) {
        return Ok(name.to_os_string());
    }
    for i in 1..10_000 {
        let mut candidate = name.to_os_string();
        candidate.push(format!(".{i}"));
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    bail!("no free name for {} in {}", name.to_string_lossy(), dir.display())
}

/// The text of `error/<file>.report.txt`: a commented heading, then one line
/// per error, `CODE field record:column text`.
fn report(file: &str, court: &str, errors: &[FieldError]) -> String {
    let mut text = format!(
        "# porter court file-drop: batch file {file} for court {court} was refused; nothing of it was published.\n\
         # Checked {}. One line per error: code, field, record:column, text.\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    for e in errors {
        text.push_str(&format!(
            "{} {} {} {}\n",
            e.code,
            e.field,
            e.location.as_deref().unwrap_or("-"),
            e.text
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only complete-looking regular files are listed, in name order.
    #[test]
    fn temporary_and_hidden_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.txt", "a.txt", ".hidden", "c.tmp", "d.part"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("done")).unwrap();
        assert_eq!(list_files(dir.path()).unwrap(), ["a.txt", "b.txt"]);
    }

    /// A name already used in a folder (or by its report) gets a suffix, so
    /// no earlier file is replaced.
    #[test]
    fn taken_names_get_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_name(dir.path(), "b.txt".as_ref()).unwrap(), "b.txt");
        std::fs::write(dir.path().join("b.txt"), b"x").unwrap();
        std::fs::write(dir.path().join("b.txt.1.report.txt"), b"x").unwrap();
        assert_eq!(free_name(dir.path(), "b.txt".as_ref()).unwrap(), "b.txt.2");
    }

    /// The report has one line per error with code, field, location and text.
    #[test]
    fn report_lists_each_error() {
        let e = FieldError::new(ErrorCode::InvalidFormat, "batch.record", "record 3 is 199 bytes long").at("3:200");
        let text = report("b.txt", "CA034025J", &[e]);
        assert!(
            text.lines()
                .any(|l| l == "INVALID_FORMAT batch.record 3:200 record 3 is 199 bytes long"),
            "{text}"
        );
    }

    /// The arguments parse as `porter court file-drop …` spells them once
    /// wired into `main.rs` (the integration test's child process uses
    /// exactly these).
    #[test]
    fn arguments_parse_as_a_subcommand() {
        use clap::{CommandFactory, Parser, Subcommand};
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            command: Top,
        }
        #[derive(Subcommand)]
        enum Top {
            #[command(subcommand)]
            Court(Court),
        }
        #[derive(Subcommand)]
        enum Court {
            FileDrop(FileDropArgs),
        }
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "porter",
            "court",
            "file-drop",
            "--court",
            "CA034025J",
            "--dir",
            "/drop",
            "--config",
            "p.toml",
            "--amqp-url",
            "amqp://u:p@h/%2f",
            "--poll-ms",
            "100",
            "--publish-pause-ms",
            "5",
            "--once",
        ])
        .unwrap();
        let Top::Court(Court::FileDrop(a)) = cli.command;
        assert_eq!(
            (a.court.as_str(), a.dir.as_path(), a.config.as_path()),
            ("CA034025J", Path::new("/drop"), Path::new("p.toml"))
        );
        assert_eq!(
            (a.amqp_url.as_deref(), a.poll_ms, a.publish_pause_ms, a.once),
            (Some("amqp://u:p@h/%2f"), 100, 5, true)
        );
        let d =
            Cli::try_parse_from(["porter", "court", "file-drop", "--court", "CA034025J", "--dir", "/drop"]).unwrap();
        let Top::Court(Court::FileDrop(d)) = d.command;
        assert_eq!(
            (d.amqp_url, d.once, d.poll_ms, d.confirm_window),
            (None, false, 500, None)
        );
    }

    /// The shipped layouts can be read in batch files: `cms-a/1` by its `O`
    /// records, `cms-b/2` by the `1` of its `10` records, 240 bytes long.
    #[test]
    fn shipped_layouts_work_in_batches() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/layouts");
        let a = BatchLayout::of(&Layout::load(dir.join("cms-a-1.toml")).unwrap());
        assert_eq!((a.record_length, a.order_type), (200, Ok(b'O')));
        let b = BatchLayout::of(&Layout::load(dir.join("cms-b-2.toml")).unwrap());
        assert_eq!((b.record_length, b.order_type), (240, Ok(b'1')));
    }

    /// The header peek reads the ORI and layout, and nothing from a non-header.
    #[test]
    fn header_peek() {
        let h = format!("{:<200}\n", "HCA034025J202611251015000000000042cms-a/1");
        assert_eq!(peek_header(h.as_bytes()), Some(("CA034025J".into(), "cms-a/1".into())));
        assert_eq!(peek_header(b"OCA034025J"), None);
        assert_eq!(peek_header(b"H\xff"), None);
    }
}
