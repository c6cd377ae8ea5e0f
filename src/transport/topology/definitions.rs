//! What `porter topology` prints and applies: the ICD §1 topology, the
//! policies and the court users, as a RabbitMQ definitions document (the
//! format of `rabbitmqctl export_definitions`, `rabbitmqctl
//! import_definitions` and the management API's `/api/definitions`).
//!
//! Pure: no I/O. Passwords arrive already hashed (see [`super::password`]).
//!
//! # Design note: the policies
//! Queues carry `x-queue-type=quorum` and nothing else (ICD §1); everything
//! else is a policy, so it can change without redeclaring a queue.
//!
//! - `por-inbound` (`^por\.inbound\.`) and `por-responses`
//!   (`^por\.responses\.`): `delivery-limit` (≥ 20), then dead-lettering to
//!   `por.dead`. `por.dead` is a queue bound to no exchange (Porter itself
//!   publishes dead letters through the default exchange with routing key
//!   `por.dead`), so the dead-letter exchange is the default exchange `""`
//!   with `dead-letter-routing-key = por.dead`. `dead-letter-strategy =
//!   at-least-once` (RabbitMQ 3.10+ quorum queues): the source queue keeps a
//!   dead-lettered message until `por.dead` has confirmed it, instead of the
//!   default at-most-once, which drops it if it cannot be routed or is
//!   refused. At-least-once requires `overflow = reject-publish` on the
//!   source queue (with `drop-head` RabbitMQ silently falls back to
//!   at-most-once); the court queues have no length limit, so the setting
//!   has no other effect on them.
//! - `por-dead` (`^por\.dead$`): bounded by `max-length` and
//!   `max-length-bytes`, with `overflow = reject-publish`: once full, new
//!   dead letters are refused (nacked), never dropped. Porter's own dead
//!   letters stay in its store, which is the record, and are republished
//!   until confirmed; messages RabbitMQ dead-letters stay in their source
//!   queue (at-least-once) until there is room.
//!
//! Porter acknowledges an inbound delivery once it is stored, so the
//! delivery limit only catches a message that keeps the broker from
//! storing it (for example one that crashes it) — a poison message.
//!
//! # Court users
//! For each court: `court-<ori>` (lowercase, ICD §1) and every name in its
//! `amqp_users`. A user serving several courts gets one set of permissions
//! covering all of them (RabbitMQ keeps one per user and vhost).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::password::HASHING_ALGORITHM;
use super::{DEAD_QUEUE, INBOUND_EXCHANGE, RESPONSES_EXCHANGE};
use crate::config::{CourtConfig, TopologyConfig};

pub const INBOUND_POLICY: &str = "por-inbound";
pub const RESPONSES_POLICY: &str = "por-responses";
pub const DEAD_POLICY: &str = "por-dead";

/// A RabbitMQ definitions document (the subset Porter needs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Definitions {
    pub users: Vec<User>,
    pub permissions: Vec<Permission>,
    pub topic_permissions: Vec<TopicPermission>,
    pub policies: Vec<Policy>,
    pub queues: Vec<Queue>,
    pub exchanges: Vec<Exchange>,
    pub bindings: Vec<Binding>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub name: String,
    /// RabbitMQ's salted SHA-256 hash; `""` for a user without a password
    /// (it cannot log in with one).
    pub password_hash: String,
    pub hashing_algorithm: &'static str,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Permission {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicPermission {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    #[serde(rename = "apply-to")]
    pub apply_to: String,
    pub definition: Map<String, Value>,
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Queue {
    pub name: String,
    pub vhost: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exchange {
    pub name: String,
    pub vhost: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Binding {
    pub source: String,
    pub vhost: String,
    pub destination: String,
    pub destination_type: String,
    pub routing_key: String,
    pub arguments: Map<String, Value>,
}

/// A court user and the courts (ORIs, sorted) it may publish for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourtUser {
    pub name: String,
    pub courts: Vec<String>,
}

/// The user ICD §1 names for a court: `court-<ori>`, lowercase.
pub fn court_user_name(ori: &str) -> String {
    format!("court-{}", ori.to_ascii_lowercase())
}

/// Every court user, by name: `court-<ori>` and each court's `amqp_users`.
pub fn court_users(courts: &[CourtConfig]) -> Vec<CourtUser> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for court in courts {
        let names = std::iter::once(court_user_name(&court.ori)).chain(court.amqp_users.iter().cloned());
        for name in names {
            let oris = users.entry(name).or_default();
            if !oris.contains(&court.ori) {
                oris.push(court.ori.clone());
                oris.sort();
            }
        }
    }
    users
        .into_iter()
        .map(|(name, courts)| CourtUser { name, courts })
        .collect()
}

