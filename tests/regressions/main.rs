//! Fuzz regressions: every input under
//! `tests/regressions/<target>/` is fed to what the fuzz target of that name
//! (`fuzz/fuzz_targets/<target>.rs`) feeds it to, with the same invariants:
//! no panic, a clean error for bad input, and for good input the documented
//! round trips. A crash file libFuzzer finds is copied here (named after
//! what it found) once its fix is in, so the fix stays in.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use porter::formats::Parsed;
use porter::formats::clets::CletsRequest;
use porter::formats::fixed::Layout;
use porter::formats::xml::{XmlLimits, read_order, write_order};
use porter::mapping::clets::CletsTables;
use porter::mapping::code_map::CodeMap;
use porter::mapping::codes::CodeLists;
use porter::model::Action;
use porter::translate::clets::translate;
use porter::validate::{ValidationContext, validate};
use porter_adapters::clets::CletsReply;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

static TABLES: LazyLock<CletsTables> =
    LazyLock::new(|| CletsTables::load(&repo().join("mappings/clets.toml")).expect("clets.toml"));
static CODES: LazyLock<CodeLists> =
    LazyLock::new(|| CodeLists::load(repo().join("mappings/codes.toml")).expect("codes.toml"));
static CMS_A: LazyLock<Layout> =
    LazyLock::new(|| Layout::load(repo().join("schemas/layouts/cms-a-1.toml")).expect("cms-a/1"));
static CMS_B: LazyLock<Layout> = LazyLock::new(|| {
    let map = CodeMap::load(repo().join("mappings/code-maps/cms-b.toml"), &CODES).expect("cms-b code map");
    Layout::load(repo().join("schemas/layouts/cms-b-2.toml"))
        .and_then(|l| l.with_code_map(Arc::new(map)))
        .expect("cms-b/2")
});

/// The inputs of one target, by file name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = repo().join("tests/regressions").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| (name(&p), std::fs::read(&p).expect("readable")))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs under {}", dir.display());
    out
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs `check` on every input of `target`, catching panics so that every
/// failing input is named.
fn each(target: &str, check: impl Fn(&str, &[u8]) + std::panic::RefUnwindSafe) {
    let mut failed = Vec::new();
    for (name, data) in inputs(target) {
        if std::panic::catch_unwind(|| check(&name, &data)).is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "{target}: failed on {failed:?}");
}

/// The fuzz targets' order check: validation and translation never panic; a
/// valid order's CLETS request reads back unchanged.
fn check_order(name: &str, parsed: &Parsed) {
    let m = &parsed.message;
    let ctx = ValidationContext {
        queue_court_ori: &m.court_ori,
        user_id: None,
        amqp_users: &[],
        codes: &CODES,
    };
    let errors = validate(m, &parsed.locations, &ctx);
    for e in parsed.errors.iter().chain(&errors) {
        assert!(
            !e.field.is_empty() && !e.text.is_empty(),
            "{name}: an error names a field and says why: {e:?}"
        );
    }
    let Some(action) = m.action else { return };
    let nic = (action != Action::Issue).then_some("H000000001");
    let Ok(t) = translate(m, nic, 0, &TABLES) else {
        return;
    };
    if parsed.errors.is_empty() && errors.is_empty() {
        let text = t.request.to_text();
        let back = CletsRequest::read(text.as_bytes(), &TABLES);
        assert_eq!(back.as_ref(), Ok(&t.request), "{name}: {text}");
    }
}

/// `xml_order`: read, and when clean, write and read again to the same order.
#[test]
fn xml_order_regressions() {
    each("xml_order", |name, data| {
        let parsed = read_order(data, &XmlLimits::default());
        if parsed.errors.is_empty() {
            let again = read_order(&write_order(&parsed.message), &XmlLimits::default());
            assert!(again.errors.is_empty(), "{name}: {:?}", again.errors);
            assert_eq!(again.message, parsed.message, "{name}");
        }
        check_order(name, &parsed);
    });
}

/// `fixed_layout`: `cms-a/1` and `cms-b/2` read; a clean read writes back
/// to bytes that read the same; validate, translate.
#[test]
fn fixed_layout_regressions() {
    each("fixed_layout", |name, data| {
        for layout in [&*CMS_A, &*CMS_B] {
            let parsed = layout.read_order(data);
            if parsed.errors.is_empty() && parsed.message.action.is_some() {
                let body = layout.write_order(&parsed.message);
                let body = body.unwrap_or_else(|e| panic!("{name} {}: {e:?}", layout.name()));
                let again = layout.read_order(&body);
                assert!(again.errors.is_empty(), "{name} {}: {:?}", layout.name(), again.errors);
                assert_eq!(again.message, parsed.message, "{name} {}", layout.name());
            }
            check_order(name, &parsed);
        }
    });
}

/// `clets_reader`: a clean request writes back to the same bytes; a reply
/// renders to text that parses to the same reply.
#[test]
fn clets_reader_regressions() {
    each("clets_reader", |name, data| {
        match CletsRequest::read(data, &TABLES) {
            Ok(r) => assert_eq!(r.to_text().as_bytes(), data, "{name}"),
            Err(errors) => assert!(
                !errors.is_empty() && errors.iter().all(|e| !e.text.is_empty()),
                "{name}"
            ),
        }
        if let Ok(reply) = CletsReply::parse(data) {
            assert_eq!(CletsReply::parse_str(&reply.to_frame_text()), Ok(reply), "{name}");
        }
    });
}
