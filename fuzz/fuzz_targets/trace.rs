#![no_main]
//! `nimbus_fuzz::trace` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| nimbus_fuzz::trace(data));
