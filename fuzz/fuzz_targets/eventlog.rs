//! The TDX event log: `eventlog::trim_ccel` (the CCEL log area, as the agent cuts it),
//! `assemble`, the verifier's `EventLog::parse` and `replay`, and `Wal::decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::eventlog::{self, EventLog, Wal};

fuzz_target!(|data: &[u8]| {
    if let Ok(len) = eventlog::trim_ccel(data) {
        assert!(len <= data.len());
        // What the agent sends parses as the verifier reads it, or fails with an error.
        if let Ok(Some(log)) = eventlog::assemble(Some(data), None) {
            assert_eq!(&log[..len], &data[..len]);
            if let Ok(parsed) = EventLog::parse(&log) {
                let _ = parsed.replay();
            }
        }
    }
    if let Ok(parsed) = EventLog::parse(data) {
        assert!(!parsed.events.is_empty());
        let _ = parsed.replay();
        for e in &parsed.events {
            let _ = (e.aael_text(), e.digest_matches_event());
        }
    }
    if let Ok(w) = Wal::decode(data) {
        assert_eq!(w.encode(), data);
    }
});
