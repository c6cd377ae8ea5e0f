//! The CLETS request reader and the CARPOS reply parser on arbitrary bytes:
//! no panic; a clean request writes back unchanged; a parsed reply renders
//! to text that parses to the same reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porter_adapters::clets::CletsReply;

fuzz_target!(|data: &[u8]| {
    porter_fuzz::check_clets_request(data);
    if let Ok(reply) = CletsReply::parse(data) {
        let text = reply.to_frame_text();
        assert_eq!(
            CletsReply::parse_str(&text),
            Ok(reply),
            "rendered reply parses differently: {text}"
        );
    }
});
