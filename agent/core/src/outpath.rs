//! Validated relative output paths for unsealed secrets.
//!
//! A [`RelPath`] names a file *below* the sealed directory (or below an input
//! directory). It is purely lexical — this module does no I/O — and it is built so that
//! joining it onto a directory file descriptor, component by component, can never leave
//! that directory:
//!
//! * non-empty and relative: no leading `/`;
//! * components are separated by a single `/`: no empty components (`a//b`, a trailing
//!   `/`), no `.` or `..` components (names that merely *start* with dots, such as
//!   `.hidden` or Kubernetes' `..data`, are ordinary names);
//! * at most [`MAX_COMPONENTS`] components, each at most [`MAX_COMPONENT_LEN`] bytes,
//!   the whole path at most [`MAX_PATH_LEN`] bytes;
//! * character set: any UTF-8 except NUL, `/` (as the separator only), control
//!   characters (Unicode category `Cc`: C0, DEL and C1) and the Unicode bidirectional
//!   formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
//!   Control characters are refused because they make file names that corrupt logs
//!   and terminals; bidi controls because they make a path *display* as a different
//!   path ("Trojan Source"). Everything else — spaces, non-ASCII letters, `\`, `:` — is
//!   an ordinary byte of a Linux file name and is allowed.
//!
//! Paths are not secret: errors carry the offending path (escaped with `{:?}` when
//! displayed, so a hostile path cannot inject control characters into a log line).

use alloc::string::{String, ToString};
use core::cmp::Ordering;
use core::fmt;

/// Maximum number of bytes in one component (Linux `NAME_MAX`).
pub const MAX_COMPONENT_LEN: usize = 255;
/// Maximum number of bytes in a whole relative path (Linux `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;
/// Maximum number of components (directory depth + 1).
pub const MAX_COMPONENTS: usize = 16;

/// How much of an over-long path an error keeps (bytes, rounded down to a char boundary).
const ERROR_PREFIX_LEN: usize = 64;

/// A validated relative path: see the [module documentation](self) for the rules.
///
/// Ordering is component-wise (`a` < `a/b` < `a-b`), so a sorted list of paths is in
/// tree order; equality is plain string equality.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RelPath(String);

/// Why a string is not a valid [`RelPath`]. Every variant names the offending path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// The path is the empty string.
    Empty,
    /// The path is not valid UTF-8 (the path is shown lossily converted).
    NotUtf8 {
        /// The path with invalid sequences replaced by U+FFFD.
        path: String,
    },
    /// The path is longer than [`MAX_PATH_LEN`] bytes.
    TooLong {
        /// The first bytes of the path.
        prefix: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The path contains a NUL byte.
    Nul {
        /// The offending path.
        path: String,
    },
    /// The path contains a control character (Unicode `Cc`).
    ControlChar {
        /// The offending path.
        path: String,
    },
    /// The path contains a Unicode bidirectional formatting character.
    BidiControl {
        /// The offending path.
        path: String,
    },
    /// The path starts with `/`.
    Absolute {
        /// The offending path.
        path: String,
    },
    /// The path has an empty component (`a//b`, or a trailing `/`).
    EmptyComponent {
        /// The offending path.
        path: String,
    },
    /// The path has a `.` or `..` component.
    DotComponent {
        /// The offending path.
        path: String,
    },
    /// One component is longer than [`MAX_COMPONENT_LEN`] bytes.
    ComponentTooLong {
        /// The offending path.
        path: String,
        /// The length of the longest offending component, in bytes.
        len: usize,
    },
    /// The path has more than [`MAX_COMPONENTS`] components.
    TooManyComponents {
        /// The offending path.
        path: String,
        /// How many components it has.
        count: usize,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("invalid path: empty"),
            PathError::NotUtf8 { path } => write!(f, "invalid path {path:?}: not UTF-8"),
            PathError::TooLong { prefix, len } => write!(
                f,
                "invalid path {prefix:?}...: {len} bytes long, at most {MAX_PATH_LEN} allowed"
            ),
            PathError::Nul { path } => write!(f, "invalid path {path:?}: contains a NUL byte"),
            PathError::ControlChar { path } => {
                write!(f, "invalid path {path:?}: contains a control character")
            }
            PathError::BidiControl { path } => write!(
                f,
                "invalid path {path:?}: contains a bidirectional formatting character"
            ),
            PathError::Absolute { path } => {
                write!(
                    f,
                    "invalid path {path:?}: must be relative (no leading '/')"
                )
            }
            PathError::EmptyComponent { path } => write!(
                f,
                "invalid path {path:?}: empty component ('//' or a trailing '/')"
            ),
            PathError::DotComponent { path } => {
                write!(
                    f,
                    "invalid path {path:?}: '.' and '..' components are not allowed"
                )
            }
            PathError::ComponentTooLong { path, len } => write!(
                f,
                "invalid path {path:?}: a component is {len} bytes long, at most {MAX_COMPONENT_LEN} allowed"
            ),
            PathError::TooManyComponents { path, count } => write!(
                f,
                "invalid path {path:?}: {count} components, at most {MAX_COMPONENTS} allowed"
            ),
        }
    }
}

