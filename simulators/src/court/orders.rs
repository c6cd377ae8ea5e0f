//! Realistic California protective orders, generated deterministically from a
//! seed.
//!
//! Each simulated court gets its own random stream, seeded from the run seed
//! and the court's ORI, so adding a court does not change the orders of the
//! others. What a court generates depends only on the seed and on the civil
//! date it is given; the message ids carry a run tag so that two runs never
//! reuse one (ICD §5 keeps message ids for 400 days).
//!
//! The orders look like what a California CMS holds: after-hearing orders on
//! the Judicial Council forms (`DV-130`, `CH-130`, `CR-160`, …), order numbers
//! like `24DV01234` from per-type counters, case numbers in the court's style,
//! plausible names (a few with accents, which XML courts send as they are and
//! fixed-width courts fold to ASCII), residences in the court's county, and
//! condition codes that agree with the condition text. Emergency protective
//! orders are not generated: law enforcement enters those, not court CMSs.
//!
//! Residences: courts whose ORI starts `CA034` live in Sacramento (958xx),
//! `CA019` in Los Angeles (900xx); any other court gets a generic address
//! (`ANYTOWN CA 99999`) that no LEA mapping knows, so that its orders go to
//! the court's sheriff only (ICD §8).
//!
//! Options that change a run but not the orders themselves (the format
//! override, images, how orders close) draw from a second random stream of
//! the court, so that switching them on leaves the orders' content as it was.
//! With `mixed` formats each order's format is drawn once, and all messages
//! of the order share it. With images, every XML ISSUE and about one XML
//! MODIFY in three carry an [`ImageSpec`]; the PDF itself is only generated
//! when the message is written ([`super::image`]).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::config::{CloseMode, CourtFormat, FormatChoice, SimCourt};
use super::fixed::condition_text_fits;
use super::image::ImageSpec;

/// What a message does to its order (ICD §0), with what that action carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// First message of an order (sequence 1); carries the full order.
    Issue,
    /// Carries the full order again, as it now stands.
    Modify,
    /// Ends the order on a date.
    Terminate {
        /// `por:TerminationDate`, California civil date.
        date: NaiveDate,
    },
    /// The order was entered in error.
    Cancel {
        /// `por:CancelReason`, at most 60 characters.
        reason: String,
    },
    /// Proof of service.
    Service(Service),
}

impl Action {
    /// The spelled-out name written in XML `por:Action`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Issue => "ISSUE",
            Action::Modify => "MODIFY",
            Action::Terminate { .. } => "TERMINATE",
            Action::Cancel { .. } => "CANCEL",
            Action::Service(_) => "SERVICE",
        }
    }

    /// The two-letter code written in fixed-width columns 46–47.
    pub fn code(&self) -> &'static str {
        match self {
            Action::Issue => "IS",
            Action::Modify => "MD",
            Action::Terminate { .. } => "TM",
            Action::Cancel { .. } => "CX",
            Action::Service(_) => "SV",
        }
    }

    /// ISSUE and MODIFY carry the full order (ICD §2).
    pub fn carries_full_order(&self) -> bool {
        matches!(self, Action::Issue | Action::Modify)
    }
}

/// Proof of service (SERVICE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// California civil time.
    pub served_at: NaiveDateTime,
    /// At most 30 characters.
    pub served_by: String,
    /// The serving agency's ORI.
    pub serving_agency_ori: String,
    /// `P` personal, `S` substituted, `M` mail, `C` in court.
    pub method: char,
}

/// One message a simulated court sends: one AMQP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedMessage {
    /// The AMQP `message_id`, unique per court and run, at most 64 characters.
    pub message_id: String,
    /// The sending court.
    pub court_ori: String,
    /// The sending court's wire format.
    pub format: CourtFormat,
    /// What the message does.
    pub action: Action,
    /// 1 for ISSUE, then +1 per message about the order.
    pub sequence: u32,
    /// XML `SentDateTime` and the AMQP `timestamp`; the publisher sets it
    /// again just before sending.
    pub sent_at: DateTime<FixedOffset>,
    /// The order as it stands after this message. Writers emit only what the
    /// action carries.
    pub order: Order,
    /// The signed-order image to attach (XML ISSUE and MODIFY only).
    pub image: Option<ImageSpec>,
}

impl GeneratedMessage {
    /// `ISSUE`, `MODIFY`, … .
    pub fn action_name(&self) -> &'static str {
        self.action.name()
    }
}

/// A protective order as the court's CMS holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// `[A-Z0-9-]`, at most 15 characters, e.g. `24DV01234`.
    pub order_number: String,
    /// At most 20 characters, e.g. `24FL001234`.
    pub case_number: String,
    /// ICD §0 order type: `DV`, `CH`, `EA`, `WV`, `SV`, `CPO`, `GV`, `JV`.
    pub order_type: String,
    /// Judicial Council form, e.g. `DV-130` (at most 8 characters).
    pub form_id: String,
    /// California civil date.
    pub issue_date: NaiveDate,
    /// California civil time; `None` = does not expire.
    pub expiration: Option<NaiveDateTime>,
    /// E.g. `HON MARIA LOPEZ` (at most 30 characters).
    pub judicial_officer: String,
    /// `Y`, `N` or `U`.
    pub brady: char,
    /// ASCII, at most 500 characters; may be empty.
    pub condition_text: String,
    /// PCO codes `01`–`09`, ascending, 1–9 of them.
    pub condition_codes: Vec<String>,
    /// Whether firearm relinquishment was ordered.
    pub firearm_relinquishment: bool,
    /// The person the order restrains.
    pub restrained: RestrainedPerson,
    /// 1–9 protected persons.
    pub protected: Vec<ProtectedPerson>,
}

/// A person's name, uppercase; limits 30 / 20 / 20 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    /// Surname (at most 30 characters).
    pub last: String,
    /// Given name (at most 20 characters).
    pub first: String,
    /// Middle name or initial (at most 20 characters).
    pub middle: Option<String>,
    /// `JR`, `SR`, `II`, `III`.
    pub suffix: Option<String>,
}

/// The restrained person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestrainedPerson {
    /// The person's name.
    pub name: PersonName,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// ICD §0 sex code.
    pub sex: char,
    /// ICD §0 race code.
    pub race: char,
    /// Feet and inches, `FII`, e.g. `510`.
    pub height: String,
    /// Pounds.
    pub weight: u16,
    /// ICD §0 eye code.
    pub eye: String,
    /// ICD §0 hair code.
    pub hair: String,
    /// Where the person lives, in the court's county.
    pub residence: Address,
    /// The person's California driver licence, when known.
    pub driver_license: Option<DriverLicense>,
}

