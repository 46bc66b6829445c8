//! Init-data: the TOML document the host binds into the TEE at launch (SNP HOST_DATA,
//! TDX MRCONFIGID) and the guest sends to the KBS with its evidence.
//!
//! ```toml
//! version = "0.1.0"
//! algorithm = "sha384"        # sha256 | sha384 | sha512
//! [data]
//! "aa.toml" = '''...'''       # attestation-agent config: [token_configs.kbs] url, cert
//! "cdh.toml" = '''...'''      # confidential-data-hub config: [kbc] name, url, kbs_cert
//! "sealgate.toml" = '''...''' # sealgate's own settings (the config file's format)
//! "policy.rego" = '''...'''
//! ```
//!
//! The digest is `algorithm(raw bytes)`, with no canonicalization; it is compared with
//! HOST_DATA (32 bytes) or MRCONFIGID (48 bytes) after zero-padding or truncating it,
//! the `regularize_data` rule of Trustee's verifiers. Kata delivers it on a block device:
//! `"initdata"` ‖ u64 LE length ‖ gzip(TOML), zero-padded to 512 bytes.

use crate::config::{self, Settings};
use crate::gzip::{self, GzipError};
use crate::rcar::HashAlgorithm;
use crate::tomlerror::TomlError;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use serde::Deserialize;

/// Largest init-data document accepted (after decompression).
pub const MAX_INITDATA_LEN: usize = 256 * 1024;

/// The `[data]` entry holding sealgate's own settings.
pub const SEALGATE_TOML: &str = "sealgate.toml";

/// The magic at the start of kata's init-data block device.
pub const BLOCK_MAGIC: &[u8; 8] = b"initdata";

/// Init-data problems. Messages name the position of a TOML error, never the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitDataError {
    /// Larger than [`MAX_INITDATA_LEN`].
    TooLarge,
    /// Not UTF-8 / not TOML / wrong shape.
    Parse(String),
    /// `version` is not `0.1.0`.
    Version(String),
    /// `algorithm` is not sha256/sha384/sha512.
    Algorithm(String),
    /// The block device has no init-data magic.
    NoMagic,
    /// The block device header or gzip stream is corrupt.
    Corrupt(&'static str),
    /// An embedded `aa.toml`/`cdh.toml` is malformed.
    Embedded(&'static str, String),
}

impl fmt::Display for InitDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "init-data is larger than {MAX_INITDATA_LEN} bytes"),
            Self::Parse(e) => write!(f, "init-data is not valid: {e}"),
            Self::Version(v) => write!(
                f,
                "init-data version '{v}' is not supported (expected 0.1.0)"
            ),
            Self::Algorithm(a) => write!(
                f,
                "init-data algorithm '{a}' is not supported (expected sha256, sha384 or sha512)"
            ),
            Self::NoMagic => f.write_str("no init-data magic on the device"),
            Self::Corrupt(why) => write!(f, "init-data device is corrupt: {why}"),
            Self::Embedded(name, e) => write!(f, "init-data {name} is not valid TOML: {e}"),
        }
    }
}

#[derive(Deserialize)]
struct Wire {
    version: String,
    algorithm: String,
    data: BTreeMap<String, String>,
}

/// A parsed init-data document, keeping the exact bytes it came from.
#[derive(Clone, Debug)]
pub struct InitData {
    raw: String,
    algorithm: HashAlgorithm,
    data: BTreeMap<String, String>,
}

impl InitData {
    /// Parses and validates init-data TOML (`version`, `algorithm`, `[data]` of strings).
    pub fn parse(raw: &[u8]) -> Result<Self, InitDataError> {
        if raw.len() > MAX_INITDATA_LEN {
            return Err(InitDataError::TooLarge);
        }
        let text =
            core::str::from_utf8(raw).map_err(|_| InitDataError::Parse("not UTF-8".into()))?;
        let wire: Wire = toml::from_str(text)
            .map_err(|e| InitDataError::Parse(TomlError::new(&e, text).to_string()))?;
        if wire.version != "0.1.0" {
            return Err(InitDataError::Version(wire.version));
        }
        let algorithm = HashAlgorithm::parse(&wire.algorithm)
            .ok_or(InitDataError::Algorithm(wire.algorithm))?;
        Ok(InitData {
            raw: text.to_string(),
            algorithm,
            data: wire.data,
        })
    }

