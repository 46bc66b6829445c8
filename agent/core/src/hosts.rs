//! Where the KBS is: `http[s]://host[:port][/base]` URLs, `host:port` authorities and
//! `/etc/hosts` lookups. Pure parsing; the transport reads the files and opens sockets.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv6Addr};

/// Port used when a URL or authority gives none.
pub const DEFAULT_PORT: u16 = 80;
/// Port used when an `https://` URL gives none.
pub const DEFAULT_HTTPS_PORT: u16 = 443;

/// Why a URL or authority was refused. Messages are static; the caller adds which setting
/// held the bad value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddrError {
    /// Nothing to parse.
    Empty,
    /// A scheme other than `http`/`https`.
    UnsupportedScheme,
    /// No `scheme://` in front of the host.
    MissingScheme,
    /// `user[:password]@host`.
    UserInfo,
    /// The host is neither an IP literal nor a valid DNS name.
    InvalidHost,
    /// An IPv6 literal without brackets (`::1:80` is ambiguous).
    UnbracketedIpv6,
    /// The text between `[` and `]` is not an IPv6 address (zone ids are not supported).
    InvalidIpv6,
    /// The port is not a decimal number in 1..=65535.
    InvalidPort,
    /// The path has characters that cannot be sent unescaped in a request target.
    InvalidPath,
    /// The URL has a query (`?`) or a fragment (`#`).
    QueryOrFragment,
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrError::Empty => "empty address",
            AddrError::UnsupportedScheme => {
                "unsupported URL scheme: only http:// and https:// are supported"
            }
            AddrError::MissingScheme => "the URL must start with http:// or https://",
            AddrError::UserInfo => "credentials in the URL (user@host) are not supported",
            AddrError::InvalidHost => "invalid host: expected an IP address or a DNS name",
            AddrError::UnbracketedIpv6 => {
                "an IPv6 address must be written in brackets, e.g. [fd00::1]:8080"
            }
            AddrError::InvalidIpv6 => "invalid IPv6 address between brackets",
            AddrError::InvalidPort => "invalid port: expected a number from 1 to 65535",
            AddrError::InvalidPath => {
                "the URL path may only contain visible ASCII characters (percent-encode the rest)"
            }
            AddrError::QueryOrFragment => "the URL must not contain a query (?) or fragment (#)",
        })
    }
}

impl core::error::Error for AddrError {}

/// A host: an IP literal or a DNS name (stored lower-cased, without a trailing dot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A DNS name.
    Name(String),
}

impl fmt::Display for Host {
    /// IPv6 addresses are written in brackets, as in a URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

impl Host {
    /// Parses an IP literal (IPv6 in brackets) or a DNS name.
    pub fn parse(s: &str) -> Result<Host, AddrError> {
        if s.is_empty() {
            return Err(AddrError::Empty);
        }
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(AddrError::InvalidIpv6)?;
            return inner
                .parse::<Ipv6Addr>()
                .map(|ip| Host::Ip(IpAddr::V6(ip)))
                .map_err(|_| AddrError::InvalidIpv6);
        }
        if s.contains(':') {
            return Err(AddrError::UnbracketedIpv6);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let name = s.strip_suffix('.').unwrap_or(s);
        if !is_dns_name(name) {
            return Err(AddrError::InvalidHost);
        }
        // A name made only of digits and dots would be a mistyped IPv4 address.
        if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(AddrError::InvalidHost);
        }
        Ok(Host::Name(name.to_ascii_lowercase()))
    }
}

/// LDH labels (underscores tolerated, as some internal zones use them), 1..=63 bytes each,
/// at most 253 bytes in all.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// The host.
    pub host: Host,
    /// The TCP port.
    pub port: u16,
}

