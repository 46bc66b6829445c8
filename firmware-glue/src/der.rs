//! A tiny, bounded DER walker: enough X.509 to find a certificate's public key and its
//! extensions, nothing more.
//!
//! Why not an X.509 crate: AMD's VCEK certificates carry a serial number that is not positive,
//! which strict parsers reject, and a verifier only needs the SubjectPublicKeyInfo EC point (to
//! check an SNP report signature) and a few AMD extensions (the TCB SPL values, the hardware ID).
//! The walker never allocates, never recurses, rejects the indefinite length form, lengths of
//! more than four bytes and high tag numbers, and bounds every read by its enclosing element.
//! It does not check that encodings are minimal (it is a reader of trusted layouts, not a DER
//! validator); signature checks happen elsewhere.
//!
//! ```
//! # fn f(der: &[u8]) -> Result<(), firmware_glue::der::DerError> {
//! use firmware_glue::der::{self, oid};
//! let cert = der::parse_certificate(der)?;
//! let sec1_point = cert.ec_public_key(oid::SECP384R1)?; // 0x04 || X || Y
//! # let _ = sec1_point; Ok(()) }
//! ```

use core::fmt;

/// Tag bytes (universal class, and the context-specific tags X.509 uses).
pub mod tag {
    /// BOOLEAN
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// SEQUENCE (constructed)
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed)
    pub const SET: u8 = 0x31;
    /// `[0]` constructed (X.509 `version`)
    pub const CONTEXT_0: u8 = 0xA0;
    /// `[1]` primitive (X.509 `issuerUniqueID`)
    pub const CONTEXT_1_PRIM: u8 = 0x81;
    /// `[2]` primitive (X.509 `subjectUniqueID`)
    pub const CONTEXT_2_PRIM: u8 = 0x82;
    /// `[3]` constructed (X.509 `extensions`)
    pub const CONTEXT_3: u8 = 0xA3;
}

/// Object identifiers, as the DER content bytes of an OBJECT IDENTIFIER.
pub mod oid {
    /// 1.2.840.10045.2.1 id-ecPublicKey
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// 1.3.132.0.34 secp384r1 (NIST P-384)
    pub const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    /// 1.2.840.10045.3.1.7 prime256v1 (NIST P-256)
    pub const PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// 1.3.6.1.4.1.3704.1.3.1 AMD VCEK/VLEK extension: boot loader SPL (`extnValue` holds a
    /// DER INTEGER: use [`super::Extension::value_tlv`] then [`super::Tlv::as_u64`])
    pub const AMD_BL_SPL: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x01];
    /// 1.3.6.1.4.1.3704.1.3.2 AMD VCEK/VLEK extension: TEE SPL (INTEGER)
    pub const AMD_TEE_SPL: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x02];
    /// 1.3.6.1.4.1.3704.1.3.3 AMD VCEK/VLEK extension: SNP firmware SPL (INTEGER)
    pub const AMD_SNP_SPL: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x03];
    /// 1.3.6.1.4.1.3704.1.3.8 AMD VCEK/VLEK extension: microcode SPL (INTEGER)
    pub const AMD_UCODE_SPL: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x08];
    /// 1.3.6.1.4.1.3704.1.3.9 AMD VCEK/VLEK extension: FMC SPL (INTEGER, Turin and later)
    pub const AMD_FMC_SPL: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x09];
    /// 1.3.6.1.4.1.3704.1.4 AMD VCEK extension: hardware ID. Its `extnValue` content is the 64
    /// raw CHIP_ID bytes themselves (no nested DER element), unlike the SPL extensions.
    pub const AMD_HW_ID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x04];
}