    /// The exact text, as sent in `/attest` (`init-data.body`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The digest algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// `algorithm(raw bytes)`.
    pub fn digest(&self) -> Vec<u8> {
        self.algorithm.digest(self.raw.as_bytes())
    }

    /// What SNP HOST_DATA must hold: the digest regularized to 32 bytes.
    pub fn snp_host_data(&self) -> [u8; 32] {
        regularize(&self.digest())
    }

    /// What TDX MRCONFIGID must hold: the digest regularized to 48 bytes.
    pub fn tdx_mrconfigid(&self) -> [u8; 48] {
        regularize(&self.digest())
    }

    /// A `[data]` entry.
    pub fn entry(&self, name: &str) -> Option<&str> {
        self.data.get(name).map(String::as_str)
    }

    /// sealgate's own settings: the `sealgate.toml` entry of `[data]` (the config file's
    /// format), if there is one. Measured with the rest of init-data; what it may set is
    /// [`crate::trust`]'s to say.
    pub fn settings(&self) -> Result<Option<Settings>, InitDataError> {
        self.entry(SEALGATE_TOML)
            .map(|text| {
                config::parse_file(text)
                    .map_err(|e| InitDataError::Embedded(SEALGATE_TOML, e.to_string()))
            })
            .transpose()
    }

    /// The KBS settings it carries: `aa.toml` `[token_configs.kbs]` (url, cert) first,
    /// else `cdh.toml` `[kbc]` (url, kbs_cert) when its `name` is `cc_kbc`. When `aa.toml`
    /// names the KBS without a certificate and `cdh.toml` names the same URL with one, that
    /// certificate is used (upstream's attestation agent and CDH each read their own; sealgate
    /// is both).
    pub fn kbs(&self) -> Result<Option<KbsEndpoint>, InitDataError> {
        let aa = self.aa_kbs()?;
        let cdh = self.cdh_kbs()?;
        Ok(match (aa, cdh) {
            (Some(mut aa), Some(cdh)) => {
                if aa.cert.is_none() && same_url(&aa.url, &cdh.url) {
                    aa.cert = cdh.cert;
                }
                Some(aa)
            }
            (Some(aa), None) => Some(aa),
            (None, cdh) => cdh,
        })
    }

    fn aa_kbs(&self) -> Result<Option<KbsEndpoint>, InitDataError> {
        let Some(aa) = self.entry("aa.toml") else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        struct Aa {
            token_configs: Option<TokenConfigs>,
        }
        #[derive(Deserialize)]
        struct TokenConfigs {
            kbs: Option<KbsConf>,
        }
        #[derive(Deserialize)]
        struct KbsConf {
            url: String,
            cert: Option<String>,
        }
        let aa: Aa = toml::from_str(aa)
            .map_err(|e| InitDataError::Embedded("aa.toml", TomlError::new(&e, aa).to_string()))?;
        Ok(aa.token_configs.and_then(|t| t.kbs).map(|kbs| KbsEndpoint {
            url: kbs.url,
            cert: kbs.cert.filter(|c| !c.trim().is_empty()),
        }))
    }

    fn cdh_kbs(&self) -> Result<Option<KbsEndpoint>, InitDataError> {
        let Some(cdh) = self.entry("cdh.toml") else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        struct Cdh {
            kbc: Option<Kbc>,
        }
        #[derive(Deserialize)]
        struct Kbc {
            name: String,
            url: String,
            kbs_cert: Option<String>,
        }
        let cdh: Cdh = toml::from_str(cdh).map_err(|e| {
            InitDataError::Embedded("cdh.toml", TomlError::new(&e, cdh).to_string())
        })?;
        Ok(cdh
            .kbc
            .filter(|k| k.name == "cc_kbc")
            .map(|kbc| KbsEndpoint {
                url: kbc.url,
                cert: kbc.kbs_cert.filter(|c| !c.trim().is_empty()),
            }))
    }
}

