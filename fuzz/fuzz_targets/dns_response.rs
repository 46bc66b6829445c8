//! DNS responses (`dns::Query::parse_response`): header checks, the question, compression
//! pointers, CNAME chains, A/AAAA records.
//!
//! Input: byte 0 chooses the query (bit 0: A or AAAA) and whether the question section is
//! spliced in (bit 1: then bytes 1..13 are the header, our question follows, then the rest),
//! so that mutations reach the answer section without having to rebuild the question. The
//! query takes its ID from the message, since a wrong ID is dropped at once (and a real
//! attacker off the path would have to guess it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::dns::{Query, RecordType, Reply};

/// The name the seeds answer for (fuzz/seed writes them).
const NAME: &str = "kbs.example.com";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let qtype = if mode & 1 == 0 {
        RecordType::A
    } else {
        RecordType::Aaaa
    };
    let id = match rest {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    let query = Query::new(id, NAME, qtype).expect("valid name");
    let msg = if mode & 2 != 0 && rest.len() >= 12 {
        let encoded = query.encode();
        let mut msg = rest[..12].to_vec();
        msg.extend_from_slice(&encoded[12..]);
        msg.extend_from_slice(&rest[12..]);
        msg
    } else {
        rest.to_vec()
    };
    match query.parse_response(&msg) {
        Ok(Reply::Addresses(addrs)) => {
            for a in addrs {
                assert_eq!(a.is_ipv4(), qtype == RecordType::A);
            }
        }
        Ok(_) => {}
        Err(e) => {
            let _ = e.is_unrelated();
        }
    }
});