impl core::error::Error for PathError {}

/// Unicode bidirectional formatting characters (ALM, LRM, RLM, LRE..RLO, LRI..PDI).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl RelPath {
    /// Validates `s` as a relative path.
    pub fn parse(s: &str) -> Result<RelPath, PathError> {
        let path = || s.to_string();
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        if s.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong {
                prefix: prefix(s, ERROR_PREFIX_LEN).to_string(),
                len: s.len(),
            });
        }
        if s.contains('\0') {
            return Err(PathError::Nul { path: path() });
        }
        if s.chars().any(char::is_control) {
            return Err(PathError::ControlChar { path: path() });
        }
        if s.chars().any(is_bidi_control) {
            return Err(PathError::BidiControl { path: path() });
        }
        if s.starts_with('/') {
            return Err(PathError::Absolute { path: path() });
        }
        let count = s.split('/').count();
        if count > MAX_COMPONENTS {
            return Err(PathError::TooManyComponents {
                path: path(),
                count,
            });
        }
        for c in s.split('/') {
            if c.is_empty() {
                return Err(PathError::EmptyComponent { path: path() });
            }
            if c == "." || c == ".." {
                return Err(PathError::DotComponent { path: path() });
            }
        }
        if let Some(len) = s
            .split('/')
            .map(str::len)
            .filter(|&l| l > MAX_COMPONENT_LEN)
            .max()
        {
            return Err(PathError::ComponentTooLong { path: path(), len });
        }
        Ok(RelPath(s.to_string()))
    }

    /// Validates raw bytes (a file name read from a directory, say) as a relative path.
    pub fn parse_bytes(b: &[u8]) -> Result<RelPath, PathError> {
        match core::str::from_utf8(b) {
            Ok(s) => RelPath::parse(s),
            Err(_) => Err(PathError::NotUtf8 {
                path: prefix(&String::from_utf8_lossy(b), MAX_PATH_LEN).to_string(),
            }),
        }
    }

    /// The path as a string (components joined by `/`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, first to last. Never empty; no component is empty, `.` or `..`.
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &str> + Clone {
        self.0.split('/')
    }

    /// The number of components (at least 1).
    pub fn depth(&self) -> usize {
        self.0.split('/').count()
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        match self.0.rsplit_once('/') {
            Some((_, name)) => name,
            None => &self.0,
        }
    }

    /// Every component except the last (empty for a single-component path).
    pub fn parent_components(&self) -> impl DoubleEndedIterator<Item = &str> + Clone {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| parent)
            .into_iter()
            .flat_map(|parent| parent.split('/'))
    }

    /// The parent directory, or `None` for a single-component path.
    pub fn parent(&self) -> Option<RelPath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| RelPath(parent.to_string()))
    }

    /// `self` followed by the components of `tail`, revalidated against the limits.
    pub fn join(&self, tail: &RelPath) -> Result<RelPath, PathError> {
        let mut s = String::with_capacity(self.0.len() + 1 + tail.0.len());
        s.push_str(&self.0);
        s.push('/');
        s.push_str(&tail.0);
        RelPath::parse(&s)
    }

    /// Whether `self` is a strict ancestor directory of `other` (component-wise: `a` is an
    /// ancestor of `a/b` but not of `ab` or of `a`).
    pub fn is_ancestor_of(&self, other: &RelPath) -> bool {
        other.0.len() > self.0.len()
            && other.0.starts_with(self.0.as_str())
            && other.0.as_bytes()[self.0.len()] == b'/'
    }
}