/// Two spellings of one KBS URL (case of the scheme and host, a trailing slash).
fn same_url(a: &str, b: &str) -> bool {
    let norm = |u: &str| u.trim().trim_end_matches('/').to_ascii_lowercase();
    norm(a) == norm(b)
}

/// The KBS named in init-data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KbsEndpoint {
    /// Base URL.
    pub url: String,
    /// PEM certificate of the KBS (trust anchor and exact pin) for `https://`; with it,
    /// an `http://` URL is refused.
    pub cert: Option<String>,
}

/// Zero-pads or truncates `digest` to `N` bytes (Trustee's `regularize_data`).
pub fn regularize<const N: usize>(digest: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = digest.len().min(N);
    out[..n].copy_from_slice(&digest[..n]);
    out
}

/// Extracts the init-data TOML from the start of kata's block device image.
pub fn from_block_device(image: &[u8]) -> Result<Vec<u8>, InitDataError> {
    if image.len() < 16 || &image[..8] != BLOCK_MAGIC {
        return Err(InitDataError::NoMagic);
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&image[8..16]);
    let len = u64::from_le_bytes(len);
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(16))
        .ok_or(InitDataError::Corrupt("length"))?;
    let gz = image
        .get(16..end)
        .ok_or(InitDataError::Corrupt("length beyond the device"))?;
    gzip::decompress(gz, MAX_INITDATA_LEN).map_err(|e| match e {
        GzipError::TooLarge => InitDataError::TooLarge,
        other => InitDataError::Corrupt(other.reason()),
    })
}

