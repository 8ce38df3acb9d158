#![no_main]
//! `nimbus_fuzz::kv_log` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| nimbus_fuzz::kv_log(data));
