#![no_main]
//! `nimbus_fuzz::trace` under libFuzzer.
//!
//! libFuzzer's panic hook aborts on every panic, even one that is caught.
//! `nimbus-trace::columnar` catches panics raised inside the `parquet`
//! crate on corrupt files and returns an error naming the file (its
//! documented contract), so those, and only those, are let unwind to that
//! catch; any other panic still aborts and is reported.

use std::sync::Once;

static HOOK: Once = Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let abort_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parquet = info.location().is_some_and(|l| l.file().contains("/parquet-"));
            if !in_parquet {
                abort_hook(info);
            }
        }));
    });
    nimbus_fuzz::trace(data)
});
