//! Intel TDX DCAP quotes, versions 4 and 5 (Intel DCAP `sgx_quote_4.h`/`sgx_quote_5.h`;
//! reference §2.3; Trustee `deps/verifier/src/intel_dcap/quote.rs`), every length checked.

use core::fmt;

use crate::util::{array, get_u16, get_u32, u16_at, u32_at};

/// Length of the quote header.
pub const HEADER_LEN: usize = 48;
/// Length of a TDX 1.0 TD report body (quote v4, quote v5 body type 2).
pub const BODY_LEN_TDX10: usize = 584;
/// Length of a TDX 1.5 TD report body (quote v5 body type 3).
pub const BODY_LEN_TDX15: usize = 648;
/// `att_key_type` for ECDSA-256-with-P-256.
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
/// `tee_type` of TDX.
pub const TEE_TYPE_TDX: u32 = 0x81;
/// Certification data type: QE report certification data.
pub const CERT_DATA_QE_REPORT: u16 = 6;
/// Certification data type: PCK certificate chain (PEM).
pub const CERT_DATA_PCK_CHAIN: u16 = 5;

/// Header offsets.
pub mod header {
    use core::ops::Range;
    /// Quote version (u16): 4 or 5.
    pub const VERSION: Range<usize> = 0..2;
    /// Attestation key type (u16): 2 = ECDSA-256-with-P-256.
    pub const ATT_KEY_TYPE: Range<usize> = 2..4;
    /// TEE type (u32): 0x81 = TDX.
    pub const TEE_TYPE: Range<usize> = 4..8;
    /// Reserved (SGX v3: QE SVN, PCE SVN).
    pub const RESERVED: Range<usize> = 8..12;
    /// QE vendor ID (Intel: 939a7233f79c4ca9940a0db3957f0607).
    pub const QE_VENDOR_ID: Range<usize> = 12..28;
    /// User data (QE-defined; first 16 bytes are the platform's QE identity).
    pub const USER_DATA: Range<usize> = 28..48;
    /// Quote v5 only: body type (u16): 2 = TDX 1.0 body, 3 = TDX 1.5 body.
    pub const V5_BODY_TYPE: Range<usize> = 48..50;
    /// Quote v5 only: body size (u32).
    pub const V5_BODY_SIZE: Range<usize> = 50..54;
    /// Where the body starts in a v4 quote.
    pub const V4_BODY: usize = 48;
    /// Where the body starts in a v5 quote.
    pub const V5_BODY: usize = 54;
}

/// TD report body offsets (relative to the body start; v4 absolute = body + 48).
pub mod body {
    use core::ops::Range;
    /// TEE_TCB_SVN.
    pub const TEE_TCB_SVN: Range<usize> = 0..16;
    /// MRSEAM.
    pub const MRSEAM: Range<usize> = 16..64;
    /// MRSIGNERSEAM.
    pub const MRSIGNERSEAM: Range<usize> = 64..112;
    /// SEAMATTRIBUTES.
    pub const SEAMATTRIBUTES: Range<usize> = 112..120;
    /// TDATTRIBUTES.
    pub const TDATTRIBUTES: Range<usize> = 120..128;
    /// XFAM.
    pub const XFAM: Range<usize> = 128..136;
    /// MRTD (v4 absolute 184).
    pub const MRTD: Range<usize> = 136..184;
    /// MRCONFIGID (v4 absolute 232).
    pub const MRCONFIGID: Range<usize> = 184..232;
    /// MROWNER.
    pub const MROWNER: Range<usize> = 232..280;
    /// MROWNERCONFIG.
    pub const MROWNERCONFIG: Range<usize> = 280..328;
    /// RTMR0 (RTMR *i* at `RTMR0.start + 48 * i`; v4 absolute 376/424/472/520).
    pub const RTMR0: Range<usize> = 328..376;
    /// REPORTDATA (v4 absolute 568).
    pub const REPORTDATA: Range<usize> = 520..584;
    /// TEE_TCB_SVN2 (TDX 1.5 body only).
    pub const TEE_TCB_SVN2: Range<usize> = 584..600;
    /// MRSERVICETD (TDX 1.5 body only).
    pub const MRSERVICETD: Range<usize> = 600..648;
}

