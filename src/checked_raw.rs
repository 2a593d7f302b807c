//! serde_json's `&RawValue` of text the envelope's reader has checked as JSON already, made without serde_json reading it again.
//!
//! serde_json makes a `&RawValue` only by reading the text: its
//! constructors check what they are given, as they must when the text comes
//! from anywhere. For a value the envelope's reader has just read whole
//! (`["hello"]`), that second reading was a tenth of a notification's
//! instructions. serde_json also makes one from any deserializer that
//! answers its raw-value request: a newtype struct, read as a map of one
//! entry from the struct's name to the value's text. [`checked`] is such a
//! deserializer.
//!
//! That request is how serde_json reads raw values from its own `Value`,
//! not a documented interface. Should a later serde_json ask differently,
//! [`checked`] gives `None` and the envelope's reader has serde_json read
//! the value as before: slower, never wrong. The tests below say which.

use serde::de::value::{BorrowedStrDeserializer, Error};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{forward_to_deserialize_any, Deserialize, Deserializer};
use serde_json::value::RawValue;

/// `text` as a raw value. The caller vouches that it is exactly one JSON
/// value, with no whitespace around it: nothing here checks it.
pub(crate) fn checked(text: &str) -> Option<&RawValue> {
    <&RawValue>::deserialize(Checked(text)).ok()
}

/// A deserializer that answers only a newtype struct's request.
struct Checked<'de>(&'de str);

impl<'de> Deserializer<'de> for Checked<'de> {
    type Error = Error;

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_map(Entry {
            name: Some(name),
            text: self.0,
        })
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom(
            "only a raw value is read from checked text",
        ))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple tuple_struct map
        struct enum identifier ignored_any
    }
}

/// The one entry: the struct's name, then the text.
struct Entry<'de> {
    name: Option<&'static str>,
    text: &'de str,
}

impl<'de> MapAccess<'de> for Entry<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.name.take() {
            Some(name) => seed
                .deserialize(BorrowedStrDeserializer::new(name))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(BorrowedStrDeserializer::new(self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// If this fails, serde_json asks for raw values in some other way:
    /// every value is then read by serde_json, correctly but at the old
    /// cost, until this module learns the new way.
    #[test]
    fn serde_json_takes_checked_text_as_it_is() {
        for text in [
            r#"["hello"]"#,
            "{}",
            "null",
            "-1.5e3",
            r#"{"a":[1,{"b":"]"}]}"#,
        ] {
            let raw = checked(text).expect("serde_json took no checked text");
            assert_eq!(raw.get(), text);
            // Borrowed, not copied.
            assert_eq!(raw.get().as_ptr(), text.as_ptr());
        }
    }

    #[test]
    fn nothing_else_is_read_from_it() {
        assert!(bool::deserialize(Checked("true")).is_err());
        assert!(<&str>::deserialize(Checked("\"a\"")).is_err());
    }
}
