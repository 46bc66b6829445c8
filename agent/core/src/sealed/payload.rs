//! The signed payload: `Secret { version, type: vault | envelope, ... }`.
//!
//! Wire form (upstream CDH `Secret` with a flattened, internally tagged `SecretContent`):
//! members `version`, `type`, then the variant's members in declaration order. Members
//! upstream does not know are ignored, as serde does there; every known member is required.

use alloc::string::String;
use alloc::vec::Vec;
use serde::ser::{Serialize, SerializeMap, Serializer};
use zeroize::Zeroizing;

use super::error::SealedError;
use super::json::{JsonObject, JsonValue};
use super::{VERSION, is_kbs_resource_uri};
use crate::b64;

/// A decoded sealed-secret payload. Its version is always [`VERSION`]; others are rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// What the secret is and where its value lives.
    pub content: SecretContent,
}

/// The `type`-tagged body of a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretContent {
    /// `"type":"vault"`: a reference to a secret held by a provider (a KBS resource).
    Vault(VaultSecret),
    /// `"type":"envelope"`: data encrypted under a DEK that a KMS wraps.
    Envelope(EnvelopeSecret),
}

/// A vault secret: the value is fetched from `provider` by `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultSecret {
    /// The secret's id at the provider; for `kbs`, a resource URI `kbs:///repo/type/tag`.
    pub name: String,
    /// The provider (`kbs`, `aliyun`, `aws`), matched case-insensitively.
    pub provider: String,
    /// Provider client settings (may be empty).
    pub provider_settings: JsonObject,
    /// Extra provider-specific fields (may be empty).
    pub annotations: JsonObject,
}

/// An envelope secret: `encrypted_data` under a DEK that the KMS key `key_id` wraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSecret {
    /// The KMS key that wraps the DEK.
    pub key_id: String,
    /// The wrapped DEK, standard base64.
    pub encrypted_key: String,
    /// The encrypted secret (A256GCM: ciphertext || 16-byte tag), standard base64.
    pub encrypted_data: String,
    /// How `encrypted_data` is encrypted.
    pub wrap_type: WrapType,
    /// The IV, standard base64 (12 bytes for A256GCM, 16 for A256CTR).
    pub iv: String,
    /// The KMS (`aliyun`, `aws`, `ehsm`).
    pub provider: String,
    /// KMS client settings.
    pub provider_settings: JsonObject,
    /// KMS-specific fields.
    pub annotations: JsonObject,
}

/// The envelope's data encryption scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapType {
    /// `A256GCM`: AES-256-GCM, 12-byte IV, no AAD, ciphertext || tag.
    A256Gcm,
    /// `A256CTR`: AES-256-CTR, 16-byte IV (not authenticated; sealgate does not decrypt it).
    A256Ctr,
}

impl WrapType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WrapType::A256Gcm => "A256GCM",
            WrapType::A256Ctr => "A256CTR",
        }
    }

    /// The IV length this scheme requires.
    pub fn iv_len(self) -> usize {
        match self {
            WrapType::A256Gcm => 12,
            WrapType::A256Ctr => 16,
        }
    }
}

/// What the caller must do to obtain a verified secret's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unseal<'a> {
    /// Fetch this KBS resource URI (`kbs://<ignored-host>/repo/type/tag` or
    /// `kbs+<plugin>://...`) from the configured KBS; the resource bytes are the value.
    KbsResource(&'a str),
}

impl Secret {
    /// A vault secret with the given members.
    pub fn vault(
        name: String,
        provider: String,
        provider_settings: JsonObject,
        annotations: JsonObject,
    ) -> Self {
        Secret {
            content: SecretContent::Vault(VaultSecret {
                name,
                provider,
                provider_settings,
                annotations,
            }),
        }
    }

