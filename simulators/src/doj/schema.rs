//! Validating a DOJ notice against `schemas/por.xsd` with libxml2's `xmllint`, independently of Porter's
//! own XML reader (ICD §7: invalid content is `422`).
//!
//! Design note:
//! - The schema set (`por.xsd` and the NIEM subsets it imports, `niem/niem-core.xsd` and
//!   `niem/jxdm.xsd`) is built into the simulator and written once, at start, to a private temporary
//!   directory (mode 0700, removed when the [`NoticeSchema`] is dropped). So the simulator works from any
//!   working directory, under `porter sim doj` and `porter demo` alike.
//! - [`NoticeSchema::install`] also validates a shipped sample notice (one direct xmllint run): a missing
//!   `xmllint` (or a schema that does not compile) fails the simulator's start with a clear message, not
//!   every request.
//! - Notices are validated in batches, because most of an xmllint run is compiling the schema set (about
//!   4 ms), while each further document costs a fraction of a millisecond. [`NoticeSchema::validate`]
//!   writes the body to its own file in the private directory (`n<16 hex digits>.xml` from a counter: all
//!   of one width, so no name is a prefix of another), queues it with a one-shot channel for its verdict
//!   and waits. A dispatcher task takes a permit (at most [`NoticeSchema::permits`] runs at once, one per
//!   core), then every queued notice up to [`MAX_BATCH`], and runs one xmllint over them in a task that
//!   holds the permit. So a lone notice on an idle validator is validated alone at once (no added wait),
//!   and while every permit is busy the queue grows and the next batch is bigger. A caller that gave up
//!   before its batch started is left out. A notice's file is removed when its batch is done, before its
//!   caller hears back, also after a timeout or an error (the file is removed when its owner is dropped).
//! - Each run is `xmllint --noout --nonet --schema <dir>/por.xsd <dir>/<file>...` (`--nonet`: nothing is
//!   fetched from the network; no `--noent`, `--loaddtd` or `--xinclude`, so no entity is substituted and
//!   no external file is read; a document is parsed on its own, with a validation context of its own).
//!   It may take [`VALIDATION_TIMEOUT`], after which the process is killed and every notice of the batch
//!   answered `503` (the simulator could not tell, so the sender should retry).
//! - xmllint exits 0 when every document is valid, and 1 (not well-formed) or 3 or 4 (refused by the
//!   schema) when one is not; anything else (a signal, 5: the schema did not compile, ...) is the
//!   simulator's own failure: every notice of the batch is answered `503`, logged at ERROR. With 0, 1, 3
//!   or 4, each notice's verdict is read from the lines of the report that start with its own path: the
//!   line `<path> validates` makes it valid; else a line `<path>:...` or `<path> fails to validate` makes
//!   it invalid; a notice with no such line (the report was cut, see below) is answered `503`. Lines no
//!   notice's path starts (libxml2's document excerpts, `Entity: line ...` errors) belong to no notice,
//!   so one notice's text never reaches another's reason. The paths hold the private directory's random
//!   name, which a sender cannot know, so a document cannot forge another's verdict line.
//! - The reason of a refusal is xmllint's own message ([`reason_from_report`]) over that notice's lines
//!   only, `<path>:` read as `-:`: only its error lines (`-:<line>: ...`), never the document excerpts
//!   libxml2 prints under a parser error, and every value it quotes replaced by `'…'` (`The value '…' is
//!   not accepted by the pattern ...`), so no personal data reaches reasons or logs. Element and
//!   attribute names, types and facets stay: they are structure.
//! - At most [`MAX_REPORT_BYTES`] of xmllint's report per notice of the batch are read (the rest is
//!   drained unread), and at most [`MAX_REASON_ERRORS`] errors make a reason.
//! - When the [`NoticeSchema`] is dropped, its queue closes, so the dispatcher ends, and the directory is
//!   removed at once: the dispatcher and the runs hold only paths, never the directory. (No `validate`
//!   can be waiting then, as it borrows the schema; a batch still running for callers that gave up only
//!   fails to find its files.)

