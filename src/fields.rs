//! The field names a params struct's `Deserialize` impl declares, read without any data.
//!
//! serde hands a struct's field names to `Deserializer::deserialize_struct`;
//! a deserializer that records them and stops learns them from the type
//! alone. That names params in error messages and in introspection for
//! types that have no JSON Schema.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The names `T` gives its fields, in declaration order (serde's renames
/// applied), seen through `Option` and newtype structs; empty when `T` is
/// not deserialized as a struct (a tuple, a list, a map, a flattened or
/// hand-written impl). A field's aliases, if it has any, are listed too:
/// serde counts them as names.
pub(crate) fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The probe always fails: it only ever records.
    let _ = T::deserialize(Probe(&mut names));
    names
}

/// Why the probe stopped; never shown to anyone.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field names read")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Stop
    }
}

struct Probe<'n>(&'n mut &'static [&'static str]);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[allow(dead_code)] // only the impl is read
    struct Subtract {
        minuend: i64,
        #[serde(rename = "sub")]
        subtrahend: i64,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Wrapped(Subtract);

    #[derive(Deserialize)]
    #[serde(transparent)]
    #[allow(dead_code)]
    struct Numbers(Vec<i64>);

    #[test]
    fn a_struct_gives_its_fields_in_order_as_serde_names_them() {
        assert_eq!(field_names::<Subtract>(), ["minuend", "sub"]);
    }

    #[test]
    fn option_and_newtype_are_seen_through() {
        assert_eq!(field_names::<Option<Subtract>>(), ["minuend", "sub"]);
        assert_eq!(field_names::<Wrapped>(), ["minuend", "sub"]);
    }

    #[test]
    fn anything_but_a_struct_has_no_names() {
        assert!(field_names::<(i64, String)>().is_empty());
        assert!(field_names::<Numbers>().is_empty());
        assert!(field_names::<serde_json::Value>().is_empty());
        assert!(field_names::<Box<serde_json::value::RawValue>>().is_empty());
        assert!(field_names::<std::collections::HashMap<String, i64>>().is_empty());
    }
}