/// Why a DER structure could not be walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DerError {
    /// An element's header or content runs past the end of its enclosing element.
    Truncated,
    /// The indefinite length form (BER, not DER).
    IndefiniteLength,
    /// A length encoded in more than four bytes.
    LengthTooLong,
    /// A tag number of 31 or more (multi-byte tags); X.509 does not use them.
    HighTagNumber,
    /// An element other than the expected one.
    UnexpectedTag {
        /// The tag the structure requires here.
        expected: u8,
        /// The tag found.
        found: u8,
    },
    /// Bytes left over after the last element of a structure.
    TrailingData,
    /// A BIT STRING with unused bits, or without its unused-bits byte.
    BadBitString,
    /// An INTEGER that is negative, empty or wider than 64 bits where a small unsigned one is
    /// required.
    BadInteger,
    /// The public key is not an EC key on the requested curve.
    WrongKeyType,
    /// The EC point is not an uncompressed SEC1 point of the curve's size.
    BadEcPoint,
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerError::Truncated => f.write_str("DER element truncated"),
            DerError::IndefiniteLength => f.write_str("DER indefinite length form not allowed"),
            DerError::LengthTooLong => f.write_str("DER length field longer than 4 bytes"),
            DerError::HighTagNumber => f.write_str("DER multi-byte tag not supported"),
            DerError::UnexpectedTag { expected, found } => {
                write!(
                    f,
                    "DER tag 0x{found:02x} where 0x{expected:02x} was expected"
                )
            }
            DerError::TrailingData => f.write_str("trailing bytes after DER structure"),
            DerError::BadBitString => f.write_str("malformed DER BIT STRING"),
            DerError::BadInteger => f.write_str("DER INTEGER is not a small unsigned integer"),
            DerError::WrongKeyType => {
                f.write_str("certificate public key is not an EC key on the expected curve")
            }
            DerError::BadEcPoint => {
                f.write_str("certificate EC point is not an uncompressed point of the curve")
            }
        }
    }
}

impl core::error::Error for DerError {}

/// One element: tag, content, and the whole encoding (header + content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The content octets.
    pub value: &'a [u8],
    /// Header and content, exactly as encoded.
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// A reader over the content (for constructed elements).
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.value)
    }

    /// The content of a BIT STRING whose unused-bits count is zero.
    pub fn bit_string(&self) -> Result<&'a [u8], DerError> {
        expect_tag(self, tag::BIT_STRING)?;
        match self.value.split_first() {
            Some((0, rest)) => Ok(rest),
            _ => Err(DerError::BadBitString),
        }
    }

    /// An INTEGER as a u64 (non-negative, at most 64 significant bits).
    pub fn as_u64(&self) -> Result<u64, DerError> {
        expect_tag(self, tag::INTEGER)?;
        let v = self.value;
        if v.is_empty() || v[0] & 0x80 != 0 {
            return Err(DerError::BadInteger);
        }
        let v = if v.len() > 1 && v[0] == 0 { &v[1..] } else { v };
        if v.len() > 8 {
            return Err(DerError::BadInteger);
        }
        Ok(v.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
}

fn expect_tag(tlv: &Tlv<'_>, expected: u8) -> Result<(), DerError> {
    if tlv.tag == expected {
        Ok(())
    } else {
        Err(DerError::UnexpectedTag {
            expected,
            found: tlv.tag,
        })
    }
}

/// Reads consecutive elements from a byte string.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// No bytes left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads the next element.
    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let buf = self.rest;
        let (&tag, after_tag) = buf.split_first().ok_or(DerError::Truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::HighTagNumber);
        }
        let (&first, after_len0) = after_tag.split_first().ok_or(DerError::Truncated)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else if first == 0x80 {
            return Err(DerError::IndefiniteLength);
        } else {
            let n = usize::from(first & 0x7f);
            if n > 4 {
                return Err(DerError::LengthTooLong);
            }
            let bytes = after_len0.get(..n).ok_or(DerError::Truncated)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        };
        let end = header.checked_add(len).ok_or(DerError::Truncated)?;
        let raw = buf.get(..end).ok_or(DerError::Truncated)?;
        self.rest = &buf[end..];
        Ok(Tlv {
            tag,
            value: &raw[header..],
            raw,
        })
    }

    /// Reads the next element and requires its tag.
    pub fn expect(&mut self, expected: u8) -> Result<Tlv<'a>, DerError> {
        let tlv = self.read()?;
        expect_tag(&tlv, expected)?;
        Ok(tlv)
    }

    /// Reads the next element only if it has this tag.
    pub fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Requires that nothing is left.
    pub fn finish(&self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingData)
        }
    }
}

