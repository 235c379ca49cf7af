//! Any bytes as a scenario file: never a panic or a hang, and a rejection names its line
//! and field (as `sim/tests/scenario_fuzz.rs` asserts at length).
#![no_main]

use libfuzzer_sys::fuzz_target;
use squall::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Scenario::parse("fuzz.toml".as_ref(), &text) {
        assert!(e.line >= 1 && !e.field.is_empty(), "{e}");
    }
});
