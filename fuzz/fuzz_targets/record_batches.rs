//! Record batch framing, CRC and record decoding (with decompression).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    strom_protocol::fuzzing::record_batches(data);
});