impl Ord for RelPath {
    fn cmp(&self, other: &Self) -> Ordering {
        self.components().cmp(other.components())
    }
}

impl PartialOrd for RelPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelPath({:?})", self.0)
    }
}

impl AsRef<str> for RelPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl core::str::FromStr for RelPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<RelPath, PathError> {
        RelPath::parse(s)
    }
}

impl TryFrom<&str> for RelPath {
    type Error = PathError;
    fn try_from(s: &str) -> Result<RelPath, PathError> {
        RelPath::parse(s)
    }
}

impl serde::Serialize for RelPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RelPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RelPath, D::Error> {
        let s = String::deserialize(d)?;
        RelPath::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec::Vec;

    fn ok(s: &str) -> RelPath {
        RelPath::parse(s).unwrap_or_else(|e| panic!("{s:?} rejected: {e}"))
    }

    #[test]
    fn accepts_ordinary_paths() {
        for s in [
            "a",
            "disk.key",
            "a/b/c",
            ".hidden",
            "..data",
            "...",
            "a/.b/..c/d..",
            "with space",
            "ünïcødé/日本語",
            "back\\slash:colon",
            "-leading-dash",
        ] {
            assert_eq!(ok(s).as_str(), s);
        }
    }

    #[test]
    fn accessors() {
        let p = ok("a/b/c");
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(p.parent_components().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(p.file_name(), "c");
        assert_eq!(p.depth(), 3);
        assert_eq!(p.parent(), Some(ok("a/b")));
        let q = ok("key");
        assert_eq!(q.file_name(), "key");
        assert_eq!(q.parent_components().count(), 0);
        assert_eq!(q.parent(), None);
        assert_eq!(q.depth(), 1);
        assert_eq!(ok("a").join(&ok("b/c")).unwrap(), p);
        assert_eq!(format!("{p}"), "a/b/c");
        assert_eq!(format!("{p:?}"), "RelPath(\"a/b/c\")");
        assert_eq!("a/b".parse::<RelPath>().unwrap(), ok("a/b"));
    }

    #[test]
    fn ancestry_is_component_wise() {
        assert!(ok("a").is_ancestor_of(&ok("a/b")));
        assert!(ok("a").is_ancestor_of(&ok("a/b/c")));
        assert!(ok("a/b").is_ancestor_of(&ok("a/b/c")));
        assert!(!ok("a").is_ancestor_of(&ok("a")));
        assert!(!ok("a").is_ancestor_of(&ok("ab")));
        assert!(!ok("a").is_ancestor_of(&ok("ab/c")));
        assert!(!ok("a/b").is_ancestor_of(&ok("a")));
    }

    #[test]
    fn ordering_is_tree_order() {
        let mut v = [
            ok("a-b"),
            ok("a/b"),
            ok("b"),
            ok("a"),
            ok("a/a/z"),
            ok("a/b/c"),
        ];
        v.sort();
        let s: Vec<&str> = v.iter().map(RelPath::as_str).collect();
        assert_eq!(s, ["a", "a/a/z", "a/b", "a/b/c", "a-b", "b"]);
    }

    #[test]
    fn rejects_adversarial_paths() {
        use PathError::*;
        type Check = fn(&PathError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, Empty)),
            ("/etc/passwd", |e| matches!(e, Absolute { .. })),
            ("/", |e| matches!(e, Absolute { .. })),
            ("//a", |e| matches!(e, Absolute { .. })),
            ("a//b", |e| matches!(e, EmptyComponent { .. })),
            ("a/", |e| matches!(e, EmptyComponent { .. })),
            ("a/b/", |e| matches!(e, EmptyComponent { .. })),
            (".", |e| matches!(e, DotComponent { .. })),
            ("..", |e| matches!(e, DotComponent { .. })),
            ("../etc/passwd", |e| matches!(e, DotComponent { .. })),
            ("a/../../b", |e| matches!(e, DotComponent { .. })),
            ("a/./b", |e| matches!(e, DotComponent { .. })),
            ("a/..", |e| matches!(e, DotComponent { .. })),
            ("a\0b", |e| matches!(e, Nul { .. })),
            ("a\nb", |e| matches!(e, ControlChar { .. })),
            ("a\rb", |e| matches!(e, ControlChar { .. })),
            ("\x1b[31mred", |e| matches!(e, ControlChar { .. })),
            ("del\x7f", |e| matches!(e, ControlChar { .. })),
            ("c1\u{85}", |e| matches!(e, ControlChar { .. })),
            ("tab\there", |e| matches!(e, ControlChar { .. })),
            ("evil\u{202E}txt.exe", |e| matches!(e, BidiControl { .. })),
            ("x\u{2066}y", |e| matches!(e, BidiControl { .. })),
        ];
        for (s, check) in cases {
            let e = RelPath::parse(s).expect_err(s);
            assert!(check(&e), "{s:?}: unexpected error {e:?}");
        }
    }

    #[test]
    fn enforces_limits() {
        let name255 = "n".repeat(255);
        ok(&name255);
        let e = RelPath::parse(&"n".repeat(256)).unwrap_err();
        assert_eq!(
            e,
            PathError::ComponentTooLong {
                path: "n".repeat(256),
                len: 256
            }
        );
        // 16 components is the maximum.
        let sixteen = ["d"; 16].join("/");
        assert_eq!(ok(&sixteen).depth(), 16);
        let seventeen = ["d"; 17].join("/");
        assert!(matches!(
            RelPath::parse(&seventeen),
            Err(PathError::TooManyComponents { count: 17, .. })
        ));
        // 16 maximal components fit (4095 bytes); the length check runs first, so a
        // 17th is reported as too long, with the path truncated in the error.
        assert_eq!(ok(&[name255.as_str(); 16].join("/")).as_str().len(), 4095);
        let long = [name255.as_str(); 17].join("/");
        match RelPath::parse(&long) {
            Err(PathError::TooLong { prefix, len }) => {
                assert_eq!(len, long.len());
                assert_eq!(prefix.len(), ERROR_PREFIX_LEN);
            }
            other => panic!("{other:?}"),
        }
        // A multi-byte character straddling the prefix cut is not split.
        let wide = "é".repeat(3000);
        match RelPath::parse(&wide) {
            Err(PathError::TooLong { prefix, .. }) => assert_eq!(prefix.len(), 64),
            other => panic!("{other:?}"),
        }
        let wide = alloc::format!("x{}", "é".repeat(3000));
        match RelPath::parse(&wide) {
            Err(PathError::TooLong { prefix, .. }) => assert_eq!(prefix.len(), 63),
            other => panic!("{other:?}"),
        }
        // Joining revalidates.
        assert!(ok(&sixteen).join(&ok("x")).is_err());
    }

    #[test]
    fn bytes_must_be_utf8() {
        assert_eq!(RelPath::parse_bytes(b"a/b").unwrap(), ok("a/b"));
        let e = RelPath::parse_bytes(b"bad\xff").unwrap_err();
        assert_eq!(
            e,
            PathError::NotUtf8 {
                path: "bad\u{FFFD}".into()
            }
        );
    }

    #[test]
    fn errors_name_the_path_and_escape_it() {
        let e = RelPath::parse("../x").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid path \"../x\": '.' and '..' components are not allowed"
        );
        let e = RelPath::parse("a\nINFO: forged").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("a\\nINFO: forged"), "{msg}");
        assert!(!msg.contains('\n'));
        let e = RelPath::parse("evil\u{202E}gpj.exe").unwrap_err();
        assert!(!e.to_string().contains('\u{202E}'), "{e}");
        assert!(
            RelPath::parse("a\0")
                .unwrap_err()
                .to_string()
                .contains("\\0")
        );
    }

    #[test]
    fn serde_round_trip_validates() {
        let p: RelPath = serde_json::from_str("\"keys/disk\"").unwrap();
        assert_eq!(p, ok("keys/disk"));
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"keys/disk\"");
        let e = serde_json::from_str::<RelPath>("\"../escape\"").unwrap_err();
        assert!(e.to_string().contains("'..'"), "{e}");
    }
}
