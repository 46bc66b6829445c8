//! AES-GCM record protection for TLS 1.3 (RFC 8446 section 5.2) and TLS 1.2 (RFC 5288:
//! 4-byte implicit salt, 8-byte explicit nonce), on aes-gcm 0.11.

use alloc::boxed::Box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, KeyBlockShape, MessageDecrypter,
    MessageEncrypter, NONCE_LEN, Nonce, OutboundOpaqueMessage, OutboundPlainMessage,
    PrefixedPayload, Tls12AeadAlgorithm, Tls13AeadAlgorithm, UnsupportedOperationError,
    make_tls12_aad, make_tls13_aad,
};
use rustls::{ConnectionTrafficSecrets, ContentType, Error, ProtocolVersion};

const TAG_LEN: usize = 16;
/// TLS 1.2 GCM: the part of the nonce sent with each record.
const EXPLICIT_NONCE_LEN: usize = 8;
/// TLS 1.2 GCM: the part of the nonce from the key block.
const FIXED_IV_LEN: usize = 4;

/// AES-GCM with a 128- or 256-bit key.
#[derive(Clone, Copy, Debug)]
pub enum AesGcm {
    /// AES-128-GCM.
    Aes128,
    /// AES-256-GCM.
    Aes256,
}

/// A keyed cipher.
enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
}

impl Cipher {
    fn new(alg: AesGcm, key: &[u8]) -> Cipher {
        // rustls hands a key of exactly `key_len()` / `enc_key_len` bytes.
        match alg {
            AesGcm::Aes128 => Cipher::Aes128(Box::new(
                Aes128Gcm::new_from_slice(key).expect("rustls passes a 16-byte key"),
            )),
            AesGcm::Aes256 => Cipher::Aes256(Box::new(
                Aes256Gcm::new_from_slice(key).expect("rustls passes a 32-byte key"),
            )),
        }
    }

    /// Encrypts `buf` in place, returns the tag.
    fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], Error> {
        let tag = match self {
            Cipher::Aes128(c) => c.encrypt_inout_detached(&(*nonce).into(), aad, buf.into()),
            Cipher::Aes256(c) => c.encrypt_inout_detached(&(*nonce).into(), aad, buf.into()),
        }
        .map_err(|_| Error::EncryptError)?;
        Ok(tag.into())
    }

    /// Decrypts `buf` (ciphertext, then the tag) in place; the plaintext is the first
    /// `buf.len() - 16` bytes.
    fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> Result<(), Error> {
        let split = buf.len().checked_sub(TAG_LEN).ok_or(Error::DecryptError)?;
        let (ct, tag) = buf.split_at_mut(split);
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| Error::DecryptError)?;
        match self {
            Cipher::Aes128(c) => {
                c.decrypt_inout_detached(&(*nonce).into(), aad, ct.into(), &tag.into())
            }
            Cipher::Aes256(c) => {
                c.decrypt_inout_detached(&(*nonce).into(), aad, ct.into(), &tag.into())
            }
        }
        .map_err(|_| Error::DecryptError)
    }
}

impl AesGcm {
    fn key_len(self) -> usize {
        match self {
            AesGcm::Aes128 => 16,
            AesGcm::Aes256 => 32,
        }
    }
}

impl Tls13AeadAlgorithm for AesGcm {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(Tls13Record {
            cipher: Cipher::new(*self, key.as_ref()),
            iv,
        })
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(Tls13Record {
            cipher: Cipher::new(*self, key.as_ref()),
            iv,
        })
    }

    fn key_len(&self) -> usize {
        AesGcm::key_len(*self)
    }

    fn extract_keys(
        &self,
        key: AeadKey,
        iv: Iv,
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        Ok(match self {
            AesGcm::Aes128 => ConnectionTrafficSecrets::Aes128Gcm { key, iv },
            AesGcm::Aes256 => ConnectionTrafficSecrets::Aes256Gcm { key, iv },
        })
    }
}

struct Tls13Record {
    cipher: Cipher,
    iv: Iv,
}

impl MessageEncrypter for Tls13Record {
    fn encrypt(
        &mut self,
        msg: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, Error> {
        let total = self.encrypted_payload_len(msg.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total);
        payload.extend_from_chunks(&msg.payload);
        // TLSInnerPlaintext: the content, then its real type (no padding).
        payload.extend_from_slice(&msg.typ.to_array());
        let nonce = Nonce::new(&self.iv, seq).0;
        let tag = self
            .cipher
            .seal(&nonce, &make_tls13_aad(total), payload.as_mut())?;
        payload.extend_from_slice(&tag);
        Ok(OutboundOpaqueMessage::new(
            ContentType::ApplicationData,
            // legacy_record_version
            ProtocolVersion::TLSv1_2,
            payload,
        ))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + TAG_LEN
    }
}

impl MessageDecrypter for Tls13Record {
    fn decrypt<'a>(
        &mut self,
        mut msg: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, Error> {
        let payload = &mut msg.payload;
        let len = payload.len();
        if len < TAG_LEN {
            return Err(Error::DecryptError);
        }
        let nonce = Nonce::new(&self.iv, seq).0;
        self.cipher.open(&nonce, &make_tls13_aad(len), payload)?;
        payload.truncate(len - TAG_LEN);
        msg.into_tls13_unpadded_message()
    }
}

impl Tls12AeadAlgorithm for AesGcm {
    fn encrypter(&self, key: AeadKey, iv: &[u8], extra: &[u8]) -> Box<dyn MessageEncrypter> {
        // The nonce: the fixed IV, then the "explicit" part, which starts from the extra
        // key-block bytes and is XORed with the sequence number (as the record's
        // explicit nonce it is unique per record).
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..FIXED_IV_LEN].copy_from_slice(iv);
        nonce[FIXED_IV_LEN..].copy_from_slice(extra);
        Box::new(Tls12Record {
            cipher: Cipher::new(*self, key.as_ref()),
            iv: Iv::new(nonce),
        })
    }

