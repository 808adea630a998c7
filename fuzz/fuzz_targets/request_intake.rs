//! Every request body the broker accepts: header, version check, bounds check, decode.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    strom_protocol::fuzzing::request_intake(data);
});
