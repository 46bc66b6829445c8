//! Known-answer tests of the provider (RFC 5869, the OpenSSL-generated TLS 1.3 key schedule
//! vectors of rustls's own tests, NIST CAVS AES-GCM, RFC 6979 ECDSA) and differential tests
//! against rustls's ring provider (an independent implementation): HMAC, the TLS 1.2 PRF,
//! records of both versions in both directions, ECDHE, and ring-made signatures of every
//! scheme.

use alloc::vec;
use alloc::vec::Vec;
use std::io::Read;

use pki_types::SignatureVerificationAlgorithm;
use rustls::crypto::cipher::{
    InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundPlainMessage,
};
use rustls::crypto::ring as ring_provider;
use rustls::crypto::tls13::{Hkdf, HkdfExpander, OkmBlock};
use rustls::crypto::{SupportedKxGroup, hash::Hash};
use rustls::{ContentType, ProtocolVersion, SignatureScheme, SupportedCipherSuite};

use super::*;

fn rng(buf: &mut [u8]) -> Result<(), ()> {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|_| ())
}

fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn expand(exp: &dyn HkdfExpander, info: &[&[u8]], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    exp.expand_slice(info, &mut out).unwrap();
    out
}

#[test]
fn hkdf_sha256_rfc5869_appendix_a() {
    let ikm = [0x0bu8; 22];
    let salt: Vec<u8> = (0u8..=0x0c).collect();
    let okm = expand(
        HKDF_SHA256.extract_from_secret(Some(&salt), &ikm).as_ref(),
        &[
            &[0xf0, 0xf1, 0xf2],
            &[0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9],
        ],
        42,
    );
    assert_eq!(
        okm,
        hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    );

    let ikm: Vec<u8> = (0u8..=0x4f).collect();
    let salt: Vec<u8> = (0x60u8..=0xaf).collect();
    let info: Vec<u8> = (0xb0u8..=0xff).collect();
    let okm = expand(
        HKDF_SHA256.extract_from_secret(Some(&salt), &ikm).as_ref(),
        &[&info],
        82,
    );
    assert_eq!(
        okm,
        hex(
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"
        )
    );

    let okm = expand(
        HKDF_SHA256
            .extract_from_secret(Some(&[]), &[0x0b; 22])
            .as_ref(),
        &[],
        42,
    );
    assert_eq!(
        okm,
        hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    );
}

