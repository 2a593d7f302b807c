//! The request target of a plain HTTP request, decoded: its path and its query string.

use std::borrow::Cow;

/// `text` (a path, or a part of one) with its `%XX` escapes decoded;
/// bytes that do not form UTF-8 become U+FFFD.
///
/// ```
/// assert_eq!(rpcpeer_ws::target::percent_decode("caf%C3%A9%20au%20lait"), "café au lait");
/// assert_eq!(rpcpeer_ws::target::percent_decode("a+b"), "a+b");
/// ```
pub fn percent_decode(text: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy()
}

/// The `name=value` pairs of a query string (`a=1&b=x`, without the `?`),
/// in order, decoded as `application/x-www-form-urlencoded` is in the
/// WHATWG URL standard: `+` is a space, `%XX` escapes are decoded (bytes
/// that do not form UTF-8 become U+FFFD), a pair without `=` has an empty
/// value, empty pairs are skipped.
///
/// ```
/// let pairs: Vec<_> = rpcpeer_ws::target::query_pairs("a=1&b=hello+world&c").collect();
/// assert_eq!(pairs, [("a".into(), "1".into()), ("b".into(), "hello world".into()), ("c".into(), "".into())]);
/// ```
pub fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    form_urlencoded::parse(query.as_bytes())
}
