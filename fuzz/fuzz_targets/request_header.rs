//! The request header decoder alone.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = strom_protocol::frame::decode_request_header(bytes::Bytes::copy_from_slice(data));
});