/// Builds kata's init-data block device image for `toml` (the host side of
/// [`from_block_device`]): magic, u64 LE length, gzip, zero padding to 512 bytes.
pub fn to_block_device(toml: &[u8]) -> Vec<u8> {
    let gz = gzip::compress(toml);
    let mut image = Vec::with_capacity(16 + gz.len() + 512);
    image.extend_from_slice(BLOCK_MAGIC);
    image.extend_from_slice(&(gz.len() as u64).to_le_bytes());
    image.extend_from_slice(&gz);
    image.resize(image.len().div_ceil(512) * 512, 0);
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    /// guest-interfaces.md §8.3 (261 bytes, LF, ends with `'''\n`).
    const EXAMPLE: &str = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs]\n[token_configs.kbs]\nurl = \"http://10.0.0.1:8080\"\n'''\n\n\"cdh.toml\" = '''\nsocket = \"unix:///run/confidential-containers/cdh.sock\"\n[kbc]\nname = \"cc_kbc\"\nurl = \"http://10.0.0.1:8080\"\n'''\n";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| alloc::format!("{x:02x}")).collect()
    }

    #[test]
    fn reference_examples_digest_and_regularize() {
        assert_eq!(EXAMPLE.len(), 261);
        let d = InitData::parse(EXAMPLE.as_bytes()).unwrap();
        let digest = "2c4b02b24ef0914a0990f7ea27eecc62e002e1269b83306508e68a7190743de0500005d21139c379032899ff4ecea9e8";
        assert_eq!(hex(&d.digest()), digest);
        assert_eq!(hex(&d.snp_host_data()), &digest[..64]);
        assert_eq!(hex(&d.tdx_mrconfigid()), digest);
        assert_eq!(d.kbs().unwrap().unwrap().url, "http://10.0.0.1:8080");

        // kbs-protocol.md §4.2 worked example (116 bytes).
        let k = "algorithm = \"sha384\"\nversion = \"0.1.0\"\n\n[data]\n\"aa.toml\" = '''\n[token_configs.kbs]\nurl = \"http://10.0.0.1:8080\"\n'''\n";
        let d = InitData::parse(k.as_bytes()).unwrap();
        assert_eq!(
            hex(&d.digest()),
            "7e11d1b084ba7b39e855c8941e10e644037ec2437b53950eacd518b5d7602f6ff13cf1de2fdc2cd20deef601824e9e65"
        );

        // sha256 pads for TDX; sha512 truncates for both.
        let s = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n";
        let d = InitData::parse(s.as_bytes()).unwrap();
        assert_eq!(&d.tdx_mrconfigid()[..32], &d.digest()[..]);
        assert_eq!(d.tdx_mrconfigid()[32..], [0u8; 16]);
        assert_eq!(d.snp_host_data()[..], d.digest()[..]);
        assert_eq!(d.kbs().unwrap(), None);
    }

    #[test]
    fn the_kbs_certificate_comes_from_aa_toml_else_cdh_toml_for_the_same_url() {
        let kbs = |aa: &str, cdh: &str| {
            let doc = alloc::format!(
                "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"aa.toml\" = '''\n{aa}'''\n\"cdh.toml\" = '''\n{cdh}'''\n"
            );
            InitData::parse(doc.as_bytes())
                .unwrap()
                .kbs()
                .unwrap()
                .unwrap()
        };
        let aa_cert = "[token_configs.kbs]\nurl = \"https://kbs:8443\"\ncert = \"AA PEM\"\n";
        let aa_bare = "[token_configs.kbs]\nurl = \"https://kbs:8443\"\n";
        let cdh_same =
            "[kbc]\nname = \"cc_kbc\"\nurl = \"https://KBS:8443/\"\nkbs_cert = \"CDH PEM\"\n";
        let cdh_other =
            "[kbc]\nname = \"cc_kbc\"\nurl = \"https://other:8443\"\nkbs_cert = \"CDH PEM\"\n";
        assert_eq!(kbs(aa_cert, cdh_same).cert.as_deref(), Some("AA PEM"));
        assert_eq!(kbs(aa_bare, cdh_same).cert.as_deref(), Some("CDH PEM"));
        assert_eq!(kbs(aa_bare, cdh_other).cert, None);
        assert_eq!(kbs(aa_bare, cdh_other).url, "https://kbs:8443");
        // An empty certificate is none.
        let aa_empty = "[token_configs.kbs]\nurl = \"https://kbs:8443\"\ncert = \"\"\n";
        assert_eq!(kbs(aa_empty, "").cert, None);
    }

    #[test]
    fn cdh_toml_fallback_and_rejections() {
        let s = "version = \"0.1.0\"\nalgorithm = \"sha512\"\n[data]\n\"cdh.toml\" = '''\n[kbc]\nname = \"cc_kbc\"\nurl = \"http://kbs:1\"\nkbs_cert = \"PEM\"\n'''\n";
        let d = InitData::parse(s.as_bytes()).unwrap();
        assert_eq!(
            d.kbs().unwrap(),
            Some(KbsEndpoint {
                url: "http://kbs:1".into(),
                cert: Some("PEM".into())
            })
        );
        assert_eq!(d.snp_host_data()[..], d.digest()[..32]);
        for (doc, want) in [
            (
                "version = \"0.2.0\"\nalgorithm = \"sha384\"\n[data]\n",
                "version '0.2.0'",
            ),
            (
                "version = \"0.1.0\"\nalgorithm = \"sha-384\"\n[data]\n",
                "algorithm 'sha-384'",
            ),
            (
                "version = \"0.1.0\"\nalgorithm = \"SHA384\"\n[data]\n",
                "algorithm 'SHA384'",
            ),
            (
                "version = \"0.1.0\"\nalgorithm = \"sm3\"\n[data]\n",
                "algorithm 'sm3'",
            ),
            ("version = \"0.1.0\"\nalgorithm = \"sha384\"\n", "data"),
            (
                "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\nx = 1\n",
                "not valid",
            ),
        ] {
            let e = InitData::parse(doc.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(want), "{doc}: {e}");
        }
        assert_eq!(
            InitData::parse(&[0xff, 0xfe]).unwrap_err(),
            InitDataError::Parse("not UTF-8".into())
        );
        let bad_aa = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n[data]\n\"aa.toml\" = \"[[[\"\n";
        assert!(InitData::parse(bad_aa.as_bytes()).unwrap().kbs().is_err());
    }

    /// gzip of the example with a file name in the header (FNAME set), as `gzip` writes.
    fn gzip_fixture() -> Vec<u8> {
        let deflated = miniz_oxide::deflate::compress_to_vec(EXAMPLE.as_bytes(), 6);
        let mut gz = alloc::vec![0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3];
        gz.extend_from_slice(b"initdata.toml\0");
        gz.extend_from_slice(&deflated);
        gz.extend_from_slice(&gzip::crc32(EXAMPLE.as_bytes()).to_le_bytes());
        gz.extend_from_slice(&(EXAMPLE.len() as u32).to_le_bytes());
        gz
    }

    #[test]
    fn kata_block_device_format() {
        let gz = gzip_fixture();
        let mut image = BLOCK_MAGIC.to_vec();
        image.extend_from_slice(&(gz.len() as u64).to_le_bytes());
        image.extend_from_slice(&gz);
        image.resize(image.len().div_ceil(512) * 512, 0);
        assert_eq!(from_block_device(&image).unwrap(), EXAMPLE.as_bytes());
        let built = to_block_device(EXAMPLE.as_bytes());
        assert_eq!(built.len() % 512, 0);
        assert_eq!(from_block_device(&built).unwrap(), EXAMPLE.as_bytes());

        assert_eq!(from_block_device(&image[1..]), Err(InitDataError::NoMagic));
        let mut lying = image.clone();
        lying[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(
            from_block_device(&lying),
            Err(InitDataError::Corrupt("length beyond the device"))
        );
        let mut flipped = image.clone();
        let last_crc = 16 + gz.len() - 8;
        flipped[last_crc] ^= 1;
        assert_eq!(
            from_block_device(&flipped),
            Err(InitDataError::Corrupt("gzip checksum mismatch"))
        );
        // A decompression bomb stops at the limit.
        let bomb = gzip::compress(&alloc::vec![0u8; 4 * MAX_INITDATA_LEN]);
        assert!(bomb.len() < 8 * 1024);
        let mut image = BLOCK_MAGIC.to_vec();
        image.extend_from_slice(&(bomb.len() as u64).to_le_bytes());
        image.extend_from_slice(&bomb);
        assert_eq!(from_block_device(&image), Err(InitDataError::TooLarge));
    }

    #[test]
    fn sealgate_toml_carries_sealgate_settings() {
        let doc = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"sealgate.toml\" = '''\n\
                   owner = \"1000:1000\"\n[[resource]]\nuri = \"kbs:///default/app/key\"\npath = \"app/key\"\n'''\n";
        let d = InitData::parse(doc.as_bytes()).unwrap();
        let s = d.settings().unwrap().unwrap();
        assert_eq!(s.owner, Some((1000, 1000)));
        assert_eq!(s.resources.unwrap()[0].path, "app/key");
        let none = InitData::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(none.settings().unwrap(), None);
        // A bad line in it is named by position only.
        let bad = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"sealgate.toml\" = '''\n\
                   kbs_url = \"http://kbs\"\nhunter2-secret\n'''\n";
        let e = InitData::parse(bad.as_bytes())
            .unwrap()
            .settings()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("init-data sealgate.toml is not valid TOML: line 2, column"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn parse_errors_name_the_position_not_the_line() {
        let bad = "version = \"0.1.0\"\nalgorithm = \"sha256\"\nhunter2-secret-key\n";
        let e = InitData::parse(bad.as_bytes()).unwrap_err().to_string();
        assert!(
            e.starts_with("init-data is not valid: line 3, column"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }
}