impl Authority {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`; `default_port` applies when the
    /// port is absent.
    pub fn parse(s: &str, default_port: u16) -> Result<Authority, AddrError> {
        if s.is_empty() {
            return Err(AddrError::Empty);
        }
        if s.contains('@') {
            return Err(AddrError::UserInfo);
        }
        let (host, port) = if s.starts_with('[') {
            match s.find(']') {
                Some(end) => {
                    let rest = &s[end + 1..];
                    match rest.strip_prefix(':') {
                        Some(port) => (&s[..=end], Some(port)),
                        None if rest.is_empty() => (s, None),
                        None => return Err(AddrError::InvalidIpv6),
                    }
                }
                None => return Err(AddrError::InvalidIpv6),
            }
        } else {
            match s.bytes().filter(|&b| b == b':').count() {
                0 => (s, None),
                1 => match s.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (s, None),
                },
                _ => return Err(AddrError::UnbracketedIpv6),
            }
        };
        let port = match port {
            Some(p) => parse_port(p)?,
            None => default_port,
        };
        Ok(Authority {
            host: Host::parse(host)?,
            port,
        })
    }

    /// The `Host` header value of a plain-HTTP URL: the port is left out when it is 80.
    pub fn host_header(&self) -> String {
        self.host_header_for(DEFAULT_PORT)
    }

    /// The `Host` header value: the port is left out when it is the scheme's `default`.
    pub fn host_header_for(&self, default: u16) -> String {
        if self.port == default {
            self.host.to_string()
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for Authority {
    /// `host:port`, IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

fn parse_port(p: &str) -> Result<u16, AddrError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::InvalidPort);
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(AddrError::InvalidPort),
        Ok(port) => Ok(port),
    }
}

/// A KBS URL: `http://host[:port][/base/path]` or `https://...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `https://`: the connection is TLS, the host is the server name it verifies.
    pub tls: bool,
    /// Where to connect.
    pub authority: Authority,
    /// Path prefix put in front of every request target: `""` or `/segment[/...]`, without
    /// a trailing slash.
    pub base_path: String,
}

impl Url {
    /// Parses an `http://` or `https://` URL. The scheme is case-insensitive. The port
    /// defaults to 80 (http) or 443 (https). A trailing `/` is dropped from the path;
    /// query, fragment and user info are refused.
    pub fn parse(s: &str) -> Result<Url, AddrError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(AddrError::Empty);
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(AddrError::MissingScheme);
        };
        let tls = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(AddrError::UnsupportedScheme);
        };
        if rest.contains('?') || rest.contains('#') {
            return Err(AddrError::QueryOrFragment);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let authority = Authority::parse(authority, default_port(tls))?;
        if !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(AddrError::InvalidPath);
        }
        Ok(Url {
            tls,
            authority,
            base_path: String::from(path.trim_end_matches('/')),
        })
    }

    /// The request target for `path` (which starts with `/`): the base path, then `path`.
    pub fn target(&self, path: &str) -> String {
        let mut t = String::with_capacity(self.base_path.len() + path.len());
        t.push_str(&self.base_path);
        t.push_str(path);
        t
    }

    /// The `Host` header value: the port is left out when it is the scheme's default.
    pub fn host_header(&self) -> String {
        self.authority.host_header_for(default_port(self.tls))
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

fn default_port(tls: bool) -> u16 {
    if tls {
        DEFAULT_HTTPS_PORT
    } else {
        DEFAULT_PORT
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme(),
            self.authority,
            self.base_path
        )
    }
}

/// One usable line of a hosts file: an address and its names (canonical name first, then
/// the aliases).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostsEntry<'a> {
    /// The address.
    pub addr: IpAddr,
    /// The names, as written.
    pub names: Vec<&'a str>,
}

/// Parses hosts-file text (`/etc/hosts` format): `address name [aliases...]` per line, `#`
/// starts a comment, fields are separated by blanks. Lines whose address does not parse
/// (including IPv6 with a `%zone`) or that have no name are skipped, as the C library does.
pub fn parse_hosts(text: &str) -> Vec<HostsEntry<'_>> {
    text.lines()
        .filter_map(|line| {
            let line = match line.find('#') {
                Some(i) => &line[..i],
                None => line,
            };
            let mut fields = line.split([' ', '\t', '\r']).filter(|f| !f.is_empty());
            let addr = fields.next()?.parse::<IpAddr>().ok()?;
            let names: Vec<&str> = fields.collect();
            if names.is_empty() {
                None
            } else {
                Some(HostsEntry { addr, names })
            }
        })
        .collect()
}

