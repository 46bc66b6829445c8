//! An insertion-ordered JSON value for the free-form `provider_settings` and
//! `annotations` objects of a sealed secret.
//!
//! Upstream's `secret` CLI is built with `serde_json`'s `preserve_order`, so objects keep
//! the member order the operator wrote. `serde_json::Value` in this crate sorts members,
//! which would make `sealctl` output differ from upstream's for non-empty objects, hence
//! this small type. Duplicate member names are rejected at every level: a signed payload
//! must not mean different things to different parsers.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;

/// A JSON value whose objects keep their member order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, kept as `serde_json` parsed it.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<JsonValue>),
    /// An object, members in document order.
    Object(JsonObject),
}

/// A JSON object whose members keep their insertion order; names are unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonObject(Vec<(String, JsonValue)>);

impl JsonObject {
    /// An empty object (`{}`).
    pub const fn new() -> Self {
        JsonObject(Vec::new())
    }

    /// Parses a JSON text that must be an object (as `sealctl --annotations` takes it).
    pub fn from_json(text: &[u8]) -> Result<Self, JsonError> {
        match serde_json::from_slice::<JsonValue>(text) {
            Ok(JsonValue::Object(object)) => Ok(object),
            Ok(_) => Err(JsonError::NotAnObject),
            Err(e) if e.is_data() => Err(JsonError::DuplicateMember),
            Err(_) => Err(JsonError::Syntax),
        }
    }

    /// The value of member `name`, if present.
    pub fn get(&self, name: &str) -> Option<&JsonValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Appends member `name`, or replaces its value in place if it already exists.
    pub fn insert(&mut self, name: String, value: JsonValue) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// The members, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &JsonValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a JSON text was not accepted as an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Not well-formed JSON (or nested too deeply).
    Syntax,
    /// Well-formed, but not an object.
    NotAnObject,
    /// An object with the same member name twice.
    DuplicateMember,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonError::Syntax => "not valid JSON",
            JsonError::NotAnObject => "not a JSON object",
            JsonError::DuplicateMember => "JSON object has a duplicate member name",
        })
    }
}

impl Serialize for JsonValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JsonValue::Null => serializer.serialize_unit(),
            JsonValue::Bool(b) => serializer.serialize_bool(*b),
            JsonValue::Number(n) => n.serialize(serializer),
            JsonValue::String(s) => serializer.serialize_str(s),
            JsonValue::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            JsonValue::Object(object) => object.serialize(serializer),
        }
    }
}

impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = JsonValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<JsonValue, E> {
        Ok(JsonValue::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<JsonValue, E> {
        Ok(JsonValue::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<JsonValue, E> {
        Ok(JsonValue::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonValue, E> {
        Number::from_f64(v)
            .map(JsonValue::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<JsonValue, E> {
        Ok(JsonValue::String(v.into()))
    }

    fn visit_string<E>(self, v: String) -> Result<JsonValue, E> {
        Ok(JsonValue::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsonValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonValue, A::Error> {
        let mut members: Vec<(String, JsonValue)> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.iter().any(|(k, _)| *k == name) {
                return Err(de::Error::custom("duplicate member name"));
            }
            let value = map.next_value()?;
            members.push((name, value));
        }
        Ok(JsonValue::Object(JsonObject(members)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn keeps_order_and_round_trips() {
        let text = br#"{"z":1,"a":{"y":[true,null,-2,1.5,"s"],"b":{}},"m":"\u0001"}"#;
        let object = JsonObject::from_json(text).unwrap();
        let names: Vec<&str> = object.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["z", "a", "m"]);
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            r#"{"z":1,"a":{"y":[true,null,-2,1.5,"s"],"b":{}},"m":"\u0001"}"#
        );
    }

    #[test]
    fn rejects() {
        assert_eq!(JsonObject::from_json(b"[]"), Err(JsonError::NotAnObject));
        assert_eq!(JsonObject::from_json(b"{"), Err(JsonError::Syntax));
        assert_eq!(
            JsonObject::from_json(br#"{"a":{"b":1,"b":2}}"#),
            Err(JsonError::DuplicateMember)
        );
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(
            JsonObject::from_json(format!("{{\"a\":{deep}}}").as_bytes()),
            Err(JsonError::Syntax)
        );
    }
}