/// A protected person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedPerson {
    /// The person's name.
    pub name: PersonName,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// ICD §0 sex code.
    pub sex: char,
    /// ICD §0 race code.
    pub race: char,
    /// Two-letter relationship to the restrained person, e.g. `SP`.
    pub relationship: String,
}

/// A street address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// At most 40 characters.
    pub street: String,
    /// At most 20 characters.
    pub city: String,
    /// Two-letter state code.
    pub state: String,
    /// Five-digit ZIP code.
    pub zip: String,
}

/// A driver licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverLicense {
    /// Licence number, e.g. `D1234567`.
    pub number: String,
    /// Issuing state.
    pub state: String,
}

/// The current time in California, with its offset.
pub fn now_pacific() -> DateTime<FixedOffset> {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Los_Angeles)
        .fixed_offset()
}

/// Generates the orders of one simulated court.
pub struct OrderGenerator {
    court: SimCourt,
    rng: StdRng,
    /// California civil time the orders are issued at.
    now: DateTime<FixedOffset>,
    county: County,
    judges: Vec<String>,
    /// Last order-number counter per order type.
    order_counters: HashMap<&'static str, u32>,
    /// Last case-number counter per case-type prefix.
    case_counters: HashMap<&'static str, u32>,
    run_tag: String,
    messages: u64,
    /// The format of the current order's messages.
    format: CourtFormat,
    /// Overrides the court's format for each new order.
    format_override: Option<FormatChoice>,
    /// Whether XML ISSUEs and some MODIFYs carry an image.
    images: bool,
    /// How `next_order` closes an order.
    close_mode: CloseMode,
    /// The stream for the options above, apart from the orders' content.
    option_rng: StdRng,
}

impl OrderGenerator {
    /// A generator for `court`. `now` is California time (it fixes the issue
    /// date); `run_tag` goes into every message id.
    pub fn new(court: &SimCourt, seed: u64, now: DateTime<FixedOffset>, run_tag: &str) -> Self {
        let court_seed = seed ^ fnv1a(court.ori.as_bytes());
        let mut rng = StdRng::seed_from_u64(court_seed);
        let county = County::of(&court.ori);
        let judges = (0..6).map(|_| judge_name(&mut rng)).collect();
        OrderGenerator {
            court: court.clone(),
            rng,
            now,
            county,
            judges,
            order_counters: HashMap::new(),
            case_counters: HashMap::new(),
            run_tag: run_tag.to_string(),
            messages: 0,
            format: court.format,
            format_override: None,
            images: false,
            close_mode: CloseMode::default(),
            option_rng: StdRng::seed_from_u64(court_seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15),
        }
    }

    /// Writes every order in `format` instead of the court's own format
    /// (`None`: the court's format).
    pub fn with_format(mut self, format: Option<FormatChoice>) -> Self {
        self.format_override = format;
        self.format = match format {
            Some(FormatChoice::Fixed) => CourtFormat::Fixed,
            Some(FormatChoice::Xml) => CourtFormat::Xml,
            Some(FormatChoice::Mixed) | None => self.court.format,
        };
        self
    }

    /// Attaches a signed-order image to every XML ISSUE and about one XML
    /// MODIFY in three.
    pub fn with_images(mut self, images: bool) -> Self {
        self.images = images;
        self
    }

    /// How [`next_order`](Self::next_order) closes orders.
    pub fn with_close_mode(mut self, mode: CloseMode) -> Self {
        self.close_mode = mode;
        self
    }

    /// The messages of the next order: its ISSUE, followed, with `lifecycle`,
    /// by a MODIFY (sequence 2) and a SERVICE (sequence 3), and, with `close`
    /// too, by a TERMINATE or CANCEL (sequence 4) as the close mode says
    /// (mixed, the default: a CANCEL for about one order in ten).
    pub fn next_order(&mut self, lifecycle: bool, close: bool) -> Vec<GeneratedMessage> {
        if self.format_override == Some(FormatChoice::Mixed) {
            self.format = if self.option_rng.random_bool(0.5) {
                CourtFormat::Xml
            } else {
                CourtFormat::Fixed
            };
        }
        let issue = self.issue();
        if !lifecycle {
            return vec![issue];
        }
        let modify = self.modify(&issue);
        let service = self.service(&modify);
        if !close {
            return vec![issue, modify, service];
        }
        // The main stream advances the same in every mode (one draw, one
        // seed); the closing message draws from a stream of its own. So the
        // mode changes the closing messages and nothing else.
        let one_in_ten = self.rng.random_bool(0.1);
        let mut closing_rng = StdRng::seed_from_u64(self.rng.random());
        let cancel = match self.close_mode {
            CloseMode::Terminate => false,
            CloseMode::Cancel => true,
            CloseMode::Mixed => one_in_ten,
        };
        std::mem::swap(&mut self.rng, &mut closing_rng);
        let last = if cancel {
            self.cancel(&service)
        } else {
            self.terminate(&service)
        };
        std::mem::swap(&mut self.rng, &mut closing_rng);
        vec![issue, modify, service, last]
    }

    /// A new order's ISSUE (sequence 1).
    pub fn issue(&mut self) -> GeneratedMessage {
        let order = self.new_order();
        self.message(Action::Issue, 1, order)
    }

    /// A MODIFY of `previous`'s order: one or two realistic changes, with the
    /// full order carried again.
    pub fn modify(&mut self, previous: &GeneratedMessage) -> GeneratedMessage {
        let mut order = previous.order.clone();
        let first = self.rng.random_range(0..4);
        // A change that does not apply (the order already runs five years,
        // already has nine protected persons, …) gives way to the next one.
        for change in (first..first + 4).map(|c| c % 4) {
            self.apply_change(&mut order, change);
            if order != previous.order {
                break;
            }
        }
        if self.rng.random_bool(0.3) {
            let second = (first + self.rng.random_range(1..4)) % 4;
            self.apply_change(&mut order, second);
        }
        self.message(Action::Modify, previous.sequence + 1, order)
    }

