//! Examining inbound messages: properties, parse, validate, route, and a
//! trial translation, giving the [`Verdict`] the store records.
//!
//! Synchronous and without I/O, so it is tested directly and runs on the
//! blocking pool. It never panics on any input; everything wrong becomes a
//! field-level error.
//!
//! Examination has three stages, private to this module so that none can
//! be skipped or run twice: `read` (properties, parse), `check`
//! (validation) and `decide` (routing, trial translation). [`examine`] runs
//! them for one message; [`examine_batch`], which the intake uses, runs
//! each over a whole batch before the next.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::AMQPValue;
use sha2::{Digest, Sha256};

use crate::config::CourtConfig;
use crate::formats::fixed::Layout;
use crate::formats::xml::{XmlLimits, read_order};
use crate::formats::{MAX_MESSAGE_BYTES, Parsed};
use crate::mapping::clets::CletsTables;
use crate::mapping::code_map::CodeMap;
use crate::mapping::codes::CodeLists;
use crate::model::{ErrorCode, FieldError, OrderMessage, PartnerId};
use crate::store::{InboundMessage, IntakeItem, Verdict};
use crate::translate::clets::translate;
use crate::validate::{ValidationContext, merge, validate};

/// `message_id` is at most 64 characters (ICD §1).
pub const MAX_MESSAGE_ID: usize = 64;

/// Everything read from `schemas/` and `mappings/` at start.
pub struct Formats {
    /// Layouts by name (`cms-a/1`, …), each with its default code-map set attached.
    pub layouts: HashMap<String, Layout>,
    /// Code-map sets by name (`cms-b`, …), from `mappings/code-maps/`.
    pub code_maps: HashMap<String, Arc<CodeMap>>,
    pub codes: CodeLists,
    pub clets: CletsTables,
    pub xml_limits: XmlLimits,
}

impl Formats {
    /// The code-map set for `court`'s messages in `layout`: the court's own
    /// (`code_map` in its configuration), else the layout's default; `None`
    /// when the codes are canonical.
    pub fn code_map_for<'a>(&'a self, court: &CourtConfig, layout: &'a Layout) -> Option<&'a CodeMap> {
        match &court.code_map {
            Some(name) => self.code_maps.get(name).map(Arc::as_ref),
            None => layout.code_map(),
        }
    }
}

/// The AMQP properties the intake reads (ICD §1).
#[derive(Debug, Clone, Default)]
pub struct InboundProperties {
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    pub delivery_mode: Option<u8>,
    pub user_id: Option<String>,
    pub timestamp: Option<u64>,
    /// The `x-por-layout` header.
    pub layout: Option<String>,
}

