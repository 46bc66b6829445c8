//! KBS resource URIs, as the CoCo guest components write them:
//!
//! ```text
//! kbs[+<plugin>]://[<host>[:<port>]]/<seg>[/<seg>...][?<query>]
//! ```
//!
//! `kbs` and `kbs+resource` select the `resource` plugin, `kbs+<name>` another plugin.
//! The authority is accepted and ignored for routing, as upstream does: the configured KBS
//! URL is always used. For the `resource` plugin the path must be exactly
//! `<repo>/<type>/<tag>`, each segment matching Trustee's `[A-Za-z0-9_-][A-Za-z0-9_.-]*`
//! (anything else would be a 401 from the KBS, which a client would mistake for an
//! expired session); other plugins take one or more RFC 3986 path segments.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// Longest URI accepted.
pub const MAX_URI_LEN: usize = 2048;

/// A parsed resource URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceUri {
    plugin: String,
    authority: String,
    segments: Vec<String>,
    query: Option<String>,
}

/// Why a resource URI was rejected; carries the URI (URIs are not secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriError {
    uri: String,
    reason: &'static str,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid resource URI '{}': {}", self.uri, self.reason)
    }
}

impl ResourceUri {
    /// Parses and validates a resource URI.
    pub fn parse(uri: &str) -> Result<ResourceUri, UriError> {
        let err = |reason| UriError {
            uri: printable(uri),
            reason,
        };
        if uri.len() > MAX_URI_LEN {
            return Err(err("longer than 2048 bytes"));
        }
        if uri
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || !b.is_ascii())
        {
            return Err(err("contains spaces, control or non-ASCII characters"));
        }
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or(err("expected kbs:///<repo>/<type>/<tag>"))?;
        let scheme = scheme.to_ascii_lowercase();
        let plugin = match scheme.as_str() {
            "kbs" | "kbs+resource" => "resource",
            s if s.starts_with("kbs+") => {
                let name = &s[4..];
                if name.is_empty() {
                    return Err(err("empty plugin name after 'kbs+'"));
                }
                if !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
                {
                    return Err(err("plugin names use a-z, 0-9, '-' and '_'"));
                }
                name
            }
            _ => return Err(err("scheme must be kbs or kbs+<plugin>")),
        };
        if rest.contains('#') {
            return Err(err("fragments are not allowed"));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let slash = rest.find('/').ok_or(err("no resource path"))?;
        let (authority, path) = rest.split_at(slash);
        if authority.bytes().any(|b| matches!(b, b'@' | b'\\' | b'%')) {
            return Err(err("malformed host part"));
        }
        let segments: Vec<&str> = path[1..].split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(err("empty path segment"));
        }
        if plugin == "resource" {
            if segments.len() != 3 {
                return Err(err("resource paths are exactly <repo>/<type>/<tag>"));
            }
            if !segments.iter().all(|s| is_resource_segment(s)) {
                return Err(err(
                    "resource path segments must match [A-Za-z0-9_-][A-Za-z0-9_.-]*",
                ));
            }
        } else if !segments.iter().all(|s| is_pchar_segment(s)) {
            return Err(err(
                "path segments must be RFC 3986 pchars, not '.' or '..'",
            ));
        }
        if let Some(q) = query
            && !is_query(q)
        {
            return Err(err("query must be RFC 3986 query characters"));
        }
        Ok(ResourceUri {
            plugin: plugin.to_string(),
            authority: authority.to_string(),
            segments: segments.into_iter().map(ToString::to_string).collect(),
            query: query.map(ToString::to_string),
        })
    }

    /// The KBS plugin (`resource` by default).
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// The path segments (for `resource`: repo, type, tag).
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The query string, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The request target on the KBS: `/kbs/v0/<plugin>/<segments>[?<query>]`.
    pub fn kbs_path(&self) -> String {
        let mut p = String::from("/kbs/v0/");
        p.push_str(&self.plugin);
        for s in &self.segments {
            p.push('/');
            p.push_str(s);
        }
        if let Some(q) = &self.query {
            p.push('?');
            p.push_str(q);
        }
        p
    }
}

impl fmt::Display for ResourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.plugin == "resource" {
            write!(f, "kbs://{}/{}", self.authority, self.segments.join("/"))?;
        } else {
            write!(
                f,
                "kbs+{}://{}/{}",
                self.plugin,
                self.authority,
                self.segments.join("/")
            )?;
        }
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

fn is_resource_segment(s: &str) -> bool {
    let mut bytes = s.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

fn valid_percent_escapes(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                return false;
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_pchar_segment(s: &str) -> bool {
    s != "." && s != ".." && valid_percent_escapes(s, is_pchar)
}

fn is_query(q: &str) -> bool {
    valid_percent_escapes(q, |b| is_pchar(b) || b == b'/' || b == b'?')
}

fn printable(s: &str) -> String {
    s.chars()
        .take(MAX_URI_LEN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_upstream_forms() {
        let u = ResourceUri::parse("kbs:///default/key/disk").unwrap();
        assert_eq!(u.kbs_path(), "/kbs/v0/resource/default/key/disk");
        assert_eq!(u.to_string(), "kbs:///default/key/disk");
        let u = ResourceUri::parse("kbs://kbs.example:8080/default/key/disk").unwrap();
        assert_eq!(
            u.kbs_path(),
            "/kbs/v0/resource/default/key/disk",
            "host is ignored"
        );
        let u = ResourceUri::parse("kbs+resource:///a/b/c.d").unwrap();
        assert_eq!(u.plugin(), "resource");
        let u = ResourceUri::parse("KBS+Vault:///x/y%2Fz?version=2&a=b").unwrap();
        assert_eq!(u.kbs_path(), "/kbs/v0/vault/x/y%2Fz?version=2&a=b");
        assert_eq!(u.query(), Some("version=2&a=b"));
        let u = ResourceUri::parse("kbs:///default/key/disk?q=1").unwrap();
        assert_eq!(u.kbs_path(), "/kbs/v0/resource/default/key/disk?q=1");
    }

    #[test]
    fn rejects_clearly() {
        for (uri, why) in [
            ("https:///a/b/c", "scheme"),
            ("kbs+:///a/b/c", "empty plugin"),
            ("kbs:/a/b/c", "expected kbs:///"),
            ("kbs://", "no resource path"),
            ("kbs:///a/b", "exactly"),
            ("kbs:///a/b/c/d", "exactly"),
            ("kbs:///a//c", "empty path segment"),
            ("kbs:///a/b/", "empty path segment"),
            ("kbs:///a/../c", "must match"),
            ("kbs:///a/b/.hidden", "must match"),
            ("kbs:///a/b/c d", "spaces"),
            ("kbs:///a/b/c\r\nX: y", "control"),
            ("kbs:///a/b/c#frag", "fragments"),
            ("kbs://user@host/a/b/c", "host"),
            ("kbs+x:///a/..", "pchars"),
            ("kbs+x:///a/%zz", "pchars"),
            ("kbs+x:///a/%4", "pchars"),
            ("kbs:///a/b/c?x y", "spaces"),
            ("kbs:///a/b/c?x=%", "query"),
            ("kbs:///a/b/ü", "non-ASCII"),
        ] {
            let e = ResourceUri::parse(uri).unwrap_err().to_string();
            assert!(e.contains(why), "{uri}: {e}");
        }
        let long = alloc::format!("kbs:///a/b/{}", "x".repeat(MAX_URI_LEN));
        assert!(
            ResourceUri::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
    }
}