/// Signature data offsets (relative to the start of the signature data, after its u32 length).
pub mod sig {
    use core::ops::Range;
    /// ECDSA P-256 signature `r || s` over the header and body.
    pub const ECDSA_SIGNATURE: Range<usize> = 0..64;
    /// Attestation public key `x || y`.
    pub const ATTESTATION_KEY: Range<usize> = 64..128;
    /// Certification data type (u16) = 6.
    pub const CERT_DATA_TYPE: Range<usize> = 128..130;
    /// Certification data size (u32).
    pub const CERT_DATA_SIZE: Range<usize> = 130..134;
    /// QE report (SGX report body, 384 bytes).
    pub const QE_REPORT: Range<usize> = 134..518;
    /// QE report signature (64 bytes).
    pub const QE_REPORT_SIGNATURE: Range<usize> = 518..582;
    /// QE authentication data size (u16), followed by the data, then the PCK certification
    /// data: type (u16) = 5, size (u32), PEM chain.
    pub const QE_AUTH_DATA_SIZE: Range<usize> = 582..584;
    /// Start of the QE authentication data.
    pub const QE_AUTH_DATA: usize = 584;
}

/// Which TD report body a quote carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// TDX 1.0, 584 bytes (v4, or v5 type 2).
    Tdx10,
    /// TDX 1.5, 648 bytes (v5 type 3).
    Tdx15,
}

/// Why bytes are not an acceptable TD quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuoteError {
    /// The quote ends before a field.
    Truncated {
        /// The field that does not fit.
        field: &'static str,
        /// Bytes needed up to its end.
        need: usize,
        /// Bytes available.
        got: usize,
    },
    /// A version other than 4 or 5 (v3 is an SGX quote).
    UnsupportedVersion(u16),
    /// Not ECDSA-256-with-P-256.
    AttKeyType(u16),
    /// Not a TDX quote.
    TeeType(u32),
    /// A v5 body type other than 2 or 3.
    BodyType(u16),
    /// A v5 body size that does not match its type.
    BodySize {
        /// The body type.
        body_type: u16,
        /// The declared size.
        size: u32,
    },
    /// A certification data type other than the one required here.
    CertDataType {
        /// The required type (6 outer, 5 inner).
        expected: u16,
        /// The type found.
        found: u16,
    },
    /// A length field that disagrees with what it encloses.
    LengthMismatch {
        /// The field.
        field: &'static str,
        /// Its declared value.
        declared: usize,
        /// The value its contents require.
        actual: usize,
    },
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed TD quote: ")?;
        match self {
            QuoteError::Truncated { field, need, got } => {
                write!(f, "{field} needs {need} bytes, the quote has {got}")
            }
            QuoteError::UnsupportedVersion(v) => {
                write!(f, "version {v} (TD quotes are version 4 or 5)")
            }
            QuoteError::AttKeyType(t) => {
                write!(f, "attestation key type {t} (expected 2, ECDSA P-256)")
            }
            QuoteError::TeeType(t) => write!(f, "TEE type 0x{t:x} (expected 0x81, TDX)"),
            QuoteError::BodyType(t) => write!(f, "v5 body type {t} (expected 2 or 3)"),
            QuoteError::BodySize { body_type, size } => {
                write!(f, "v5 body type {body_type} with body size {size}")
            }
            QuoteError::CertDataType { expected, found } => {
                write!(f, "certification data type {found} (expected {expected})")
            }
            QuoteError::LengthMismatch {
                field,
                declared,
                actual,
            } => write!(
                f,
                "{field} declares {declared} bytes but its contents take {actual}"
            ),
        }
    }
}

impl core::error::Error for QuoteError {}

/// A checked view of a TD quote (v4 or v5), over any buffer that dereferences to bytes:
/// `Quote<&[u8]>` borrows (zero-copy), `Quote<Vec<u8>>` owns.
///
/// Every length is checked, once, by [`Quote::new_checked`]: the body size (v5) against the
/// body type, the signature data length against the quote, the QE certification data size
/// against its contents (QE report, signature, authentication data, PCK chain), down to the PEM
/// chain. Bytes after the signature data are tolerated (Trustee tolerates them too);
/// [`Quote::len`] says where the quote ends. An owner keeps the `Quote<T>` (the proof) and reads
/// fields through it without parsing again. `T::as_ref` must return the same bytes every time
/// (as slices, arrays, `Vec` and `Box` do); a buffer that changes under the view makes the
/// accessors panic, never read out of bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote<T: AsRef<[u8]>> {
    buf: T,
    layout: Layout,
}

