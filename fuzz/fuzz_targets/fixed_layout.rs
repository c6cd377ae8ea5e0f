//! `Layout::read_order` on arbitrary bytes, in `cms-a/1` and in `cms-b/2`
//! (with its `cms-b` code map): no panic; a clean read with an action writes back
//! (`Layout::write_order`) to bytes that read as the same order; a valid
//! order's CLETS request reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porter::formats::fixed::Layout;
use porter_fuzz::{CMS_A, CMS_B};

fn check(layout: &Layout, data: &[u8]) {
    let parsed = layout.read_order(data);
    // The action decides which records are written; without one (the
    // validator's MISSING, not the reader's) there is nothing to write.
    if parsed.errors.is_empty() && parsed.message.action.is_some() {
        let body = match layout.write_order(&parsed.message) {
            Ok(body) => body,
            Err(e) => panic!("{}: a clean read does not write back: {e:?}", layout.name()),
        };
        let again = layout.read_order(&body);
        assert!(
            again.errors.is_empty(),
            "{}: written order does not read: {:?}",
            layout.name(),
            again.errors
        );
        assert_eq!(
            again.message,
            parsed.message,
            "{}: written order reads differently",
            layout.name()
        );
    }
    porter_fuzz::check_order(&parsed);
}

fuzz_target!(|data: &[u8]| {
    check(&CMS_A, data);
    check(&CMS_B, data);
});