    /// Proof of service for `previous`'s order.
    pub fn service(&mut self, previous: &GeneratedMessage) -> GeneratedMessage {
        let rng = &mut self.rng;
        let &(method, _) = SERVICE_METHODS
            .choose_weighted(rng, |m| m.1)
            .unwrap_or(&SERVICE_METHODS[0]);
        let sheriff = sheriff_ori(&self.court.ori);
        let agency = match (method, self.county, rng.random_bool(0.5)) {
            // Served in the courtroom: the court records it under its own ORI.
            ('C', _, _) => self.court.ori.clone(),
            (_, County::Sacramento, true) => "CA0341100".to_string(),
            (_, County::LosAngeles, true) => "CA0194200".to_string(),
            _ => sheriff,
        };
        let last = pick(rng, LAST_NAMES);
        let served_by = match method {
            'C' => format!("CLERK {}", ascii_only(last)),
            'M' => format!("{} {}", pick(rng, FEMALE_FIRST), last),
            _ if agency.ends_with("0000") => {
                format!("DEP {} #{}", last, rng.random_range(100..9999))
            }
            _ => format!("OFC {} #{}", last, rng.random_range(100..9999)),
        };
        let served_by = cut(&served_by, 30);
        // Served earlier today, never before the start of the issue date.
        let local_now = self.now.naive_local();
        let day_start = previous.order.issue_date.and_time(NaiveTime::MIN);
        let served_at = (local_now - Duration::minutes(rng.random_range(10..240))).max(day_start);
        let served_at = to_the_minute(served_at);
        let service = Service {
            served_at,
            served_by,
            serving_agency_ori: agency,
            method,
        };
        self.message(Action::Service(service), previous.sequence + 1, previous.order.clone())
    }

    /// TERMINATE of `previous`'s order, today.
    pub fn terminate(&mut self, previous: &GeneratedMessage) -> GeneratedMessage {
        let date = self.now.date_naive();
        self.message(
            Action::Terminate { date },
            previous.sequence + 1,
            previous.order.clone(),
        )
    }

    /// CANCEL (entered in error) of `previous`'s order.
    pub fn cancel(&mut self, previous: &GeneratedMessage) -> GeneratedMessage {
        let reason = pick(&mut self.rng, CANCEL_REASONS).to_string();
        self.message(Action::Cancel { reason }, previous.sequence + 1, previous.order.clone())
    }

    fn message(&mut self, action: Action, sequence: u32, order: Order) -> GeneratedMessage {
        self.messages += 1;
        let image = (self.images
            && self.format == CourtFormat::Xml
            && match action {
                Action::Issue => true,
                Action::Modify => self.option_rng.random_bool(1.0 / 3.0),
                _ => false,
            })
        .then(|| ImageSpec::random(&mut self.option_rng));
        GeneratedMessage {
            message_id: format!(
                "{}-{}-{:06}",
                self.court.ori.to_ascii_lowercase(),
                self.run_tag,
                self.messages
            ),
            court_ori: self.court.ori.clone(),
            format: self.format,
            action,
            sequence,
            sent_at: self.now,
            order,
            image,
        }
    }

    fn new_order(&mut self) -> Order {
        let issue_date = self.now.date_naive();
        let &(order_type, form_id, _) = ORDER_TYPES
            .choose_weighted(&mut self.rng, |t| t.2)
            .unwrap_or(&ORDER_TYPES[0]);
        // Most orders come from a case filed this year, some from last year.
        let year = issue_date.year() - i32::from(self.rng.random_bool(0.25));
        let yy = year.rem_euclid(100);
        let order_counter = next_counter(&mut self.rng, &mut self.order_counters, order_type);
        let order_number = format!("{yy:02}{order_type}{order_counter:05}");
        let (case_prefix, case_digits) = self.county.case_prefix(order_type);
        let case_counter = next_counter(&mut self.rng, &mut self.case_counters, case_prefix);
        let case_number = format!("{yy:02}{case_prefix}{case_counter:0case_digits$}");

        let rng = &mut self.rng;
        let years = if rng.random_bool(0.5) { 36 } else { 60 };
        let expiration = issue_date
            .checked_add_months(Months::new(years))
            .map(|d| d.and_time(NaiveTime::from_hms_opt(23, 59, 0).unwrap_or(NaiveTime::MIN)));
        let judicial_officer = self.judges.choose(rng).cloned().unwrap_or_default();

        let restrained = restrained_person(rng, self.county, issue_date);
        let protected = protected_persons(rng, order_type, &restrained, issue_date);
        let intimate = protected
            .first()
            .is_some_and(|p| matches!(p.relationship.as_str(), "SP" | "XS" | "CO" | "DT"));
        let brady = if rng.random_bool(0.05) {
            'U'
        } else if intimate && order_type != "JV" {
            'Y'
        } else {
            'N'
        };

        let mut conditions = Conditions::default();
        conditions.add(rng, Condition::StayAway);
        if rng.random_bool(0.85) {
            conditions.add(rng, Condition::NoContact);
        }
        if order_type != "JV" && rng.random_bool(0.9) {
            conditions.add(rng, Condition::Firearms);
        }
        for extra in [Condition::MoveOut, Condition::Animals, Condition::Electronic] {
            if rng.random_bool(0.2) {
                conditions.add(rng, extra);
            }
        }
        if let Some(special) = Condition::special_for(order_type) {
            conditions.add(rng, special);
        }
        let firearm_relinquishment = conditions.has(Condition::Firearms);

        Order {
            order_number,
            case_number,
            order_type: order_type.to_string(),
            form_id: form_id.to_string(),
            issue_date,
            expiration,
            judicial_officer,
            brady,
            condition_text: conditions.text(),
            condition_codes: conditions.codes(),
            firearm_relinquishment,
            restrained,
            protected,
        }
    }

    fn apply_change(&mut self, order: &mut Order, change: u32) {
        let rng = &mut self.rng;
        match change {
            // The restrained person moved (a new residence in the county).
            0 => order.restrained.residence = address(rng, self.county),
            // Another protected person is added.
            1 if order.protected.len() < 9 => {
                let sex = if rng.random_bool(0.5) { 'F' } else { 'M' };
                let last = order.protected[0].name.last.clone();
                let mut person = protected_person(rng, sex, "CH", order.issue_date);
                if rng.random_bool(0.7) {
                    person.name.last = last;
                }
                order.protected.push(person);
            }
            // The order is extended to five years.
            2 => {
                order.expiration = order
                    .issue_date
                    .checked_add_months(Months::new(60))
                    .map(|d| d.and_time(NaiveTime::from_hms_opt(23, 59, 0).unwrap_or(NaiveTime::MIN)));
            }
            // Firearms are added, or else a no-contact order.
            _ => {
                let mut conditions = Conditions::parse(order);
                if conditions.has(Condition::Firearms) {
                    conditions.add(rng, Condition::NoContact);
                } else {
                    conditions.add(rng, Condition::Firearms);
                    order.firearm_relinquishment |= conditions.has(Condition::Firearms);
                }
                order.condition_text = conditions.text();
                order.condition_codes = conditions.codes();
            }
        }
    }
}

/// The California county a court ORI belongs to, for addresses and case
/// numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum County {
    Sacramento,
    LosAngeles,
    Other,
}

impl County {
    fn of(ori: &str) -> County {
        if ori.starts_with("CA034") {
            County::Sacramento
        } else if ori.starts_with("CA019") {
            County::LosAngeles
        } else {
            County::Other
        }
    }

