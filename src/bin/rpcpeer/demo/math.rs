//! Arithmetic, echo, timing and failure methods: subtract, sum, get_data, echo, sleep, fail, panic, and the notifications that are only accepted.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use rpcpeer::schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use rpcpeer::{sync_fn, ErrorObject, Router};
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Number;

use super::{present, Demo, Raw};

/// Registers this module's methods.
pub(super) fn register(router: &mut Router<Demo>) {
    router
        .method_with_schema(
            "subtract",
            sync_fn(|p: Subtract| subtract(&p.minuend, &p.subtrahend)),
        )
        .doc("Subtracts subtrahend from minuend; params by position or by name. Integers give an integer while it fits 64 bits, a float past them.")
        .safe();
    router
        .method_with_schema("sum", sync_fn(|Numbers(total): Numbers| total.number()))
        .doc("Adds up any number of numbers given by position; `[]` gives 0. Integers give an integer while it fits 64 bits, a float past them.")
        .safe();
    router
        .method_with_schema("get_data", sync_fn(|| Ok::<_, ErrorObject>(("hello", 5))))
        .doc("Returns [\"hello\", 5].")
        .safe();
    router
        .method_with_schema("echo", sync_fn(|p: Echo| Ok::<_, ErrorObject>(p.value)))
        .doc("Returns its one param, exactly as sent: [x] or {\"value\": x}.")
        .safe();
    router
        .method_with_schema("sleep", |p: Sleep| async move {
            // NB: bounded, so that every call ends: a client that fills its
            // queue with sleeps and goes away is noticed when the answers
            // are written (nothing else can tell, since the server has
            // stopped reading that connection).
            if p.ms > MAX_SLEEP_MS {
                return Err(ErrorObject::invalid_params(format!(
                    "`sleep`: ms must be at most {MAX_SLEEP_MS}, not {}",
                    p.ms
                )));
            }
            tokio::time::sleep(Duration::from_millis(p.ms)).await;
            Ok::<_, ErrorObject>(p.ms)
        })
        .doc("Waits ms milliseconds (at most 60,000), then returns ms. Cancellable with $/cancelRequest.");
    router
        .method_with_schema(
            "fail",
            sync_fn(|p: Fail| {
                Err::<(), _>(ErrorObject {
                    code: p.code,
                    message: p.message,
                    data: p.data.map(|raw| raw.0),
                })
            }),
        )
        .doc("Answers with an error object of exactly this code, message and data (no data member when none is given).");
    // NB: left `async`: its panic is caught where its future is polled,
    // the path most handlers take.
    router
        .method_with_schema("panic", panic)
        .doc("The handler panics; the answer is -32603 and the connection goes on.");
    for name in ["update", "notify_hello", "notify_sum"] {
        // `IgnoredAny` params are not read again (the message was read as
        // JSON in full already); the schema accepts any value.
        router
            .notification(name, sync_fn(|_: IgnoredAny| {}))
            .params_schema(serde_json::json!({ "title": "AnyValue" }))
            .doc("A notification that is accepted and does nothing; any params.");
    }
}

/// The longest `sleep`.
const MAX_SLEEP_MS: u64 = 60_000;

/// Params of `subtract`.
#[derive(Deserialize, JsonSchema)]
struct Subtract {
    /// The number to subtract from.
    minuend: Number,
    /// The number to subtract.
    subtrahend: Number,
}

/// Params of `sum`: numbers by position, any count, added up as they are
/// read. NB: a list is never held: 16 MiB of `1,` read into a
/// `Vec<Number>` would take some 300 MB.
struct Numbers(Total);

impl<'de> Deserialize<'de> for Numbers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(Adder)
    }
}

/// Reads `sum`'s params, one number at a time.
struct Adder;

impl<'de> Visitor<'de> for Adder {
    type Value = Numbers;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut terms: A) -> Result<Numbers, A::Error> {
        let mut total = Total::Integer(0);
        while let Some(term) = terms.next_element::<Number>()? {
            total = total.add(&term);
        }
        Ok(Numbers(total))
    }
}

/// A running sum: an integer while every term is one and it fits, then a
/// float.
#[derive(Debug, Clone, Copy)]
enum Total {
    Integer(i128),
    Float(f64),
}

impl Total {
    fn add(self, term: &Number) -> Self {
        match self {
            Total::Integer(total) => match integer(term).and_then(|n| total.checked_add(n)) {
                Some(total) => Total::Integer(total),
                #[allow(clippy::cast_precision_loss)] // a float sum is what was asked for
                None => Total::Float(total as f64 + float(term)),
            },
            Total::Float(total) => Total::Float(total + float(term)),
        }
    }

