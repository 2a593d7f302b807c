//! Params and results that JSON has no type for: bytes ([`Base64`]) and date-times ([`DateTime`], feature `time`).
//!
//! In JSON each is a string: bytes in base64, a date-time in ISO 8601. A
//! handler declares one by taking or returning the newtype, which does the
//! conversion with serde:
//!
//! ```
//! use rpcpeer::types::Base64;
//! use rpcpeer::{ErrorObject, Router};
//!
//! let mut router = Router::new();
//! // Takes ["aGVsbG8="] (b"hello") and answers "b2xsZWg=" (b"olleh").
//! router.method("reverse", |(Base64(mut bytes),): (Base64,)| async move {
//!     bytes.reverse();
//!     Ok::<_, ErrorObject>(Base64(bytes))
//! });
//! ```
//!
//! XML-RPC (feature `xmlrpc`) has types of its own for both,
//! `<base64>` and `<dateTime.iso8601>`. Its values reach a handler as the
//! JSON strings above, so the same newtypes decode them. A result is
//! written as `<base64>` or `<dateTime.iso8601>` when the method's result
//! schema says so (`"contentEncoding": "base64"`, `"format": "date-time"`),
//! which these types give through `Router::method_with_schema` (feature
//! `schemars`) or `.result_schema(…)` by hand; without a schema it is a
//! `<string>`.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Writes standard base64 with padding, reads it with or without.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Bytes, as a base64 string in JSON (RFC 4648's standard alphabet, padded)
/// and as `<base64>` in XML-RPC.
///
/// ```
/// use rpcpeer::types::Base64;
///
/// let bytes = Base64(b"hello".to_vec());
/// assert_eq!(serde_json::to_string(&bytes).unwrap(), r#""aGVsbG8=""#);
/// assert_eq!(serde_json::from_str::<Base64>(r#""aGVsbG8""#).unwrap(), bytes);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Base64(pub Vec<u8>);

impl From<Vec<u8>> for Base64 {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Serialize for Base64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = Base64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Base64, E> {
                BASE64
                    .decode(text)
                    .map(Base64)
                    .map_err(|err| E::custom(format!("not base64: {err}")))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Base64 {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Base64".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "contentEncoding": "base64"})
    }
}

/// A date and time of day in UTC, as an ISO 8601 string in JSON
/// (`"2026-11-30T07:18:03Z"`, a fraction of a second when there is one: an
/// RFC 3339 date-time, as its schema's `"format"` says) and as
/// `<dateTime.iso8601>` in XML-RPC (`20261130T07:18:03`, XML-RPC's own
/// form, which has neither a fraction nor a zone: both are left out).
/// Feature `time`.
///
/// It reads both forms, and the basic `20261130T071803`. A time given with
/// an offset (`Z`, `+02:00`) is turned into UTC; one without is taken to be
/// UTC, as XML-RPC leaves the zone to the two sides to agree on.
///
/// ```
/// use rpcpeer::types::DateTime;
///
/// let at: DateTime = serde_json::from_str(r#""2026-11-30T09:18:03+02:00""#).unwrap();
/// assert_eq!(serde_json::to_string(&at).unwrap(), r#""2026-11-30T07:18:03Z""#);
/// let same: DateTime = serde_json::from_str(r#""20261130T07:18:03""#).unwrap();
/// assert_eq!(at, same);
/// ```
#[cfg(feature = "time")]
#[cfg_attr(docsrs, doc(cfg(feature = "time")))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub time::PrimitiveDateTime);

#[cfg(feature = "time")]
impl From<time::PrimitiveDateTime> for DateTime {
    fn from(at: time::PrimitiveDateTime) -> Self {
        Self(at)
    }
}

#[cfg(feature = "time")]
impl DateTime {
    /// `None` for a year outside 0..=9999, which `time` has and ISO 8601's
    /// four digits do not.
    fn stamp(&self) -> Option<crate::iso8601::Stamp> {
        let (date, time) = (self.0.date(), self.0.time());
        let year = u16::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
        Some(crate::iso8601::Stamp {
            year,
            month: u8::from(date.month()),
            day: date.day(),
            hour: time.hour(),
            minute: time.minute(),
            second: time.second(),
            nanos: time.nanosecond(),
            // NB: written: a time without an offset is local time to ISO
            // 8601, and not a date-time at all to RFC 3339.
            offset: Some(0),
        })
    }

    fn from_stamp(stamp: crate::iso8601::Stamp) -> Option<Self> {
        let month = time::Month::try_from(stamp.month).ok()?;
        let date = time::Date::from_calendar_date(i32::from(stamp.year), month, stamp.day).ok()?;
        let clock =
            time::Time::from_hms_nano(stamp.hour, stamp.minute, stamp.second, stamp.nanos).ok()?;
        let at = time::PrimitiveDateTime::new(date, clock);
        let Some(minutes) = stamp.offset else {
            return Some(Self(at));
        };
        let offset = time::UtcOffset::from_whole_seconds(i32::from(minutes) * 60).ok()?;
        let utc = at.assume_offset(offset).to_offset(time::UtcOffset::UTC);
        Some(Self(time::PrimitiveDateTime::new(utc.date(), utc.time())))
    }
}

#[cfg(feature = "time")]
impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.stamp() {
            Some(stamp) => serializer.serialize_str(&stamp.extended()),
            None => Err(serde::ser::Error::custom(format!(
                "the year of {} is outside ISO 8601's 0000..=9999",
                self.0
            ))),
        }
    }
}

#[cfg(feature = "time")]
impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = DateTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 8601 date-time such as \"2026-11-30T07:18:03Z\"")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<DateTime, E> {
                crate::iso8601::Stamp::parse(text)
                    .and_then(DateTime::from_stamp)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "not an ISO 8601 date-time (such as \"2026-11-30T07:18:03Z\"): {:?}",
                            crate::excerpt::excerpt(text)
                        ))
                    })
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(all(feature = "time", feature = "schemars"))]
impl schemars::JsonSchema for DateTime {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DateTime".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}