    /// The case-type part of a case number and how many digits follow it.
    fn case_prefix(self, order_type: &str) -> (&'static str, usize) {
        match (self, order_type) {
            (County::LosAngeles, "DV") => ("STDV", 5),
            (County::LosAngeles, "CPO") => ("CF", 5),
            (County::LosAngeles, "JV") => ("CJP", 5),
            (County::LosAngeles, _) => ("STRO", 5),
            (_, "DV") => ("FL", 6),
            (_, "CPO") => ("FE", 6),
            (_, "JV") => ("JV", 6),
            _ => ("CV", 6),
        }
    }
}

/// The sheriff's ORI of a court's county: `CAccc0000`.
fn sheriff_ori(court_ori: &str) -> String {
    format!("{}0000", court_ori.get(..5).unwrap_or("CA000"))
}

/// How a SERVICE was made, with a weight.
const SERVICE_METHODS: &[(char, u32)] = &[('P', 60), ('C', 20), ('S', 10), ('M', 10)];

/// Order types with their after-hearing form and a weight.
const ORDER_TYPES: &[(&str, &str, u32)] = &[
    ("DV", "DV-130", 50),
    ("CH", "CH-130", 20),
    ("CPO", "CR-160", 12),
    ("EA", "EA-130", 8),
    ("WV", "WV-130", 4),
    ("GV", "GV-030", 3),
    ("SV", "SV-130", 1),
    ("JV", "JV-255", 2),
];

/// The next value of a counter that starts at a random point and advances by
/// a few numbers at a time, as other cases get filed in between.
fn next_counter(rng: &mut StdRng, counters: &mut HashMap<&'static str, u32>, key: &'static str) -> u32 {
    let step = rng.random_range(1..=25);
    let counter = counters.entry(key).or_insert_with(|| rng.random_range(1_000..40_000));
    *counter += step;
    *counter
}

fn restrained_person(rng: &mut StdRng, county: County, today: NaiveDate) -> RestrainedPerson {
    let sex = *[('M', 80), ('F', 19), ('X', 1)]
        .choose_weighted(rng, |s| s.1)
        .map(|s| &s.0)
        .unwrap_or(&'M');
    let name = person_name(rng, sex, true);
    let birth_date = birth_date(rng, today, 19, 70);
    let inches = match sex {
        'F' => rng.random_range(59..=70),
        _ => rng.random_range(63..=76),
    };
    let weight = match sex {
        'F' => rng.random_range(105..=220),
        _ => rng.random_range(135..=290),
    };
    let driver_license = rng.random_bool(0.88).then(|| DriverLicense {
        number: format!(
            "{}{:07}",
            char::from(b'A' + rng.random_range(0..26u8)),
            rng.random_range(0..10_000_000)
        ),
        state: "CA".into(),
    });
    RestrainedPerson {
        race: race(rng),
        height: format!("{}{:02}", inches / 12, inches % 12),
        weight,
        eye: weighted(rng, EYES).to_string(),
        hair: weighted(rng, HAIR).to_string(),
        residence: address(rng, county),
        name,
        birth_date,
        sex,
        driver_license,
    }
}

fn protected_persons(
    rng: &mut StdRng,
    order_type: &str,
    restrained: &RestrainedPerson,
    today: NaiveDate,
) -> Vec<ProtectedPerson> {
    let count = *[(1, 60), (2, 28), (3, 12)]
        .choose_weighted(rng, |c| c.1)
        .map(|c| &c.0)
        .unwrap_or(&1);
    let opposite = if restrained.sex == 'F' { 'M' } else { 'F' };
    let mut persons = Vec::with_capacity(count);
    let first_relationship = match order_type {
        "DV" | "CPO" | "GV" => weighted(rng, &[("SP", 35), ("XS", 20), ("CO", 25), ("DT", 20)]),
        "EA" => weighted(rng, &[("CG", 60), ("FM", 30), ("OT", 10)]),
        "WV" => "EM",
        "SV" => "SC",
        "JV" => weighted(rng, &[("PA", 50), ("SI", 30), ("OT", 20)]),
        _ => weighted(rng, &[("AQ", 60), ("FM", 10), ("ST", 15), ("OT", 15)]),
    };
    let sex = if rng.random_bool(0.85) {
        opposite
    } else {
        restrained.sex
    };
    let mut first = protected_person(rng, sex, first_relationship, today);
    match first_relationship {
        "SP" | "XS" | "CO" | "DT" => {
            first.birth_date = near(rng, restrained.birth_date, today);
            if first_relationship == "SP" && rng.random_bool(0.6) {
                first.name.last = restrained.name.last.clone();
            }
        }
        "PA" if order_type == "EA" => first.birth_date = birth_date(rng, today, 65, 92),
        _ => {}
    }
    persons.push(first);
    while persons.len() < count {
        // Further protected persons: the children or household members.
        let sex = if rng.random_bool(0.5) { 'F' } else { 'M' };
        let mut child = protected_person(rng, sex, "CH", today);
        if rng.random_bool(0.7) {
            child.name.last = persons[0].name.last.clone();
        }
        persons.push(child);
    }
    persons
}

fn protected_person(rng: &mut StdRng, sex: char, relationship: &str, today: NaiveDate) -> ProtectedPerson {
    let birth_date = if relationship == "CH" {
        birth_date(rng, today, 1, 17)
    } else {
        birth_date(rng, today, 18, 80)
    };
    ProtectedPerson {
        name: person_name(rng, sex, false),
        birth_date,
        sex: if sex == 'X' { 'F' } else { sex },
        race: race(rng),
        relationship: relationship.into(),
    }
}

fn person_name(rng: &mut StdRng, sex: char, may_have_suffix: bool) -> PersonName {
    let firsts = match sex {
        'M' => MALE_FIRST,
        'F' => FEMALE_FIRST,
        _ if rng.random_bool(0.5) => MALE_FIRST,
        _ => FEMALE_FIRST,
    };
    let first = pick(rng, firsts).to_string();
    let middle = match rng.random_range(0..10) {
        0..=5 => Some(pick(rng, firsts).to_string()),
        6..=7 => Some(char::from(b'A' + rng.random_range(0..26u8)).to_string()),
        _ => None,
    };
    let suffix = (may_have_suffix && sex == 'M' && rng.random_bool(0.04))
        .then(|| pick(rng, &["JR", "SR", "II", "III"]).to_string());
    PersonName {
        last: pick(rng, LAST_NAMES).to_string(),
        first,
        middle,
        suffix,
    }
}

