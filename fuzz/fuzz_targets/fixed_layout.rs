//! `cms-a/1` `Layout::read_order` on arbitrary bytes: no panic; a valid
//! order's CLETS request reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porter_fuzz::CMS_A;

fuzz_target!(|data: &[u8]| {
    let parsed = CMS_A.read_order(data);
    porter_fuzz::check_order(&parsed);
});
