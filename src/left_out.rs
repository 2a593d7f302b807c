//! Params by position with trailing ones left out: each slot past the
//! caller's array is read as a missing field is, `None` for an `Option` and
//! an error for anything else.

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::fields::field_names;

/// `P` from params by position too short for it (`err` is serde's "invalid
/// length"), read as if the params left out were absent: by name when `P`
/// names its fields, so that each takes its default (`None`, or that of
/// `#[serde(default)]`); else, or when that does not fit (serde lists a
/// field's aliases among its names), with each missing slot read as
/// [`Absent`], which only an `Option` accepts. `None` when even so they do
/// not fit, and the caller is told what is missing.
pub(crate) fn with_trailing_left_out<P: DeserializeOwned>(
    raw: &str,
    err: &serde_json::Error,
) -> Option<P> {
    let text = err.to_string();
    if err.classify() != serde_json::error::Category::Data || !text.starts_with("invalid length ") {
        return None;
    }
    let given: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
    let names = field_names::<P>();
    if names.len() > given.len() {
        // NB: as text, so that each value is read as the caller wrote it.
        let members: Vec<String> = (names.iter().zip(&given))
            .map(|(name, value)| format!("{}:{}", serde_json::Value::from(*name), value.get()))
            .collect();
        if let Ok(p) = serde_json::from_str(&format!("{{{}}}", members.join(","))) {
            return Some(p);
        }
    }
    // "… expected a tuple of size 2", "… expected struct P with 2 elements"
    let expected: usize = ["of size ", "with "]
        .iter()
        .find_map(|before| text.rsplit_once(before).map(|(_, after)| after))?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    P::deserialize(Padded {
        absent: expected.saturating_sub(given.len()),
        given: given.into_iter(),
    })
    .ok()
}

/// The caller's values, then `absent` slots of [`Absent`].
struct Padded<'a> {
    given: std::vec::IntoIter<&'a RawValue>,
    absent: usize,
}

impl<'de> Deserializer<'de> for Padded<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(self)
    }

    // NB: the array is a value, so an `Option` or a newtype around the
    // tuple takes it whole, as serde_json would give it.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> SeqAccess<'de> for Padded<'de> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        if let Some(value) = self.given.next() {
            let mut de = serde_json::Deserializer::from_str(value.get());
            return seed.deserialize(&mut de).map(Some);
        }
        if self.absent == 0 {
            return Ok(None);
        }
        self.absent -= 1;
        seed.deserialize(Absent).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.given.len() + self.absent)
    }
}

/// A param the caller left out, read as serde reads a missing field: an
/// `Option` takes it as `None`, and any other type refuses it. (`null` in
/// its place would also pass for a required `serde_json::Value`.)
struct Absent;

impl<'de> Deserializer<'de> for Absent {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("a required param is missing"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short<P: DeserializeOwned>(raw: &str) -> Option<P> {
        let err = serde_json::from_str::<P>(raw).err()?;
        with_trailing_left_out(raw, &err)
    }

    #[test]
    fn an_option_left_out_is_none() {
        assert_eq!(short::<(i32, Option<i32>)>("[1]"), Some((1, None)));
        assert_eq!(
            short::<(i32, Option<i32>, Option<String>)>("[1]"),
            Some((1, None, None))
        );
    }

    #[test]
    fn a_tuple_behind_an_option_or_a_newtype_is_read_whole() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct W((i64, Option<i64>));
        assert_eq!(short::<W>("[1]"), Some(W((1, None))));
        assert_eq!(
            short::<Option<(i64, Option<i64>)>>("[1]"),
            Some(Some((1, None)))
        );
        assert_eq!(short::<W>("[]"), None);
    }

    #[test]
    fn anything_else_left_out_is_missing() {
        assert_eq!(short::<(serde_json::Value,)>("[]"), None);
        assert_eq!(short::<(i32, serde_json::Value)>("[1]"), None);
        assert_eq!(short::<(i32, ())>("[1]"), None);
    }

    #[test]
    fn a_struct_read_by_position_takes_its_options_as_none() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct P {
            a: i32,
            b: Option<i32>,
            #[serde(alias = "bee")]
            c: Option<i32>,
        }
        assert_eq!(
            short::<P>("[1]"),
            Some(P {
                a: 1,
                b: None,
                c: None
            })
        );
        #[derive(serde::Deserialize, Debug)]
        struct Q {
            #[serde(alias = "v")]
            #[allow(dead_code)]
            value: serde_json::Value,
        }
        assert!(short::<Q>("[]").is_none());
    }
}
