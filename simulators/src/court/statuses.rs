//! Reads the statuses Porter sends back (ICD §4) and keeps track of which sent
//! messages are complete.
//!
//! A court may receive statuses at least once and in any order; only
//! `por:StatusSequence` orders them. The tracker therefore keeps, per sent
//! message, the first-group status (`ACCEPTED`, `REJECTED`,
//! `CONFLICT_REJECTED`) with the partners it was routed to, and per partner
//! the status with the highest status sequence. A message is complete when it
//! was rejected, or when it was accepted and every routed partner has
//! `PARTNER_ACCEPTED`, `PARTNER_REJECTED` or `DEAD_LETTERED`. All three
//! partner outcomes are final for the simulator, so a complete message stays
//! complete (a replay may still change which outcome it is).
//!
//! Statuses for message ids this run did not send are acknowledged and
//! dropped: a court's queue may hold statuses of earlier runs. Anything that
//! contradicts the ICD (a status naming another court or order, a partner
//! status after a rejection, a partner that was not routed) is recorded as an
//! anomaly for the report.
//!
//! For the run's timings (see [`super::timings`]) the tracker also keeps, per
//! message, when it was published, when its first `ACCEPTED` arrived, when
//! each partner's first `PARTNER_ACCEPTED` arrived, and when it became
//! complete.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, FixedOffset};
use futures::StreamExt;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use tokio::sync::Notify;
use tracing::warn;

use super::orders::GeneratedMessage;
use super::timings::TimingSamples;
use super::xml::POR_NS;

/// The ICD §4 status values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    /// Parsed, valid and durably taken; lists the routed partners.
    Accepted,
    /// Invalid; nothing follows.
    Rejected,
    /// The same message id arrived again with another body.
    ConflictRejected,
    /// A partner took the message (with its record ids).
    PartnerAccepted,
    /// A partner refused the message permanently.
    PartnerRejected,
    /// Retries ran out, the sequence gap timed out, or the order is unknown.
    DeadLettered,
}

impl StatusKind {
    const ALL: [StatusKind; 6] = [
        StatusKind::Accepted,
        StatusKind::Rejected,
        StatusKind::ConflictRejected,
        StatusKind::PartnerAccepted,
        StatusKind::PartnerRejected,
        StatusKind::DeadLettered,
    ];

    /// The wire spelling, e.g. `PARTNER_ACCEPTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Accepted => "ACCEPTED",
            StatusKind::Rejected => "REJECTED",
            StatusKind::ConflictRejected => "CONFLICT_REJECTED",
            StatusKind::PartnerAccepted => "PARTNER_ACCEPTED",
            StatusKind::PartnerRejected => "PARTNER_REJECTED",
            StatusKind::DeadLettered => "DEAD_LETTERED",
        }
    }

    /// Reads the wire spelling.
    pub fn parse(s: &str) -> Option<StatusKind> {
        StatusKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// `ACCEPTED`, `REJECTED` or `CONFLICT_REJECTED`: exactly one per message.
    pub fn is_first_group(self) -> bool {
        matches!(
            self,
            StatusKind::Accepted | StatusKind::Rejected | StatusKind::ConflictRejected
        )
    }

    /// A rejection of the message itself, after which nothing follows.
    pub fn is_rejection(self) -> bool {
        matches!(self, StatusKind::Rejected | StatusKind::ConflictRejected)
    }
}

/// A partner's record id, e.g. scheme `NIC` and id `H000000001`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRecordId {
    /// `NIC`, `FCN`, `tracking_id`, ….
    pub scheme: String,
    /// The partner's id.
    pub id: String,
}

/// One `por:Error` or `por:Warning`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusNote {
    /// ICD §4 error code, e.g. `INVALID_CODE`.
    pub code: String,
    /// The canonical field path.
    pub field: String,
    /// `record:column`, `line:column` or an element path.
    pub location: String,
    /// Why, in words.
    pub text: String,
}

/// One `por:OrderStatusMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStatus {
    /// The court the status is for.
    pub court_ori: String,
    /// Absent when Porter could not read it.
    pub order_number: Option<String>,
    /// The message's sequence; absent when Porter could not read it.
    pub sequence: Option<u32>,
    /// The inbound `message_id` this status is about.
    pub correlates_to: String,
    /// Orders the statuses of one inbound message.
    pub status_sequence: u32,
    /// When Porter issued the status.
    pub status_at: DateTime<FixedOffset>,
    /// What happened.
    pub status: StatusKind,
    /// For partner statuses: `CLETS`, `DOJ` or `LEA:<ORI>`.
    pub partner: Option<String>,
    /// For `ACCEPTED`: where the message was routed.
    pub routed_partners: Vec<String>,
    /// For `PARTNER_ACCEPTED`: the partner's record ids.
    pub partner_record_ids: Vec<PartnerRecordId>,
    /// `por:Error`s: why a message or partner rejected it.
    pub errors: Vec<StatusNote>,
    /// `por:Warning`s, e.g. a shortened name.
    pub warnings: Vec<StatusNote>,
}