/// `^A$` for one value, `^(A|B)$` for several (ORIs need no escaping).
fn alternatives(prefix: &str, oris: &[String]) -> String {
    match oris {
        [one] => format!("^{prefix}{one}$"),
        many => format!("^{prefix}({})$", many.join("|")),
    }
}

/// A court user's permissions: configure nothing, write the inbound
/// exchange, read its own status queue(s).
pub fn permission(user: &CourtUser, vhost: &str) -> Permission {
    Permission {
        user: user.name.clone(),
        vhost: vhost.into(),
        configure: "^$".into(),
        write: format!("^{}$", regex_escape(INBOUND_EXCHANGE)),
        read: alternatives(&regex_escape(&format!("{RESPONSES_EXCHANGE}.")), &user.courts),
    }
}

/// On `por.inbound`, a court user may publish only with its own ORI as
/// routing key, and read nothing.
pub fn topic_permission(user: &CourtUser, vhost: &str) -> TopicPermission {
    TopicPermission {
        user: user.name.clone(),
        vhost: vhost.into(),
        exchange: INBOUND_EXCHANGE.into(),
        write: alternatives("", &user.courts),
        read: "^$".into(),
    }
}

/// `.` → `\.` (the only metacharacter in Porter's names).
fn regex_escape(s: &str) -> String {
    s.replace('.', "\\.")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => unreachable!("json! object literal"),
    }
}

/// The three policies (see the module's design note).
pub fn policies(t: &TopologyConfig, vhost: &str) -> Vec<Policy> {
    let dead_lettering = object(json!({
        "delivery-limit": t.delivery_limit,
        "dead-letter-exchange": "",
        "dead-letter-routing-key": DEAD_QUEUE,
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",
    }));
    let policy = |name: &str, pattern: String, definition: Map<String, Value>| Policy {
        vhost: vhost.into(),
        name: name.into(),
        pattern,
        apply_to: "queues".into(),
        definition,
        priority: t.policy_priority,
    };
    vec![
        policy(
            INBOUND_POLICY,
            format!("^{}", regex_escape(&format!("{INBOUND_EXCHANGE}."))),
            dead_lettering.clone(),
        ),
        policy(
            RESPONSES_POLICY,
            format!("^{}", regex_escape(&format!("{RESPONSES_EXCHANGE}."))),
            dead_lettering,
        ),
        policy(
            DEAD_POLICY,
            format!("^{}$", regex_escape(DEAD_QUEUE)),
            object(json!({
                "max-length": t.dead_max_length,
                "max-length-bytes": t.dead_max_length_bytes,
                "overflow": "reject-publish",
            })),
        ),
    ]
}