/// The parts of an X.509 certificate a verifier of TEE evidence needs.
#[derive(Clone, Copy, Debug)]
pub struct Certificate<'a> {
    /// The `TBSCertificate` element (the bytes the issuer signed are `tbs.raw`).
    pub tbs: Tlv<'a>,
    /// The serial number's content bytes, uninterpreted (AMD's VCEK serial is not positive).
    pub serial: &'a [u8],
    /// The issuer Name element.
    pub issuer: Tlv<'a>,
    /// The subject Name element.
    pub subject: Tlv<'a>,
    /// The subject's public key.
    pub spki: SubjectPublicKeyInfo<'a>,
    /// The content of the `Extensions` SEQUENCE, if present.
    pub extensions: Option<&'a [u8]>,
    /// The outer `signatureAlgorithm` element.
    pub signature_algorithm: Tlv<'a>,
    /// The issuer's signature (BIT STRING content without the unused-bits byte).
    pub signature: &'a [u8],
}

/// A `SubjectPublicKeyInfo`.
#[derive(Clone, Copy, Debug)]
pub struct SubjectPublicKeyInfo<'a> {
    /// The whole element as encoded.
    pub raw: &'a [u8],
    /// The algorithm OID (content bytes).
    pub algorithm: &'a [u8],
    /// The algorithm parameters element, if any (the curve OID for EC keys).
    pub parameters: Option<Tlv<'a>>,
    /// The public key BIT STRING content (for EC keys: the SEC1 point).
    pub public_key: &'a [u8],
}

/// One certificate extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension OID (content bytes).
    pub oid: &'a [u8],
    /// The critical flag.
    pub critical: bool,
    /// The content of `extnValue` (itself usually a DER element).
    pub value: &'a [u8],
}

impl<'a> Extension<'a> {
    /// The extension value parsed as a single DER element (e.g. the INTEGER of an AMD SPL).
    pub fn value_tlv(&self) -> Result<Tlv<'a>, DerError> {
        let mut r = Reader::new(self.value);
        let tlv = r.read()?;
        r.finish()?;
        Ok(tlv)
    }
}

/// Walks an X.509 certificate.
pub fn parse_certificate(der: &[u8]) -> Result<Certificate<'_>, DerError> {
    let mut outer = Reader::new(der);
    let cert = outer.expect(tag::SEQUENCE)?;
    outer.finish()?;

    let mut c = cert.reader();
    let tbs = c.expect(tag::SEQUENCE)?;
    let signature_algorithm = c.expect(tag::SEQUENCE)?;
    let signature = c.read()?.bit_string()?;
    c.finish()?;

    let mut t = tbs.reader();
    let _version = t.optional(tag::CONTEXT_0)?;
    let serial = t.expect(tag::INTEGER)?.value;
    let _signature = t.expect(tag::SEQUENCE)?;
    let issuer = t.expect(tag::SEQUENCE)?;
    let _validity = t.expect(tag::SEQUENCE)?;
    let subject = t.expect(tag::SEQUENCE)?;
    let spki_tlv = t.expect(tag::SEQUENCE)?;
    let _issuer_uid = t.optional(tag::CONTEXT_1_PRIM)?;
    let _subject_uid = t.optional(tag::CONTEXT_2_PRIM)?;
    let extensions = match t.optional(tag::CONTEXT_3)? {
        Some(wrapper) => {
            let mut w = wrapper.reader();
            let seq = w.expect(tag::SEQUENCE)?;
            w.finish()?;
            Some(seq.value)
        }
        None => None,
    };
    t.finish()?;

    let mut s = spki_tlv.reader();
    let alg = s.expect(tag::SEQUENCE)?;
    let public_key = s.read()?.bit_string()?;
    s.finish()?;
    let mut a = alg.reader();
    let algorithm = a.expect(tag::OID)?.value;
    let parameters = if a.is_empty() { None } else { Some(a.read()?) };
    a.finish()?;

    Ok(Certificate {
        tbs,
        serial,
        issuer,
        subject,
        spki: SubjectPublicKeyInfo {
            raw: spki_tlv.raw,
            algorithm,
            parameters,
            public_key,
        },
        extensions,
        signature_algorithm,
        signature,
    })
}

