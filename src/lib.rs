//! Porter: an integration broker for restraining- and protective-order data.
//!
//! Courts publish order messages to RabbitMQ; Porter parses, validates and
//! translates them, delivers them to CLETS/CARPOS (and, as they land, DOJ
//! and local law-enforcement records systems), and sends each court the
//! status of every message. The contract is the ICD (`docs/icd.md` says how
//! Porter implements it); the flow reads in one direction:
//!
//! ```text
//! court queue → intake → formats (parse) → validate → translate → routing
//!             → store (durable) → delivery → partner adapter → partner
//!             → status → por.responses.<ORI>
//! ```
//!
//! # Module map
//! - [`model`]: the canonical order and status types, and field errors.
//! - [`order`]: the rules of an order's life and its deliveries (ICD §5), no I/O.
//! - [`formats`]: XML (§2, §4), fixed-width layouts (§3), CLETS text (§6).
//! - [`mapping`]: code lists and CLETS tables loaded from `mappings/`.
//! - [`validate`]: stateless checks on a canonical order.
//! - [`translate`]: canonical order → CLETS request, MCN.
//! - [`routing`]: which partners a message goes to.
//! - [`intake`]: from a court queue delivery to a durable verdict.
//! - [`store`]: the durable record (SQLite or PostgreSQL), one trait.
//! - [`delivery`]: per-partner delivery loops, retries, partner adapters.
//! - [`status`]: statuses and dead letters published from the outboxes.
//! - [`transport`]: RabbitMQ topology, consumers, confirmed publishing,
//!   connection supervision.
//! - [`ops`]: health, metrics and the `/api/v1` HTTP surface.
//! - [`broker`]: wiring and orderly shutdown.
//! - [`config`]: the TOML configuration.
//! - [`demo`]: `porter demo`, the whole system in one process.
//! - [`publish`]: `porter publish`, a court's publish from the command line.
//! - [`vendor`]: tools for CMS vendors: `porter validate`, the broker's
//!   stateless verdict on their files, offline.
//! - [`court`]: court-side adapters (`porter court …`): the batch-file drop.
//! - [`bench`]: `porter bench`, throughput and latency end to end against a
//!   raw AMQP relay.

#![forbid(unsafe_code)]

pub mod bench;
pub mod broker;
pub mod config;
pub mod court;
pub mod delivery;
pub mod demo;
pub mod failpoint;
pub mod formats;
pub mod intake;
pub mod mapping;
pub mod model;
pub mod ops;
pub mod order;
pub mod publish;
pub mod routing;
pub mod simulate;
pub mod status;
pub mod store;
pub mod translate;
pub mod transport;
pub mod validate;
pub mod vendor;
