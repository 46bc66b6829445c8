//! gzip for images: the core library's RFC 1952 writer and reader (`sealgate_core::gzip`, the same
//! code the guest reads kata's init-data disk with), reproducible (no name, mtime 0).

/// Largest archive `decompress` inflates (an initramfs is a few MiB).
pub const MAX_DECOMPRESSED: usize = 1 << 30;

pub use sealgate_core::gzip::{compress, is_gzip};

/// Inflates one gzip member, bounded by [`MAX_DECOMPRESSED`].
pub fn decompress(data: &[u8]) -> Result<Vec<u8>, String> {
    sealgate_core::gzip::decompress(data, MAX_DECOMPRESSED).map_err(|e| format!("gzip: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The system's gzip reads our member (skipped where gzip is not installed).
    #[test]
    fn gzip_tool_accepts_it() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let data = b"sealgate initramfs ".repeat(1000);
        let Ok(mut child) = Command::new("gzip")
            .args(["-dc"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("gzip not installed: cross-check skipped");
            return;
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&compress(&data))
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
        assert_eq!(decompress(&compress(&data)).unwrap(), data);
    }
}
