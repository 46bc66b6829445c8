//! SHA-2 hashes and HMAC for rustls (sha2 0.11, hmac 0.13). HKDF (TLS 1.3) and the PRF
//! (TLS 1.2) are rustls's generic constructions over this HMAC (`HkdfUsingHmac`,
//! `PrfUsingHmac`).

use alloc::boxed::Box;

use hmac::{KeyInit, Mac};
use rustls::crypto::hash::{Context, Hash, HashAlgorithm, Output};
use rustls::crypto::hmac::{Hmac, Key, Tag};
use sha2::Digest;

macro_rules! sha {
    ($hash:ident, $ctx:ident, $hmac:ident, $key:ident, $digest:ty, $alg:expr, $len:expr) => {
        /// A SHA-2 hash for rustls.
        #[derive(Debug)]
        pub struct $hash;

        impl Hash for $hash {
            fn start(&self) -> Box<dyn Context> {
                Box::new($ctx(<$digest>::new()))
            }
            fn hash(&self, data: &[u8]) -> Output {
                Output::new(&<$digest>::digest(data))
            }
            fn output_len(&self) -> usize {
                $len
            }
            fn algorithm(&self) -> HashAlgorithm {
                $alg
            }
        }

        struct $ctx($digest);

        impl Context for $ctx {
            fn fork_finish(&self) -> Output {
                Output::new(&self.0.clone().finalize())
            }
            fn fork(&self) -> Box<dyn Context> {
                Box::new($ctx(self.0.clone()))
            }
            fn finish(self: Box<Self>) -> Output {
                Output::new(&self.0.finalize())
            }
            fn update(&mut self, data: &[u8]) {
                Digest::update(&mut self.0, data);
            }
        }

        /// HMAC over that hash for rustls.
        #[derive(Debug)]
        pub struct $hmac;

        impl Hmac for $hmac {
            fn with_key(&self, key: &[u8]) -> Box<dyn Key> {
                // HMAC takes keys of any length (longer ones are hashed first).
                Box::new($key(
                    <hmac::Hmac<$digest> as KeyInit>::new_from_slice(key)
                        .expect("HMAC accepts any key length"),
                ))
            }
            fn hash_output_len(&self) -> usize {
                $len
            }
        }

        struct $key(hmac::Hmac<$digest>);

        impl Key for $key {
            fn sign_concat(&self, first: &[u8], middle: &[&[u8]], last: &[u8]) -> Tag {
                let mut mac = self.0.clone();
                mac.update(first);
                for m in middle {
                    mac.update(m);
                }
                mac.update(last);
                Tag::new(&mac.finalize().into_bytes())
            }
            fn tag_len(&self) -> usize {
                $len
            }
        }
    };
}

sha!(
    Sha256,
    Sha256Context,
    HmacSha256,
    HmacSha256Key,
    sha2::Sha256,
    HashAlgorithm::SHA256,
    32
);
sha!(
    Sha384,
    Sha384Context,
    HmacSha384,
    HmacSha384Key,
    sha2::Sha384,
    HashAlgorithm::SHA384,
    48
);