/// The addresses hosts-file text gives for `name` (case-insensitive, aliases included, a
/// trailing dot ignored), in file order, without duplicates.
pub fn lookup_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut found: Vec<IpAddr> = Vec::new();
    if name.is_empty() {
        return found;
    }
    for entry in parse_hosts(text) {
        let matches = entry.names.iter().any(|n| {
            let n = n.strip_suffix('.').unwrap_or(n);
            n.eq_ignore_ascii_case(name)
        });
        if matches && !found.contains(&entry.addr) {
            found.push(entry.addr);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use core::net::Ipv4Addr;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn name(n: &str) -> Host {
        Host::Name(n.into())
    }

    #[test]
    fn urls() {
        let u = Url::parse("http://kbs.example:8080").unwrap();
        assert_eq!(
            u.authority,
            Authority {
                host: name("kbs.example"),
                port: 8080
            }
        );
        assert_eq!(u.base_path, "");
        assert_eq!(u.target("/kbs/v0/auth"), "/kbs/v0/auth");
        assert_eq!(u.authority.host_header(), "kbs.example:8080");
        assert_eq!(u.to_string(), "http://kbs.example:8080");

        let u = Url::parse("HTTP://KBS.Example/").unwrap();
        assert_eq!(
            u.authority,
            Authority {
                host: name("kbs.example"),
                port: 80
            }
        );
        assert_eq!(u.base_path, "");
        assert_eq!(u.authority.host_header(), "kbs.example");

        let u = Url::parse(" http://10.0.0.1:8080/tenant/a/ \n").unwrap();
        assert_eq!(
            u.authority,
            Authority {
                host: Host::Ip(v4(10, 0, 0, 1)),
                port: 8080
            }
        );
        assert_eq!(u.base_path, "/tenant/a");
        assert_eq!(
            u.target("/kbs/v0/resource/r/t/k"),
            "/tenant/a/kbs/v0/resource/r/t/k"
        );
        assert_eq!(u.to_string(), "http://10.0.0.1:8080/tenant/a");

        let u = Url::parse("http://[fd00::1]:8443/kbs-proxy").unwrap();
        assert_eq!(u.authority.host, Host::Ip("fd00::1".parse().unwrap()));
        assert_eq!(u.authority.port, 8443);
        assert_eq!(u.authority.host_header(), "[fd00::1]:8443");
        assert_eq!(u.base_path, "/kbs-proxy");
        assert_eq!(
            Url::parse("http://[::1]").unwrap().authority.host_header(),
            "[::1]"
        );
        assert_eq!(
            Url::parse("http://kbs.").unwrap().authority.host,
            name("kbs")
        );
        assert_eq!(
            Url::parse("http://my_kbs").unwrap().authority.host,
            name("my_kbs")
        );
        assert!(!Url::parse("http://kbs").unwrap().tls);
    }

    #[test]
    fn https_urls() {
        let u = Url::parse("HTTPS://KBS.example").unwrap();
        assert!(u.tls);
        assert_eq!(u.authority.port, 443);
        assert_eq!(u.host_header(), "kbs.example");
        assert_eq!(u.to_string(), "https://kbs.example:443");
        let u = Url::parse("https://10.0.2.2:8443/base/").unwrap();
        assert_eq!(
            (u.authority.port, u.host_header(), u.base_path.as_str()),
            (8443, "10.0.2.2:8443".to_string(), "/base")
        );
        assert_eq!(u.to_string(), "https://10.0.2.2:8443/base");
        // Port 80 is not the default of https: it stays in the Host header.
        assert_eq!(
            Url::parse("https://kbs:80").unwrap().host_header(),
            "kbs:80"
        );
        assert_eq!(
            Url::parse("http://kbs:443").unwrap().host_header(),
            "kbs:443"
        );
    }

    #[test]
    fn bad_urls() {
        let cases = [
            ("", AddrError::Empty),
            ("ftp://kbs", AddrError::UnsupportedScheme),
            ("kbs:8080", AddrError::MissingScheme),
            ("http://", AddrError::Empty),
            ("http:///path", AddrError::Empty),
            ("http://user:pw@kbs", AddrError::UserInfo),
            ("http://kbs:0", AddrError::InvalidPort),
            ("http://kbs:65536", AddrError::InvalidPort),
            ("http://kbs:", AddrError::InvalidPort),
            ("http://kbs:+80", AddrError::InvalidPort),
            ("http://kbs:80a", AddrError::InvalidPort),
            ("http://kbs?x=1", AddrError::QueryOrFragment),
            ("http://kbs/a#b", AddrError::QueryOrFragment),
            ("http://kbs/a b", AddrError::InvalidPath),
            ("http://kbs/\u{e9}", AddrError::InvalidPath),
            ("http://::1:8080", AddrError::UnbracketedIpv6),
            ("http://[::1:8080", AddrError::InvalidIpv6),
            ("http://[::1]x", AddrError::InvalidIpv6),
            ("http://[fe80::1%eth0]:80", AddrError::InvalidIpv6),
            ("http://[10.0.0.1]:80", AddrError::InvalidIpv6),
            ("http://-kbs", AddrError::InvalidHost),
            ("http://kbs..example", AddrError::InvalidHost),
            ("http://k\u{e9}s", AddrError::InvalidHost),
            ("http://256.1.1.1", AddrError::InvalidHost),
            ("http://1.2.3", AddrError::InvalidHost),
        ];
        for (url, want) in cases {
            assert_eq!(Url::parse(url), Err(want), "{url:?}");
        }
        assert!(
            AddrError::UnsupportedScheme
                .to_string()
                .contains("https://")
        );
        let long = alloc::format!("http://{}.example", "a".repeat(64));
        assert_eq!(Url::parse(&long), Err(AddrError::InvalidHost));
    }

    #[test]
    fn authorities() {
        assert_eq!(
            Authority::parse("127.0.0.1:8080", 80),
            Ok(Authority {
                host: Host::Ip(v4(127, 0, 0, 1)),
                port: 8080
            })
        );
        assert_eq!(
            Authority::parse("kbs", 8080),
            Ok(Authority {
                host: name("kbs"),
                port: 8080
            })
        );
        assert_eq!(
            Authority::parse("[::1]", 80).map(|a| a.to_string()),
            Ok("[::1]:80".to_string())
        );
        assert_eq!(Authority::parse("::1", 80), Err(AddrError::UnbracketedIpv6));
        assert_eq!(
            Authority::parse("a:b:c", 80),
            Err(AddrError::UnbracketedIpv6)
        );
        assert_eq!(Authority::parse(":80", 80), Err(AddrError::Empty));
        assert_eq!(
            Authority::parse("kbs:99999", 80),
            Err(AddrError::InvalidPort)
        );
        assert_eq!(
            Authority::parse("127.0.0.1:8080", 80)
                .unwrap()
                .host_header(),
            "127.0.0.1:8080"
        );
    }

    const HOSTS: &str = "\
# /etc/hosts written by the image builder
127.0.0.1\tlocalhost
::1     localhost ip6-localhost ip6-loopback   # loopback
10.0.0.5  kbs.internal  KBS  trustee.   # the KBS
10.0.0.6  other
10.0.0.7  kbs.internal
10.0.0.5  kbs
fe80::1%eth0 linklocal
not-an-ip badline
192.168.1.1
   10.1.1.1   spaced\r
fd00::5 kbs.internal
#10.9.9.9 kbs.internal
";

    #[test]
    fn hosts_lookup() {
        assert_eq!(
            lookup_hosts(HOSTS, "localhost"),
            [v4(127, 0, 0, 1), "::1".parse().unwrap()]
        );
        assert_eq!(
            lookup_hosts(HOSTS, "KBS.Internal"),
            [v4(10, 0, 0, 5), v4(10, 0, 0, 7), "fd00::5".parse().unwrap()]
        );
        assert_eq!(lookup_hosts(HOSTS, "kbs"), [v4(10, 0, 0, 5)]);
        assert_eq!(lookup_hosts(HOSTS, "trustee"), [v4(10, 0, 0, 5)]);
        assert_eq!(lookup_hosts(HOSTS, "trustee."), [v4(10, 0, 0, 5)]);
        assert_eq!(
            lookup_hosts(HOSTS, "ip6-loopback"),
            ["::1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(lookup_hosts(HOSTS, "spaced"), [v4(10, 1, 1, 1)]);
        assert!(lookup_hosts(HOSTS, "linklocal").is_empty());
        assert!(lookup_hosts(HOSTS, "badline").is_empty());
        assert!(lookup_hosts(HOSTS, "loopback").is_empty());
        assert!(lookup_hosts(HOSTS, "kbs.intern").is_empty());
        assert!(lookup_hosts(HOSTS, "").is_empty());
        assert!(lookup_hosts("", "localhost").is_empty());
        assert_eq!(parse_hosts(HOSTS).len(), 8);
        assert_eq!(
            parse_hosts(HOSTS)[1].names,
            ["localhost", "ip6-localhost", "ip6-loopback"]
        );
    }
}