    /// The sum, an integer while it fits 64 bits.
    fn number(self) -> Result<Number, ErrorObject> {
        match self {
            Total::Integer(total) => match from_integer(total) {
                Some(n) => Ok(n),
                #[allow(clippy::cast_precision_loss)] // past 64 bits only a float can say it
                None => from_float(total as f64),
            },
            Total::Float(total) => from_float(total),
        }
    }
}

impl JsonSchema for Numbers {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Numbers".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // The items' title is the name introspection gives the variadic param.
        json_schema!({
            "type": "array",
            "items": { "title": "n", "type": "number", "description": "A number to add." }
        })
    }
}

/// Params of `echo`.
#[derive(Deserialize, JsonSchema)]
struct Echo {
    /// Any JSON value; it comes back unchanged.
    value: Raw,
}

/// Params of `sleep`.
#[derive(Deserialize, JsonSchema)]
struct Sleep {
    /// How long to wait, in milliseconds.
    ms: u64,
}

/// Params of `fail`.
#[derive(Deserialize, JsonSchema)]
struct Fail {
    /// The error code to answer with.
    code: i64,
    /// The error message to answer with.
    message: String,
    /// The error data to answer with; leave it out for an error without data.
    #[serde(default, deserialize_with = "present")]
    data: Option<Raw>,
}

/// The body of `panic`; a named fn so its return type needs no turbofish.
async fn panic() -> Result<(), ErrorObject> {
    panic!("the demo method `panic` panics on purpose")
}

/// A JSON integer as a wide integer, or `None` for a number with a
/// fraction or an exponent (which serde_json reads as a float).
fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// An integer result, when it fits the 64 bits JSON peers can be expected to read.
fn from_integer(n: i128) -> Option<Number> {
    i64::try_from(n)
        .ok()
        .map(Number::from)
        .or_else(|| u64::try_from(n).ok().map(Number::from))
}

/// A float result; infinity and NaN have no JSON form, so they are refused.
fn from_float(x: f64) -> Result<Number, ErrorObject> {
    Number::from_f64(x)
        .ok_or_else(|| ErrorObject::invalid_params("the result is not a finite number"))
}

/// Any JSON number as a float, for arithmetic past 64-bit integers.
fn float(n: &Number) -> f64 {
    // Always `Some` without serde_json's arbitrary_precision; NaN makes
    // `from_float` refuse rather than answer a wrong number.
    n.as_f64().unwrap_or(f64::NAN)
}

/// `minuend - subtrahend`, an integer when both are (`[42, 23]` gives `19`,
/// not `19.0`), falling back to a float only past 64 bits.
fn subtract(minuend: &Number, subtrahend: &Number) -> Result<Number, ErrorObject> {
    if let (Some(a), Some(b)) = (integer(minuend), integer(subtrahend)) {
        // Two 64-bit values cannot overflow an i128.
        if let Some(n) = from_integer(a - b) {
            return Ok(n);
        }
    }
    from_float(float(minuend) - float(subtrahend))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        serde_json::from_str(text).expect("a number")
    }

    /// `sum`'s answer to the params `terms`, read as the method reads them.
    fn sum(terms: &[Number]) -> Result<Number, ErrorObject> {
        let text = serde_json::to_string(terms).expect("JSON");
        let Numbers(total) = serde_json::from_str(&text).expect("params");
        total.number()
    }

    #[test]
    fn integers_stay_integers() {
        assert_eq!(subtract(&n("42"), &n("23")).expect("ok").to_string(), "19");
        assert_eq!(subtract(&n("23"), &n("42")).expect("ok").to_string(), "-19");
        assert_eq!(sum(&[]).expect("ok").to_string(), "0");
        assert_eq!(sum(&[n("1"), n("2"), n("4")]).expect("ok").to_string(), "7");
    }

    #[test]
    fn floats_stay_floats() {
        assert_eq!(subtract(&n("1.5"), &n("1")).expect("ok").to_string(), "0.5");
        assert_eq!(sum(&[n("1"), n("2.0")]).expect("ok").to_string(), "3.0");
    }

    #[test]
    fn integers_past_64_bits_become_floats() {
        let max = u64::MAX.to_string();
        assert_eq!(
            sum(&[n(&max), n("1")]).expect("ok").to_string(),
            "1.8446744073709552e+19"
        );
        assert_eq!(
            subtract(&n(&max), &n("-1")).expect("ok").to_string(),
            "1.8446744073709552e+19"
        );
        assert_eq!(
            subtract(&n(&max), &n("1")).expect("ok").to_string(),
            (u64::MAX - 1).to_string()
        );
    }

    #[test]
    fn an_infinite_result_is_refused() {
        assert!(sum(&[n("1e308"), n("1e308")]).is_err());
    }
}
