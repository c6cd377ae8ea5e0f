//! `porter validate --court ORI [--layout NAME] [--config FILE] [--json] FILE...`:
//! checks a vendor's files offline (ICD §10), with exactly the broker's
//! stateless verdict.
//!
//! # Design note
//!
//! The verdict must be the broker's, not a look-alike, so nothing here
//! parses or validates on its own: the configuration is loaded as the broker
//! loads it ([`Config::load`], [`load_formats`]: layouts, code-map sets, code
//! lists and CLETS tables), and every order message goes through the
//! broker's intake step [`examine`] — parse, code maps, validation and the
//! trial CLETS translation — as if it had arrived on the court's queue with
//! these AMQP properties:
//!
//! - `message_id`: the file name (at most 64 characters), or for a message of
//!   a batch file the ICD's `<ORI>-B<batch number>-<position>`;
//! - `content_type`: `application/xml` for `.xml` files, `text/plain` for
//!   `.txt` files, otherwise sniffed (`<` as the first non-blank byte is XML);
//! - `delivery_mode` 2; no `user_id`, so the AMQP-user check is not made;
//! - `x-por-layout`: `--layout` when given, otherwise none, so the court's
//!   default layout applies, as at the broker. A batch file uses the layout
//!   its header names when `--layout` is not given.
//!
//! What needs the store (duplicates, sequence gaps, closed orders) is not
//! checked: that is the ICD's "stateless checks only". No RabbitMQ, no store.
//!
//! A text/plain file whose first byte is `H` is a batch file (ICD §3): its
//! framing is checked with [`crate::formats::batch::read_batch`] (errors at
//! `record:column` of the file), then each order message is examined on its
//! own. A message's error locations are the broker's, relative to the
//! message (`2:75` is the message's second record); the text report adds
//! the file's record, and the JSON report a `file_location`.
//!
//! Exit code: 0 when every file is valid, 1 when any is invalid, 2 on a
//! usage or configuration error — an unknown court (`UNKNOWN_COURT`), an
//! unknown layout, a configuration that does not load, an unreadable file.
//! Every report, including these errors, is written to the given output.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::broker::load_formats;
use crate::config::{Config, CourtConfig};
use crate::formats::batch::{self, Batch};
use crate::formats::fixed::Layout;
use crate::intake::examine::MAX_MESSAGE_ID;
use crate::intake::{Formats, InboundProperties, examine};
use crate::model::{ErrorCode, FieldError};
use crate::store::Verdict;

/// Exit code: every file is valid.
pub const EXIT_VALID: i32 = 0;
/// Exit code: at least one file is invalid.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: a usage or configuration error.
pub const EXIT_USAGE: i32 = 2;

/// The arguments of `porter validate`.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// The ORI of the court whose files these are; it must be configured.
    #[arg(long)]
    pub court: String,
    /// The fixed-width layout of the files (one of the court's layouts).
    /// Default: the court's default layout, or the one a batch header names.
    #[arg(long)]
    pub layout: Option<String>,
    /// The broker configuration naming the court, its layouts and code maps.
    #[arg(long, env = "PORTER_CONFIG", default_value = "deploy/local/porter.toml")]
    pub config: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Order messages (XML or fixed-width) and batch files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Runs `porter validate`: checks every file, writes the report to `out`,
/// and returns the exit code ([`EXIT_VALID`], [`EXIT_INVALID`],
/// [`EXIT_USAGE`]).
pub fn run(args: &ValidateArgs, out: &mut impl Write) -> i32 {
    let session = match Session::open(args) {
        Ok(s) => s,
        Err(problem) => {
            let _ = problem.write(args.json, out);
            return EXIT_USAGE;
        }
    };
    let reports: Vec<FileReport> = args.files.iter().map(|f| session.check(f)).collect();
    let code = if reports.iter().any(|r| r.unreadable.is_some()) {
        EXIT_USAGE
    } else if reports.iter().all(FileReport::valid) {
        EXIT_VALID
    } else {
        EXIT_INVALID
    };
    let _ = if args.json {
        write_json(&session, &reports, code, out)
    } else {
        write_text(&reports, out)
    };
    code
}

/// A usage or configuration error: nothing was checked.
#[derive(Debug)]
struct Problem {
    /// `UNKNOWN_COURT`, `UNKNOWN_LAYOUT` or `CONFIG`.
    code: &'static str,
    text: String,
}

