#![no_main]
//! `nimbus_fuzz::ycsb` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| nimbus_fuzz::ycsb(data));