/// Where the parts of a checked quote lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    kind: BodyKind,
    body_off: usize,
    sig_off: usize,
    sig_len: usize,
    auth_len: usize,
    pck_len: usize,
}

fn need(buf: &[u8], end: usize, field: &'static str) -> Result<(), QuoteError> {
    if end > buf.len() {
        Err(QuoteError::Truncated {
            field,
            need: end,
            got: buf.len(),
        })
    } else {
        Ok(())
    }
}

impl<T: AsRef<[u8]>> Quote<T> {
    /// Checks and wraps a quote (see the type documentation).
    pub fn new_checked(buf: T) -> Result<Self, QuoteError> {
        let layout = check(buf.as_ref())?;
        Ok(Quote { buf, layout })
    }

    /// The buffer the view was made from (trailing bytes included).
    pub fn into_inner(self) -> T {
        self.buf
    }

    /// The bytes the quote occupies (trailing bytes of the buffer excluded).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf.as_ref()[..self.len()]
    }

    /// Length of the quote proper: header, body, signature data.
    #[allow(clippy::len_without_is_empty)] // a quote is never empty
    pub fn len(&self) -> usize {
        self.layout.sig_off + self.layout.sig_len
    }

    /// Version (4 or 5).
    pub fn version(&self) -> u16 {
        u16_at(self.buf.as_ref(), header::VERSION.start)
    }

    /// Attestation key type (2).
    pub fn att_key_type(&self) -> u16 {
        u16_at(self.buf.as_ref(), header::ATT_KEY_TYPE.start)
    }

    /// TEE type (0x81).
    pub fn tee_type(&self) -> u32 {
        u32_at(self.buf.as_ref(), header::TEE_TYPE.start)
    }

    /// QE vendor ID.
    pub fn qe_vendor_id(&self) -> &[u8; 16] {
        array(self.buf.as_ref(), header::QE_VENDOR_ID.start)
    }

    /// Header user data.
    pub fn user_data(&self) -> &[u8; 20] {
        array(self.buf.as_ref(), header::USER_DATA.start)
    }

    /// Quote v5 body type (2 or 3); `None` for v4.
    pub fn body_type(&self) -> Option<u16> {
        (self.version() == 5).then(|| u16_at(self.buf.as_ref(), header::V5_BODY_TYPE.start))
    }

    /// Which body the quote carries.
    pub fn body_kind(&self) -> BodyKind {
        self.layout.kind
    }

    /// The TD report body.
    pub fn body(&self) -> TdQuoteBody<'_> {
        let len = match self.layout.kind {
            BodyKind::Tdx10 => BODY_LEN_TDX10,
            BodyKind::Tdx15 => BODY_LEN_TDX15,
        };
        TdQuoteBody {
            buf: &self.buf.as_ref()[self.layout.body_off..self.layout.body_off + len],
        }
    }

    /// Offset of the body in the quote (48 for v4, 54 for v5).
    pub fn body_offset(&self) -> usize {
        self.layout.body_off
    }

    /// REPORTDATA.
    pub fn report_data(&self) -> &[u8; 64] {
        self.body().report_data()
    }

    /// MRTD.
    pub fn mr_td(&self) -> &[u8; 48] {
        self.body().mr_td()
    }

    /// MRCONFIGID.
    pub fn mr_config_id(&self) -> &[u8; 48] {
        self.body().mr_config_id()
    }

    /// RTMR `index` (0..=3).
    pub fn rtmr(&self, index: usize) -> Option<&[u8; 48]> {
        self.body().rtmr(index)
    }

    /// Everything before the signature data length field (header, v5 body descriptor, body):
    /// the bytes the attestation key signs.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.buf.as_ref()[..self.layout.sig_off - 4]
    }

    /// Signature data length.
    pub fn signature_data_len(&self) -> usize {
        self.layout.sig_len
    }

    fn sig_data(&self) -> &[u8] {
        &self.buf.as_ref()[self.layout.sig_off..self.layout.sig_off + self.layout.sig_len]
    }

    /// ECDSA P-256 quote signature `r || s`.
    pub fn ecdsa_signature(&self) -> &[u8; 64] {
        array(self.sig_data(), sig::ECDSA_SIGNATURE.start)
    }

    /// Attestation public key `x || y`.
    pub fn attestation_key(&self) -> &[u8; 64] {
        array(self.sig_data(), sig::ATTESTATION_KEY.start)
    }

    /// QE certification data size (declared, checked).
    pub fn qe_cert_data_size(&self) -> usize {
        self.layout.sig_len - sig::CERT_DATA_SIZE.end
    }

    /// QE report (SGX report body).
    pub fn qe_report(&self) -> &[u8; 384] {
        array(self.sig_data(), sig::QE_REPORT.start)
    }

    /// QE report signature.
    pub fn qe_report_signature(&self) -> &[u8; 64] {
        array(self.sig_data(), sig::QE_REPORT_SIGNATURE.start)
    }

    /// QE authentication data.
    pub fn qe_auth_data(&self) -> &[u8] {
        &self.sig_data()[sig::QE_AUTH_DATA..sig::QE_AUTH_DATA + self.layout.auth_len]
    }

    /// PCK certificate chain (PEM, leaf first).
    pub fn pck_cert_chain(&self) -> &[u8] {
        let start = sig::QE_AUTH_DATA + self.layout.auth_len + 6;
        &self.sig_data()[start..start + self.layout.pck_len]
    }
}

