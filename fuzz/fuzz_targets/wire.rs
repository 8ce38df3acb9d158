#![no_main]
//! `nimbus_fuzz::wire` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| nimbus_fuzz::wire(data));