/// Why a status body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatusParseError {
    /// Not well-formed XML.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// DTDs are refused.
    #[error("a DOCTYPE is not accepted")]
    DocType,
    /// Some other document.
    #[error("the root is not a por:OrderStatusMessage")]
    NotAStatus,
    /// A required element is missing or empty.
    #[error("por:{0} is missing")]
    Missing(&'static str),
    /// An element's value has the wrong form.
    #[error("por:{field} has an invalid value {value:?}")]
    Invalid {
        /// The element's local name.
        field: &'static str,
        /// What it held.
        value: String,
    },
}

/// Reads an ICD §4 status. Elements are matched by namespace, not prefix;
/// unknown elements are skipped.
pub fn parse_status(xml: &[u8]) -> Result<OrderStatus, StatusParseError> {
    let mut reader = NsReader::from_reader(xml);
    // Names of the open elements; `None` for one outside the Porter namespace.
    let mut stack: Vec<Option<String>> = Vec::new();
    let mut text = String::new();
    let mut fields: HashMap<&'static str, String> = HashMap::new();
    let mut routed = Vec::new();
    let mut record_ids = Vec::new();
    let mut scheme = String::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut note: Option<StatusNote> = None;
    let xml_error = |e: &dyn std::fmt::Display| StatusParseError::Xml(e.to_string());

    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| xml_error(&e))?;
        let in_por = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == POR_NS.as_bytes());
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() && !(in_por && local == "OrderStatusMessage") {
                    return Err(StatusParseError::NotAStatus);
                }
                let name = in_por.then_some(local);
                if stack.len() == 1 {
                    match name.as_deref() {
                        Some("PartnerRecordID") => {
                            scheme = match e.try_get_attribute("scheme").map_err(|e| xml_error(&e))? {
                                Some(a) => a.unescape_value().map_err(|e| xml_error(&e))?.into_owned(),
                                None => String::new(),
                            };
                        }
                        Some("Error") | Some("Warning") => note = Some(StatusNote::default()),
                        _ => {}
                    }
                }
                text.clear();
                stack.push(name);
                if matches!(event, Event::Empty(_)) {
                    close(
                        &mut stack,
                        &mut text,
                        &mut Closing {
                            fields: &mut fields,
                            routed: &mut routed,
                            record_ids: &mut record_ids,
                            scheme: &scheme,
                            note: &mut note,
                            errors: &mut errors,
                            warnings: &mut warnings,
                        },
                    );
                }
            }
            Event::End(_) => close(
                &mut stack,
                &mut text,
                &mut Closing {
                    fields: &mut fields,
                    routed: &mut routed,
                    record_ids: &mut record_ids,
                    scheme: &scheme,
                    note: &mut note,
                    errors: &mut errors,
                    warnings: &mut warnings,
                },
            ),
            Event::Text(t) => text.push_str(&t.decode().map_err(|e| xml_error(&e))?),
            Event::CData(t) => text.push_str(&t.decode().map_err(|e| xml_error(&e))?),
            Event::GeneralRef(r) => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| xml_error(&e))? {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| xml_error(&e))?;
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| StatusParseError::Xml(format!("unknown entity &{name};")))?;
                    text.push_str(resolved);
                }
            }
            Event::DocType(_) => return Err(StatusParseError::DocType),
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(StatusParseError::Xml("unexpected end of document".into()));
    }

    let required = |fields: &mut HashMap<&'static str, String>, name: &'static str| {
        fields
            .remove(name)
            .filter(|v| !v.is_empty())
            .ok_or(StatusParseError::Missing(name))
    };
    let number = |field: &'static str, value: String| {
        value
            .parse::<u32>()
            .map_err(|_| StatusParseError::Invalid { field, value })
    };
    let status_text = required(&mut fields, "Status")?;
    let status = StatusKind::parse(&status_text).ok_or(StatusParseError::Invalid {
        field: "Status",
        value: status_text,
    })?;
    let status_at_text = required(&mut fields, "StatusDateTime")?;
    let status_at = DateTime::parse_from_rfc3339(&status_at_text).map_err(|_| StatusParseError::Invalid {
        field: "StatusDateTime",
        value: status_at_text,
    })?;
    Ok(OrderStatus {
        court_ori: required(&mut fields, "CourtORI")?,
        order_number: fields.remove("OrderNumber").filter(|v| !v.is_empty()),
        sequence: match fields.remove("Sequence").filter(|v| !v.is_empty()) {
            Some(v) => Some(number("Sequence", v)?),
            None => None,
        },
        correlates_to: required(&mut fields, "CorrelatesTo")?,
        status_sequence: number("StatusSequence", required(&mut fields, "StatusSequence")?)?,
        status_at,
        status,
        partner: fields.remove("Partner").filter(|v| !v.is_empty()),
        routed_partners: routed,
        partner_record_ids: record_ids,
        errors,
        warnings,
    })
}