    fn decrypter(&self, key: AeadKey, iv: &[u8]) -> Box<dyn MessageDecrypter> {
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..FIXED_IV_LEN].copy_from_slice(iv);
        Box::new(Tls12Record {
            cipher: Cipher::new(*self, key.as_ref()),
            iv: Iv::new(nonce),
        })
    }

    fn key_block_shape(&self) -> KeyBlockShape {
        KeyBlockShape {
            enc_key_len: self.key_len(),
            fixed_iv_len: FIXED_IV_LEN,
            explicit_nonce_len: EXPLICIT_NONCE_LEN,
        }
    }

    fn extract_keys(
        &self,
        _key: AeadKey,
        _iv: &[u8],
        _explicit: &[u8],
    ) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        // Only for kernel TLS offload, which sealgate does not use.
        Err(UnsupportedOperationError)
    }
}

struct Tls12Record {
    cipher: Cipher,
    /// Encrypting: fixed IV || initial explicit nonce. Decrypting: fixed IV || zeros.
    iv: Iv,
}

impl MessageEncrypter for Tls12Record {
    fn encrypt(
        &mut self,
        msg: OutboundPlainMessage<'_>,
        seq: u64,
    ) -> Result<OutboundOpaqueMessage, Error> {
        let plain_len = msg.payload.len();
        let total = self.encrypted_payload_len(plain_len);
        let nonce = Nonce::new(&self.iv, seq).0;
        let mut payload = PrefixedPayload::with_capacity(total);
        payload.extend_from_slice(&nonce[FIXED_IV_LEN..]);
        payload.extend_from_chunks(&msg.payload);
        let aad = make_tls12_aad(seq, msg.typ, msg.version, plain_len);
        let tag = self
            .cipher
            .seal(&nonce, &aad, &mut payload.as_mut()[EXPLICIT_NONCE_LEN..])?;
        payload.extend_from_slice(&tag);
        Ok(OutboundOpaqueMessage::new(msg.typ, msg.version, payload))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        EXPLICIT_NONCE_LEN + payload_len + TAG_LEN
    }
}

impl MessageDecrypter for Tls12Record {
    fn decrypt<'a>(
        &mut self,
        mut msg: InboundOpaqueMessage<'a>,
        seq: u64,
    ) -> Result<InboundPlainMessage<'a>, Error> {
        let payload = &mut msg.payload;
        let len = payload.len();
        if len < EXPLICIT_NONCE_LEN + TAG_LEN {
            return Err(Error::DecryptError);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce[..FIXED_IV_LEN].copy_from_slice(&self.iv.as_ref()[..FIXED_IV_LEN]);
        nonce[FIXED_IV_LEN..].copy_from_slice(&payload[..EXPLICIT_NONCE_LEN]);
        let plain_len = len - EXPLICIT_NONCE_LEN - TAG_LEN;
        let aad = make_tls12_aad(seq, msg.typ, msg.version, plain_len);
        self.cipher
            .open(&nonce, &aad, &mut payload[EXPLICIT_NONCE_LEN..])?;
        Ok(msg.into_plain_message_range(EXPLICIT_NONCE_LEN..EXPLICIT_NONCE_LEN + plain_len))
    }
}

/// AES-GCM as the NIST vectors state it (tests).
#[cfg(test)]
pub(crate) fn kat_seal(
    alg: AesGcm,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    pt: &[u8],
) -> alloc::vec::Vec<u8> {
    let mut buf = pt.to_vec();
    let tag = Cipher::new(alg, key)
        .seal(nonce.try_into().unwrap(), aad, &mut buf)
        .unwrap();
    buf.extend_from_slice(&tag);
    buf
}

/// The inverse of [`kat_seal`] (tests).
#[cfg(test)]
pub(crate) fn kat_open(
    alg: AesGcm,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Option<alloc::vec::Vec<u8>> {
    let mut buf = sealed.to_vec();
    Cipher::new(alg, key)
        .open(nonce.try_into().unwrap(), aad, &mut buf)
        .ok()?;
    buf.truncate(buf.len() - TAG_LEN);
    Some(buf)
}
