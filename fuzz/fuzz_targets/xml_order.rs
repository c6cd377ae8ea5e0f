//! `read_order` on arbitrary bytes: no panic; a clean read writes back as XML
//! that reads to the same order; a valid order's CLETS request reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porter::formats::xml::{XmlLimits, read_order, write_order};

fuzz_target!(|data: &[u8]| {
    let parsed = read_order(data, &XmlLimits::default());
    if parsed.errors.is_empty() {
        let again = read_order(&write_order(&parsed.message), &XmlLimits::default());
        assert!(
            again.errors.is_empty(),
            "written XML does not read: {:?}",
            again.errors
        );
        assert_eq!(
            again.message, parsed.message,
            "written XML reads differently"
        );
    }
    porter_fuzz::check_order(&parsed);
});