use std::collections::HashMap;
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// `schemas/por.xsd`, built in.
const POR_XSD: &str = include_str!("../../../schemas/por.xsd");
/// `schemas/niem/niem-core.xsd`, imported by `por.xsd` and `jxdm.xsd`.
const NIEM_CORE_XSD: &str = include_str!("../../../schemas/niem/niem-core.xsd");
/// `schemas/niem/jxdm.xsd`, imported by `por.xsd`.
const JXDM_XSD: &str = include_str!("../../../schemas/niem/jxdm.xsd");
/// A valid notice (`schemas/samples/issue.xml`), validated once at start to prove the set-up works.
const SAMPLE_NOTICE: &str = include_str!("../../../schemas/samples/issue.xml");

/// The longest one validation run (a batch) may take before its process is killed.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of xmllint's report is read, per notice of a batch.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;

/// How many of xmllint's errors make a reason.
pub const MAX_REASON_ERRORS: usize = 3;

/// The most notices one xmllint run validates.
pub const MAX_BATCH: usize = 64;

/// What validation said about a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The schema accepts it.
    Valid,
    /// Not well-formed, or the schema refuses it: the reason for a `422`, values redacted.
    Invalid(String),
    /// The validator could not run or took too long: the reason for a `503`.
    Unavailable(String),
}

/// The built-in schema set written to a private directory, and the means to validate against it.
#[derive(Debug)]
pub struct NoticeSchema {
    /// Owned here alone, so it is removed as soon as the schema is dropped.
    dir: SchemaDir,
    xmllint: Arc<Xmllint>,
    queue: mpsc::UnboundedSender<Request>,
    next_file: AtomicU64,
    limit: usize,
}

impl NoticeSchema {
    /// Writes the schema set to a new private temporary directory and validates a shipped sample with
    /// `xmllint` (a program name looked up on `PATH`, or a path). Fails with a clear message when
    /// `xmllint` is missing or refuses the set-up. Starts the dispatcher of validations (a task of the
    /// current runtime), which ends when the schema is dropped.
    pub async fn install(xmllint: &Path) -> anyhow::Result<Self> {
        let dir = SchemaDir::create().context("could not write the DOJ simulator's schema files")?;
        let limit = std::thread::available_parallelism().map_or(1, usize::from);
        let (queue, requests) = mpsc::unbounded_channel();
        let schema = Self {
            xmllint: Arc::new(Xmllint {
                program: xmllint.to_owned(),
                por_xsd: dir.por_xsd(),
                batches: AtomicU64::new(0),
            }),
            dir,
            queue,
            next_file: AtomicU64::new(0),
            limit,
        };
        let sample = schema
            .notice_file(SAMPLE_NOTICE.as_bytes())
            .context("could not write the DOJ simulator's sample notice")?;
        let checked = schema.xmllint.run(std::slice::from_ref(&sample)).await;
        drop(sample);
        match checked.map(|mut verdicts| verdicts.pop()) {
            Ok(Some(Verdict::Valid)) => {}
            Ok(Some(Verdict::Invalid(why) | Verdict::Unavailable(why))) => {
                return Err(anyhow::anyhow!(
                    "{} refused the shipped sample notice against por.xsd: {why}",
                    xmllint.display()
                ));
            }
            Ok(None) => return Err(anyhow::anyhow!("{} gave no verdict", xmllint.display())),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(anyhow::anyhow!(
                    "{} was not found: the DOJ simulator validates notices against schemas/por.xsd with \
                     xmllint (libxml2); install it (Debian, Ubuntu: apt-get install libxml2-utils) or set \
                     the simulator's `xmllint` to its path",
                    xmllint.display()
                ));
            }
            Err(e) => return Err(anyhow::anyhow!("{} could not be run: {e}", xmllint.display())),
        }
        tokio::spawn(dispatch(
            schema.xmllint.clone(),
            Arc::new(Semaphore::new(limit)),
            requests,
        ));
        Ok(schema)
    }

    /// How many validations (batches) may run at once.
    pub fn permits(&self) -> usize {
        self.limit
    }

    /// Validates a notice: queues it for the next batch and waits for its verdict.
    pub async fn validate(&self, body: &[u8]) -> Verdict {
        let file = match self.notice_file(body) {
            Ok(file) => file,
            Err(e) => {
                tracing::error!(error = %e, "DOJ simulator could not write a notice for xmllint.");
                return Verdict::Unavailable(format!("the notice could not be written for the schema validator: {e}"));
            }
        };
        let (reply, verdict) = oneshot::channel();
        if self.queue.send(Request { file, reply }).is_err() {
            return Verdict::Unavailable("the schema validator is shut down".into());
        }
        verdict
            .await
            .unwrap_or_else(|_| Verdict::Unavailable("the schema validator stopped before it answered".into()))
    }

    /// Writes `body` to a new file of the private directory, removed when the result is dropped.
    fn notice_file(&self, body: &[u8]) -> std::io::Result<NoticeFile> {
        let number = self.next_file.fetch_add(1, Ordering::Relaxed);
        NoticeFile::write(self.dir.path.join(format!("n{number:016x}.xml")), body)
    }
}