fn judge_name(rng: &mut StdRng) -> String {
    loop {
        let firsts = if rng.random_bool(0.5) { MALE_FIRST } else { FEMALE_FIRST };
        let title = if rng.random_bool(0.8) { "HON" } else { "COMM" };
        let name = format!("{title} {} {}", pick(rng, firsts), pick(rng, LAST_NAMES));
        if name.chars().count() <= 30 {
            return name;
        }
    }
}

fn race(rng: &mut StdRng) -> char {
    *[('H', 38), ('W', 34), ('A', 13), ('B', 10), ('I', 1), ('P', 1), ('U', 3)]
        .choose_weighted(rng, |r| r.1)
        .map(|r| &r.0)
        .unwrap_or(&'U')
}

/// A date of birth for someone between `min_age` and `max_age` years old.
fn birth_date(rng: &mut StdRng, today: NaiveDate, min_age: i64, max_age: i64) -> NaiveDate {
    let days = rng.random_range(min_age * 365 + 1..=max_age * 365 + 300);
    today - Duration::days(days)
}

/// A date of birth within eight years of `other`'s, at least 18 years ago.
fn near(rng: &mut StdRng, other: NaiveDate, today: NaiveDate) -> NaiveDate {
    let candidate = other + Duration::days(rng.random_range(-8 * 365..=8 * 365));
    candidate.min(today - Duration::days(18 * 365 + 5))
}

fn address(rng: &mut StdRng, county: County) -> Address {
    let (streets, city, zips): (&[&str], &str, &[&str]) = match county {
        County::Sacramento => (SACRAMENTO_STREETS, "SACRAMENTO", SACRAMENTO_ZIPS),
        County::LosAngeles => (LOS_ANGELES_STREETS, "LOS ANGELES", LOS_ANGELES_ZIPS),
        County::Other => (GENERIC_STREETS, "ANYTOWN", &["99999"]),
    };
    let mut street = format!("{} {}", rng.random_range(100..9_999), pick(rng, streets));
    let unit = match rng.random_range(0..10) {
        0..=1 => format!(" APT {}", rng.random_range(1..340)),
        2 => format!(
            " UNIT {}{}",
            rng.random_range(1..40),
            char::from(b'A' + rng.random_range(0..4u8))
        ),
        3 => format!(" SPC {}", rng.random_range(1..120)),
        _ => String::new(),
    };
    if street.len() + unit.len() <= 40 {
        street.push_str(&unit);
    }
    Address {
        street,
        city: city.into(),
        state: "CA".into(),
        zip: pick(rng, zips).to_string(),
    }
}

/// The standard conditions of a California restraining order, each with the
/// PCO code it implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    StayAway,
    NoContact,
    Firearms,
    MoveOut,
    Animals,
    Electronic,
    Elder,
    Workplace,
    School,
    Counseling,
}

impl Condition {
    const ALL: [Condition; 10] = [
        Condition::StayAway,
        Condition::NoContact,
        Condition::Firearms,
        Condition::MoveOut,
        Condition::Animals,
        Condition::Electronic,
        Condition::Elder,
        Condition::Workplace,
        Condition::School,
        Condition::Counseling,
    ];

    fn special_for(order_type: &str) -> Option<Condition> {
        match order_type {
            "EA" => Some(Condition::Elder),
            "WV" => Some(Condition::Workplace),
            "SV" => Some(Condition::School),
            "CPO" => Some(Condition::Counseling),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Condition::StayAway => "04",
            Condition::NoContact => "05",
            Condition::Firearms => "07",
            Condition::MoveOut => "03",
            Condition::Animals | Condition::Electronic | Condition::Elder => "08",
            Condition::Workplace | Condition::School => "04",
            Condition::Counseling => "09",
        }
    }

    /// The text; `{}` in the stay-away condition is the distance.
    fn text(self, distance: u32) -> String {
        match self {
            Condition::StayAway => format!(
                "STAY AT LEAST {distance} YARDS AWAY FROM PROTECTED PERSON, HOME, WORK, VEHICLE AND CHILDREN'S SCHOOL OR CHILD CARE."
            ),
            Condition::NoContact => "NO CONTACT IN PERSON, BY PHONE, TEXT, EMAIL, SOCIAL MEDIA OR THROUGH OTHERS, EXCEPT BRIEF AND PEACEFUL CONTACT REQUIRED FOR COURT-ORDERED VISITATION.".into(),
            Condition::Firearms => "DO NOT OWN, POSSESS, BUY OR RECEIVE FIREARMS OR AMMUNITION. SURRENDER OR SELL ALL FIREARMS WITHIN 24 HOURS AND FILE PROOF WITH THE COURT WITHIN 48 HOURS.".into(),
            Condition::MoveOut => "MOVE OUT IMMEDIATELY FROM THE SHARED RESIDENCE AND TAKE ONLY CLOTHING AND PERSONAL ITEMS.".into(),
            Condition::Animals => "STAY AWAY FROM AND DO NOT TAKE, HARM OR DISPOSE OF THE ANIMALS OF THE PROTECTED PERSON.".into(),
            Condition::Electronic => "DO NOT ACCESS, TRACK OR INTERFERE WITH THE PROTECTED PERSON'S PHONE, ACCOUNTS OR VEHICLE.".into(),
            Condition::Elder => "DO NOT TAKE ANY ACTION TO OBTAIN THE PROTECTED PERSON'S FINANCIAL RECORDS OR PROPERTY.".into(),
            Condition::Workplace => "STAY AWAY FROM THE EMPLOYER'S WORKPLACE AND PARKING AREAS AT ALL TIMES.".into(),
            Condition::School => "STAY AWAY FROM THE SCHOOL CAMPUS EXCEPT AS AUTHORIZED IN WRITING BY THE SCHOOL.".into(),
            Condition::Counseling => "COMPLETE A 52-WEEK BATTERER INTERVENTION PROGRAM AND FILE PROOF OF ENROLLMENT.".into(),
        }
    }
}

/// The conditions of one order, in the order they were added.
#[derive(Debug, Default)]
struct Conditions {
    list: Vec<Condition>,
    distance: u32,
}

impl Conditions {
    /// Recognises the conditions already in an order's text.
    fn parse(order: &Order) -> Conditions {
        let mut conditions = Conditions {
            list: Vec::new(),
            distance: 100,
        };
        for distance in [50, 100, 150, 200, 300] {
            if order.condition_text.contains(&format!("AT LEAST {distance} YARDS")) {
                conditions.distance = distance;
            }
        }
        for c in Condition::ALL {
            if order.condition_text.contains(&c.text(conditions.distance)) {
                conditions.list.push(c);
            }
        }
        conditions
    }