    /// The payload version (always [`VERSION`]).
    pub fn version(&self) -> &'static str {
        VERSION
    }

    /// The `type` tag: `vault` or `envelope`.
    pub fn type_name(&self) -> &'static str {
        match self.content {
            SecretContent::Vault(_) => "vault",
            SecretContent::Envelope(_) => "envelope",
        }
    }

    /// Parses a payload JSON text. Version, type and every required member are checked.
    pub fn from_json(payload: &[u8]) -> Result<Self, SealedError> {
        if payload.is_empty() {
            return Err(SealedError::EmptyPayload);
        }
        let object = JsonObject::from_json(payload).map_err(SealedError::PayloadNotJson)?;
        let version = string_field(&object, "version")?;
        if version != VERSION {
            return Err(SealedError::UnsupportedVersion(version.into()));
        }
        let content = match string_field(&object, "type")? {
            "vault" => SecretContent::Vault(VaultSecret {
                name: string_field(&object, "name")?.into(),
                provider: string_field(&object, "provider")?.into(),
                provider_settings: object_field(&object, "provider_settings")?,
                annotations: object_field(&object, "annotations")?,
            }),
            "envelope" => {
                let key_id = string_field(&object, "key_id")?.into();
                let encrypted_key = string_field(&object, "encrypted_key")?.into();
                let encrypted_data = string_field(&object, "encrypted_data")?.into();
                let wrap_type = match string_field(&object, "wrap_type")? {
                    "A256GCM" => WrapType::A256Gcm,
                    "A256CTR" => WrapType::A256Ctr,
                    other => return Err(SealedError::UnknownWrapType(other.into())),
                };
                SecretContent::Envelope(EnvelopeSecret {
                    key_id,
                    encrypted_key,
                    encrypted_data,
                    wrap_type,
                    iv: string_field(&object, "iv")?.into(),
                    provider: string_field(&object, "provider")?.into(),
                    provider_settings: object_field(&object, "provider_settings")?,
                    annotations: object_field(&object, "annotations")?,
                })
            }
            other => return Err(SealedError::UnknownType(other.into())),
        };
        Ok(Secret { content })
    }

    /// Serializes exactly as upstream's `serde_json::to_string(&Secret)`:
    /// compact, `version`, `type`, then the variant's members in order.
    pub fn to_json(&self) -> String {
        // Serializing strings, numbers and string-keyed maps into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// What the caller must fetch to unseal this (already verified) secret.
    ///
    /// Vault + provider `kbs` (case-insensitive) yields the KBS resource URI in `name`.
    /// Every other provider is refused with [`SealedError::UnsupportedProvider`]; an
    /// envelope is first checked completely (base64, IV and data lengths) so a malformed
    /// one gets the precise error.
    pub fn resolve(&self) -> Result<Unseal<'_>, SealedError> {
        match &self.content {
            SecretContent::Vault(vault) => {
                if !vault.provider.eq_ignore_ascii_case("kbs") {
                    return Err(SealedError::UnsupportedProvider(vault.provider.clone()));
                }
                if !is_kbs_resource_uri(&vault.name) {
                    return Err(SealedError::InvalidResourceUri);
                }
                Ok(Unseal::KbsResource(&vault.name))
            }
            SecretContent::Envelope(envelope) => {
                envelope.decode()?;
                Err(SealedError::UnsupportedProvider(envelope.provider.clone()))
            }
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("version", VERSION)?;
        map.serialize_entry("type", self.type_name())?;
        match &self.content {
            SecretContent::Vault(v) => {
                map.serialize_entry("name", &v.name)?;
                map.serialize_entry("provider", &v.provider)?;
                map.serialize_entry("provider_settings", &v.provider_settings)?;
                map.serialize_entry("annotations", &v.annotations)?;
            }
            SecretContent::Envelope(e) => {
                map.serialize_entry("key_id", &e.key_id)?;
                map.serialize_entry("encrypted_key", &e.encrypted_key)?;
                map.serialize_entry("encrypted_data", &e.encrypted_data)?;
                map.serialize_entry("wrap_type", e.wrap_type.as_str())?;
                map.serialize_entry("iv", &e.iv)?;
                map.serialize_entry("provider", &e.provider)?;
                map.serialize_entry("provider_settings", &e.provider_settings)?;
                map.serialize_entry("annotations", &e.annotations)?;
            }
        }
        map.end()
    }
}

