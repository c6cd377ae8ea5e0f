//! Shared checks for Porter's fuzz targets.
//!
//! Every target feeds arbitrary bytes to a reader; the reader must not panic
//! (libFuzzer reports a panic as a crash). Beyond that, these helpers assert
//! the invariants the readers document, so that a wrong answer is a crash
//! too:
//! - an order that reads without errors and validates cleanly, translated to
//!   CLETS, gives request text that [`CletsRequest::read`] accepts unchanged;
//! - a CLETS request that reads cleanly writes back to the same bytes.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use porter::formats::Parsed;
use porter::formats::clets::CletsRequest;
use porter::formats::fixed::Layout;
use porter::mapping::clets::CletsTables;
use porter::mapping::code_map::CodeMap;
use porter::mapping::codes::CodeLists;
use porter::model::Action;
use porter::translate::clets::translate;
use porter::validate::{ValidationContext, merge, validate};

/// The shipped CLETS tables.
pub static TABLES: LazyLock<CletsTables> = LazyLock::new(|| {
    CletsTables::from_toml_str(
        include_str!("../../mappings/clets.toml"),
        Path::new("mappings/clets.toml"),
    )
    .expect("mappings/clets.toml loads")
});

/// The shipped canonical code lists.
pub static CODES: LazyLock<CodeLists> = LazyLock::new(|| {
    CodeLists::from_toml_str(
        "mappings/codes.toml",
        include_str!("../../mappings/codes.toml"),
    )
    .expect("mappings/codes.toml loads")
});

/// The shipped `cms-a/1` layout.
pub static CMS_A: LazyLock<Layout> = LazyLock::new(|| {
    Layout::from_toml_str(
        "cms-a-1.toml",
        include_str!("../../schemas/layouts/cms-a-1.toml"),
    )
    .expect("cms-a/1 loads")
});

/// The shipped `cms-b/2` layout with its `cms-b` code map.
pub static CMS_B: LazyLock<Layout> = LazyLock::new(|| {
    let map = CodeMap::from_toml_str(
        "mappings/code-maps/cms-b.toml",
        include_str!("../../mappings/code-maps/cms-b.toml"),
        &CODES,
    )
    .expect("code map cms-b loads");
    Layout::from_toml_str(
        "cms-b-2.toml",
        include_str!("../../schemas/layouts/cms-b-2.toml"),
    )
    .and_then(|l| l.with_code_map(Arc::new(map)))
    .expect("cms-b/2 loads")
});

/// Validates what a reader made of the input and, when it is a valid
/// order, translates it to CLETS and reads the request back: it must come
/// back unchanged.
pub fn check_order(parsed: &Parsed) {
    let m = &parsed.message;
    let ctx = ValidationContext {
        queue_court_ori: &m.court_ori,
        user_id: None,
        amqp_users: &[],
        codes: &CODES,
    };
    let errors = validate(m, &parsed.locations, &ctx);
    let valid = parsed.errors.is_empty() && errors.is_empty();
    let _ = merge(parsed.errors.clone(), errors);
    let Some(action) = m.action else { return };
    let nic = (action != Action::Issue).then_some("H000000001");
    // Translation must not panic on anything; it may refuse (a character
    // with no ASCII form, say).
    let Ok(t) = translate(m, nic, 0, &TABLES) else {
        return;
    };
    if !valid {
        return;
    }
    let text = t.request.to_text();
    match CletsRequest::read(text.as_bytes(), &TABLES) {
        Ok(back) => assert_eq!(back, t.request, "request read back differs: {text}"),
        Err(e) => panic!("the translator wrote a request the reader refuses:\n{text}\n{e:#?}"),
    }
}

/// Reads `data` as a CLETS request; a clean read writes back to `data`.
pub fn check_clets_request(data: &[u8]) {
    if let Ok(r) = CletsRequest::read(data, &TABLES) {
        assert_eq!(
            r.to_text().as_bytes(),
            data,
            "a clean request writes back unchanged"
        );
    }
}
