//! Output paths (`outpath::RelPath`): the relative paths secrets are written to, from the
//! configuration, resource mappings and file names read from input directories.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealgate_core::outpath::RelPath;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = RelPath::parse_bytes(data) else {
        return;
    };
    let s = path.as_str();
    assert!(!s.starts_with('/'));
    assert!(
        path.components()
            .all(|c| !c.is_empty() && c != "." && c != "..")
    );
    assert_eq!(path.depth(), path.components().count());
    let _ = path.file_name();
    if let Some(parent) = path.parent() {
        assert!(parent.is_ancestor_of(&path));
        let _ = parent.join(&path);
    }
    let _ = path.parent_components().count();
});
