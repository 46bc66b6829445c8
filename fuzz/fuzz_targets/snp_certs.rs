//! The SEV-SNP GHCB certificate table (`snp::CertTable::new_checked`: GUID entries with
//! offsets and lengths into the same buffer), its lookup, sort and trim.
#![no_main]

use firmware_glue::snp::{CertTable, CertType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(table) = CertTable::new_checked(data.to_vec()) else {
        return;
    };
    let n = table.len();
    assert_eq!(table.iter().count(), n);
    for i in 0..=n {
        assert_eq!(table.get(i).is_some(), i < n);
    }
    for entry in table.iter() {
        let _ = entry.cert_type.name();
        let _ = entry.cert_type.guid();
    }
    assert_eq!(table.sorted().len(), n);
    for t in [
        CertType::Ark,
        CertType::Ask,
        CertType::Vcek,
        CertType::Vlek,
        CertType::Crl,
    ] {
        let _ = table.find(t);
    }
    assert!(table.used_len() <= data.len());
    let trimmed = table.into_trimmed();
    assert_eq!(trimmed.len(), n);
    let again = CertTable::new_checked(trimmed.as_bytes()).expect("a trimmed table is valid");
    assert_eq!(again.len(), n);
});