impl InboundProperties {
    pub fn from_amqp(p: &BasicProperties) -> InboundProperties {
        let layout = p.headers().as_ref().and_then(|h| match h.inner().get("x-por-layout") {
            Some(AMQPValue::LongString(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            Some(AMQPValue::ShortString(s)) => Some(s.as_str().to_string()),
            _ => None,
        });
        InboundProperties {
            message_id: p.message_id().as_ref().map(|s| s.as_str().to_string()),
            content_type: p.content_type().as_ref().map(|s| s.as_str().to_string()),
            delivery_mode: *p.delivery_mode(),
            user_id: p.user_id().as_ref().map(|s| s.as_str().to_string()),
            timestamp: *p.timestamp(),
            layout,
        }
    }
}

/// Reads what every inbound message has, valid or not: its hash, its
/// `message_id` exactly as it came (empty when missing), its content type
/// (kept printable), and the property errors.
///
/// The `message_id` is kept as it came even when it breaks ICD §1 (too
/// long, control characters): ICD §4 answers with it as the status's
/// `correlation_id`. Such a message is always rejected (see
/// [`message_id_errors`]), and the store keys it apart from every valid id
/// (see `crate::store::sql::intake`).
pub fn receive(court: &CourtConfig, props: &InboundProperties, body: &[u8]) -> (InboundMessage, Vec<FieldError>) {
    let body_sha256 = hex::encode(Sha256::digest(body));
    let message_id = props.message_id.clone().unwrap_or_default();
    let mut errors = message_id_errors(&message_id);
    if props.delivery_mode != Some(2) {
        errors.push(FieldError::new(
            ErrorCode::InvalidFormat,
            "delivery_mode",
            "messages must be published persistent (delivery_mode 2)",
        ));
    }
    // Stored and echoed: keep it printable and short whatever was sent.
    let content_type: String = props
        .content_type
        .clone()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(100)
        .collect();
    let inbound = InboundMessage {
        court_ori: court.ori.clone(),
        message_id,
        body: body.to_vec(),
        body_sha256,
        content_type,
        layout: None,
        received_at: Utc::now(),
    };
    (inbound, errors)
}

/// What is wrong with a `message_id` under ICD §1, as field-level errors
/// (none for a valid one): missing or empty (`MISSING`), control
/// characters (`INVALID_FORMAT`), over [`MAX_MESSAGE_ID`] characters
/// (`TOO_LONG`). A message with any of them is rejected.
pub fn message_id_errors(message_id: &str) -> Vec<FieldError> {
    if message_id.is_empty() {
        return vec![FieldError::new(
            ErrorCode::Missing,
            "message_id",
            "the AMQP message_id property is required",
        )];
    }
    let mut errors = Vec::new();
    if let Some((at, c)) = message_id.chars().enumerate().find(|(_, c)| c.is_control()) {
        errors.push(FieldError::new(
            ErrorCode::InvalidFormat,
            "message_id",
            format!(
                "message_id contains control characters (the first: U+{:04X} at character {})",
                u32::from(c),
                at + 1
            ),
        ));
    }
    let length = message_id.chars().count();
    if length > MAX_MESSAGE_ID {
        errors.push(FieldError::new(
            ErrorCode::TooLong,
            "message_id",
            format!("message_id has {length} characters; at most {MAX_MESSAGE_ID}"),
        ));
    }
    errors
}

/// Examines one message from `court`'s queue.
pub fn examine(court: &CourtConfig, props: &InboundProperties, body: &[u8], formats: &Formats) -> IntakeItem {
    let mut reading = read(court, props, body, formats);
    check(&mut reading, court, props, formats);
    decide(reading, formats)
}

/// One delivery to examine: its court, its properties and its body.
pub struct Delivered<'a> {
    pub court: &'a CourtConfig,
    pub props: InboundProperties,
    pub body: &'a [u8],
}

/// Examines a batch stage by stage: every delivery is read, then every one
/// checked, then every one decided. The verdicts are exactly [`examine`]'s,
/// in the batch's order.
///
/// Staged, each stage's code runs over the whole batch while it is in the
/// CPU's caches, instead of the reader, the validator and the translator
/// taking turns for each message and evicting one another (about a fifth
/// less time per order in the `cms-a-1-batch` bench).
///
/// A panic in any stage (a bug, never expected) rejects only the delivery
/// it happened on, with an internal error, instead of stranding the batch.
pub fn examine_batch(batch: &[Delivered<'_>], formats: &Formats) -> Vec<IntakeItem> {
    let mut readings: Vec<Option<Reading>> = batch
        .iter()
        .map(|d| guarded(d, || read(d.court, &d.props, d.body, formats)))
        .collect();
    for (d, slot) in batch.iter().zip(readings.iter_mut()) {
        if let Some(reading) = slot
            && guarded(d, || check(reading, d.court, &d.props, formats)).is_none()
        {
            *slot = None;
        }
    }
    batch
        .iter()
        .zip(readings)
        .map(|(d, slot)| {
            slot.and_then(|reading| guarded(d, || decide(reading, formats)))
                .unwrap_or_else(|| internal_error(d))
        })
        .collect()
}

/// Runs one stage for one delivery; `None` if it panicked.
fn guarded<T>(d: &Delivered<'_>, stage: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(stage)) {
        Ok(done) => Some(done),
        Err(_) => {
            tracing::error!(court = %d.court.ori, "Examining a message panicked; it is rejected as a dead letter. This is a bug.");
            None
        }
    }
}

/// The verdict for a delivery whose examination panicked.
#[cold]
fn internal_error(d: &Delivered<'_>) -> IntakeItem {
    let error = FieldError::new(
        ErrorCode::InvalidFormat,
        "message",
        "Porter could not read this message (internal error); operators have been alerted",
    );
    let (inbound, _) = receive(d.court, &d.props, d.body);
    IntakeItem {
        inbound,
        verdict: Verdict::Rejected {
            order_number: None,
            sequence: None,
            errors: vec![error],
        },
    }
}

/// One delivery between the stages of its examination: what [`read`]
/// found, checked by [`check`], then turned into a verdict by [`decide`].
struct Reading {
    inbound: InboundMessage,
    errors: Vec<FieldError>,
    parsed: Parsed,
    /// The body was parsed (known content type and layout, not too large),
    /// so its content is validated.
    attempted: bool,
}

/// Stage 1: the properties, then the body parsed in its format (court
/// codes mapped to canonical ones for fixed-width).
fn read(court: &CourtConfig, props: &InboundProperties, body: &[u8], formats: &Formats) -> Reading {
    let (mut inbound, mut errors) = receive(court, props, body);
    let mut attempted = true;
    let parsed = if body.len() > MAX_MESSAGE_BYTES {
        errors.push(FieldError::new(
            ErrorCode::TooLong,
            "message",
            format!("{} bytes; at most {MAX_MESSAGE_BYTES}", body.len()),
        ));
        attempted = false;
        Parsed::default()
    } else {
        match inbound.content_type.as_str() {
            "application/xml" => read_order(body, &formats.xml_limits),
            "text/plain" => {
                let name = props
                    .layout
                    .clone()
                    .unwrap_or_else(|| court.default_layout().to_string());
                match formats.layouts.get(&name).filter(|_| court.layouts.contains(&name)) {
                    Some(layout) => {
                        // Court codes are mapped to canonical ones here, after
                        // parsing and before validation.
                        let mut parsed = layout.read_order_with(body, formats.code_map_for(court, layout));
                        parsed.message.sent_at = props.timestamp.and_then(sent_at);
                        inbound.layout = Some(name);
                        parsed
                    }
                    None => {
                        errors.push(FieldError::new(
                            ErrorCode::InvalidCode,
                            "x-por-layout",
                            format!("layout {name:?} is not configured for court {}", court.ori),
                        ));
                        attempted = false;
                        Parsed::default()
                    }
                }
            }
            other => {
                errors.push(FieldError::new(
                    ErrorCode::InvalidFormat,
                    "content_type",
                    format!("{other:?} is neither application/xml nor text/plain"),
                ));
                attempted = false;
                Parsed::default()
            }
        }
    };
    Reading {
        inbound,
        errors,
        parsed,
        attempted,
    }
}

/// Stage 2: the stateless checks of a parsed body ([`validate`]), merged
/// with the reader's own errors.
fn check(reading: &mut Reading, court: &CourtConfig, props: &InboundProperties, formats: &Formats) {
    // The tests' stand-in for a bug: a panic in the middle of a batch.
    #[cfg(test)]
    if props.message_id.as_deref() == Some(tests::PANICS_IN_CHECK) {
        panic!("a bug in the check stage");
    }
    if !reading.attempted {
        return;
    }
    let ctx = ValidationContext {
        queue_court_ori: &court.ori,
        user_id: props.user_id.as_deref(),
        amqp_users: &court.amqp_users,
        codes: &formats.codes,
    };
    let parsed = &mut reading.parsed;
    let checked = validate(&parsed.message, &parsed.locations, &ctx);
    reading
        .errors
        .extend(merge(std::mem::take(&mut parsed.errors), checked));
}

/// Stage 3: the verdict. A message without errors is routed and given a
/// trial translation for each partner ([`accept`]), which may still
/// reject it.
fn decide(reading: Reading, formats: &Formats) -> IntakeItem {
    let Reading {
        inbound,
        errors,
        parsed,
        ..
    } = reading;
    let message = parsed.message;
    let verdict = if errors.is_empty() {
        accept(message, formats)
    } else {
        reject(&message, errors)
    };
    IntakeItem { inbound, verdict }
}

fn sent_at(ts: u64) -> Option<DateTime<chrono::FixedOffset>> {
    DateTime::from_timestamp(i64::try_from(ts).ok()?, 0)
        .map(|t| t.with_timezone(&chrono_tz::America::Los_Angeles).fixed_offset())
}

fn reject(message: &OrderMessage, errors: Vec<FieldError>) -> Verdict {
    Verdict::Rejected {
        order_number: message.order_number().map(str::to_string),
        sequence: message.sequence,
        errors,
    }
}

/// Routes a valid message and checks that each partner can take it.
fn accept(message: OrderMessage, formats: &Formats) -> Verdict {
    // Stage 1 of routing (see `crate::routing`): every order goes to CLETS;
    // the store adds DOJ and the agencies from the order's state.
    let partners = vec![PartnerId::Clets];
    let mut warnings = Vec::new();
    if partners.contains(&PartnerId::Clets) {
        // The real NIC is known only at delivery; a placeholder of the
        // right shape lets every key be checked now.
        match translate(&message, Some("X000000000"), 0, &formats.clets) {
            Ok(t) => warnings.extend(t.warnings),
            Err(errors) => return reject(&message, errors),
        }
    }
    let canonical_sha256 = canonical_sha256(&message);
    Verdict::Accepted {
        order: Box::new(message),
        canonical_sha256,
        partners,
        warnings,
    }
}

/// SHA-256 of the canonical content: the message without its send time,
/// which a corrected resend may change (ICD §5).
pub fn canonical_sha256(message: &OrderMessage) -> String {
    let mut m = message.clone();
    m.sent_at = None;
    let json = serde_json::to_vec(&m).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn court() -> CourtConfig {
        toml::from_str("ori = \"CA034025J\"\nsheriff_ori = \"CA0340000\"").expect("a court")
    }

    /// The `message_id` that makes the check stage panic (see `check`).
    pub(super) const PANICS_IN_CHECK: &str = "test-panics-in-check";

    fn repo() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn formats() -> Formats {
        let text = format!(
            "[paths]\nschemas = \"{0}/schemas\"\nmappings = \"{0}/mappings\"\n\n[[courts]]\nori = \"CA034025J\"\nsheriff_ori = \"CA0340000\"\n",
            repo().display()
        );
        let config = crate::config::Config::from_toml_str(&text, &repo().join("porter.toml")).expect("a config");
        crate::broker::load_formats(&config).expect("the shipped formats")
    }

    fn props(message_id: &str, content_type: &str) -> InboundProperties {
        InboundProperties {
            message_id: Some(message_id.into()),
            content_type: Some(content_type.into()),
            delivery_mode: Some(2),
            ..Default::default()
        }
    }

    /// A panic in the middle of a staged batch (here in the check stage of
    /// the second of three deliveries) rejects that delivery alone, with an
    /// internal error under its own `message_id`. The deliveries before and
    /// after it get exactly the verdicts `examine` gives them: nothing is
    /// lost, and the batch is not failed.
    #[test]
    fn a_panic_in_a_stage_rejects_only_its_own_delivery() {
        let court = court();
        let formats = formats();
        let fixed = std::fs::read(repo().join("tests/fixtures/fixed/issue-sample.txt")).unwrap();
        let xml = std::fs::read(repo().join("tests/fixtures/xml/issue-sample.xml")).unwrap();
        let batch = [
            Delivered {
                court: &court,
                props: props("m-1", "text/plain"),
                body: &fixed,
            },
            Delivered {
                court: &court,
                props: props(PANICS_IN_CHECK, "text/plain"),
                body: &fixed,
            },
            Delivered {
                court: &court,
                props: props("m-3", "application/xml"),
                body: &xml,
            },
        ];
        let items = examine_batch(&batch, &formats);
        assert_eq!(items.len(), 3);
        for i in [0, 2] {
            let alone = examine(batch[i].court, &batch[i].props, batch[i].body, &formats);
            assert!(matches!(alone.verdict, Verdict::Accepted { .. }), "{alone:?}");
            assert_eq!(format!("{:?}", items[i].verdict), format!("{:?}", alone.verdict));
            assert_eq!(items[i].inbound.message_id, alone.inbound.message_id);
        }
        assert_eq!(items[1].inbound.message_id, PANICS_IN_CHECK);
        match &items[1].verdict {
            Verdict::Rejected { errors, .. } => {
                assert_eq!(errors.len(), 1);
                assert!(errors[0].text.contains("internal error"), "{errors:?}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    /// A `message_id` that breaks ICD §1 is kept exactly as it came (the
    /// status answers with it as `correlation_id`), with a field-level
    /// error on `message_id`: over 64 characters is `TOO_LONG` (not cut to
    /// 64), control characters are `INVALID_FORMAT` (not replaced by a
    /// synthetic id), both give both errors, and a missing one is an empty
    /// id with `MISSING`.
    #[test]
    fn a_rule_breaking_message_id_is_kept_exactly_with_its_error() {
        let court = court();
        let long = "L".repeat(100);
        let control = "tab\there-\u{1}-nul\0".to_string();
        let both = format!("{long}\u{7}");
        let cases: [(Option<&str>, &[ErrorCode]); 4] = [
            (Some(long.as_str()), &[ErrorCode::TooLong]),
            (Some(control.as_str()), &[ErrorCode::InvalidFormat]),
            (Some(both.as_str()), &[ErrorCode::InvalidFormat, ErrorCode::TooLong]),
            (None, &[ErrorCode::Missing]),
        ];
        for (id, codes) in cases {
            let props = InboundProperties {
                message_id: id.map(str::to_string),
                ..props("", "application/xml")
            };
            let (inbound, errors) = receive(&court, &props, b"<x/>");
            assert_eq!(inbound.message_id, id.unwrap_or(""), "kept exactly");
            let found: Vec<ErrorCode> = errors.iter().map(|e| e.code).collect();
            assert_eq!(found, codes, "{id:?}: {errors:?}");
            assert!(errors.iter().all(|e| e.field == "message_id"), "{errors:?}");
        }
    }

    /// A valid `message_id` (up to 64 characters, no control characters,
    /// any other Unicode) has no error; 64 characters is still valid.
    #[test]
    fn a_valid_message_id_has_no_error() {
        for id in ["m-1", &"x".repeat(MAX_MESSAGE_ID), "caf\u{e9} \u{2014} 1"] {
            assert!(message_id_errors(id).is_empty(), "{id:?}");
        }
        let errors = message_id_errors("a\u{1}b");
        assert!(errors[0].text.contains("U+0001 at character 2"), "{errors:?}");
    }

    /// The guard passes a stage's result on, and turns a panic into `None`.
    #[test]
    fn the_guard_turns_a_panic_into_none() {
        let court = court();
        let d = Delivered {
            court: &court,
            props: props("m-1", "text/plain"),
            body: b"O",
        };
        assert_eq!(guarded(&d, || 7), Some(7));
        let panicked: Option<()> = guarded(&d, || panic!("a bug in a stage"));
        assert!(panicked.is_none());
    }
}