impl Problem {
    fn write(&self, json: bool, out: &mut impl Write) -> std::io::Result<()> {
        if json {
            let doc = json!({
                "error": { "code": self.code, "text": self.text },
                "files": [],
                "exit_code": EXIT_USAGE,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
        } else {
            writeln!(out, "porter validate: {}: {}", self.code, self.text)
        }
    }
}

/// The loaded configuration and the court the files are checked for.
struct Session<'a> {
    args: &'a ValidateArgs,
    court: CourtConfig,
    formats: Formats,
}

impl<'a> Session<'a> {
    fn open(args: &'a ValidateArgs) -> Result<Session<'a>, Problem> {
        let config = Config::load(&args.config).map_err(|e| Problem {
            code: "CONFIG",
            text: format!("cannot load the configuration: {e}"),
        })?;
        let court = config.court(&args.court).cloned().ok_or_else(|| Problem {
            code: ErrorCode::UnknownCourt.as_str(),
            text: format!(
                "court {} is not configured in {} (configured: {})",
                args.court,
                args.config.display(),
                config
                    .courts
                    .iter()
                    .map(|c| c.ori.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
        let formats = load_formats(&config).map_err(|e| Problem {
            code: "CONFIG",
            text: format!("{e:#}"),
        })?;
        if let Some(layout) = &args.layout
            && !court.layouts.contains(layout)
        {
            return Err(Problem {
                code: "UNKNOWN_LAYOUT",
                text: format!(
                    "layout {layout:?} is not configured for court {} (its layouts: {})",
                    court.ori,
                    court.layouts.join(", ")
                ),
            });
        }
        Ok(Session { args, court, formats })
    }

    fn check(&self, path: &Path) -> FileReport {
        let mut report = FileReport {
            file: path.display().to_string(),
            ..Default::default()
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                report.unreadable = Some(format!("cannot read {}: {e}", path.display()));
                return report;
            }
        };
        let content_type = content_type(path, &bytes);
        if content_type == "text/plain" && bytes.first() == Some(&batch::HEADER_TYPE) {
            self.check_batch(&bytes, &mut report);
            return report;
        }
        report.content_type = Some(content_type.to_string());
        let name = path
            .file_name()
            .map_or_else(|| report.file.clone(), |n| n.to_string_lossy().into_owned());
        let props = InboundProperties {
            message_id: Some(name.chars().take(MAX_MESSAGE_ID).collect()),
            content_type: Some(content_type.to_string()),
            delivery_mode: Some(2),
            layout: self.args.layout.clone(),
            ..Default::default()
        };
        let item = examine(&self.court, &props, &bytes, &self.formats);
        report.layout = item.inbound.layout.clone();
        if matches!(item.verdict, Verdict::Rejected { .. }) {
            report.hint = self.layout_hint(report.layout.as_deref(), &bytes);
        }
        report
            .messages
            .push(MessageReport::new(1, item.inbound.message_id, None, item.verdict));
        report
    }

    /// When a fixed-width file's first record does not have the length of
    /// the layout it was read in but has that of another of the court's
    /// layouts, which one to try.
    fn layout_hint(&self, used: Option<&str>, bytes: &[u8]) -> Option<String> {
        let layout = self.formats.layouts.get(used?)?;
        let first = bytes.split(|&b| b == b'\n').next()?;
        let length = first.strip_suffix(b"\r").unwrap_or(first).len();
        if length == layout.record_length() {
            return None;
        }
        let fits: Vec<&str> = self
            .court
            .layouts
            .iter()
            .filter(|l| {
                self.formats
                    .layouts
                    .get(*l)
                    .is_some_and(|x| x.record_length() == length)
            })
            .map(String::as_str)
            .collect();
        let first_fit = fits.first()?;
        Some(format!(
            "the records are {length} bytes, as in layout {} of court {}: try --layout {first_fit}",
            fits.join(", "),
            self.court.ori
        ))
    }

    /// The layout a batch file is read in: `--layout`, else the one its
    /// header names when the court has it, else the court's default.
    fn batch_layout(&self, bytes: &[u8]) -> String {
        if let Some(l) = &self.args.layout {
            return l.clone();
        }
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let named = first
            .get(34..first.len().min(44))
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .unwrap_or_default();
        if self.court.layouts.contains(&named) {
            named
        } else {
            self.court.default_layout().to_string()
        }
    }

    fn check_batch(&self, bytes: &[u8], report: &mut FileReport) {
        report.content_type = Some("text/plain".into());
        let name = self.batch_layout(bytes);
        report.layout = Some(name.clone());
        let Some(layout) = self
            .formats
            .layouts
            .get(&name)
            .filter(|_| self.court.layouts.contains(&name))
        else {
            report.framing_errors.push(
                FieldError::new(
                    ErrorCode::InvalidCode,
                    "batch.header.layout",
                    format!("layout {name:?} is not configured for court {}", self.court.ori),
                )
                .at("1:35"),
            );
            return;
        };
        let order_type = match layout.batch_record_type() {
            Ok(t) => t,
            Err(why) => {
                report.framing_errors.push(
                    FieldError::new(
                        ErrorCode::InvalidFormat,
                        "batch",
                        format!("layout {name} cannot be read in batch files: {why}"),
                    )
                    .at("1:1"),
                );
                return;
            }
        };
        let batch = match batch::read_batch(bytes, layout.record_length(), order_type) {
            Ok(b) => b,
            Err(errors) => {
                report.framing_errors = errors;
                return;
            }
        };
        self.check_header(&batch, layout, report);
        for m in &batch.messages {
            let props = InboundProperties {
                message_id: Some(batch::message_id(
                    &self.court.ori,
                    &batch.header.batch_number,
                    m.position,
                )),
                content_type: Some("text/plain".into()),
                delivery_mode: Some(2),
                layout: Some(name.clone()),
                ..Default::default()
            };
            let item = examine(&self.court, &props, &m.body, &self.formats);
            report.messages.push(MessageReport::new(
                m.position,
                item.inbound.message_id,
                Some((m.first_record, m.record_count)),
                item.verdict,
            ));
        }
        report.batch = Some(batch);
    }

    /// The header must name this court and the layout the file is read in.
    fn check_header(&self, batch: &Batch, layout: &Layout, report: &mut FileReport) {
        let h = &batch.header;
        if h.court_ori != self.court.ori {
            report.framing_errors.push(
                FieldError::new(
                    ErrorCode::OriMismatch,
                    "batch.header.court_ori",
                    format!(
                        "the header names court {} but the file is checked for court {}",
                        h.court_ori, self.court.ori
                    ),
                )
                .at("1:2"),
            );
        }
        if h.layout != layout.name() {
            report.framing_errors.push(
                FieldError::new(
                    ErrorCode::InvalidCode,
                    "batch.header.layout",
                    format!(
                        "the header names layout {:?}; the file is read in {} (court {}: {})",
                        h.layout,
                        layout.name(),
                        self.court.ori,
                        self.court.layouts.join(", ")
                    ),
                )
                .at("1:35"),
            );
        }
    }
}

/// `application/xml` or `text/plain`: by extension, else sniffed.
fn content_type(path: &Path, bytes: &[u8]) -> &'static str {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("xml") => "application/xml",
        Some("txt") => "text/plain",
        _ => match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => "application/xml",
            _ => "text/plain",
        },
    }
}

/// What was found in one file.
#[derive(Debug, Default)]
struct FileReport {
    file: String,
    /// Why the file could not be read (a usage error).
    unreadable: Option<String>,
    content_type: Option<String>,
    /// The layout fixed-width messages were read in.
    layout: Option<String>,
    /// The batch, when the file is one and its framing is sound.
    batch: Option<Batch>,
    framing_errors: Vec<FieldError>,
    messages: Vec<MessageReport>,
    /// A suggestion when the file looks written in another of the court's layouts.
    hint: Option<String>,
}

impl FileReport {
    fn valid(&self) -> bool {
        self.unreadable.is_none() && self.framing_errors.is_empty() && self.messages.iter().all(|m| m.errors.is_empty())
    }