impl Definitions {
    /// The definitions for `courts` in `vhost`. `hashes` holds the password
    /// hash of each court user that has one; the others get `""`.
    pub fn build(
        vhost: &str,
        courts: &[CourtConfig],
        t: &TopologyConfig,
        hashes: &BTreeMap<String, String>,
    ) -> Definitions {
        let users = court_users(courts);
        let quorum = || object(json!({ "x-queue-type": "quorum" }));
        let queue = |name: String| Queue {
            name,
            vhost: vhost.into(),
            durable: true,
            auto_delete: false,
            arguments: quorum(),
        };
        let exchange = |name: &str, kind: &str| Exchange {
            name: name.into(),
            vhost: vhost.into(),
            kind: kind.into(),
            durable: true,
            auto_delete: false,
            internal: false,
            arguments: Map::new(),
        };
        let binding = |source: &str, destination: String, key: &str| Binding {
            source: source.into(),
            vhost: vhost.into(),
            destination,
            destination_type: "queue".into(),
            routing_key: key.into(),
            arguments: Map::new(),
        };
        let mut queues = vec![queue(DEAD_QUEUE.into())];
        let mut bindings = Vec::new();
        for court in courts {
            queues.push(queue(court.inbound_queue()));
            queues.push(queue(court.responses_queue()));
            bindings.push(binding(INBOUND_EXCHANGE, court.inbound_queue(), &court.ori));
            bindings.push(binding(RESPONSES_EXCHANGE, court.responses_queue(), &court.ori));
        }
        Definitions {
            users: users
                .iter()
                .map(|u| User {
                    name: u.name.clone(),
                    password_hash: hashes.get(&u.name).cloned().unwrap_or_default(),
                    hashing_algorithm: HASHING_ALGORITHM,
                    tags: Vec::new(),
                })
                .collect(),
            permissions: users.iter().map(|u| permission(u, vhost)).collect(),
            topic_permissions: users.iter().map(|u| topic_permission(u, vhost)).collect(),
            policies: policies(t, vhost),
            queues,
            exchanges: vec![
                exchange(INBOUND_EXCHANGE, "topic"),
                exchange(RESPONSES_EXCHANGE, "direct"),
            ],
            bindings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn court(ori: &str, users: &[&str]) -> CourtConfig {
        toml::from_str(&format!(
            "ori = {ori:?}\nsheriff_ori = \"CA0340000\"\namqp_users = {users:?}\n"
        ))
        .unwrap()
    }

    fn policy<'a>(d: &'a Definitions, name: &str) -> &'a Policy {
        d.policies.iter().find(|p| p.name == name).unwrap()
    }

    fn build(courts: &[CourtConfig]) -> Definitions {
        Definitions::build("/", courts, &TopologyConfig::default(), &BTreeMap::new())
    }

    /// The court queues dead-letter to `por.dead` through the default
    /// exchange after at least 20 deliveries, at-least-once.
    #[test]
    fn court_queue_policies_dead_letter_to_por_dead() {
        let d = build(&[court("CA034025J", &[])]);
        for name in [INBOUND_POLICY, RESPONSES_POLICY] {
            let p = policy(&d, name);
            assert_eq!(p.apply_to, "queues");
            assert_eq!(p.vhost, "/");
            let def = Value::Object(p.definition.clone());
            assert_eq!(
                def,
                json!({
                    "delivery-limit": 20,
                    "dead-letter-exchange": "",
                    "dead-letter-routing-key": "por.dead",
                    "dead-letter-strategy": "at-least-once",
                    "overflow": "reject-publish",
                })
            );
        }
        assert_eq!(policy(&d, INBOUND_POLICY).pattern, r"^por\.inbound\.");
        assert_eq!(policy(&d, RESPONSES_POLICY).pattern, r"^por\.responses\.");
    }

    /// `por.dead` is bounded in messages and bytes and refuses, rather than
    /// drops, once full; the configured values are used.
    #[test]
    fn por_dead_is_bounded() {
        let t: TopologyConfig =
            toml::from_str("delivery_limit = 50\ndead_max_length = 10\ndead_max_length_bytes = 4096").unwrap();
        let ps = policies(&t, "porter");
        let dead = ps.iter().find(|p| p.name == DEAD_POLICY).unwrap();
        assert_eq!(dead.pattern, r"^por\.dead$");
        assert_eq!(
            Value::Object(dead.definition.clone()),
            json!({"max-length": 10, "max-length-bytes": 4096, "overflow": "reject-publish"})
        );
        let inbound = ps.iter().find(|p| p.name == INBOUND_POLICY).unwrap();
        assert_eq!(inbound.definition["delivery-limit"], 50);
        assert!(ps.iter().all(|p| p.vhost == "porter" && p.priority == 10));
    }

