//! Methods over the values JSON has no type for, dates and bytes: shiftDate and reverseBytes, which XML-RPC clients see as `dateTime.iso8601` and `base64`.

use rpcpeer::schemars::JsonSchema;
use rpcpeer::types::{Base64, DateTime};
use rpcpeer::{ErrorObject, Router};
use serde::Deserialize;

use super::Demo;

/// Registers this module's methods.
pub(super) fn register(router: &mut Router<Demo>) {
    router
        .method_with_schema("shiftDate", |p: ShiftDate| async move {
            p.at.0
                .checked_add(time::Duration::days(p.days))
                .map(DateTime)
                .filter(|at| (0..=9999).contains(&at.0.year()))
                .ok_or_else(|| {
                    ErrorObject::invalid_params(
                        "`shiftDate`: the date moves past the years 0000..=9999",
                    )
                })
        })
        .doc("Moves the date-time `at` (ISO 8601, UTC) by `days` days, which may be negative.")
        .safe();
    router
        .method_with_schema("reverseBytes", |p: ReverseBytes| async move {
            let Base64(mut bytes) = p.data;
            bytes.reverse();
            Ok::<_, ErrorObject>(Base64(bytes))
        })
        .doc("Returns `data` (bytes, base64 in JSON) in reverse order.")
        .safe();
}

/// Params of `shiftDate`.
#[derive(Deserialize, JsonSchema)]
struct ShiftDate {
    /// The date-time to move.
    at: DateTime,
    /// How many days to move it by.
    days: i64,
}

/// Params of `reverseBytes`.
#[derive(Deserialize, JsonSchema)]
struct ReverseBytes {
    /// The bytes to reverse.
    data: Base64,
}