/// HKDF-Expand-Label (RFC 8446 section 7.1).
fn expand_label(
    hkdf: &dyn Hkdf,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Vec<u8> {
    let exp = hkdf.expander_for_okm(&OkmBlock::new(secret));
    let full = [b"tls13 ", label.as_bytes()].concat();
    expand(
        exp.as_ref(),
        &[
            &(len as u16).to_be_bytes(),
            &[full.len() as u8],
            &full,
            &[context.len() as u8],
            context,
        ],
        len,
    )
}

#[test]
fn tls13_key_schedule_openssl_vectors() {
    // The vectors of rustls's key-schedule test (generated with OpenSSL): traffic secrets,
    // keys and IVs of a TLS 1.3 handshake with the SHA-256 schedule.
    let hkdf: &dyn Hkdf = &HKDF_SHA256;
    let empty_hash = hash::Sha256.hash(&[]);
    let hs_start = hex("ec147a06dea3c8846c02b2238e41bddc9d89f9aea17b5efd4d7482af75881c0a");
    let hs_full = hex("751a3d4a14dfabeb68e92ca5918e2408b9bcb0748982ec9c3230ac30bbeb23e2");
    let ecdhe = hex("e7b8fef8903b520cb9a18971b69dd45dca53ce2f12bf3bef9315e31271df4b40");

    // HKDF-Extract is HMAC(salt, IKM) (RFC 5869 section 2.2).
    let extract = |salt: &[u8], ikm: &[u8]| -> Vec<u8> {
        use rustls::crypto::hmac::Hmac;
        HMAC_SHA256.with_key(salt).sign(&[ikm]).as_ref().to_vec()
    };
    let early = extract(&[0u8; 32], &[0u8; 32]);
    let derived = expand_label(hkdf, &early, "derived", empty_hash.as_ref(), 32);
    let handshake = extract(&derived, &ecdhe);
    let derived = expand_label(hkdf, &handshake, "derived", empty_hash.as_ref(), 32);
    let master = extract(&derived, &[0u8; 32]);

    let cases = [
        (
            &handshake,
            "c hs traffic",
            &hs_start,
            "617b35076b9d0e08cf731d94a8661478 4109ef255551921dd46e040135cf46ab",
            "62d0dd00f69619d3b8193ab4a09585a7",
            "fff75df5ad35d5cb3c53f3a9",
        ),
        (
            &handshake,
            "s hs traffic",
            &hs_start,
            "fcf7dfe64fa2c04f6235387f434e0142 2336d9c039de6847a0b9ddcf29a88759",
            "0467f316a805b8c497ee67047bbcbc54",
            "de83a73e9d814b04c48b7809",
        ),
        (
            &master,
            "c ap traffic",
            &hs_full,
            "c14a6d7976d8102b5a0c9951493fee87 dcaff82c24cab214e8be71a8206dbda5",
            "cc9f5f980b5f10306cbad7be98d7572e",
            "b80929e8d02c70f61162ed6b",
        ),
        (
            &master,
            "s ap traffic",
            &hs_full,
            "2c907738d3f83702d1e4598f4848531d 9f9365491b9f7f52c822290d4c232192",
            "0cb29562d8d88f48b02cbfbed7e62bb3",
            "0db28f988586a1b7e4d5c69c",
        ),
    ];
    for (secret, label, hash, traffic, key, iv) in cases {
        let t = expand_label(hkdf, secret, label, hash, 32);
        assert_eq!(t, hex(traffic), "{label}");
        assert_eq!(expand_label(hkdf, &t, "key", &[], 16), hex(key), "{label}");
        assert_eq!(expand_label(hkdf, &t, "iv", &[], 12), hex(iv), "{label}");
    }
}

fn ring_suite(s: &SupportedCipherSuite) -> SupportedCipherSuite {
    *ring_provider::ALL_CIPHER_SUITES
        .iter()
        .find(|r| r.suite() == s.suite())
        .unwrap()
}

#[test]
fn hmac_hkdf_and_prf_match_ring() {
    let secret: Vec<u8> = (0u8..77).collect();
    let seed: Vec<u8> = (100u8..164).collect();
    for ours in cipher_suites() {
        let theirs = ring_suite(&ours);
        match (ours, theirs) {
            (SupportedCipherSuite::Tls12(a), SupportedCipherSuite::Tls12(b)) => {
                let mut x = [0u8; 200];
                let mut y = [0u8; 200];
                a.prf_provider
                    .for_secret(&mut x, &secret, b"key expansion", &seed);
                b.prf_provider
                    .for_secret(&mut y, &secret, b"key expansion", &seed);
                assert_eq!(x, y, "{:?}", a.common.suite);
            }
            (SupportedCipherSuite::Tls13(a), SupportedCipherSuite::Tls13(b)) => {
                let x = a
                    .hkdf_provider
                    .extract_from_secret(Some(&seed), &secret)
                    .expand_block(&[b"info"]);
                let y = b
                    .hkdf_provider
                    .extract_from_secret(Some(&seed), &secret)
                    .expand_block(&[b"info"]);
                assert_eq!(x.as_ref(), y.as_ref());
                let x = a
                    .hkdf_provider
                    .extract_from_zero_ikm(None)
                    .expand_block(&[b"a", b"b"]);
                let y = b
                    .hkdf_provider
                    .extract_from_zero_ikm(None)
                    .expand_block(&[b"a", b"b"]);
                assert_eq!(x.as_ref(), y.as_ref());
                let okm = x;
                assert_eq!(
                    a.hkdf_provider.hmac_sign(&okm, &seed).as_ref(),
                    b.hkdf_provider.hmac_sign(&okm, &seed).as_ref()
                );
                let h = a.common.hash_provider;
                let mut ctx = h.start();
                ctx.update(&secret);
                let fork = ctx.fork_finish();
                ctx.update(&seed);
                assert_eq!(fork.as_ref(), h.hash(&secret).as_ref());
                assert_eq!(
                    ctx.finish().as_ref(),
                    b.common
                        .hash_provider
                        .hash(&[secret.as_slice(), &seed].concat())
                        .as_ref()
                );
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn aes_gcm_nist_cavs_vectors() {
    // gcmEncryptExtIV128.rsp / gcmEncryptExtIV256.rsp (via the aes-gcm crate's tests).
    let cases = [
        (
            AesGcm::Aes128,
            "c939cc13397c1d37de6ae0e1cb7c423c",
            "b3d8cc017cbb89b39e0f67e2",
            "c3b3c41f113a31b73d9a5cd432103069",
            "24825602bd12a984e0092d3e448eda5f",
            "93fe7d9e9bfd10348a5606e5cafa7354",
            "0032a1dc85f1c9786925a2e71d8272dd",
        ),
        (
            AesGcm::Aes256,
            "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
            "ac93a1a6145299bde902f21a",
            "2d71bcfa914e4ac045b2aa60955fad24",
            "1e0889016f67601c8ebea4943bc23ad6",
            "8995ae2e6df3dbf96fac7b7137bae67f",
            "eca5aa77d51d4a0a14d9c51e1da474ab",
        ),
    ];
    for (alg, key, nonce, pt, aad, ct, tag) in cases {
        let (ct, tag) = (hex(ct), hex(tag));
        let sealed = aead::kat_seal(alg, &hex(key), &hex(nonce), &hex(aad), &hex(pt));
        assert_eq!(sealed, [ct.as_slice(), &tag].concat());
        assert_eq!(
            aead::kat_open(alg, &hex(key), &hex(nonce), &hex(aad), &sealed),
            Some(hex(pt))
        );
        let mut bad = sealed.clone();
        bad[3] ^= 1;
        assert_eq!(
            aead::kat_open(alg, &hex(key), &hex(nonce), &hex(aad), &bad),
            None
        );
    }
}

fn encrypt(enc: &mut dyn MessageEncrypter, typ: ContentType, data: &[u8], seq: u64) -> Vec<u8> {
    let msg = OutboundPlainMessage {
        typ,
        version: ProtocolVersion::TLSv1_2,
        payload: data.into(),
    };
    enc.encrypt(msg, seq).unwrap().encode()
}

fn decrypt(
    dec: &mut dyn MessageDecrypter,
    record: &[u8],
    seq: u64,
) -> Result<(ContentType, Vec<u8>), rustls::Error> {
    let mut payload = record[5..].to_vec();
    let msg = InboundOpaqueMessage::new(
        ContentType::from(record[0]),
        ProtocolVersion::TLSv1_2,
        &mut payload,
    );
    dec.decrypt(msg, seq).map(|m| (m.typ, m.payload.to_vec()))
}

#[test]
fn records_interoperate_with_ring_both_versions_both_ways() {
    use rustls::crypto::cipher::{AeadKey, Iv};
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    // AES-256 suites only: rustls's public API makes 32-byte keys only (AES-128 records are
    // covered by the NIST vectors here and by every suite's handshake in tests/interop.rs).
    let aes256 = cipher_suites().into_iter().filter(|s| match s {
        SupportedCipherSuite::Tls13(s) => s.aead_alg.key_len() == 32,
        SupportedCipherSuite::Tls12(s) => s.aead_alg.key_block_shape().enc_key_len == 32,
    });
    for ours in aes256 {
        let theirs = ring_suite(&ours);
        let mut key = [0u8; 32];
        rng(&mut key).unwrap();
        let mut iv = [0u8; 12];
        rng(&mut iv).unwrap();
        let k = |len: usize| {
            assert_eq!(len, 32);
            AeadKey::from(key)
        };
        type Pair = (Box<dyn MessageEncrypter>, Box<dyn MessageDecrypter>);
        let ((mut enc_a, mut dec_a), (mut enc_b, mut dec_b)): (Pair, Pair) = match (ours, theirs) {
            (SupportedCipherSuite::Tls13(a), SupportedCipherSuite::Tls13(b)) => {
                let len = a.aead_alg.key_len();
                (
                    (
                        a.aead_alg.encrypter(k(len), Iv::new(iv)),
                        a.aead_alg.decrypter(k(len), Iv::new(iv)),
                    ),
                    (
                        b.aead_alg.encrypter(k(len), Iv::new(iv)),
                        b.aead_alg.decrypter(k(len), Iv::new(iv)),
                    ),
                )
            }
            (SupportedCipherSuite::Tls12(a), SupportedCipherSuite::Tls12(b)) => {
                let len = a.aead_alg.key_block_shape().enc_key_len;
                (
                    (
                        a.aead_alg.encrypter(k(len), &iv[..4], &iv[4..]),
                        a.aead_alg.decrypter(k(len), &iv[..4]),
                    ),
                    (
                        b.aead_alg.encrypter(k(len), &iv[..4], &iv[4..]),
                        b.aead_alg.decrypter(k(len), &iv[..4]),
                    ),
                )
            }
            _ => unreachable!(),
        };
        for (seq, typ, len) in [
            (0u64, ContentType::Handshake, 0usize),
            (1, ContentType::ApplicationData, 1),
            (77, ContentType::ApplicationData, 3000),
        ] {
            let ours_rec = encrypt(enc_a.as_mut(), typ, &data[..len], seq);
            let theirs_rec = encrypt(enc_b.as_mut(), typ, &data[..len], seq);
            // The same key, nonce and plaintext: byte-identical records.
            assert_eq!(ours_rec, theirs_rec, "{:?}", ours.suite());
            assert_eq!(
                decrypt(dec_b.as_mut(), &ours_rec, seq).unwrap(),
                (typ, data[..len].to_vec())
            );
            assert_eq!(
                decrypt(dec_a.as_mut(), &theirs_rec, seq).unwrap(),
                (typ, data[..len].to_vec())
            );
            // Wrong sequence number, flipped bit, truncation: all rejected.
            assert!(matches!(
                decrypt(dec_a.as_mut(), &theirs_rec, seq + 1),
                Err(rustls::Error::DecryptError)
            ));
            let mut bad = theirs_rec.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x80;
            assert!(matches!(
                decrypt(dec_a.as_mut(), &bad, seq),
                Err(rustls::Error::DecryptError)
            ));
            assert!(decrypt(dec_a.as_mut(), &theirs_rec[..20.min(theirs_rec.len())], seq).is_err());
            assert!(decrypt(dec_a.as_mut(), &theirs_rec[..5], seq).is_err());
        }
    }
}

#[test]
fn ecdhe_agrees_with_ring_and_rejects_bad_shares() {
    let s = statics(rng).unwrap();
    for (ours, theirs) in [
        (
            &s.p256 as &dyn SupportedKxGroup,
            ring_provider::kx_group::SECP256R1,
        ),
        (&s.p384, ring_provider::kx_group::SECP384R1),
    ] {
        assert_eq!(ours.name(), theirs.name());
        let a = ours.start().unwrap();
        let b = theirs.start().unwrap();
        assert_eq!(a.pub_key().len(), b.pub_key().len());
        assert_eq!(a.pub_key()[0], 4);
        let b_pub = b.pub_key().to_vec();
        let a_pub = a.pub_key().to_vec();
        let x = a.complete(&b_pub).unwrap();
        let y = b.complete(&a_pub).unwrap();
        assert_eq!(x.secret_bytes(), y.secret_bytes());
        // Compressed, truncated, off-curve, identity-like.
        let mut compressed = b_pub[..1 + (b_pub.len() - 1) / 2].to_vec();
        compressed[0] = 2;
        let mut off_curve = b_pub.clone();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        let zeros = {
            let mut z = vec![0u8; b_pub.len()];
            z[0] = 4;
            z
        };
        for bad in [
            compressed,
            b_pub[..b_pub.len() - 1].to_vec(),
            off_curve,
            zeros,
            Vec::new(),
        ] {
            assert!(ours.start().unwrap().complete(&bad).is_err());
        }
    }
}

fn der_sig(r: &[u8], s: &[u8]) -> Vec<u8> {
    fn int(x: &[u8]) -> Vec<u8> {
        let mut v = x.to_vec();
        while v.len() > 1 && v[0] == 0 && v[1] & 0x80 == 0 {
            v.remove(0);
        }
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        [vec![2, v.len() as u8], v].concat()
    }
    let body = [int(r), int(s)].concat();
    if body.len() < 0x80 {
        [vec![0x30, body.len() as u8], body].concat()
    } else {
        [vec![0x30, 0x81, body.len() as u8], body].concat()
    }
}

#[test]
fn ecdsa_rfc6979_vectors() {
    use p256::elliptic_curve::sec1::ToSec1Point;
    // RFC 6979 A.2.5 (P-256, SHA-256) and A.2.6 (P-384, SHA-384), message "sample".
    let d = hex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721");
    let q = p256::SecretKey::from_slice(&d)
        .unwrap()
        .public_key()
        .to_sec1_point(false);
    let sig = der_sig(
        &hex("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"),
        &hex("f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"),
    );
    assert!(
        sig::ECDSA_P256_SHA256
            .verify_signature(q.as_bytes(), b"sample", &sig)
            .is_ok()
    );
    assert!(
        sig::ECDSA_P256_SHA256
            .verify_signature(q.as_bytes(), b"sampl3", &sig)
            .is_err()
    );
    assert!(
        sig::ECDSA_P256_SHA384
            .verify_signature(q.as_bytes(), b"sample", &sig)
            .is_err()
    );

    let d = hex(
        "6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5",
    );
    let q = p384::SecretKey::from_slice(&d)
        .unwrap()
        .public_key()
        .to_sec1_point(false);
    let sig = der_sig(
        &hex(
            "94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c81a648152e44acf96e36dd1e80fabe46",
        ),
        &hex(
            "99ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94fa329c145786e679e7b82c71a38628ac8",
        ),
    );
    assert!(
        sig::ECDSA_P384_SHA384
            .verify_signature(q.as_bytes(), b"sample", &sig)
            .is_ok()
    );
    assert!(
        sig::ECDSA_P384_SHA384
            .verify_signature(q.as_bytes(), b"test", &sig)
            .is_err()
    );
    // A P-384 signature is no P-256 one.
    assert!(
        sig::ECDSA_P256_SHA384
            .verify_signature(q.as_bytes(), b"sample", &sig)
            .is_err()
    );
    // Not DER.
    assert!(
        sig::ECDSA_P384_SHA384
            .verify_signature(q.as_bytes(), b"sample", &sig[2..])
            .is_err()
    );
}

#[cfg(feature = "p521")]
#[test]
fn ecdsa_p521_rfc6979_vector() {
    use p521::elliptic_curve::sec1::ToSec1Point;
    // RFC 6979 A.2.7 (P-521, SHA-512), message "sample" (ring has no P-521 to compare with).
    let d = hex(
        "00FAD06DAA62BA3B25D2FB40133DA757205DE67F5BB0018FEE8C86E1B68C7E75CAA896EB32F1F47C70855836A6D16FCC1466F6D8FBEC67DB89EC0C08B0E996B83538",
    );
    let q = p521::SecretKey::from_slice(&d)
        .unwrap()
        .public_key()
        .to_sec1_point(false);
    let r = hex(
        "00C328FAFCBD79DD77850370C46325D987CB525569FB63C5D3BC53950E6D4C5F174E25A1EE9017B5D450606ADD152B534931D7D4E8455CC91F9B15BF05EC36E377FA",
    );
    let s = hex(
        "00617CCE7CF5064806C467F678D3B4080D6F1CC50AF26CA209417308281B68AF282623EAA63E5B5C0723D8B8C37FF0777B1A20F8CCB1DCCC43997F1EE0E44DA4A67A",
    );
    let sig = der_sig(&r, &s);
    let alg = &sig::ECDSA_P521_SHA512;
    assert!(alg.verify_signature(q.as_bytes(), b"sample", &sig).is_ok());
    assert!(
        alg.verify_signature(q.as_bytes(), b"sample!", &sig)
            .is_err()
    );
    assert!(
        sig::ECDSA_P384_SHA384
            .verify_signature(q.as_bytes(), b"sample", &sig)
            .is_err()
    );
}

/// The subjectPublicKey of a DER SubjectPublicKeyInfo.
fn spk(spki: &[u8]) -> Vec<u8> {
    let (_, body, _) = crate::date::tlv(spki).unwrap();
    let (_, _, rest) = crate::date::tlv(body).unwrap();
    let (tag, bits, _) = crate::date::tlv(rest).unwrap();
    assert_eq!(tag, 3);
    bits[1..].to_vec()
}

fn verifier_for(scheme: SignatureScheme) -> &'static dyn SignatureVerificationAlgorithm {
    sig::MAPPING.iter().find(|(s, _)| *s == scheme).unwrap().1[0]
}

#[test]
fn signatures_made_by_ring_verify() {
    let msg = b"the handshake transcript, more or less";
    #[cfg_attr(not(feature = "rsa"), allow(unused_mut))]
    let mut keys = vec![
        (
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .unwrap()
                .serialize_der(),
            vec![SignatureScheme::ECDSA_NISTP256_SHA256],
        ),
        (
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
                .unwrap()
                .serialize_der(),
            vec![SignatureScheme::ECDSA_NISTP384_SHA384],
        ),
    ];
    #[cfg(feature = "rsa")]
    {
        use rsa::pkcs8::EncodePrivateKey;
        let k = rsa::RsaPrivateKey::new(&mut TestRng, 2048).unwrap();
        keys.push((
            k.to_pkcs8_der().unwrap().as_bytes().to_vec(),
            vec![
                SignatureScheme::RSA_PKCS1_SHA256,
                SignatureScheme::RSA_PKCS1_SHA384,
                SignatureScheme::RSA_PKCS1_SHA512,
                SignatureScheme::RSA_PSS_SHA256,
                SignatureScheme::RSA_PSS_SHA384,
                SignatureScheme::RSA_PSS_SHA512,
            ],
        ));
    }
    for (pkcs8, schemes) in keys {
        let key =
            ring_provider::sign::any_supported_type(&pki_types::PrivateKeyDer::Pkcs8(pkcs8.into()))
                .unwrap();
        let public = spk(key.public_key().unwrap().as_ref());
        for scheme in schemes {
            let signer = key.choose_scheme(&[scheme]).unwrap();
            let sig = signer.sign(msg).unwrap();
            let alg = verifier_for(scheme);
            assert!(
                alg.verify_signature(&public, msg, &sig).is_ok(),
                "{scheme:?}"
            );
            assert!(
                alg.verify_signature(&public, b"another message", &sig)
                    .is_err(),
                "{scheme:?}"
            );
            let mut bad = sig.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 1;
            assert!(
                alg.verify_signature(&public, msg, &bad).is_err(),
                "{scheme:?}"
            );
            // Every other algorithm rejects it.
            for (other, algs) in sig::MAPPING {
                if *other != scheme {
                    assert!(
                        algs[0].verify_signature(&public, msg, &sig).is_err(),
                        "{scheme:?} as {other:?}"
                    );
                }
            }
        }
    }
}

#[cfg(feature = "rsa")]
struct TestRng;

#[cfg(feature = "rsa")]
impl rand_core::TryRng for TestRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        rng(&mut b).unwrap();
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        rng(&mut b).unwrap();
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        rng(dst).unwrap();
        Ok(())
    }
}

#[cfg(feature = "rsa")]
impl rand_core::TryCryptoRng for TestRng {}

#[cfg(feature = "rsa")]
#[test]
fn rsa_keys_outside_2048_to_8192_bits_are_refused() {
    use rsa::pkcs1::EncodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let small = rsa::RsaPrivateKey::new(&mut TestRng, 1024).unwrap();
    let der = small.to_public_key().to_pkcs1_der().unwrap();
    assert!(sig::rsa_public_key(der.as_bytes()).is_none());
    let ok = rsa::RsaPrivateKey::new(&mut TestRng, 2048).unwrap();
    let der = ok.to_public_key().to_pkcs1_der().unwrap();
    let parsed = sig::rsa_public_key(der.as_bytes()).unwrap();
    assert_eq!(parsed.n(), ok.n());
    // Trailing bytes, a negative modulus, garbage.
    assert!(sig::rsa_public_key(&[der.as_bytes(), &[0]].concat()).is_none());
    assert!(sig::rsa_public_key(&[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x03]).is_none());
    assert!(sig::rsa_public_key(b"\x30\x00").is_none());
}

#[test]
fn provider_shape() {
    // What each distinct random function leaks (see STATICS).
    assert_eq!(core::mem::size_of::<Statics>(), 40);
    let p = provider(rng).unwrap();
    assert_eq!(p.kx_groups.len(), 2);
    assert_eq!(
        p.cipher_suites.len(),
        if cfg!(feature = "rsa") { 6 } else { 4 }
    );
    // The same random function shares its leaked objects.
    let q = provider(rng).unwrap();
    assert!(core::ptr::eq(
        p.kx_groups[0] as *const _ as *const u8,
        q.kx_groups[0] as *const _ as *const u8
    ));
    let mut buf = [0u8; 64];
    p.secure_random.fill(&mut buf).unwrap();
    assert_ne!(buf, [0u8; 64]);
    fn failing(_: &mut [u8]) -> Result<(), ()> {
        Err(())
    }
    let f = provider(failing).unwrap();
    assert!(f.secure_random.fill(&mut buf).is_err());
    assert!(f.kx_groups[0].start().is_err());
}