    /// The patterns match the court queues and `por.dead` and nothing else
    /// of Porter's (checked with a tiny anchored-prefix reading of them).
    #[test]
    fn patterns_match_the_right_names() {
        let ps = policies(&TopologyConfig::default(), "/");
        let matches = |pattern: &str, name: &str| {
            let literal = pattern.trim_start_matches('^').replace("\\.", ".");
            match literal.strip_suffix('$') {
                Some(exact) => name == exact,
                None => name.starts_with(&literal),
            }
        };
        let which = |name: &str| -> Vec<&str> {
            ps.iter()
                .filter(|p| matches(&p.pattern, name))
                .map(|p| p.name.as_str())
                .collect()
        };
        assert_eq!(which("por.inbound.CA034025J"), [INBOUND_POLICY]);
        assert_eq!(which("por.responses.CA034025J"), [RESPONSES_POLICY]);
        assert_eq!(which("por.dead"), [DEAD_POLICY]);
        assert!(which("por.inbound").is_empty());
        assert!(which("por.deadish").is_empty());
    }

    /// A court's user is `court-<ori>` plus its `amqp_users`; it may
    /// configure nothing, write `por.inbound` with its own ORI only and read
    /// its own status queue only.
    #[test]
    fn court_user_permissions() {
        let d = build(&[court("CA034025J", &["cms-vendor"]), court("CA019015J", &[])]);
        let names: Vec<&str> = d.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["cms-vendor", "court-ca019015j", "court-ca034025j"]);
        let p = d.permissions.iter().find(|p| p.user == "court-ca034025j").unwrap();
        assert_eq!(
            (p.configure.as_str(), p.write.as_str(), p.read.as_str()),
            ("^$", r"^por\.inbound$", r"^por\.responses\.CA034025J$")
        );
        let t = d
            .topic_permissions
            .iter()
            .find(|t| t.user == "court-ca034025j")
            .unwrap();
        assert_eq!(
            (t.exchange.as_str(), t.write.as_str(), t.read.as_str()),
            ("por.inbound", "^CA034025J$", "^$")
        );
        assert!(d.users.iter().all(|u| u.tags.is_empty() && u.password_hash.is_empty()));
    }

    /// A user listed by two courts gets one permission covering both.
    #[test]
    fn shared_user_covers_both_courts() {
        let d = build(&[court("CA034025J", &["shared"]), court("CA019015J", &["shared"])]);
        let p = d.permissions.iter().find(|p| p.user == "shared").unwrap();
        assert_eq!(p.read, r"^por\.responses\.(CA019015J|CA034025J)$");
        let t = d.topic_permissions.iter().find(|t| t.user == "shared").unwrap();
        assert_eq!(t.write, "^(CA019015J|CA034025J)$");
    }

    /// The document has the shape `import_definitions` takes: quorum queues
    /// with no other argument, both exchanges, one binding per court queue,
    /// and hashes where given.
    #[test]
    fn document_shape() {
        let hashes = BTreeMap::from([("court-ca034025j".to_string(), "HASH".to_string())]);
        let d = Definitions::build("/", &[court("CA034025J", &[])], &TopologyConfig::default(), &hashes);
        let v = serde_json::to_value(&d).unwrap();
        let queues: Vec<&str> = v["queues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["name"].as_str().unwrap())
            .collect();
        assert_eq!(queues, ["por.dead", "por.inbound.CA034025J", "por.responses.CA034025J"]);
        assert!(
            v["queues"]
                .as_array()
                .unwrap()
                .iter()
                .all(|q| q["arguments"] == json!({"x-queue-type": "quorum"}) && q["durable"] == true)
        );
        assert_eq!(v["exchanges"][0]["type"], "topic");
        assert_eq!(v["exchanges"][1]["type"], "direct");
        assert_eq!(v["bindings"].as_array().unwrap().len(), 2);
        assert_eq!(v["policies"][0]["apply-to"], "queues");
        assert_eq!(v["users"][0]["password_hash"], "HASH");
        assert_eq!(v["users"][0]["hashing_algorithm"], "rabbit_password_hashing_sha256");
    }
}