fn string_field<'a>(object: &'a JsonObject, field: &'static str) -> Result<&'a str, SealedError> {
    match object.get(field) {
        None => Err(SealedError::MissingField(field)),
        Some(JsonValue::String(s)) => Ok(s),
        Some(_) => Err(SealedError::FieldType {
            field,
            expected: "a string",
        }),
    }
}

fn object_field(object: &JsonObject, field: &'static str) -> Result<JsonObject, SealedError> {
    match object.get(field) {
        None => Err(SealedError::MissingField(field)),
        Some(JsonValue::Object(o)) => Ok(o.clone()),
        Some(_) => Err(SealedError::FieldType {
            field,
            expected: "an object",
        }),
    }
}

/// The binary fields of an [`EnvelopeSecret`], decoded and length-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeParts {
    /// The wrapped DEK, for the KMS to unwrap.
    pub encrypted_key: Vec<u8>,
    /// The IV (length matches `wrap_type`).
    pub iv: Vec<u8>,
    /// The encrypted data (A256GCM: at least the 16-byte tag).
    pub encrypted_data: Vec<u8>,
    /// The scheme.
    pub wrap_type: WrapType,
}

impl EnvelopeSecret {
    /// Decodes `encrypted_key`, `iv` and `encrypted_data` (standard base64 with padding,
    /// as upstream) and checks the IV and data lengths against `wrap_type`.
    pub fn decode(&self) -> Result<EnvelopeParts, SealedError> {
        let decode = |field: &'static str, text: &str| {
            b64::std_decode(text).map_err(|_| SealedError::EnvelopeBase64(field))
        };
        let encrypted_key = decode("encrypted_key", &self.encrypted_key)?;
        let iv = decode("iv", &self.iv)?;
        let encrypted_data = decode("encrypted_data", &self.encrypted_data)?;
        if iv.len() != self.wrap_type.iv_len() {
            return Err(SealedError::EnvelopeIvLength {
                wrap_type: self.wrap_type,
                found: iv.len(),
            });
        }
        if self.wrap_type == WrapType::A256Gcm && encrypted_data.len() < GCM_TAG_LEN {
            return Err(SealedError::EnvelopeDataTooShort);
        }
        Ok(EnvelopeParts {
            encrypted_key,
            iv,
            encrypted_data,
            wrap_type: self.wrap_type,
        })
    }
}

impl EnvelopeParts {
    /// Decrypts the data with the DEK a KMS unwrapped from `encrypted_key`.
    /// Only A256GCM is supported.
    pub fn decrypt(&self, dek: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, SealedError> {
        match self.wrap_type {
            WrapType::A256Gcm => {
                let iv: &[u8; 12] =
                    self.iv
                        .as_slice()
                        .try_into()
                        .map_err(|_| SealedError::EnvelopeIvLength {
                            wrap_type: self.wrap_type,
                            found: self.iv.len(),
                        })?;
                decrypt_a256gcm(dek, iv, &self.encrypted_data)
            }
            WrapType::A256Ctr => Err(SealedError::UnsupportedWrapType(WrapType::A256Ctr)),
        }
    }
}

const GCM_TAG_LEN: usize = 16;

/// The envelope inner layer: AES-256-GCM with a 12-byte IV and no AAD over
/// `ciphertext || tag`, as upstream's `crypto::decrypt(.., A256GCM)`. The plaintext is
/// returned in a buffer that is wiped on drop (and wiped on failure too).
pub fn decrypt_a256gcm(
    dek: &[u8; 32],
    iv: &[u8; 12],
    ciphertext_and_tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealedError> {
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};

    if ciphertext_and_tag.len() < GCM_TAG_LEN {
        return Err(SealedError::EnvelopeDataTooShort);
    }
    let cipher = Aes256Gcm::new(dek.into());
    let mut buffer = Zeroizing::new(ciphertext_and_tag.to_vec());
    cipher
        .decrypt_in_place(&Nonce::from(*iv), b"", &mut *buffer)
        .map_err(|_| SealedError::DecryptFailed)?;
    Ok(buffer)
}