/// A queued validation.
#[derive(Debug)]
struct Request {
    file: NoticeFile,
    reply: oneshot::Sender<Verdict>,
}

/// Takes a permit, then every queued request up to [`MAX_BATCH`], and validates them in one run on a task
/// of its own that holds the permit; ends when the queue is closed (the schema was dropped).
async fn dispatch(xmllint: Arc<Xmllint>, permits: Arc<Semaphore>, mut queue: mpsc::UnboundedReceiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        // A caller that gave up needs no verdict; dropping its request removes its file.
        batch.retain(|request| !request.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let requests = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let xmllint = xmllint.clone();
        tokio::spawn(async move {
            let _permit = permit;
            xmllint.answer(requests).await;
        });
    }
}

/// How to run xmllint against the schema set.
#[derive(Debug)]
struct Xmllint {
    program: PathBuf,
    por_xsd: PathBuf,
    /// Batches run by the dispatcher.
    batches: AtomicU64,
}

impl Xmllint {
    /// Validates a batch, removes its files, then answers each request.
    async fn answer(&self, requests: Vec<Request>) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        let (files, replies): (Vec<NoticeFile>, Vec<oneshot::Sender<Verdict>>) = requests
            .into_iter()
            .map(|request| (request.file, request.reply))
            .unzip();
        let verdicts = match self.run(&files).await {
            Ok(verdicts) => verdicts,
            Err(e) => {
                tracing::error!(xmllint = %self.program.display(), notices = files.len(), error = %e, "DOJ simulator could not run xmllint.");
                vec![Verdict::Unavailable(format!("the schema validator could not run: {e}")); files.len()]
            }
        };
        drop(files);
        for (reply, verdict) in replies.into_iter().zip(verdicts) {
            let _ = reply.send(verdict);
        }
    }

    /// One `xmllint` run over `files`, bounded by [`VALIDATION_TIMEOUT`]: a verdict per file, in order.
    /// `Err` when it could not start (or its report could not be read).
    async fn run(&self, files: &[NoticeFile]) -> std::io::Result<Vec<Verdict>> {
        let mut child = Command::new(&self.program)
            .args(["--noout", "--nonet", "--schema"])
            .arg(&self.por_xsd)
            .args(files.iter().map(|file| &file.path))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let Some(stderr) = child.stderr.take() else {
            return Err(std::io::Error::other("xmllint's report pipe was not set up"));
        };
        let limit = MAX_REPORT_BYTES.saturating_mul(files.len());
        let work = async {
            let (report, status) = tokio::join!(read_bounded(stderr, limit), child.wait());
            Ok::<_, std::io::Error>((report?, status?))
        };
        let Ok(finished) = tokio::time::timeout(VALIDATION_TIMEOUT, work).await else {
            // Dropping the child (kill_on_drop) ends the process.
            tracing::warn!(notices = files.len(), "DOJ simulator's schema validation timed out.");
            let why = format!(
                "the schema validation took longer than {} s",
                VALIDATION_TIMEOUT.as_secs()
            );
            return Ok(vec![Verdict::Unavailable(why); files.len()]);
        };
        let (report, status) = finished?;
        let report = String::from_utf8_lossy(&report);
        let paths: Vec<String> = files
            .iter()
            .map(|file| file.path.to_string_lossy().into_owned())
            .collect();
        let verdicts = verdicts(status.code(), &report, &paths);
        match status.code() {
            Some(0 | 1 | 3 | 4) => {
                let unanswered = verdicts
                    .iter()
                    .filter(|verdict| matches!(verdict, Verdict::Unavailable(_)))
                    .count();
                if unanswered > 0 {
                    tracing::warn!(
                        notices = files.len(),
                        unanswered,
                        "xmllint gave no verdict for some notices."
                    );
                }
            }
            code => {
                let code = code.map_or_else(|| "by a signal".to_owned(), |c| c.to_string());
                tracing::error!(xmllint = %self.program.display(), notices = files.len(), exit = %code, "DOJ simulator's xmllint failed.");
            }
        }
        Ok(verdicts)
    }
}

