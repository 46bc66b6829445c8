//! What the guest printed: the lines the tests and `qemu/boot-time` read.

/// Lines that start with `prefix` (after any kernel timestamp), with the prefix removed.
pub fn tagged<'a>(console: &'a str, prefix: &str) -> Vec<&'a str> {
    console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| {
            let at = l.find(prefix)?;
            Some(l[at + prefix.len()..].trim())
        })
        .collect()
}

/// `key=value` words of a line (values may not contain spaces).
pub fn fields(line: &str) -> Vec<(&str, &str)> {
    line.split_ascii_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect()
}

/// The value of `key` in a line of `key=value` words.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    fields(line)
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tagged_lines_and_fields() {
        let c = "noise\r\n[    1.2] SEALGATE-REPORT path=/sealed/a size=3\nSEALGATE-REPORT x=1\n";
        let t = tagged(c, "SEALGATE-REPORT");
        assert_eq!(t, ["path=/sealed/a size=3", "x=1"]);
        assert_eq!(field(t[0], "size"), Some("3"));
        assert_eq!(field(t[0], "mode"), None);
    }
}
