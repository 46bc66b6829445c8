//! What the SNP and TDX verifiers need of X.509: ECDSA certificate signatures (P-384/SHA-384
//! and P-256/SHA-256) checked over the DER walker of `firmware-glue`, PEM chains, hex.
//! Errors are strings for the KBS log.

use firmware_glue::der::{self, Certificate, Reader, oid, tag};
use p256::ecdsa::signature::Verifier as _;

/// `ecdsa-with-SHA256` content octets (1.2.840.10045.4.3.2).
const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// `ecdsa-with-SHA384` content octets (1.2.840.10045.4.3.3).
const ECDSA_WITH_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];

/// Parses a certificate, naming it in the error.
pub(crate) fn parse<'a>(der: &'a [u8], what: &str) -> Result<Certificate<'a>, String> {
    der::parse_certificate(der).map_err(|e| format!("{what} certificate is malformed: {e}"))
}

/// `Ecdsa-Sig-Value` (DER) → fixed-size `r ‖ s` with `n`-byte scalars.
fn ecdsa_fixed(sig_der: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut outer = Reader::new(sig_der);
    let seq = outer.expect(tag::SEQUENCE).ok()?;
    outer.finish().ok()?;
    let mut r = seq.reader();
    let mut out = Vec::with_capacity(2 * n);
    for _ in 0..2 {
        let int = r.expect(tag::INTEGER).ok()?.value;
        let int = match int {
            [0, rest @ ..] if !rest.is_empty() => rest,
            _ => int,
        };
        if int.len() > n {
            return None;
        }
        out.extend(std::iter::repeat_n(0, n - int.len()));
        out.extend_from_slice(int);
    }
    r.finish().ok()?;
    Some(out)
}

/// Checks that `cert` was signed by `issuer`'s key: `ecdsa-with-SHA384` by a P-384 key or
/// `ecdsa-with-SHA256` by a P-256 key (the only combinations AMD's VCEK and Intel's PCK
/// chains, and the simulators, use).
pub(crate) fn check_signed_by(
    cert: &Certificate<'_>,
    issuer: &Certificate<'_>,
    what: &str,
) -> Result<(), String> {
    let mut alg = cert.signature_algorithm.reader();
    let alg_oid = alg
        .expect(tag::OID)
        .map_err(|e| format!("{what}: signature algorithm: {e}"))?
        .value;
    let bad_sig = || format!("{what}: the signature value is not a well-formed ECDSA signature");
    let ok = if alg_oid == ECDSA_WITH_SHA384 {
        let point = issuer
            .ec_public_key(oid::SECP384R1)
            .map_err(|e| format!("{what}: issuer key: {e}"))?;
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map_err(|_| format!("{what}: issuer key is not a valid P-384 point"))?;
        let fixed = ecdsa_fixed(cert.signature, 48).ok_or_else(bad_sig)?;
        let sig = p384::ecdsa::Signature::from_slice(&fixed).map_err(|_| bad_sig())?;
        key.verify(cert.tbs.raw, &sig).is_ok()
    } else if alg_oid == ECDSA_WITH_SHA256 {
        let point = issuer
            .ec_public_key(oid::PRIME256V1)
            .map_err(|e| format!("{what}: issuer key: {e}"))?;
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .map_err(|_| format!("{what}: issuer key is not a valid P-256 point"))?;
        let fixed = ecdsa_fixed(cert.signature, 32).ok_or_else(bad_sig)?;
        let sig = p256::ecdsa::Signature::from_slice(&fixed).map_err(|_| bad_sig())?;
        key.verify(cert.tbs.raw, &sig).is_ok()
    } else {
        return Err(format!(
            "{what}: unsupported signature algorithm (OID content {}); the test KBS checks ecdsa-with-SHA384/SHA256 only (AMD's real ARK/ASK use RSA-PSS)",
            hex(alg_oid)
        ));
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: signature does not verify"))
    }
}

/// The DER certificates of a PEM chain (trailing NUL bytes and text around blocks ignored).
pub(crate) fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let end = pem.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&pem[..end])
        .map_err(|_| "PCK cert chain is not UTF-8 PEM".to_owned())?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let stop = after
            .find(END)
            .ok_or_else(|| "PCK cert chain: unterminated PEM block".to_owned())?;
        let b64: String = after[..stop].split_whitespace().collect();
        out.push(
            sealgate_core::b64::std_decode(&b64)
                .map_err(|_| "PCK cert chain: PEM block is not base64".to_owned())?,
        );
        rest = &after[stop + END.len()..];
    }
    Ok(out)
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex (either case) to exactly `N` bytes.
pub(crate) fn unhex<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let text = text.trim();
    if text.len() != 2 * N || !text.is_ascii() {
        return Err(format!("{text:?} is not {N} bytes of hex"));
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| format!("{text:?} is not hex"))?;
    }
    Ok(out)
}

/// Trustee's `regularize_data`: zero-pad or truncate to `len`.
pub(crate) fn regularize(data: &[u8], len: usize) -> Vec<u8> {
    let mut out = data[..data.len().min(len)].to_vec();
    out.resize(len, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(unhex::<2>("0aFf"), Ok([0x0a, 0xff]));
        assert!(unhex::<2>("0a").is_err());
        assert!(unhex::<1>("zz").is_err());
        assert_eq!(regularize(&[1, 2, 3], 2), [1, 2]);
        assert_eq!(regularize(&[1], 3), [1, 0, 0]);
        assert_eq!(
            ecdsa_fixed(&[0x30, 6, 2, 1, 1, 2, 1, 2], 2),
            Some(vec![0, 1, 0, 2])
        );
        assert_eq!(ecdsa_fixed(&[0x30, 6, 2, 1, 1, 2, 1, 2, 0], 2), None);
        assert_eq!(pem_certificates(b"\0\0"), Ok(vec![]));
        assert!(pem_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA").is_err());
        assert_eq!(
            pem_certificates(b"x-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n\0"),
            Ok(vec![vec![0, 1, 2]])
        );
    }
}