/// The verdict on each of `paths` from xmllint's exit code and report. With 0, 1, 3 or 4, each file's
/// own lines decide ([`FileReport::verdict`]); any other code (or a signal, `None`) is the validator's
/// failure, for every file.
fn verdicts(code: Option<i32>, report: &str, paths: &[String]) -> Vec<Verdict> {
    let reports = file_reports(report, paths);
    match code {
        Some(0 | 1 | 3 | 4) => reports.into_iter().map(FileReport::verdict).collect(),
        code => {
            let code = code.map_or_else(|| "by a signal".to_owned(), |c| c.to_string());
            reports
                .iter()
                .map(|file| {
                    Verdict::Unavailable(format!(
                        "the schema validator failed (exit {code}): {}",
                        reason_from_report(&file.lines)
                    ))
                })
                .collect()
        }
    }
}

/// What xmllint's report says about one file of a batch.
#[derive(Debug, Clone, Default)]
struct FileReport {
    /// `<path> validates`.
    validates: bool,
    /// A `<path>:...` line or `<path> fails to validate`.
    refused: bool,
    /// The `<path>:...` lines, each as `-:...` (as when the document is read from stdin).
    lines: String,
}

impl FileReport {
    fn verdict(self) -> Verdict {
        if self.validates {
            Verdict::Valid
        } else if self.refused {
            Verdict::Invalid(reason_from_report(&self.lines))
        } else {
            Verdict::Unavailable("the schema validator gave no verdict for the notice".into())
        }
    }
}

/// Splits xmllint's report over several files by the path each line starts with. `paths` are all of one
/// width (one directory, fixed-width names); a line that starts with none of them belongs to none.
fn file_reports(report: &str, paths: &[String]) -> Vec<FileReport> {
    let mut reports = vec![FileReport::default(); paths.len()];
    let Some(width) = paths.first().map(String::len) else {
        return reports;
    };
    debug_assert!(paths.iter().all(|path| path.len() == width));
    let index: HashMap<&str, usize> = paths.iter().enumerate().map(|(i, path)| (path.as_str(), i)).collect();
    for line in report.lines() {
        let Some((path, rest)) = line.split_at_checked(width) else {
            continue;
        };
        let Some(&i) = index.get(path) else {
            continue;
        };
        let file = &mut reports[i];
        if rest == " validates" {
            file.validates = true;
        } else if rest == " fails to validate" {
            file.refused = true;
        } else if let Some(rest) = rest.strip_prefix(':') {
            file.refused = true;
            file.lines.push_str("-:");
            file.lines.push_str(rest);
            file.lines.push('\n');
        }
    }
    reports
}

/// A notice written for xmllint, removed on drop.
#[derive(Debug)]
struct NoticeFile {
    path: PathBuf,
}

impl NoticeFile {
    /// Creates `path` (which must not exist) holding `body`.
    fn write(path: PathBuf, body: &[u8]) -> std::io::Result<Self> {
        let mut created = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
        // From here on the file is ours: removed on drop, also when the write fails.
        let file = Self { path };
        created.write_all(body)?;
        Ok(file)
    }
}