/// The checks of [`Quote::new_checked`]; the layout of an acceptable quote.
fn check(buf: &[u8]) -> Result<Layout, QuoteError> {
    need(buf, HEADER_LEN, "header")?;
    let version = u16_at(buf, header::VERSION.start);
    let att_key_type = u16_at(buf, header::ATT_KEY_TYPE.start);
    let tee_type = u32_at(buf, header::TEE_TYPE.start);
    if !(version == 4 || version == 5) {
        return Err(QuoteError::UnsupportedVersion(version));
    }
    if att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
        return Err(QuoteError::AttKeyType(att_key_type));
    }
    if tee_type != TEE_TYPE_TDX {
        return Err(QuoteError::TeeType(tee_type));
    }
    let (kind, body_off) = if version == 4 {
        (BodyKind::Tdx10, header::V4_BODY)
    } else {
        need(buf, header::V5_BODY, "v5 body descriptor")?;
        let body_type = u16_at(buf, header::V5_BODY_TYPE.start);
        let size = u32_at(buf, header::V5_BODY_SIZE.start);
        let kind = match body_type {
            2 => BodyKind::Tdx10,
            3 => BodyKind::Tdx15,
            other => return Err(QuoteError::BodyType(other)),
        };
        let expected = match kind {
            BodyKind::Tdx10 => BODY_LEN_TDX10,
            BodyKind::Tdx15 => BODY_LEN_TDX15,
        };
        if size as usize != expected {
            return Err(QuoteError::BodySize { body_type, size });
        }
        (kind, header::V5_BODY)
    };
    let body_len = match kind {
        BodyKind::Tdx10 => BODY_LEN_TDX10,
        BodyKind::Tdx15 => BODY_LEN_TDX15,
    };
    let sig_len_off = body_off + body_len;
    need(
        buf,
        sig_len_off + 4,
        "report body and signature data length",
    )?;
    let sig_len = u32_at(buf, sig_len_off) as usize;
    let sig_off = sig_len_off + 4;
    need(buf, sig_off.saturating_add(sig_len), "signature data")?;
    let sig_data = &buf[sig_off..sig_off + sig_len];

    if sig_len < sig::CERT_DATA_SIZE.end {
        return Err(QuoteError::Truncated {
            field: "QE certification data header",
            need: sig_off + sig::CERT_DATA_SIZE.end,
            got: sig_off + sig_len,
        });
    }
    let outer_type = u16_at(sig_data, sig::CERT_DATA_TYPE.start);
    if outer_type != CERT_DATA_QE_REPORT {
        return Err(QuoteError::CertDataType {
            expected: CERT_DATA_QE_REPORT,
            found: outer_type,
        });
    }
    let outer_size = u32_at(sig_data, sig::CERT_DATA_SIZE.start) as usize;
    if outer_size != sig_len - sig::CERT_DATA_SIZE.end {
        return Err(QuoteError::LengthMismatch {
            field: "signature data length",
            declared: sig_len,
            actual: sig::CERT_DATA_SIZE.end.saturating_add(outer_size),
        });
    }
    let auth_len = get_u16(sig_data, sig::QE_AUTH_DATA_SIZE.start).ok_or(QuoteError::Truncated {
        field: "QE authentication data size",
        need: sig_off + sig::QE_AUTH_DATA_SIZE.end,
        got: sig_off + sig_len,
    })? as usize;
    let pck_hdr = sig::QE_AUTH_DATA + auth_len;
    let inner_type = get_u16(sig_data, pck_hdr).ok_or(QuoteError::Truncated {
        field: "QE authentication data and PCK certification data header",
        need: sig_off + pck_hdr + 6,
        got: sig_off + sig_len,
    })?;
    let pck_len = get_u32(sig_data, pck_hdr + 2).ok_or(QuoteError::Truncated {
        field: "PCK certification data size",
        need: sig_off + pck_hdr + 6,
        got: sig_off + sig_len,
    })? as usize;
    if inner_type != CERT_DATA_PCK_CHAIN {
        return Err(QuoteError::CertDataType {
            expected: CERT_DATA_PCK_CHAIN,
            found: inner_type,
        });
    }
    let inner_end = (pck_hdr + 6).saturating_add(pck_len);
    if inner_end != sig_len {
        return Err(QuoteError::LengthMismatch {
            field: "QE certification data size",
            declared: outer_size,
            actual: inner_end - sig::CERT_DATA_SIZE.end,
        });
    }
    Ok(Layout {
        kind,
        body_off,
        sig_off,
        sig_len,
        auth_len,
        pck_len,
    })
}

