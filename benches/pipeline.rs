//! Criterion benchmarks of the intake's formats: parse + validate +
//! translate to CLETS text, for XML and for fixed-width `cms-a/1`, each next
//! to a baseline measured in the same run on the same bytes:
//!
//! - `xml/scan`: a bare quick-xml event scan (no namespaces, no text
//!   decoding), the floor any XML reader built on quick-xml stands on;
//! - `cms-a-1/slice`: split the records and slice every field at the
//!   positions of the `cms-a/1` layout file, nothing else.
//!
//! The intake examines its deliveries a batch at a time, stage by stage
//! (`porter::intake::examine_batch`: every message read, then every one
//! validated, then every one translated). `cms-a-1-batch/pipeline` measures
//! that staged order on a batch of [`BATCH`] `cms-a/1` orders, against
//! `cms-a-1-batch/slice`, the slice loop over the same bytes;
//! `cms-a-1-batch/fused` is the same batch one order at a time.
//!
//! `*/parse` (the reader alone), `*/validate` (reader and validator) and
//! `*/translate` (translation alone, of an order parsed beforehand) show
//! where the pipeline's time goes. Throughput is reported per order and in
//! bytes.
//!
//! Parsing takes microseconds of a message's milliseconds end to end, so
//! these figures are for spotting a regression in the formats, not a goal:
//! Porter's performance is measured end to end (`porter bench`, see
//! `docs/performance.md`).
//!
//! `cargo bench --bench pipeline -- --warm-up-time 1 --measurement-time 5`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use porter::formats::Parsed;
use porter::formats::fixed::{FieldType, Layout};
use porter::formats::xml::{XmlLimits, read_order};
use porter::mapping::clets::CletsTables;
use porter::mapping::codes::CodeLists;
use porter::translate::clets::translate;
use porter::validate::{ValidationContext, validate};
use quick_xml::events::Event;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What every pipeline run needs, loaded once.
struct Setup {
    tables: CletsTables,
    codes: CodeLists,
    layout: Layout,
    amqp_users: Vec<String>,
}

impl Setup {
    fn load() -> Setup {
        let r = repo();
        Setup {
            tables: CletsTables::load(&r.join("mappings/clets.toml")).expect("clets.toml"),
            codes: CodeLists::load(r.join("mappings/codes.toml")).expect("codes.toml"),
            layout: Layout::load(r.join("schemas/layouts/cms-a-1.toml")).expect("cms-a/1"),
            amqp_users: vec!["court-ca034025j".into()],
        }
    }

    fn ctx(&self) -> ValidationContext<'_> {
        ValidationContext {
            queue_court_ori: "CA034025J",
            user_id: Some("court-ca034025j"),
            amqp_users: &self.amqp_users,
            codes: &self.codes,
        }
    }

    /// Validate + translate + CLETS text: the part after parsing.
    fn rest(&self, parsed: &Parsed) -> String {
        let errors = validate(&parsed.message, &parsed.locations, &self.ctx());
        black_box(&errors);
        self.translate(parsed)
    }

    /// Translation to the CLETS request text alone.
    fn translate(&self, parsed: &Parsed) -> String {
        match translate(&parsed.message, None, 0, &self.tables) {
            Ok(t) => t.request.into_text(),
            Err(_) => String::new(),
        }
    }

    /// Checks once, outside the measurement, that the input goes through
    /// the whole pipeline cleanly.
    fn check(&self, parsed: &Parsed, what: &str) {
        assert!(parsed.errors.is_empty(), "{what}: {:?}", parsed.errors);
        let errors = validate(&parsed.message, &parsed.locations, &self.ctx());
        assert!(errors.is_empty(), "{what}: {errors:?}");
        let text = self.rest(parsed);
        assert!(text.starts_with("EPO.CA034025J."), "{what}: {text}");
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn group<'a>(c: &'a mut Criterion, name: &str, bytes: &[u8]) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::ElementsAndBytes {
        elements: 1,
        bytes: bytes.len() as u64,
    });
    g
}

/// A bare quick-xml event scan: every event read, none interpreted.
fn xml_scan(body: &[u8]) -> usize {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut events = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) | Err(_) => return events,
            Ok(e) => {
                black_box(&e);
                events += 1;
            }
        }
    }
}

fn bench_xml(c: &mut Criterion, setup: &Setup) {
    let body = read("tests/fixtures/xml/issue-sample.xml");
    let limits = XmlLimits::default();
    setup.check(&read_order(&body, &limits), "xml sample");
    assert!(xml_scan(&body) > 50);

    let mut g = group(c, "xml", &body);
    g.bench_function("scan", |b| b.iter(|| xml_scan(black_box(&body))));
    g.bench_function("parse", |b| b.iter(|| read_order(black_box(&body), &limits)));
    g.bench_function("validate", |b| {
        b.iter(|| {
            let parsed = read_order(black_box(&body), &limits);
            validate(&parsed.message, &parsed.locations, &setup.ctx())
        })
    });
    g.bench_function("pipeline", |b| {
        b.iter(|| {
            let parsed = read_order(black_box(&body), &limits);
            setup.rest(&parsed)
        })
    });
    let parsed = read_order(&body, &limits);
    g.bench_function("translate", |b| b.iter(|| setup.translate(black_box(&parsed))));
    g.finish();
}