    /// Adds a condition unless it is already there or its text would no
    /// longer fit the order (500 characters, five fixed-width lines).
    fn add(&mut self, rng: &mut StdRng, condition: Condition) {
        if self.distance == 0 {
            self.distance = *[50, 100, 100, 100, 150, 200, 300].choose(rng).unwrap_or(&100);
        }
        if !self.has(condition) {
            self.list.push(condition);
            if !condition_text_fits(&self.text()) {
                self.list.pop();
            }
        }
    }

    fn has(&self, condition: Condition) -> bool {
        self.list.contains(&condition)
    }

    fn text(&self) -> String {
        let parts: Vec<String> = self.list.iter().map(|c| c.text(self.distance)).collect();
        parts.join(" ")
    }

    /// PCO codes, ascending and unique; `01` (no abuse) is always ordered.
    fn codes(&self) -> Vec<String> {
        let mut codes: Vec<String> = std::iter::once("01")
            .chain(self.list.iter().map(|c| c.code()))
            .map(String::from)
            .collect();
        codes.sort();
        codes.dedup();
        codes
    }
}

/// Drops seconds and below: service is recorded to the minute.
fn to_the_minute(t: NaiveDateTime) -> NaiveDateTime {
    let time = NaiveTime::from_hms_opt(t.hour(), t.minute(), 0).unwrap_or(t.time());
    t.date().and_time(time)
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or("X")
}

fn weighted<'a>(rng: &mut StdRng, list: &[(&'a str, u32)]) -> &'a str {
    list.choose_weighted(rng, |e| e.1).map(|e| e.0).unwrap_or(list[0].0)
}

fn ascii_only(s: &str) -> String {
    s.chars().filter(char::is_ascii).collect()
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect::<String>().trim_end().to_string()
}

/// FNV-1a, to derive a court's stream from the run seed and its ORI.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

const EYES: &[(&str, u32)] = &[
    ("BRO", 55),
    ("BLU", 15),
    ("HAZ", 10),
    ("GRN", 7),
    ("BLK", 8),
    ("GRY", 2),
    ("MUL", 1),
    ("XXX", 2),
];

const HAIR: &[(&str, u32)] = &[
    ("BLK", 40),
    ("BRO", 30),
    ("BLN", 8),
    ("GRY", 6),
    ("BAL", 5),
    ("RED", 3),
    ("SDY", 3),
    ("WHI", 2),
    ("XXX", 3),
];

#[rustfmt::skip]
const MALE_FIRST: &[&str] = &[
    "JAMES", "JOHN", "ROBERT", "MICHAEL", "DAVID", "WILLIAM", "RICHARD", "JOSEPH", "THOMAS",
    "CHRISTOPHER", "DANIEL", "MATTHEW", "ANTHONY", "MARK", "STEVEN", "ANDREW", "JOSHUA", "KEVIN",
    "BRIAN", "RYAN", "JASON", "JUSTIN", "BRANDON", "TYLER", "AARON", "NATHAN", "JOSE", "JOSÉ",
    "LUIS", "CARLOS", "JUAN", "MIGUEL", "JORGE", "FRANCISCO", "ALEJANDRO", "JESUS", "RICARDO",
    "EDUARDO", "FERNANDO", "RAMÓN", "ANDRÉS", "HECTOR", "VICTOR", "MARCUS", "DEANDRE", "TERRELL",
    "DARNELL", "JAMAL", "ANDRE", "DWAYNE", "MINH", "TUAN", "WEI", "JUN", "HYUN", "SANJAY", "RAJESH",
    "ARJUN", "KENJI", "MOHAMMED", "OMAR", "ARMEN", "DMITRI", "SERGEI", "RODEL", "ARNEL", "SIONE",
    "TEVITA", "KEANU", "DAKOTA",
];

#[rustfmt::skip]
const FEMALE_FIRST: &[&str] = &[
    "MARIA", "JENNIFER", "JESSICA", "ASHLEY", "SARAH", "EMILY", "AMANDA", "STEPHANIE", "NICOLE",
    "MELISSA", "ELIZABETH", "MICHELLE", "LAURA", "KIMBERLY", "REBECCA", "RACHEL", "LISA", "KAREN",
    "PATRICIA", "LINDA", "SUSAN", "ANA", "ROSA", "GUADALUPE", "VERONICA", "ALEJANDRA", "CLAUDIA",
    "YESENIA", "GABRIELA", "DANIELA", "MÓNICA", "SOFÍA", "LUCÍA", "ANGELICA", "BRENDA", "LATOYA",
    "KEISHA", "TANISHA", "EBONY", "IMANI", "NGOC", "THUY", "LINH", "MEI", "XIAO", "PRIYA", "ANJALI",
    "YUKI", "FATIMA", "AMIRA", "LEILA", "NARINE", "SVETLANA", "MARICEL", "JOCELYN", "MALIA",
    "MARY ANN", "ANNA MARIE",
];

#[rustfmt::skip]
const LAST_NAMES: &[&str] = &[
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "MILLER", "DAVIS", "WILSON", "ANDERSON",
    "TAYLOR", "THOMAS", "MOORE", "MARTIN", "JACKSON", "THOMPSON", "WHITE", "HARRIS", "CLARK",
    "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "HILL", "GREEN",
    "ADAMS", "BAKER", "NELSON", "CARTER", "MITCHELL", "ROBERTS", "TURNER", "PHILLIPS", "CAMPBELL",
    "PARKER", "EVANS", "EDWARDS", "COLLINS", "STEWART", "MURPHY", "O'BRIEN", "O'CONNOR", "MCDONALD",
    "GARCIA", "RODRIGUEZ", "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "PEREZ", "SANCHEZ",
    "RAMIREZ", "TORRES", "FLORES", "RIVERA", "GOMEZ", "DIAZ", "REYES", "CRUZ", "MORALES", "ORTIZ",
    "GUTIERREZ", "CHAVEZ", "RAMOS", "RUIZ", "ALVAREZ", "MENDOZA", "CASTILLO", "JIMENEZ", "MORENO",
    "ROMERO", "HERRERA", "MEDINA", "AGUILAR", "VARGAS", "CASTRO", "GUZMAN", "MUÑOZ", "PEÑA",
    "NÚÑEZ", "IBÁÑEZ", "GARCIA-LOPEZ", "HERNANDEZ-RAMIREZ", "DE LA CRUZ", "NGUYEN", "TRAN", "LE",
    "PHAM", "HUYNH", "VO", "KIM", "LEE", "PARK", "CHOI", "WONG", "CHEN", "WANG", "LI", "ZHANG",
    "LIU", "HUANG", "LIN", "YANG", "WU", "PATEL", "SINGH", "SHARMA", "GUPTA", "KUMAR", "TANAKA",
    "NAKAMURA", "YAMAMOTO", "SANTOS", "DELA CRUZ", "BAUTISTA", "VILLANUEVA", "WASHINGTON",
    "JEFFERSON", "BANKS", "BOOKER", "HAYES", "PETROSYAN", "SARGSYAN", "HAKOBYAN", "IVANOV",
    "KOVALENKO", "AHMED", "HASSAN", "KHAN", "TUPOU", "FIFITA", "YAZZIE", "BEGAY", "VAN DER BERG",
    "SCHMIDT", "MUELLER", "ROSSI", "RUSSO", "COHEN", "LEVY", "KOWALSKI", "NOWAK", "OKAFOR",
    "ADEYEMI", "MENSAH",
];

