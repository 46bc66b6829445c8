//! The `resource` plugin's storage: `<dir>/<repo>/<type>/<tag>` files (raw bytes, binary
//! safe), overlaid by resources added through the Rust API. A path is valid when it has exactly
//! three segments, each matching `[A-Za-z0-9_-][A-Za-z0-9_.-]*` (Trustee's `ResourceDesc`),
//! which also rules out `..` and hidden files. Every failure is Trustee's
//! `PluginInternalError`; the reason goes to the log.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::RwLock;

pub(crate) struct Resources {
    dir: Option<PathBuf>,
    added: RwLock<HashMap<String, Vec<u8>>>,
    max_size: usize,
}

/// Checks a resource path against Trustee's rule.
pub(crate) fn valid_path(segments: &[&str]) -> bool {
    segments.len() == 3
        && segments.iter().all(|s| {
            let mut bytes = s.bytes();
            bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
}

impl Resources {
    pub(crate) fn new(dir: Option<PathBuf>, max_size: usize) -> Self {
        Resources {
            dir,
            added: RwLock::new(HashMap::new()),
            max_size,
        }
    }

    /// Adds or replaces `repo/type/tag`; the path must be valid.
    pub(crate) fn add(&self, path: &str, bytes: Vec<u8>) -> Result<(), String> {
        let segments: Vec<&str> = path.split('/').collect();
        if !valid_path(&segments) {
            return Err(format!(
                "illegal resource path {path:?} (want repo/type/tag)"
            ));
        }
        self.added
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_owned(), bytes);
        Ok(())
    }

    /// Removes a resource added through the API; returns whether it existed.
    pub(crate) fn remove(&self, path: &str) -> bool {
        self.added
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path)
            .is_some()
    }

    /// Reads a resource; the error is a reason for the log.
    pub(crate) fn get(&self, segments: &[&str]) -> Result<Vec<u8>, String> {
        if !valid_path(segments) {
            return Err("illegal ResourceDesc format.".into());
        }
        let key = segments.join("/");
        if let Some(bytes) = self
            .added
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(bytes.clone());
        }
        let Some(dir) = &self.dir else {
            return Err(format!("resource not found: {key}"));
        };
        let path = segments.iter().fold(dir.clone(), |p, s| p.join(s));
        let file = std::fs::File::open(&path).map_err(|_| format!("resource not found: {key}"))?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(format!("resource not found: {key}"));
        }
        let mut bytes = Vec::new();
        file.take(self.max_size as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read resource {key}: {e}"))?;
        if bytes.len() > self.max_size {
            return Err(format!(
                "resource {key} is larger than the limit of {} bytes",
                self.max_size
            ));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rule() {
        assert!(valid_path(&["default", "my-secret", "v1.2_x"]));
        assert!(valid_path(&["_", "-", "0"]));
        for bad in [
            &["default", "mysecret"][..],
            &["a", "b", "c", "d"],
            &["..", "b", "c"],
            &[".hidden", "b", "c"],
            &["a", "", "c"],
            &["a", "b c", "c"],
            &["a", "b%2Fc", "c"],
            &["a", "b", "é"],
        ] {
            assert!(!valid_path(bad), "{bad:?}");
        }
    }
}