impl<'a> Certificate<'a> {
    /// The subject's EC public key as an uncompressed SEC1 point (`0x04 || X || Y`), provided it
    /// is an `id-ecPublicKey` on `curve` (e.g. [`oid::SECP384R1`]).
    pub fn ec_public_key(&self, curve: &[u8]) -> Result<&'a [u8], DerError> {
        let params = self.spki.parameters.ok_or(DerError::WrongKeyType)?;
        if self.spki.algorithm != oid::EC_PUBLIC_KEY
            || params.tag != tag::OID
            || params.value != curve
        {
            return Err(DerError::WrongKeyType);
        }
        let coord = if curve == oid::SECP384R1 {
            48
        } else if curve == oid::PRIME256V1 {
            32
        } else {
            return Err(DerError::WrongKeyType);
        };
        let p = self.spki.public_key;
        if p.len() != 1 + 2 * coord || p[0] != 0x04 {
            return Err(DerError::BadEcPoint);
        }
        Ok(p)
    }

    /// The extensions, in order.
    pub fn extensions(&self) -> Extensions<'a> {
        Extensions {
            reader: Reader::new(self.extensions.unwrap_or(&[])),
        }
    }

    /// The extension with this OID, if present.
    pub fn extension(&self, oid: &[u8]) -> Result<Option<Extension<'a>>, DerError> {
        for ext in self.extensions() {
            let ext = ext?;
            if ext.oid == oid {
                return Ok(Some(ext));
            }
        }
        Ok(None)
    }
}

/// Iterator over a certificate's extensions; stops after the first error.
#[derive(Clone, Debug)]
pub struct Extensions<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<Extension<'a>, DerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_empty() {
            return None;
        }
        let item = (|| {
            let ext = self.reader.expect(tag::SEQUENCE)?;
            let mut e = ext.reader();
            let oid = e.expect(tag::OID)?.value;
            let critical = match e.optional(tag::BOOLEAN)? {
                Some(b) => b.value.first().is_some_and(|v| *v != 0),
                None => false,
            };
            let value = e.expect(tag::OCTET_STRING)?.value;
            e.finish()?;
            Ok(Extension {
                oid,
                critical,
                value,
            })
        })();
        if item.is_err() {
            // Do not loop on a malformed element.
            self.reader = Reader::new(&[]);
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        // short form
        let mut r = Reader::new(&[0x04, 0x02, 0xaa, 0xbb]);
        let t = r.read().unwrap();
        assert_eq!(t.value, &[0xaa, 0xbb]);
        assert!(r.is_empty());
        // long form, one length byte
        let mut buf = [0u8; 3 + 0x81];
        buf[0] = 0x04;
        buf[1] = 0x81;
        buf[2] = 0x81;
        assert_eq!(Reader::new(&buf).read().unwrap().value.len(), 0x81);
        // truncated content
        assert_eq!(Reader::new(&buf[..20]).read(), Err(DerError::Truncated));
        // indefinite, too long, high tag, truncated header
        assert_eq!(
            Reader::new(&[0x30, 0x80, 0, 0]).read(),
            Err(DerError::IndefiniteLength)
        );
        assert_eq!(
            Reader::new(&[0x04, 0x85, 1, 1, 1, 1, 1]).read(),
            Err(DerError::LengthTooLong)
        );
        assert_eq!(
            Reader::new(&[0x1f, 0x01, 0x00]).read(),
            Err(DerError::HighTagNumber)
        );
        assert_eq!(Reader::new(&[0x04]).read(), Err(DerError::Truncated));
        assert_eq!(
            Reader::new(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]).read(),
            Err(DerError::Truncated)
        );
    }

    #[test]
    fn integers() {
        let int = |v: &'static [u8]| Tlv {
            tag: tag::INTEGER,
            value: v,
            raw: v,
        };
        assert_eq!(int(&[0x00]).as_u64(), Ok(0));
        assert_eq!(int(&[0x00, 0xff]).as_u64(), Ok(255));
        assert_eq!(int(&[0x7f]).as_u64(), Ok(127));
        assert_eq!(int(&[0x80]).as_u64(), Err(DerError::BadInteger));
        assert_eq!(int(&[]).as_u64(), Err(DerError::BadInteger));
        assert_eq!(int(&[1; 9]).as_u64(), Err(DerError::BadInteger));
    }

    #[test]
    fn not_a_certificate() {
        assert!(parse_certificate(&[]).is_err());
        assert!(parse_certificate(&[0x30, 0x00]).is_err());
        assert_eq!(
            parse_certificate(&[0x30, 0x00, 0x00]).err(),
            Some(DerError::TrailingData)
        );
    }
}