    fn is_batch(&self) -> bool {
        self.batch.is_some() || !self.framing_errors.is_empty()
    }
}

/// The verdict on one order message.
#[derive(Debug)]
struct MessageReport {
    /// 1-based position in the file (always 1 for a single message).
    position: usize,
    message_id: String,
    /// For a batch: the file's record number of the message's first record,
    /// and how many records it has.
    records: Option<(usize, usize)>,
    errors: Vec<FieldError>,
    warnings: Vec<FieldError>,
}

impl MessageReport {
    fn new(position: usize, message_id: String, records: Option<(usize, usize)>, verdict: Verdict) -> Self {
        let (errors, warnings) = match verdict {
            Verdict::Accepted { warnings, .. } => (Vec::new(), warnings),
            Verdict::Rejected { errors, .. } => (errors, Vec::new()),
        };
        MessageReport {
            position,
            message_id,
            records,
            errors,
            warnings,
        }
    }

    /// A message-relative `record:column` as the file's `record:column`.
    fn file_location(&self, location: Option<&str>) -> Option<String> {
        let (first, _) = self.records?;
        let (record, column) = location?.split_once(':')?;
        let record: usize = record.parse().ok()?;
        Some(format!("{}:{column}", first + record - 1))
    }

    /// `message 2 (records 6–9)`.
    fn title(&self) -> String {
        match self.records {
            Some((first, count)) => format!(
                "message {} (records {first}–{})",
                self.position,
                first + count.saturating_sub(1)
            ),
            None => format!("message {}", self.position),
        }
    }
}

fn error_line(e: &FieldError, file_location: Option<String>) -> String {
    let mut s = format!("{} {}", e.code, e.field);
    if let Some(l) = &e.location {
        s.push_str(&format!(" at {l}"));
        if let Some(f) = file_location {
            s.push_str(&format!(" (file record:column {f})"));
        }
    }
    s.push_str(": ");
    s.push_str(&e.text);
    s
}

fn write_text(reports: &[FileReport], out: &mut impl Write) -> std::io::Result<()> {
    for r in reports {
        if let Some(why) = &r.unreadable {
            writeln!(out, "{}: ERROR {why}", r.file)?;
            continue;
        }
        let verdict = if r.valid() { "valid" } else { "INVALID" };
        let what = match (&r.batch, r.is_batch()) {
            (Some(b), _) => format!(
                "batch {} of court {}, layout {}, {} order messages",
                b.header.batch_number,
                b.header.court_ori,
                r.layout.as_deref().unwrap_or("?"),
                b.messages.len()
            ),
            (None, true) => format!("batch file, layout {}", r.layout.as_deref().unwrap_or("?")),
            (None, false) => match (&r.layout, r.content_type.as_deref()) {
                (Some(l), _) => format!("order message, layout {l}"),
                (None, Some("application/xml")) => "order message, XML".into(),
                _ => "order message".into(),
            },
        };
        writeln!(out, "{}: {verdict} ({what})", r.file)?;
        if let Some(h) = &r.hint {
            writeln!(out, "  hint: {h}")?;
        }
        for e in &r.framing_errors {
            writeln!(out, "  framing: {}", error_line(e, None))?;
        }
        for m in &r.messages {
            let indent = if r.is_batch() {
                let v = if m.errors.is_empty() { "valid" } else { "INVALID" };
                writeln!(out, "  {} {}: {v}", m.title(), m.message_id)?;
                "    "
            } else {
                "  "
            };
            for e in &m.errors {
                let line = error_line(e, m.file_location(e.location.as_deref()));
                writeln!(out, "{indent}{line}")?;
            }
            for w in &m.warnings {
                let line = error_line(w, m.file_location(w.location.as_deref()));
                writeln!(out, "{indent}warning {line}")?;
            }
        }
    }
    let valid = reports.iter().filter(|r| r.valid()).count();
    writeln!(
        out,
        "{} file(s): {valid} valid, {} invalid",
        reports.len(),
        reports.len() - valid
    )
}

fn error_json(e: &FieldError, file_location: Option<String>) -> Value {
    let mut v = json!({
        "code": e.code.as_str(),
        "field": e.field,
        "location": e.location,
        "text": e.text,
    });
    if let Some(f) = file_location {
        v["file_location"] = json!(f);
    }
    v
}

fn write_json(session: &Session<'_>, reports: &[FileReport], code: i32, out: &mut impl Write) -> std::io::Result<()> {
    let files: Vec<Value> = reports
        .iter()
        .map(|r| {
            let messages: Vec<Value> = r
                .messages
                .iter()
                .map(|m| {
                    let list = |errors: &[FieldError]| -> Vec<Value> {
                        errors
                            .iter()
                            .map(|e| error_json(e, m.file_location(e.location.as_deref())))
                            .collect()
                    };
                    let mut v = json!({
                        "position": m.position,
                        "message_id": m.message_id,
                        "valid": m.errors.is_empty(),
                        "errors": list(&m.errors),
                        "warnings": list(&m.warnings),
                    });
                    if let Some((first, count)) = m.records {
                        v["first_record"] = json!(first);
                        v["record_count"] = json!(count);
                    }
                    v
                })
                .collect();
            let mut v = json!({
                "file": r.file,
                "valid": r.valid(),
                "kind": if r.is_batch() { "batch" } else { "message" },
                "content_type": r.content_type,
                "layout": r.layout,
                "messages": messages,
                "framing_errors": r.framing_errors.iter().map(|e| error_json(e, None)).collect::<Vec<_>>(),
            });
            if let Some(b) = &r.batch {
                v["batch"] = json!({
                    "court_ori": b.header.court_ori,
                    "created": b.header.created,
                    "batch_number": b.header.batch_number,
                    "layout": b.header.layout,
                    "order_messages": b.trailer_orders,
                    "records": b.trailer_records,
                });
            }
            if let Some(why) = &r.unreadable {
                v["error"] = json!({ "code": "UNREADABLE", "text": why });
            }
            if let Some(h) = &r.hint {
                v["hint"] = json!(h);
            }
            v
        })
        .collect();
    let doc = json!({
        "court": session.court.ori,
        "valid": reports.iter().all(FileReport::valid),
        "exit_code": code,
        "files": files,
    });
    writeln!(out, "{}", serde_json::to_string_pretty(&doc).unwrap_or_default())
}

#[cfg(test)]
mod tests;
