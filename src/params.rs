//! `Params`: the one place that knows what a call's params may be (spec §4.2: an array or an object).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::excerpt::excerpt;

/// The params of a call, as JSON text: an array (params by position) or an
/// object (params by name). Spec §4.2 allows nothing else; no params at all
/// is `None` in an `Option<Params>`, which is how every constructor says
/// `null`.
///
/// [`Peer::request`](crate::Peer::request) and the other senders take any
/// `Serialize` value and make a `Params` of it, so most code never names
/// this type: it is for params that are JSON already (read from a file,
/// passed on from another peer), and it serializes as the text it holds.
///
/// ```
/// use rpcpeer::{Params, ParamsError};
///
/// # fn main() -> Result<(), ParamsError> {
/// let by_position = Params::new(&(42, 23))?.expect("a tuple is an array");
/// assert_eq!(by_position.get(), "[42,23]");
/// assert!(Params::new(&())?.is_none(), "`()` is no params");
///
/// let by_name = Params::from_json(r#"{"minuend": 42, "subtrahend": 23}"#)?;
/// assert!(by_name.is_some());
/// assert!(matches!(Params::from_json("5"), Err(ParamsError::NotStructured { .. })));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Params(Box<RawValue>);

/// Why a value cannot be a call's [`Params`].
///
/// ```
/// use rpcpeer::{Params, ParamsError};
///
/// let err = Params::new(&"just a string").unwrap_err();
/// assert_eq!(err.to_string(), r#"`params` must be an array or an object, not "just a string""#);
/// assert!(matches!(Params::from_json("[1,"), Err(ParamsError::Json(_))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The value is JSON, but neither an array nor an object (a number, a
    /// string, a boolean).
    #[error("`params` must be an array or an object, not {found}")]
    NotStructured {
        /// The value, cut short when long.
        found: String,
    },
    /// The value did not serialize, or the text is not JSON.
    #[error("params are not JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A call with progress reports carries its token among params by
    /// name, and these are by position (or not structured).
    #[error("a call with progress reports takes its params by name (an object, or none), to carry `workDoneToken`; got {found}")]
    NotByName {
        /// The value, cut short when long.
        found: String,
    },
    /// The params of a call with progress reports already have a
    /// `workDoneToken`: the call sets its own.
    #[error(
        "the params already have a `workDoneToken`; a call with progress reports sets its own"
    )]
    TokenTaken,
}

impl Params {
    /// Serializes `value`: a tuple, `Vec` or array gives params by
    /// position, a struct or map params by name, and anything that
    /// serializes to `null` (`()`, `None`) no params.
    ///
    /// # Errors
    /// [`ParamsError::Json`] when `value` fails to serialize,
    /// [`ParamsError::NotStructured`] when it is a number, string or boolean.
    pub fn new(value: &impl Serialize) -> Result<Option<Self>, ParamsError> {
        let raw = serde_json::value::to_raw_value(value).map_err(ParamsError::Json)?;
        Self::from_raw(raw)
    }

    /// Takes JSON that is already text; `null` is no params.
    ///
    /// # Errors
    /// [`ParamsError::NotStructured`] when `raw` is a number, string or boolean.
    pub fn from_raw(raw: Box<RawValue>) -> Result<Option<Self>, ParamsError> {
        match Self::check(&raw) {
            Ok(()) => Ok(Some(Self(raw))),
            Err(_) if raw.get() == "null" => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Parses `text` (surrounding whitespace allowed); `null` is no params.
    ///
    /// # Errors
    /// [`ParamsError::Json`] when `text` is not JSON,
    /// [`ParamsError::NotStructured`] when it is a number, string or boolean.
    pub fn from_json(text: &str) -> Result<Option<Self>, ParamsError> {
        let raw = serde_json::from_str::<Box<RawValue>>(text).map_err(ParamsError::Json)?;
        Self::from_raw(raw)
    }

    /// The rule itself, for params borrowed from a frame: `Ok` for an array
    /// or an object. `null` is refused here; where it means "no params"
    /// (1.0, a serialized `()`), the caller says so first.
    pub(crate) fn check(raw: &RawValue) -> Result<(), ParamsError> {
        match raw.get().as_bytes().first() {
            Some(b'[' | b'{') => Ok(()),
            _ => Err(ParamsError::NotStructured {
                found: excerpt(raw.get()).to_string(),
            }),
        }
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Whether these are params by name (an object) rather than by position.
    pub fn by_name(&self) -> bool {
        self.0.get().starts_with('{')
    }

    /// The JSON, as serde_json's raw value.
    pub fn into_raw(self) -> Box<RawValue> {
        self.0
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Params").field(&self.get()).finish()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Reads an array or an object; anything else is refused with
/// [`ParamsError::NotStructured`]'s message. (`null` in an
/// `Option<Params>` is `None`.)
impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        match Self::check(&raw) {
            Ok(()) => Ok(Self(raw)),
            Err(err) => Err(serde::de::Error::custom(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_arrays_and_objects_are_params() {
        for (text, by_name) in [("[]", false), ("[1,2]", false), (r#"{"a":1}"#, true)] {
            let params = Params::from_json(text).unwrap().unwrap();
            assert_eq!((params.get(), params.by_name()), (text, by_name));
        }
        assert!(Params::from_json("null").unwrap().is_none());
        for text in ["1", "\"x\"", "true", "-1.5"] {
            let err = Params::from_json(text).unwrap_err();
            assert!(matches!(err, ParamsError::NotStructured { .. }), "{text}");
            assert!(err.to_string().ends_with(&format!("not {text}")), "{err}");
        }
        assert!(matches!(
            Params::from_json("[1,"),
            Err(ParamsError::Json(_))
        ));
    }

    #[test]
    fn serialized_values_follow_the_same_rule() {
        assert_eq!(Params::new(&[1, 2]).unwrap().unwrap().get(), "[1,2]");
        assert!(Params::new(&()).unwrap().is_none());
        assert!(Params::new(&None::<Vec<i32>>).unwrap().is_none());
        assert!(matches!(
            Params::new(&5),
            Err(ParamsError::NotStructured { .. })
        ));
    }

    #[test]
    fn deserializing_refuses_what_is_not_params() {
        #[derive(Deserialize)]
        struct Call {
            params: Option<Params>,
        }
        let call: Call = serde_json::from_str(r#"{"params":null}"#).unwrap();
        assert!(call.params.is_none());
        let call: Call = serde_json::from_str(r#"{"params":[1]}"#).unwrap();
        assert_eq!(call.params.unwrap().get(), "[1]");
        let err = serde_json::from_str::<Call>(r#"{"params":7}"#)
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("must be an array or an object"),
            "{err}"
        );
    }
}
