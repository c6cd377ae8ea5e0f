//! Validating a DOJ notice against `schemas/por.xsd` with libxml2's `xmllint`, independently of Porter's
//! own XML reader (ICD §7: invalid content is `422`).
//!
//! Design note:
//! - The schema set (`por.xsd` and the NIEM subsets it imports, `niem/niem-core.xsd` and
//!   `niem/jxdm.xsd`) is built into the simulator and written once, at start, to a private temporary
//!   directory (mode 0700, removed when the [`NoticeSchema`] is dropped). So the simulator works from any
//!   working directory, under `porter sim doj` and `porter demo` alike.
//! - [`NoticeSchema::install`] also validates a shipped sample notice: a missing `xmllint` (or a schema
//!   that does not compile) fails the simulator's start with a clear message, not every request.
//! - Each validation runs `xmllint --noout --nonet --schema <dir>/por.xsd -` with the body on stdin
//!   (`--nonet`: nothing is fetched from the network; no `--noent`, `--loaddtd` or `--xinclude`, so no
//!   entity is substituted and no external file is read). At most [`NoticeSchema::permits`] run at once
//!   (one per core, a semaphore); each may take [`VALIDATION_TIMEOUT`], after which the process is killed
//!   and the request answered `503` (the simulator could not tell, so the sender should retry).
//! - xmllint exits 0 for a valid document, 1 for one that is not well-formed and 3 or 4 for one the
//!   schema refuses; anything else is the simulator's own failure (`503`, logged at ERROR).
//! - The reason of a refusal is xmllint's own message ([`reason_from_report`]): only its error lines
//!   (`-:<line>: ...`), never the document excerpts libxml2 prints under a parser error, and every value
//!   it quotes replaced by `'…'` (`The value '…' is not accepted by the pattern ...`), so no personal data
//!   reaches reasons or logs. Element and attribute names, types and facets stay: they are structure.
//! - At most [`MAX_REPORT_BYTES`] of xmllint's report are read (the rest is drained unread), and at most
//!   [`MAX_REASON_ERRORS`] errors make the reason.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;
use tokio::sync::Semaphore;

/// `schemas/por.xsd`, built in.
const POR_XSD: &str = include_str!("../../../schemas/por.xsd");
/// `schemas/niem/niem-core.xsd`, imported by `por.xsd` and `jxdm.xsd`.
const NIEM_CORE_XSD: &str = include_str!("../../../schemas/niem/niem-core.xsd");
/// `schemas/niem/jxdm.xsd`, imported by `por.xsd`.
const JXDM_XSD: &str = include_str!("../../../schemas/niem/jxdm.xsd");
/// A valid notice (`schemas/samples/issue.xml`), validated once at start to prove the set-up works.
const SAMPLE_NOTICE: &str = include_str!("../../../schemas/samples/issue.xml");

/// The longest one validation may take before its process is killed.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of xmllint's report is read.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;

/// How many of xmllint's errors make a reason.
pub const MAX_REASON_ERRORS: usize = 3;

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
    xmllint: PathBuf,
    dir: SchemaDir,
    permits: Arc<Semaphore>,
    limit: usize,
}

impl NoticeSchema {
    /// Writes the schema set to a new private temporary directory and validates a shipped sample with
    /// `xmllint` (a program name looked up on `PATH`, or a path). Fails with a clear message when
    /// `xmllint` is missing or refuses the set-up.
    pub async fn install(xmllint: &Path) -> anyhow::Result<Self> {
        let dir = SchemaDir::create().context("could not write the DOJ simulator's schema files")?;
        let limit = std::thread::available_parallelism().map_or(1, usize::from);
        let schema = Self {
            xmllint: xmllint.to_owned(),
            dir,
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        };
        match schema.run(SAMPLE_NOTICE.as_bytes()).await {
            Ok(Verdict::Valid) => Ok(schema),
            Ok(Verdict::Invalid(why) | Verdict::Unavailable(why)) => Err(anyhow::anyhow!(
                "{} refused the shipped sample notice against por.xsd: {why}",
                xmllint.display()
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(anyhow::anyhow!(
                "{} was not found: the DOJ simulator validates notices against schemas/por.xsd with \
                 xmllint (libxml2); install it (Debian, Ubuntu: apt-get install libxml2-utils) or set \
                 the simulator's `xmllint` to its path",
                xmllint.display()
            )),
            Err(e) => Err(anyhow::anyhow!("{} could not be run: {e}", xmllint.display())),
        }
    }

    /// How many validations may run at once.
    pub fn permits(&self) -> usize {
        self.limit
    }

    /// Validates a notice; waits for a free permit first.
    pub async fn validate(&self, body: &[u8]) -> Verdict {
        let Ok(_permit) = self.permits.acquire().await else {
            return Verdict::Unavailable("the schema validator is shut down".into());
        };
        match self.run(body).await {
            Ok(Verdict::Unavailable(why)) => {
                tracing::warn!(reason = %why, "DOJ simulator could not validate a notice.");
                Verdict::Unavailable(why)
            }
            Ok(verdict) => verdict,
            Err(e) => {
                tracing::error!(xmllint = %self.xmllint.display(), error = %e, "DOJ simulator could not run xmllint.");
                Verdict::Unavailable(format!("the schema validator could not run: {e}"))
            }
        }
    }

    /// One `xmllint` run over `body`, bounded by [`VALIDATION_TIMEOUT`]. `Err` when it could not start.
    async fn run(&self, body: &[u8]) -> std::io::Result<Verdict> {
        let mut child = Command::new(&self.xmllint)
            .args(["--noout", "--nonet", "--schema"])
            .arg(self.dir.por_xsd())
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(mut stdin), Some(stderr)) = (child.stdin.take(), child.stderr.take()) else {
            return Err(std::io::Error::other("xmllint's pipes were not set up"));
        };
        let feed = async move {
            // xmllint may stop reading early (a fatal parser error): a broken pipe is not our failure.
            let _ = stdin.write_all(body).await;
            drop(stdin);
        };
        let work = async {
            let ((), report, status) = tokio::join!(feed, read_bounded(stderr), child.wait());
            Ok::<_, std::io::Error>((report?, status?))
        };
        let Ok(finished) = tokio::time::timeout(VALIDATION_TIMEOUT, work).await else {
            // Dropping the child (kill_on_drop) ends the process.
            return Ok(Verdict::Unavailable(format!(
                "the schema validation took longer than {} s",
                VALIDATION_TIMEOUT.as_secs()
            )));
        };
        let (report, status) = finished?;
        let report = String::from_utf8_lossy(&report);
        Ok(match status.code() {
            Some(0) => Verdict::Valid,
            Some(1 | 3 | 4) => Verdict::Invalid(reason_from_report(&report)),
            code => Verdict::Unavailable(format!(
                "the schema validator failed (exit {}): {}",
                code.map_or_else(|| "by a signal".to_owned(), |c| c.to_string()),
                reason_from_report(&report)
            )),
        })
    }
}

/// Reads at most [`MAX_REPORT_BYTES`] of a pipe, then drains the rest unread, so the writer never blocks.
async fn read_bounded(mut pipe: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(kept);
        }
        let room = MAX_REPORT_BYTES.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// The reason for a `422` from xmllint's report: its first [`MAX_REASON_ERRORS`] error lines
/// (`-:<n>: ... error : ...`), as `line <n>: <message>`, with quoted values redacted
/// ([`redact_values`]). The document excerpts libxml2 prints under parser errors, warnings, and its
/// closing `- fails to validate`, are left out.
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
        let _ = std::fs::remove_dir_all(&self.path);
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