/// Orders in the staged batch (the intake's batches hold up to
/// `intake.batch_size`, 256 by default, when messages are waiting).
const BATCH: usize = 16;

/// The `cms-a/1` sample [`BATCH`] times, each copy with its own order
/// number (the last four digits are the copy's index), so that no two
/// orders are the same.
fn fixed_batch(layout: &Layout) -> Vec<Vec<u8>> {
    let body = read("tests/fixtures/fixed/issue-sample.txt");
    let spec = layout.spec();
    let field = spec.records[0]
        .fields
        .iter()
        .find(|f| f.field.as_deref() == Some("order.order_number"))
        .expect("cms-a/1 has an order number");
    let sample_number = &body[field.start - 1..field.start - 1 + field.length];
    let end = field.start - 1 + sample_number.iter().rposition(|&b| b != b' ').expect("a number") + 1;
    (0..BATCH)
        .map(|i| {
            let mut copy = body.clone();
            copy[end - 4..end].copy_from_slice(format!("{:04}", 1000 + i).as_bytes());
            copy
        })
        .collect()
}

/// The slice loop over every order of a batch.
fn batch_slice(bodies: &[Vec<u8>], positions: &[Vec<(usize, usize)>]) -> usize {
    bodies.iter().map(|b| fixed_slice(black_box(b), positions)).sum()
}

/// The pipeline over a batch one order at a time.
fn batch_fused(setup: &Setup, bodies: &[Vec<u8>]) -> usize {
    bodies
        .iter()
        .map(|b| setup.rest(&setup.layout.read_order(black_box(b))).len())
        .sum()
}

/// The pipeline over a batch in the intake's stage order
/// (`porter::intake::examine_batch`): read every order, validate every
/// one, translate every one.
fn batch_pipeline(setup: &Setup, bodies: &[Vec<u8>]) -> usize {
    let parsed: Vec<Parsed> = bodies.iter().map(|b| setup.layout.read_order(black_box(b))).collect();
    let errors: Vec<_> = parsed
        .iter()
        .map(|p| validate(&p.message, &p.locations, &setup.ctx()))
        .collect();
    black_box(&errors);
    parsed.iter().map(|p| setup.translate(p).len()).sum()
}

fn bench_fixed_batch(c: &mut Criterion, setup: &Setup) {
    let bodies = fixed_batch(&setup.layout);
    for body in &bodies {
        setup.check(&setup.layout.read_order(body), "cms-a/1 batch");
    }
    let positions = field_positions(&setup.layout);
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("cms-a-1-batch");
    g.throughput(Throughput::ElementsAndBytes {
        elements: BATCH as u64,
        bytes: bytes as u64,
    });
    g.bench_function("slice", |b| b.iter(|| batch_slice(&bodies, &positions)));
    g.bench_function("pipeline", |b| b.iter(|| batch_pipeline(setup, &bodies)));
    g.bench_function("fused", |b| b.iter(|| batch_fused(setup, &bodies)));
    g.finish();
}

/// `(start, length)` of every field of every record type, 0-based, from the
/// layout file; indexed by the record-type byte.
fn field_positions(layout: &Layout) -> Vec<Vec<(usize, usize)>> {
    let spec = layout.spec();
    let mut table = vec![Vec::new(); 256];
    for r in &spec.records {
        let code = r.record_type.as_bytes()[0] as usize;
        table[code] = r
            .fields
            .iter()
            .filter(|f| f.field_type != FieldType::Filler)
            .map(|f| (f.start - 1, f.length))
            .collect();
    }
    table
}

/// Splits the records and slices every field; nothing is interpreted.
fn fixed_slice(body: &[u8], positions: &[Vec<(usize, usize)>]) -> usize {
    let mut touched = 0usize;
    for record in body.split(|&b| b == b'\n') {
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        let Some(&kind) = record.first() else {
            continue;
        };
        for &(start, len) in &positions[kind as usize] {
            if let Some(field) = record.get(start..start + len) {
                touched += black_box(field).len();
            }
        }
    }
    touched
}

fn bench_fixed(c: &mut Criterion, setup: &Setup) {
    let body = read("tests/fixtures/fixed/issue-sample.txt");
    let layout = &setup.layout;
    setup.check(&layout.read_order(&body), "cms-a/1 sample");
    let positions = field_positions(layout);
    assert!(fixed_slice(&body, &positions) > 500);

    let mut g = group(c, "cms-a-1", &body);
    g.bench_function("slice", |b| b.iter(|| fixed_slice(black_box(&body), &positions)));
    g.bench_function("parse", |b| b.iter(|| layout.read_order(black_box(&body))));
    g.bench_function("validate", |b| {
        b.iter(|| {
            let parsed = layout.read_order(black_box(&body));
            validate(&parsed.message, &parsed.locations, &setup.ctx())
        })
    });
    g.bench_function("pipeline", |b| {
        b.iter(|| {
            let parsed = layout.read_order(black_box(&body));
            setup.rest(&parsed)
        })
    });
    let parsed = layout.read_order(&body);
    g.bench_function("translate", |b| b.iter(|| setup.translate(black_box(&parsed))));
    g.finish();
}

fn main() {
    let setup = Setup::load();
    let mut c = Criterion::default().configure_from_args();
    bench_xml(&mut c, &setup);
    bench_fixed(&mut c, &setup);
    bench_fixed_batch(&mut c, &setup);
    c.final_summary();
}