/// Where a closing element's text goes.
struct Closing<'a> {
    fields: &'a mut HashMap<&'static str, String>,
    routed: &'a mut Vec<String>,
    record_ids: &'a mut Vec<PartnerRecordId>,
    scheme: &'a str,
    note: &'a mut Option<StatusNote>,
    errors: &'a mut Vec<StatusNote>,
    warnings: &'a mut Vec<StatusNote>,
}

/// Closes the innermost element and stores its text by its path.
fn close(stack: &mut Vec<Option<String>>, text: &mut String, to: &mut Closing<'_>) {
    let depth = stack.len();
    let Some(name) = stack.pop() else { return };
    let value = text.trim().to_string();
    text.clear();
    let Some(name) = name else { return };
    match depth {
        2 => match name.as_str() {
            "RoutedPartner" => to.routed.push(value),
            "PartnerRecordID" => to.record_ids.push(PartnerRecordId {
                scheme: to.scheme.to_string(),
                id: value,
            }),
            "Error" => to.errors.extend(to.note.take()),
            "Warning" => to.warnings.extend(to.note.take()),
            other => {
                const SINGLE: [&str; 8] = [
                    "CourtORI",
                    "OrderNumber",
                    "Sequence",
                    "CorrelatesTo",
                    "StatusSequence",
                    "StatusDateTime",
                    "Status",
                    "Partner",
                ];
                if let Some(key) = SINGLE.iter().find(|k| **k == other) {
                    to.fields.insert(key, value);
                }
            }
        },
        3 if matches!(stack.get(1), Some(Some(p)) if p == "Error" || p == "Warning") => {
            if let Some(note) = to.note.as_mut() {
                match name.as_str() {
                    "Code" => note.code = value,
                    "Field" => note.field = value,
                    "Location" => note.location = value,
                    "Text" => note.text = value,
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// One human-readable line for a status, e.g.
/// `CA034025J  24DV01234       seq 1   ca034025j-m1x2-000001  PARTNER_ACCEPTED CLETS NIC=H000000001 FCN=0340000012345`.
pub fn status_line(status: &OrderStatus) -> String {
    let mut line = format!(
        "{:<9}  {:<15} seq {:<3} {}  {}",
        status.court_ori,
        status.order_number.as_deref().unwrap_or("?"),
        status.sequence.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
        status.correlates_to,
        status.status.as_str(),
    );
    if let Some(partner) = &status.partner {
        let _ = write!(line, " {partner}");
    }
    if !status.routed_partners.is_empty() {
        let _ = write!(line, " -> {}", status.routed_partners.join(","));
    }
    for id in &status.partner_record_ids {
        let _ = write!(line, " {}={}", id.scheme, id.id);
    }
    for (kind, notes) in [("ERROR", &status.errors), ("WARNING", &status.warnings)] {
        for n in notes {
            let _ = write!(line, " | {kind} {} {}", n.code, n.field);
            if !n.location.is_empty() {
                let _ = write!(line, " @{}", n.location);
            }
            if !n.text.is_empty() {
                let _ = write!(line, ": {}", n.text);
            }
        }
    }
    line
}

/// What the tracker knows about one sent message.
#[derive(Debug, Clone)]
struct Progress {
    court_ori: String,
    order_number: String,
    sequence: u32,
    /// Confirmed by RabbitMQ; only sent messages are waited for.
    sent: bool,
    /// The first-group status with its status sequence.
    first: Option<(u32, StatusKind)>,
    routed: Vec<String>,
    /// Latest status per partner, by status sequence.
    partners: BTreeMap<String, (u32, StatusKind)>,
    /// When the message was first handed to RabbitMQ.
    published_at: Instant,
    /// When its first `ACCEPTED` arrived.
    accepted_at: Option<Instant>,
    /// When each partner's first `PARTNER_ACCEPTED` arrived.
    partner_accepted_at: BTreeMap<String, Instant>,
    /// When it became complete.
    completed_at: Option<Instant>,
}

impl Progress {
    fn is_complete(&self) -> bool {
        match self.first {
            Some((_, kind)) if kind.is_rejection() => true,
            Some((_, StatusKind::Accepted)) => self.routed.iter().all(|p| self.partners.contains_key(p)),
            _ => false,
        }
    }
}

/// What recording one status did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The status is about a message this run did not send.
    NotOurs,
    /// The status was recorded; `completed` when it made its message complete.
    Recorded {
        /// Whether this status made the message complete.
        completed: bool,
    },
}

/// Completion of every message this run sent, from the statuses received.
#[derive(Debug, Default)]
pub struct StatusTracker {
    messages: HashMap<String, Progress>,
    /// Sent messages that are not complete yet.
    awaiting: usize,
    anomalies: Vec<String>,
}

/// Totals over the tracked messages, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusTotals {
    /// Messages confirmed by RabbitMQ.
    pub sent: usize,
    /// Sent messages that are complete.
    pub complete: usize,
    /// Sent message ids that are not complete, in message-id order.
    pub incomplete: Vec<String>,
    /// Messages `REJECTED` or `CONFLICT_REJECTED`.
    pub rejected: usize,
    /// (message, partner) pairs whose latest status is `PARTNER_ACCEPTED`.
    pub partner_accepted: usize,
    /// (message, partner) pairs whose latest status is `PARTNER_REJECTED`.
    pub partner_rejected: usize,
    /// (message, partner) pairs whose latest status is `DEAD_LETTERED`.
    pub dead_lettered: usize,
    /// What contradicted the ICD.
    pub anomalies: Vec<String>,
}

impl StatusTracker {
    /// Registers a message about to be published, so that its statuses are
    /// recognised even if they arrive before its publisher confirm.
    pub fn expect(&mut self, message: &GeneratedMessage) {
        self.expect_at(message, Instant::now());
    }

    /// [`expect`](Self::expect), published at `published_at`.
    pub fn expect_at(&mut self, message: &GeneratedMessage, published_at: Instant) {
        self.messages.insert(
            message.message_id.clone(),
            Progress {
                court_ori: message.court_ori.clone(),
                order_number: message.order.order_number.clone(),
                sequence: message.sequence,
                sent: false,
                first: None,
                routed: Vec::new(),
                partners: BTreeMap::new(),
                published_at,
                accepted_at: None,
                partner_accepted_at: BTreeMap::new(),
                completed_at: None,
            },
        );
    }

    /// Marks a message as confirmed by RabbitMQ: from now on it is waited for.
    pub fn mark_sent(&mut self, message_id: &str) {
        if let Some(p) = self.messages.get_mut(message_id)
            && !p.sent
        {
            p.sent = true;
            if !p.is_complete() {
                self.awaiting += 1;
            }
        }
    }

    /// Forgets a message that could not be published.
    pub fn forget(&mut self, message_id: &str) {
        if let Some(p) = self.messages.remove(message_id)
            && p.sent
            && !p.is_complete()
        {
            self.awaiting -= 1;
        }
    }

    /// Records an anomaly found outside a status (e.g. an unreadable body).
    pub fn anomaly(&mut self, text: String) {
        self.anomalies.push(text);
    }

    /// Whether `message_id` is one of this run's messages.
    pub fn knows(&self, message_id: &str) -> bool {
        self.messages.contains_key(message_id)
    }

    /// Whether `message_id` is complete.
    pub fn is_complete(&self, message_id: &str) -> bool {
        self.messages.get(message_id).is_some_and(Progress::is_complete)
    }

    /// Whether every sent message is complete.
    pub fn all_complete(&self) -> bool {
        self.awaiting == 0
    }

    /// Records one status, arrived now.
    pub fn record(&mut self, status: &OrderStatus) -> Recorded {
        self.record_at(status, Instant::now())
    }

    /// Records one status that arrived at `arrived`.
    pub fn record_at(&mut self, status: &OrderStatus, arrived: Instant) -> Recorded {
        let id = &status.correlates_to;
        let Some(p) = self.messages.get_mut(id) else {
            return Recorded::NotOurs;
        };
        let was_complete = p.is_complete();
        let mut anomalies = Vec::new();
        if status.court_ori != p.court_ori {
            anomalies.push(format!(
                "{id}: status names court {} instead of {}",
                status.court_ori, p.court_ori
            ));
        }
        if status.order_number.as_ref().is_some_and(|n| *n != p.order_number) {
            anomalies.push(format!("{id}: status names another order number"));
        }
        if status.sequence.is_some_and(|s| s != p.sequence) {
            anomalies.push(format!(
                "{id}: status names sequence {:?} instead of {}",
                status.sequence, p.sequence
            ));
        }
        if status.status.is_first_group() {
            match p.first {
                Some((_, kind)) if kind != status.status => {
                    anomalies.push(format!("{id}: {} after {}", status.status.as_str(), kind.as_str()))
                }
                _ => {}
            }
            if p.first.is_none_or(|(seq, _)| status.status_sequence >= seq) {
                p.first = Some((status.status_sequence, status.status));
            }
            if status.status == StatusKind::Accepted {
                p.routed = status.routed_partners.clone();
                p.accepted_at.get_or_insert(arrived);
            }
        } else {
            if p.first.is_some_and(|(_, kind)| kind.is_rejection()) {
                anomalies.push(format!("{id}: {} after a rejection", status.status.as_str()));
            }
            match &status.partner {
                None => anomalies.push(format!("{id}: {} without por:Partner", status.status.as_str())),
                Some(partner) => {
                    if status.status == StatusKind::PartnerAccepted {
                        p.partner_accepted_at.entry(partner.clone()).or_insert(arrived);
                    }
                    let entry = p.partners.entry(partner.clone()).or_insert((0, status.status));
                    if status.status_sequence >= entry.0 {
                        *entry = (status.status_sequence, status.status);
                    }
                }
            }
        }
        let completed = !was_complete && p.is_complete();
        if completed {
            p.completed_at = Some(arrived);
        }
        if completed && p.sent {
            self.awaiting -= 1;
        }
        self.anomalies.extend(anomalies);
        Recorded::Recorded { completed }
    }

    /// Adds the latencies of the complete sent messages, and when the last
    /// one became complete, to `samples` (see [`super::timings`]).
    pub fn add_timings(&self, samples: &mut TimingSamples) {
        for p in self.messages.values().filter(|p| p.sent && p.is_complete()) {
            samples.completed += 1;
            if let Some(at) = p.completed_at {
                samples.last_completion = samples.last_completion.max(Some(at));
            }
            if !matches!(p.first, Some((_, StatusKind::Accepted))) {
                continue;
            }
            if let Some(at) = p.accepted_at {
                samples.accepted.push(at.saturating_duration_since(p.published_at));
            }
            let all_accepted = p
                .routed
                .iter()
                .all(|r| matches!(p.partners.get(r), Some((_, StatusKind::PartnerAccepted))));
            let last = p.routed.iter().map(|r| p.partner_accepted_at.get(r)).max().flatten();
            if all_accepted && let Some(at) = last {
                samples
                    .partner_accepted
                    .push(at.saturating_duration_since(p.published_at));
            }
        }
    }

    /// Totals over the sent messages.
    pub fn totals(&self) -> StatusTotals {
        let mut t = StatusTotals {
            anomalies: self.anomalies.clone(),
            ..Default::default()
        };
        let mut ids: Vec<&String> = self.messages.keys().collect();
        ids.sort();
        for id in ids {
            let p = &self.messages[id];
            if !p.sent {
                continue;
            }
            t.sent += 1;
            if p.is_complete() {
                t.complete += 1;
            } else {
                t.incomplete.push(id.clone());
            }
            if p.first.is_some_and(|(_, k)| k.is_rejection()) {
                t.rejected += 1;
            }
            for (partner, (_, kind)) in &p.partners {
                match kind {
                    StatusKind::PartnerAccepted => t.partner_accepted += 1,
                    StatusKind::PartnerRejected => t.partner_rejected += 1,
                    StatusKind::DeadLettered => t.dead_lettered += 1,
                    _ => {}
                }
                if matches!(p.first, Some((_, StatusKind::Accepted))) && !p.routed.contains(partner) {
                    t.anomalies
                        .push(format!("{id}: status from {partner}, which it was not routed to"));
                }
            }
        }
        t
    }
}

/// Prints one status line (stdout by default).
pub type Printer = Arc<dyn Fn(&str) + Send + Sync>;

/// Consumes a court's status queue until the channel closes: records each
/// status in the tracker, prints it, then acknowledges it. `progress` is
/// notified whenever a message becomes complete.
pub async fn consume(
    channel: &Channel,
    queue: &str,
    tracker: Arc<Mutex<StatusTracker>>,
    printer: Printer,
    progress: Arc<Notify>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let channel = channel.clone();
    let queue = queue.to_string();
    Ok(tokio::spawn(async move {
        while let Some(delivery) = consumer.next().await {
            let delivery = match delivery {
                Ok(d) => d,
                Err(error) => {
                    warn!(queue = %queue, %error, "Status consumer failed; waiting for the connection to recover.");
                    if channel.wait_for_recovery(error).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            let correlation = delivery
                .properties
                .correlation_id()
                .as_ref()
                .map(|c| c.as_str().to_string());
            match parse_status(&delivery.data) {
                Ok(status) => {
                    let recorded = tracker.lock().map(|mut t| {
                        let recorded = t.record(&status);
                        if recorded != Recorded::NotOurs
                            && correlation.as_ref().is_some_and(|c| *c != status.correlates_to)
                        {
                            t.anomaly(format!(
                                "{}: correlation_id differs from por:CorrelatesTo",
                                status.correlates_to
                            ));
                        }
                        recorded
                    });
                    match recorded {
                        Ok(Recorded::Recorded { completed }) => {
                            printer(&status_line(&status));
                            if completed {
                                progress.notify_one();
                            }
                        }
                        Ok(Recorded::NotOurs) | Err(_) => {}
                    }
                }
                Err(error) => {
                    let ours = correlation
                        .as_deref()
                        .filter(|c| tracker.lock().is_ok_and(|t| t.knows(c)));
                    match ours {
                        Some(id) => {
                            if let Ok(mut t) = tracker.lock() {
                                t.anomaly(format!("{id}: unreadable status ({error})"));
                            }
                            printer(&format!("{queue}: unreadable status for {id}: {error}"));
                        }
                        None => {
                            warn!(queue = %queue, %error, "Unreadable status for another run; dropped.")
                        }
                    }
                }
            }
            if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
                warn!(queue = %queue, %error, "Could not acknowledge a status; it will be delivered again.");
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::court::xml::tests::sample_message;

    const ICD_SAMPLE: &str = r#"<por:OrderStatusMessage xmlns:por="urn:por:order:1">
  <por:CourtORI>CA034025J</por:CourtORI><por:OrderNumber>24DV01234</por:OrderNumber><por:Sequence>1</por:Sequence>
  <por:CorrelatesTo>cms-000123</por:CorrelatesTo><por:StatusSequence>2</por:StatusSequence>
  <por:StatusDateTime>2026-11-25T10:15:01.250-08:00</por:StatusDateTime>
  <por:Status>PARTNER_ACCEPTED</por:Status><por:Partner>CLETS</por:Partner>
  <por:PartnerRecordID scheme="NIC">H123456789</por:PartnerRecordID>
  <por:PartnerRecordID scheme="FCN">0340000012345</por:PartnerRecordID>
</por:OrderStatusMessage>"#;

    fn status(seq: u32, kind: &str, extra: &str) -> OrderStatus {
        parse_status(
            format!(
                r#"<s:OrderStatusMessage xmlns:s="urn:por:order:1"><s:CourtORI>CA034025J</s:CourtORI>
<s:OrderNumber>24DV01234</s:OrderNumber><s:Sequence>1</s:Sequence><s:CorrelatesTo>cms-000123</s:CorrelatesTo>
<s:StatusSequence>{seq}</s:StatusSequence><s:StatusDateTime>2026-11-25T10:15:01-08:00</s:StatusDateTime>
<s:Status>{kind}</s:Status>{extra}</s:OrderStatusMessage>"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    /// The ICD §4 sample is read field by field.
    #[test]
    fn reads_the_icd_sample() {
        let s = parse_status(ICD_SAMPLE.as_bytes()).unwrap();
        assert_eq!(s.court_ori, "CA034025J");
        assert_eq!(s.order_number.as_deref(), Some("24DV01234"));
        assert_eq!(s.sequence, Some(1));
        assert_eq!(s.correlates_to, "cms-000123");
        assert_eq!(s.status_sequence, 2);
        assert_eq!(s.status_at.to_rfc3339(), "2026-11-25T10:15:01.250-08:00");
        assert_eq!(s.status, StatusKind::PartnerAccepted);
        assert_eq!(s.partner.as_deref(), Some("CLETS"));
        assert_eq!(
            s.partner_record_ids,
            [
                PartnerRecordId {
                    scheme: "NIC".into(),
                    id: "H123456789".into()
                },
                PartnerRecordId {
                    scheme: "FCN".into(),
                    id: "0340000012345".into()
                }
            ]
        );
        assert_eq!(
            status_line(&s),
            "CA034025J  24DV01234       seq 1   cms-000123  PARTNER_ACCEPTED CLETS NIC=H123456789 FCN=0340000012345"
        );
    }

    /// Errors and warnings, routed partners, a default namespace and entities are read.
    #[test]
    fn reads_errors_warnings_and_routes() {
        let xml = r#"<?xml version="1.0"?>
<OrderStatusMessage xmlns="urn:por:order:1" xmlns:x="urn:other">
  <CourtORI>CA034025J</CourtORI><CorrelatesTo>cms-1</CorrelatesTo><StatusSequence>1</StatusSequence>
  <StatusDateTime>2026-11-25T10:15:01Z</StatusDateTime><Status>REJECTED</Status>
  <x:Status>ACCEPTED</x:Status>
  <Error><Code>INVALID_CODE</Code><Field>restrained_person.sex</Field><Location>3:14</Location><Text>Q is not a sex code &amp; &#x41;</Text></Error>
  <Warning><Code>TOO_LONG</Code><Field/><Text>name shortened</Text></Warning>
  <RoutedPartner>CLETS</RoutedPartner><RoutedPartner>LEA:CA0341100</RoutedPartner>
</OrderStatusMessage>"#;
        let s = parse_status(xml.as_bytes()).unwrap();
        assert_eq!(s.status, StatusKind::Rejected, "the foreign x:Status is ignored");
        assert_eq!(s.order_number, None);
        assert_eq!(s.sequence, None);
        assert_eq!(
            s.errors,
            [StatusNote {
                code: "INVALID_CODE".into(),
                field: "restrained_person.sex".into(),
                location: "3:14".into(),
                text: "Q is not a sex code & A".into()
            }]
        );
        assert_eq!(s.warnings[0].code, "TOO_LONG");
        assert_eq!(s.warnings[0].field, "");
        assert_eq!(s.routed_partners, ["CLETS", "LEA:CA0341100"]);
        assert!(status_line(&s).ends_with("| ERROR INVALID_CODE restrained_person.sex @3:14: Q is not a sex code & A | WARNING TOO_LONG : name shortened"));
    }

    /// Other roots, missing fields, bad values, DTDs and malformed XML are refused.
    #[test]
    fn refuses_what_is_not_a_status() {
        let other = ICD_SAMPLE.replace("urn:por:order:1", "urn:other");
        assert_eq!(parse_status(other.as_bytes()), Err(StatusParseError::NotAStatus));
        let no_corr = ICD_SAMPLE.replace("<por:CorrelatesTo>cms-000123</por:CorrelatesTo>", "");
        assert_eq!(
            parse_status(no_corr.as_bytes()),
            Err(StatusParseError::Missing("CorrelatesTo"))
        );
        let bad = ICD_SAMPLE.replace("PARTNER_ACCEPTED", "FINE");
        assert!(matches!(
            parse_status(bad.as_bytes()),
            Err(StatusParseError::Invalid { field: "Status", .. })
        ));
        let dtd = format!("<!DOCTYPE x [<!ENTITY e 'x'>]>{ICD_SAMPLE}");
        assert_eq!(parse_status(dtd.as_bytes()), Err(StatusParseError::DocType));
        assert!(matches!(
            parse_status(b"<por:OrderStatusMessage xmlns:por=\"urn:por:order:1\">"),
            Err(StatusParseError::Xml(_))
        ));
    }

    /// ACCEPTED then every routed partner's outcome completes a message, in any arrival order.
    #[test]
    fn tracker_completes_on_every_routed_partner() {
        let mut t = StatusTracker::default();
        t.expect(&sample_message());
        t.mark_sent("cms-000123");
        assert!(!t.all_complete());
        // A partner status may arrive before ACCEPTED.
        let clets = status(2, "PARTNER_ACCEPTED", "<s:Partner>CLETS</s:Partner>");
        assert_eq!(t.record(&clets), Recorded::Recorded { completed: false });
        let accepted = status(
            1,
            "ACCEPTED",
            "<s:RoutedPartner>CLETS</s:RoutedPartner><s:RoutedPartner>DOJ</s:RoutedPartner>",
        );
        assert_eq!(t.record(&accepted), Recorded::Recorded { completed: false });
        let doj = status(3, "DEAD_LETTERED", "<s:Partner>DOJ</s:Partner>");
        assert_eq!(t.record(&doj), Recorded::Recorded { completed: true });
        assert!(t.is_complete("cms-000123") && t.all_complete());
        // A replay turns DEAD_LETTERED into PARTNER_ACCEPTED; an older status does not undo it.
        t.record(&status(5, "PARTNER_ACCEPTED", "<s:Partner>DOJ</s:Partner>"));
        t.record(&status(4, "DEAD_LETTERED", "<s:Partner>DOJ</s:Partner>"));
        let totals = t.totals();
        assert_eq!(
            (
                totals.sent,
                totals.complete,
                totals.partner_accepted,
                totals.dead_lettered
            ),
            (1, 1, 2, 0)
        );
        assert!(totals.anomalies.is_empty(), "{:?}", totals.anomalies);

        // Statuses of other runs are not ours.
        let mut foreign = clets.clone();
        foreign.correlates_to = "cms-999".into();
        assert_eq!(t.record(&foreign), Recorded::NotOurs);
    }

    /// REJECTED completes a message; a partner status after it, or another court, is an anomaly.
    #[test]
    fn tracker_rejections_and_anomalies() {
        let mut t = StatusTracker::default();
        t.expect(&sample_message());
        // A status that arrives before the publisher confirm still counts.
        assert_eq!(
            t.record(&status(1, "REJECTED", "")),
            Recorded::Recorded { completed: true }
        );
        t.mark_sent("cms-000123");
        assert!(t.all_complete());
        t.record(&status(2, "PARTNER_ACCEPTED", "<s:Partner>CLETS</s:Partner>"));
        let mut wrong = status(3, "REJECTED", "");
        wrong.court_ori = "CA019015J".into();
        t.record(&wrong);
        let totals = t.totals();
        assert_eq!((totals.complete, totals.rejected), (1, 1));
        assert_eq!(totals.anomalies.len(), 2, "{:?}", totals.anomalies);
    }

    /// Latencies run from the publish to the first ACCEPTED and to the last
    /// partner's first PARTNER_ACCEPTED; a repeat does not move them; messages
    /// with a dead letter count for ACCEPTED only, incomplete ones not at all.
    #[test]
    fn tracker_measures_latencies() {
        use std::time::Duration;
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut t = StatusTracker::default();
        for id in ["all", "dead", "open"] {
            let mut m = sample_message();
            m.message_id = id.into();
            t.expect_at(&m, at(100));
            t.mark_sent(id);
        }
        let routed = "<s:RoutedPartner>CLETS</s:RoutedPartner><s:RoutedPartner>DOJ</s:RoutedPartner>";
        let mut send = |id: &str, ms, seq, kind, extra: &str| {
            let mut st = status(seq, kind, extra);
            st.correlates_to = id.into();
            t.record_at(&st, at(ms));
        };
        send("all", 130, 1, "ACCEPTED", routed);
        send("all", 900, 1, "ACCEPTED", routed);
        send("all", 250, 2, "PARTNER_ACCEPTED", "<s:Partner>CLETS</s:Partner>");
        send("all", 400, 3, "PARTNER_ACCEPTED", "<s:Partner>DOJ</s:Partner>");
        send("all", 950, 3, "PARTNER_ACCEPTED", "<s:Partner>DOJ</s:Partner>");
        send("dead", 160, 1, "ACCEPTED", routed);
        send("dead", 300, 2, "PARTNER_ACCEPTED", "<s:Partner>CLETS</s:Partner>");
        send("dead", 700, 3, "DEAD_LETTERED", "<s:Partner>DOJ</s:Partner>");
        send("open", 120, 1, "ACCEPTED", routed);
        let mut samples = TimingSamples::default();
        t.add_timings(&mut samples);
        samples.accepted.sort();
        assert_eq!(samples.accepted, [Duration::from_millis(30), Duration::from_millis(60)]);
        assert_eq!(samples.partner_accepted, [Duration::from_millis(300)]);
        assert_eq!(samples.completed, 2);
        assert_eq!(samples.last_completion, Some(at(700)));
    }

    /// A message without statuses is reported incomplete; an accepted one with no partners is complete.
    #[test]
    fn tracker_incomplete_and_unrouted() {
        let mut t = StatusTracker::default();
        let mut a = sample_message();
        a.message_id = "a".into();
        let mut b = sample_message();
        b.message_id = "b".into();
        t.expect(&a);
        t.expect(&b);
        t.mark_sent("a");
        t.mark_sent("b");
        let mut accepted = status(1, "ACCEPTED", "");
        accepted.correlates_to = "b".into();
        t.record(&accepted);
        assert!(!t.all_complete());
        let totals = t.totals();
        assert_eq!(totals.incomplete, ["a"]);
        t.forget("a");
        assert!(t.all_complete());
    }
}