/// A TD report body inside a quote (584 or 648 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TdQuoteBody<'a> {
    buf: &'a [u8],
}

impl<'a> TdQuoteBody<'a> {
    /// The raw body.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// TEE_TCB_SVN.
    pub fn tee_tcb_svn(&self) -> &'a [u8; 16] {
        array(self.buf, body::TEE_TCB_SVN.start)
    }

    /// MRSEAM.
    pub fn mr_seam(&self) -> &'a [u8; 48] {
        array(self.buf, body::MRSEAM.start)
    }

    /// MRSIGNERSEAM.
    pub fn mr_signer_seam(&self) -> &'a [u8; 48] {
        array(self.buf, body::MRSIGNERSEAM.start)
    }

    /// SEAMATTRIBUTES.
    pub fn seam_attributes(&self) -> &'a [u8; 8] {
        array(self.buf, body::SEAMATTRIBUTES.start)
    }

    /// TDATTRIBUTES.
    pub fn td_attributes(&self) -> &'a [u8; 8] {
        array(self.buf, body::TDATTRIBUTES.start)
    }

    /// XFAM.
    pub fn xfam(&self) -> &'a [u8; 8] {
        array(self.buf, body::XFAM.start)
    }

    /// MRTD.
    pub fn mr_td(&self) -> &'a [u8; 48] {
        array(self.buf, body::MRTD.start)
    }

    /// MRCONFIGID.
    pub fn mr_config_id(&self) -> &'a [u8; 48] {
        array(self.buf, body::MRCONFIGID.start)
    }

    /// MROWNER.
    pub fn mr_owner(&self) -> &'a [u8; 48] {
        array(self.buf, body::MROWNER.start)
    }

    /// MROWNERCONFIG.
    pub fn mr_owner_config(&self) -> &'a [u8; 48] {
        array(self.buf, body::MROWNERCONFIG.start)
    }

    /// RTMR `index` (0..=3).
    pub fn rtmr(&self, index: usize) -> Option<&'a [u8; 48]> {
        (index < 4).then(|| array(self.buf, body::RTMR0.start + 48 * index))
    }

    /// REPORTDATA.
    pub fn report_data(&self) -> &'a [u8; 64] {
        array(self.buf, body::REPORTDATA.start)
    }

    /// TEE_TCB_SVN2 (TDX 1.5 body only).
    pub fn tee_tcb_svn2(&self) -> Option<&'a [u8; 16]> {
        (self.buf.len() == BODY_LEN_TDX15).then(|| array(self.buf, body::TEE_TCB_SVN2.start))
    }

    /// MRSERVICETD (TDX 1.5 body only).
    pub fn mr_servicetd(&self) -> Option<&'a [u8; 48]> {
        (self.buf.len() == BODY_LEN_TDX15).then(|| array(self.buf, body::MRSERVICETD.start))
    }
}