impl Drop for NoticeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads at most `limit` bytes of a pipe, then drains the rest unread, so the writer never blocks.
async fn read_bounded(mut pipe: impl AsyncRead + Unpin, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = limit.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// The reason for a `422` from xmllint's report: its first [`MAX_REASON_ERRORS`] error lines
/// (`-:<n>: ... error : ...`), as `line <n>: <message>`, with quoted values redacted
/// ([`redact_values`]). The document excerpts libxml2 prints under parser errors, warnings, and its
/// closing `- fails to validate`, are left out. In a batch it reads one notice's lines, `<path>:` as `-:`.
pub fn reason_from_report(report: &str) -> String {
    let errors: Vec<String> = report
        .lines()
        .filter_map(|line| line.strip_prefix("-:"))
        .filter_map(|rest| rest.split_once(':'))
        .filter(|(number, message)| {
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && message.contains(" error : ")
        })
        .take(MAX_REASON_ERRORS)
        .map(|(number, message)| format!("line {number}: {}", redact_values(message.trim())))
        .collect();
    if errors.is_empty() {
        "the notice is not valid against por.xsd (xmllint gave no error line)".into()
    } else {
        format!("not valid against por.xsd: {}", errors.join("; "))
    }
}

/// Where a value starts in an xmllint message: after `The value '` (facet errors) or after `': '` (a
/// value that is not of its type, `Element 'x': 'v' is not a valid value ...`).
const VALUE_STARTS: [&str; 2] = ["The value '", "': '"];

/// What follows a value in an xmllint message: `' is not ...`, `' has a length ...`, `' has more
/// digits ...`.
const VALUE_ENDS: [&str; 2] = ["' is ", "' has "];

/// Replaces the value an xmllint message quotes by `'…'`. The value ends at the last ` is ` / ` has ` after
/// a closing quote, so a value that itself holds a quote (`O'BRIEN`) or those words is still covered
/// whole. A message with a value start but no recognisable end is cut after the start.
pub fn redact_values(message: &str) -> String {
    let Some(start) = VALUE_STARTS
        .iter()
        .filter_map(|marker| message.find(marker).map(|at| at + marker.len()))
        .min()
    else {
        return message.to_owned();
    };
    let tail = &message[start..];
    let end = VALUE_ENDS.iter().filter_map(|marker| tail.rfind(marker)).max();
    match end {
        Some(end) => format!("{}…{}", &message[..start], &tail[end..]),
        None => format!("{}…'", &message[..start]),
    }
}

/// A private temporary directory holding the schema set, removed on drop.
#[derive(Debug)]
struct SchemaDir {
    path: PathBuf,
}

impl SchemaDir {
    /// Creates `porter-doj-sim-<pid>-<random>` under the system's temporary directory (0700 on Unix) and
    /// writes the schema set into it.
    fn create() -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        let mut attempts = 0;
        let path = loop {
            let candidate = base.join(format!(
                "porter-doj-sim-{}-{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            match private_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
                Err(e) => return Err(e),
            }
        };
        let dir = Self { path };
        std::fs::create_dir(dir.path.join("niem"))?;
        std::fs::write(dir.por_xsd(), POR_XSD)?;
        std::fs::write(dir.path.join("niem/niem-core.xsd"), NIEM_CORE_XSD)?;
        std::fs::write(dir.path.join("niem/jxdm.xsd"), JXDM_XSD)?;
        Ok(dir)
    }

    fn por_xsd(&self) -> PathBuf {
        self.path.join("por.xsd")
    }
}

impl Drop for SchemaDir {
    fn drop(&mut self) {
        // A batch still running for callers that gave up may remove its files meanwhile: try again.
        for _ in 0..3 {
            if std::fs::remove_dir_all(&self.path).is_ok() || !self.path.exists() {
                return;
            }
        }
    }
}

#[cfg(unix)]
fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

#[cfg(not(unix))]
fn private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn schema() -> NoticeSchema {
        NoticeSchema::install(Path::new("xmllint")).await.unwrap()
    }

    /// Each shipped sample is valid; a broken one is refused with xmllint's reason (line and element),
    /// without the value it quoted; a document that is not XML is refused without its text.
    #[tokio::test]
    async fn validates_with_xmllint_and_redacts_values() {
        let schema = schema().await;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/samples");
        for file in ["issue.xml", "modify.xml", "service.xml", "terminate.xml", "cancel.xml"] {
            let body = std::fs::read(format!("{dir}/{file}")).unwrap();
            assert_eq!(schema.validate(&body).await, Verdict::Valid, "{file}");
        }
        let bad_ori = SAMPLE_NOTICE.replacen(">CA034025J<", ">ca034025j<", 1);
        let Verdict::Invalid(why) = schema.validate(bad_ori.as_bytes()).await else {
            panic!("a lower-case CourtORI is refused");
        };
        assert!(why.contains("CourtORI") && why.contains("pattern"), "{why}");
        assert!(!why.contains("ca034025j"), "{why}");
        let Verdict::Invalid(why) = schema.validate(b"SMITH JOHN 1985-02-14").await else {
            panic!("text is refused");
        };
        assert!(why.starts_with("not valid against por.xsd: line 1:"), "{why}");
        assert!(!why.contains("SMITH") && !why.contains("1985"), "{why}");
    }

    /// The schema directory holds the schema set only: no notice file is left behind.
    fn assert_no_notice_files(schema: &NoticeSchema) {
        let mut names: Vec<String> = std::fs::read_dir(&schema.dir.path)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["niem", "por.xsd"]);
    }

    /// Many notices validated at once go in batches (far fewer xmllint runs than notices), and each gets
    /// its own verdict and reason: valid samples, a schema-invalid notice, text that is not XML, and an
    /// empty body, interleaved. Their files are removed.
    #[tokio::test]
    async fn a_batch_gives_each_notice_its_own_verdict() {
        let schema = schema().await;
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/samples");
        let mut bodies: Vec<Vec<u8>> = ["issue.xml", "modify.xml", "service.xml", "terminate.xml", "cancel.xml"]
            .iter()
            .map(|file| std::fs::read(format!("{dir}/{file}")).unwrap())
            .collect();
        bodies.push(SAMPLE_NOTICE.replacen(">CA034025J<", ">ca034025j<", 1).into_bytes());
        bodies.push(b"SMITH JOHN 1985-02-14".to_vec());
        bodies.push(Vec::new());
        let verdicts = futures::future::join_all((0..40).map(|i| schema.validate(&bodies[i % bodies.len()]))).await;
        let batches = schema.xmllint.batches.load(Ordering::Relaxed);
        assert!((1..=4).contains(&batches), "{batches} xmllint runs for 40 notices");
        for (i, verdict) in verdicts.into_iter().enumerate() {
            match i % bodies.len() {
                0..5 => assert_eq!(verdict, Verdict::Valid, "notice {i}"),
                5 => {
                    let Verdict::Invalid(why) = verdict else {
                        panic!("notice {i}: a lower-case CourtORI is refused: {verdict:?}");
                    };
                    assert!(why.starts_with("not valid against por.xsd: line 6:"), "{why}");
                    assert!(why.contains("CourtORI") && why.contains("pattern"), "{why}");
                    assert!(!why.contains("ca034025j") && !why.contains("parser error"), "{why}");
                }
                6 => {
                    let Verdict::Invalid(why) = verdict else {
                        panic!("notice {i}: text is refused: {verdict:?}");
                    };
                    assert_eq!(
                        why,
                        "not valid against por.xsd: line 1: parser error : Start tag expected, '<' not found"
                    );
                }
                _ => {
                    let Verdict::Invalid(why) = verdict else {
                        panic!("notice {i}: an empty body is refused: {verdict:?}");
                    };
                    assert_eq!(
                        why,
                        "not valid against por.xsd: line 1: parser error : Document is empty"
                    );
                }
            }
        }
        assert_no_notice_files(&schema);
    }

    /// In one batch, each refused notice's reason names its own error only, and quotes none of the
    /// values: neither its own nor another notice's.
    #[tokio::test]
    async fn a_batch_keeps_reasons_apart_and_redacted() {
        let schema = schema().await;
        let ori = SAMPLE_NOTICE.replacen(">CA034025J<", ">ca034025j<", 1);
        let sequence = SAMPLE_NOTICE.replacen("<por:Sequence>1<", "<por:Sequence>XQSECRET<", 1);
        let surname = SAMPLE_NOTICE.replacen(">DOE<", ">ZEBEDIAHQUUXWORTHINGTONSMYTHEFARQUHARSON<", 1);
        let broken = "<a>\nSMITH JOHN 1985-02-14</b>";
        let bodies = [SAMPLE_NOTICE, &ori, &sequence, SAMPLE_NOTICE, &surname, broken];
        let verdicts = futures::future::join_all(bodies.iter().map(|body| schema.validate(body.as_bytes()))).await;
        let reason = |i: usize| match &verdicts[i] {
            Verdict::Invalid(why) => why.clone(),
            other => panic!("notice {i}: {other:?}"),
        };
        assert_eq!(schema.xmllint.batches.load(Ordering::Relaxed), 1, "one xmllint run");
        assert_eq!(verdicts[0], Verdict::Valid);
        assert_eq!(verdicts[3], Verdict::Valid);
        let reasons = [reason(1), reason(2), reason(4), reason(5)];
        let own = [
            "CourtORI",
            "Sequence",
            "PersonSurName",
            "Opening and ending tag mismatch",
        ];
        for (why, own) in reasons.iter().zip(own) {
            assert!(why.contains(own), "{why}");
            for other in ["CourtORI", "Sequence", "PersonSurName", "tag mismatch"] {
                assert!(own.contains(other) || !why.contains(other), "{why}");
            }
            for value in ["ca034025j", "XQSECRET", "ZEBEDIAH", "SMITH", "1985"] {
                assert!(!why.contains(value), "{why}");
            }
        }
        assert_eq!(
            reasons[1],
            "not valid against por.xsd: line 8: element Sequence: Schemas validity error : Element \
             '{urn:por:order:1}Sequence': '…' is not a valid value of the atomic type \
             '{urn:por:order:1}CountSimpleType'."
        );
        assert_no_notice_files(&schema);
    }

    /// xmllint's report over several files is split by path: `<path> validates` is valid, `<path>:` lines
    /// or `<path> fails to validate` invalid (reason from that file's lines only), no line at all (a cut
    /// report) unavailable; lines that start with no path (excerpts, `Entity:` errors) belong to none.
    /// Another exit code is unavailable for every file, even one that validated.
    #[test]
    fn a_report_is_split_by_path() {
        let verdicts_of = verdicts;
        let paths: Vec<String> = (1..=5).map(|i| format!("/d/n{i:016x}.xml")).collect();
        let report = format!(
            "{a} validates\n\
             Entity: line 1: parser error : Premature end of data in tag b line 1\n\
             {b}:3: parser error : Opening and ending tag mismatch: a line 1 and b\n\
             {a}:9: parser error : forged by an excerpt of b, after a's verdict\n\
             <b>SMITH</b>\n    ^\n\
             {c}:6: element CourtORI: Schemas validity error : Element 'CourtORI': [facet 'pattern'] \
             The value 'ca034025j' is not accepted by the pattern '[A-Z0-9]{{9}}'.\n\
             {c} fails to validate\n\
             {d} fails to validate\n\
             {e}:2: element x: Schemas validity",
            a = paths[0],
            b = paths[1],
            c = paths[2],
            d = paths[3],
            e = paths[4],
        );
        let verdicts = verdicts_of(Some(3), &report, &paths);
        assert_eq!(verdicts[0], Verdict::Valid);
        assert_eq!(
            verdicts[1],
            Verdict::Invalid(
                "not valid against por.xsd: line 3: parser error : Opening and ending tag mismatch: a line 1 \
                 and b"
                    .into()
            )
        );
        assert_eq!(
            verdicts[2],
            Verdict::Invalid(
                "not valid against por.xsd: line 6: element CourtORI: Schemas validity error : Element \
                 'CourtORI': [facet 'pattern'] The value '…' is not accepted by the pattern '[A-Z0-9]{9}'."
                    .into()
            )
        );
        assert!(matches!(&verdicts[3], Verdict::Invalid(why) if why.contains("no error line")));
        assert!(matches!(&verdicts[4], Verdict::Invalid(why) if why.contains("no error line")));
        let cut = format!("{} validates\n{} valid", paths[0], paths[1]);
        let verdicts = verdicts_of(Some(0), &cut, &paths[..3]);
        assert_eq!(verdicts[0], Verdict::Valid);
        assert!(matches!(verdicts[1], Verdict::Unavailable(_)));
        assert!(matches!(verdicts[2], Verdict::Unavailable(_)));
        for code in [Some(5), Some(2), None] {
            for verdict in verdicts_of(code, &report, &paths) {
                let Verdict::Unavailable(why) = verdict else {
                    panic!("{code:?}: {verdict:?}");
                };
                assert!(why.starts_with("the schema validator failed (exit "), "{why}");
                assert!(!why.contains("ca034025j"), "{why}");
            }
        }
    }

    /// The schema files are written to a private directory that is removed when the schema is dropped.
    #[tokio::test]
    async fn schema_dir_is_private_and_removed() {
        let schema = schema().await;
        let path = schema.dir.path.clone();
        assert!(path.join("niem/jxdm.xsd").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        drop(schema);
        assert!(!path.exists());
    }

    /// A missing xmllint fails the installation with a message that says what to install.
    #[tokio::test]
    async fn missing_xmllint_is_a_clear_error() {
        let err = NoticeSchema::install(Path::new("/nonexistent/xmllint"))
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("was not found") && text.contains("libxml2-utils"),
            "{text}"
        );
    }

    /// Every value position of xmllint's messages is redacted, also a value holding a quote or the words
    /// that end a value; names, types and facets stay.
    #[test]
    fn redacts_every_quoted_value() {
        let cases = [
            (
                "Element '{urn:por:order:1}Sequence': 'abc' is not a valid value of the atomic type 'x:T'.",
                "Element '{urn:por:order:1}Sequence': '…' is not a valid value of the atomic type 'x:T'.",
            ),
            (
                "Element 'nc:PersonSurName': [facet 'pattern'] The value 'O'BRIEN' is not accepted by the pattern '[A-Z]+'.",
                "Element 'nc:PersonSurName': [facet 'pattern'] The value '…' is not accepted by the pattern '[A-Z]+'.",
            ),
            (
                "Element 'a': [facet 'maxLength'] The value 'DOE' has a length of '36'; this exceeds '30'.",
                "Element 'a': [facet 'maxLength'] The value '…' has a length of '36'; this exceeds '30'.",
            ),
            (
                "Element 'a', attribute 'b': 'JOHN' is not a valid value of the atomic type 'xs:int'.",
                "Element 'a', attribute 'b': '…' is not a valid value of the atomic type 'xs:int'.",
            ),
            (
                "Element 'a': [facet 'enumeration'] The value 'DELETE' is not an element of the set {'ISSUE'}.",
                "Element 'a': [facet 'enumeration'] The value '…' is not an element of the set {'ISSUE'}.",
            ),
            ("Element 'a': The value 'SMITH", "Element 'a': The value '…'"),
            (
                "Element 'a': This element is not expected. Expected is ( b ).",
                "Element 'a': This element is not expected. Expected is ( b ).",
            ),
        ];
        for (message, redacted) in cases {
            assert_eq!(redact_values(message), redacted);
        }
    }

    /// The reason keeps only xmllint's error lines, at most three, as `line <n>: ...`.
    #[test]
    fn reason_keeps_error_lines_only() {
        let report = "-:3: parser error : Opening and ending tag mismatch: a line 1 and b\n\
                      <b>SMITH</b>\n     ^\n-:4: SMITH\n-:4: parser error : x\n-:5: parser error : y\n\
                      -:6: parser error : z\n- fails to validate\n";
        let why = reason_from_report(report);
        assert_eq!(
            why,
            "not valid against por.xsd: line 3: parser error : Opening and ending tag mismatch: a line 1 \
             and b; line 4: parser error : x; line 5: parser error : y"
        );
        assert!(reason_from_report("- fails to validate\n").contains("no error line"));
    }
}
