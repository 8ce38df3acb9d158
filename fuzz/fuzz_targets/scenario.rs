#![no_main]
//! `nimbus_fuzz::scenario` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| nimbus_fuzz::scenario(data));