const CANCEL_REASONS: &[&str] = &[
    "ENTERED IN ERROR",
    "DUPLICATE ENTRY OF EXISTING ORDER",
    "WRONG RESTRAINED PERSON ENTERED",
    "ORDER VACATED ON RECONSIDERATION",
];

#[rustfmt::skip]
const SACRAMENTO_STREETS: &[&str] = &[
    "J ST", "K ST", "CAPITOL AVE", "FOLSOM BLVD", "STOCKTON BLVD", "FRANKLIN BLVD", "FLORIN RD",
    "MACK RD", "ARDEN WAY", "WATT AVE", "FAIR OAKS BLVD", "65TH ST", "BROADWAY", "DEL PASO BLVD",
    "NORWOOD AVE", "GREENBACK LN", "MARCONI AVE", "EL CAMINO AVE", "FRUITRIDGE RD", "MEADOWVIEW RD",
    "POCKET RD", "RIVERSIDE BLVD", "FREEPORT BLVD", "H ST", "T ST", "W EL CAMINO AVE", "TRUXEL RD",
    "GATEWAY OAKS DR", "EXPOSITION BLVD", "HOWE AVE",
];

#[rustfmt::skip]
const SACRAMENTO_ZIPS: &[&str] = &[
    "95811", "95814", "95815", "95816", "95817", "95818", "95819", "95820", "95821", "95822",
    "95823", "95824", "95825", "95826", "95827", "95828", "95831", "95832", "95833", "95834",
    "95835", "95838",
];

#[rustfmt::skip]
const LOS_ANGELES_STREETS: &[&str] = &[
    "S FIGUEROA ST", "W SUNSET BLVD", "WILSHIRE BLVD", "S CENTRAL AVE", "W ADAMS BLVD",
    "CRENSHAW BLVD", "S VERMONT AVE", "E CESAR E CHAVEZ AVE", "W PICO BLVD", "S BROADWAY",
    "HOLLYWOOD BLVD", "S WESTERN AVE", "W OLYMPIC BLVD", "S ALAMEDA ST", "N SPRING ST",
    "W MARTIN LUTHER KING JR BLVD", "E 1ST ST", "S SOTO ST", "N BROADWAY", "W 3RD ST",
    "S HOOVER ST", "W SLAUSON AVE", "S NORMANDIE AVE", "E OLYMPIC BLVD", "N FIGUEROA ST",
];

#[rustfmt::skip]
const LOS_ANGELES_ZIPS: &[&str] = &[
    "90001", "90002", "90003", "90004", "90005", "90006", "90007", "90008", "90011", "90012",
    "90013", "90015", "90016", "90017", "90018", "90019", "90021", "90023", "90026", "90027",
    "90028", "90029", "90031", "90032", "90033", "90037", "90043", "90044", "90047", "90057",
    "90062", "90063", "90065",
];

#[rustfmt::skip]
const GENERIC_STREETS: &[&str] = &[
    "MAIN ST", "OAK AVE", "ELM ST", "PINE ST", "MAPLE DR", "1ST ST", "2ND ST", "PARK AVE",
    "CENTER ST", "WASHINGTON ST", "LINCOLN AVE", "CHURCH ST",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn court(ori: &str, format: CourtFormat) -> SimCourt {
        SimCourt {
            ori: ori.into(),
            name: String::new(),
            format,
        }
    }

    fn at() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-25T10:15:00-08:00").unwrap()
    }

    fn generate(ori: &str, seed: u64, n: usize) -> Vec<GeneratedMessage> {
        let mut g = OrderGenerator::new(&court(ori, CourtFormat::Xml), seed, at(), "r1");
        (0..n).flat_map(|_| g.next_order(true, false)).collect()
    }

    /// The same seed and date give the same orders; another seed gives others.
    #[test]
    fn generation_is_deterministic_from_the_seed() {
        assert_eq!(generate("CA034025J", 42, 20), generate("CA034025J", 42, 20));
        assert_ne!(generate("CA034025J", 42, 5), generate("CA034025J", 43, 5));
    }

    /// Every generated field keeps to the ICD §0 limits and code lists.
    #[test]
    fn generated_orders_keep_the_icd_limits() {
        for ori in ["CA034025J", "CA019015J", "CA0570000"] {
            let messages = generate(ori, 7, 300);
            let mut numbers = std::collections::HashSet::new();
            for m in &messages {
                let o = &m.order;
                assert!(m.message_id.len() <= 64);
                assert!(o.order_number.len() <= 15);
                assert!(
                    o.order_number
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
                );
                assert!(o.case_number.len() <= 20);
                assert!(o.form_id.len() <= 8);
                assert!(o.judicial_officer.chars().count() <= 30);
                assert!(condition_text_fits(&o.condition_text) && o.condition_text.is_ascii());
                assert!((1..=9).contains(&o.condition_codes.len()));
                assert!(o.condition_codes.windows(2).all(|w| w[0] < w[1]));
                assert!(o.condition_codes.iter().all(|c| ("01"..="09").contains(&c.as_str())));
                assert!((1..=9).contains(&o.protected.len()));
                assert!(o.expiration.unwrap().date() > o.issue_date);
                assert!("YNU".contains(o.brady));
                let r = &o.restrained;
                for name in std::iter::once(&r.name).chain(o.protected.iter().map(|p| &p.name)) {
                    assert!(name.last.chars().count() <= 30);
                    assert!(name.first.chars().count() <= 20);
                    assert!(name.middle.as_ref().is_none_or(|m| m.chars().count() <= 20));
                }
                assert!("MFXU".contains(r.sex) && "ABHIPUW".contains(r.race));
                assert!(
                    o.protected
                        .iter()
                        .all(|p| "MFXU".contains(p.sex) && "ABHIPUW".contains(p.race))
                );
                assert!(EYES.iter().any(|e| e.0 == r.eye) && HAIR.iter().any(|h| h.0 == r.hair));
                assert_eq!(r.height.len(), 3);
                assert!(r.residence.street.len() <= 40 && r.residence.city.len() <= 20);
                if let Action::Service(s) = &m.action {
                    assert!(s.served_by.chars().count() <= 30 && s.serving_agency_ori.len() == 9);
                    assert!("PSMC".contains(s.method));
                }
                if m.sequence == 1 {
                    assert!(numbers.insert(o.order_number.clone()), "order number repeated");
                }
            }
        }
    }

    /// Residences are in the court's county: Sacramento 958xx, Los Angeles 900xx.
    #[test]
    fn residences_are_in_the_courts_county() {
        for m in generate("CA034025J", 1, 50) {
            assert!(m.order.restrained.residence.zip.starts_with("958"));
            assert_eq!(m.order.restrained.residence.city, "SACRAMENTO");
        }
        for m in generate("CA019015J", 1, 50) {
            assert!(m.order.restrained.residence.zip.starts_with("900"));
        }
    }

    /// A lifecycle is ISSUE 1, MODIFY 2, SERVICE 3 of one order, with distinct message ids.
    #[test]
    fn lifecycle_is_in_sequence() {
        let messages = generate("CA034025J", 3, 1);
        let names: Vec<_> = messages.iter().map(|m| (m.action.name(), m.sequence)).collect();
        assert_eq!(names, [("ISSUE", 1), ("MODIFY", 2), ("SERVICE", 3)]);
        assert!(
            messages
                .iter()
                .all(|m| m.order.order_number == messages[0].order.order_number)
        );
        assert_eq!(messages[0].message_id, "ca034025j-r1-000001");
        assert_eq!(messages[2].message_id, "ca034025j-r1-000003");
        // The issue date is today in California, expiration 3 or 5 years later at 23:59.
        let o = &messages[0].order;
        assert_eq!(o.issue_date, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        let exp = o.expiration.unwrap();
        assert!([2029, 2031].contains(&exp.year()) && exp.format("%m%d%H%M").to_string() == "11252359");
    }

    /// `terminate` always closes with TERMINATE, `cancel` with CANCEL, `mixed`
    /// with both; the mode changes nothing else about the orders.
    #[test]
    fn close_modes_choose_the_closing_action() {
        let close = |mode: CloseMode| -> Vec<Vec<GeneratedMessage>> {
            let mut g = OrderGenerator::new(&court("CA034025J", CourtFormat::Xml), 8, at(), "r1").with_close_mode(mode);
            (0..40).map(|_| g.next_order(true, true)).collect()
        };
        let last_actions = |orders: &[Vec<GeneratedMessage>]| -> std::collections::BTreeSet<(&'static str, u32)> {
            orders.iter().map(|o| (o[3].action.name(), o[3].sequence)).collect()
        };
        let terminate = close(CloseMode::Terminate);
        let cancel = close(CloseMode::Cancel);
        let mixed = close(CloseMode::Mixed);
        assert_eq!(last_actions(&terminate), [("TERMINATE", 4)].into());
        assert_eq!(last_actions(&cancel), [("CANCEL", 4)].into());
        assert_eq!(last_actions(&mixed), [("CANCEL", 4), ("TERMINATE", 4)].into());
        for (t, c) in terminate.iter().zip(&cancel) {
            assert_eq!(t[..3], c[..3], "the first three messages do not depend on the mode");
        }
    }

    /// A format override sets every order's format; `mixed` draws one per
    /// order, shared by its messages; neither changes the orders' content.
    #[test]
    fn format_override_sets_each_orders_format() {
        let orders = |format: Option<FormatChoice>| -> Vec<Vec<GeneratedMessage>> {
            let mut g = OrderGenerator::new(&court("CA019015J", CourtFormat::Fixed), 4, at(), "r1").with_format(format);
            (0..30).map(|_| g.next_order(true, false)).collect()
        };
        let formats = |orders: &[Vec<GeneratedMessage>]| -> Vec<CourtFormat> {
            orders
                .iter()
                .map(|o| {
                    assert!(o.iter().all(|m| m.format == o[0].format), "one format per order");
                    o[0].format
                })
                .collect()
        };
        let own = orders(None);
        assert!(formats(&own).iter().all(|f| *f == CourtFormat::Fixed));
        assert!(
            formats(&orders(Some(FormatChoice::Xml)))
                .iter()
                .all(|f| *f == CourtFormat::Xml)
        );
        assert!(
            formats(&orders(Some(FormatChoice::Fixed)))
                .iter()
                .all(|f| *f == CourtFormat::Fixed)
        );
        let mixed = orders(Some(FormatChoice::Mixed));
        let drawn = formats(&mixed);
        assert!(
            drawn.contains(&CourtFormat::Xml) && drawn.contains(&CourtFormat::Fixed),
            "{drawn:?}"
        );
        for (a, b) in own.iter().flatten().zip(mixed.iter().flatten()) {
            assert_eq!(
                (&a.order, &a.action, &a.message_id),
                (&b.order, &b.action, &b.message_id)
            );
        }
    }

    /// With images, every XML ISSUE and some XML MODIFYs carry one, nothing
    /// else does, fixed-width never; the orders stay as they were.
    #[test]
    fn images_go_on_xml_issues_and_some_modifies() {
        let mut plain = OrderGenerator::new(&court("CA034025J", CourtFormat::Xml), 6, at(), "r1");
        let mut with = OrderGenerator::new(&court("CA034025J", CourtFormat::Xml), 6, at(), "r1")
            .with_images(true)
            .with_format(Some(FormatChoice::Mixed));
        let (mut xml_modifies, mut imaged_modifies, mut fixed) = (0, 0, 0);
        for _ in 0..60 {
            let a = plain.next_order(true, true);
            let b = with.next_order(true, true);
            for (a, b) in a.iter().zip(&b) {
                assert_eq!(a.order, b.order);
                assert_eq!(a.image, None);
                match (b.format, &b.action) {
                    (CourtFormat::Fixed, _) => {
                        fixed += 1;
                        assert_eq!(b.image, None);
                    }
                    (CourtFormat::Xml, Action::Issue) => assert!(b.image.is_some()),
                    (CourtFormat::Xml, Action::Modify) => {
                        xml_modifies += 1;
                        imaged_modifies += usize::from(b.image.is_some());
                    }
                    (CourtFormat::Xml, _) => assert_eq!(b.image, None),
                }
            }
        }
        assert!(fixed > 0);
        assert!(
            0 < imaged_modifies && imaged_modifies < xml_modifies,
            "{imaged_modifies} of {xml_modifies}"
        );
    }

    /// A MODIFY changes something but keeps the order key and the full order.
    #[test]
    fn modify_changes_the_order() {
        let mut changed = 0;
        for seed in 0..20 {
            let m = generate("CA034025J", seed, 1);
            if m[1].order != m[0].order {
                changed += 1;
            }
            assert_eq!(m[1].order.order_number, m[0].order.order_number);
        }
        assert!(changed >= 18);
    }
}
