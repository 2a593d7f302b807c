//! XML-RPC values to JSON and back: each XML-RPC type has one JSON form, and a result's schema says which XML-RPC type a JSON string stands for.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::invalid;
use super::tree::Element;
use crate::error::ErrorObject;
use crate::iso8601::Stamp;

/// The JSON a `<value>` element stands for:
///
/// | XML-RPC | JSON |
/// |---|---|
/// | `int`, `i4`, `i8` | a number |
/// | `boolean` (`0`, `1`) | `false`, `true` |
/// | `string`, or text with no type element | a string |
/// | `double` | a number (finite only) |
/// | `dateTime.iso8601` | an ISO 8601 string, `2026-11-30T07:18:03`, zone as written |
/// | `base64` | a base64 string (whitespace taken out) |
/// | `struct` | an object |
/// | `array` | an array |
/// | `nil` (the common extension) | `null` |
pub(super) fn from_xml(value: &Element) -> Result<Value, ErrorObject> {
    let elements = value.elements();
    let typed = match elements.as_deref() {
        // `<value>text</value>` is a string (the spec: no type means string).
        Ok([]) | Err(_) => return value.text().map(Value::String),
        Ok([one]) => *one,
        Ok(_) => {
            return Err(invalid(
                "a <value> holds one type element (int, string, struct, …), not several",
            ))
        }
    };
    let text = || typed.text();
    let scalar = |what: &str| -> Result<String, ErrorObject> {
        let text = typed.text()?;
        Ok(text.trim().to_owned()).and_then(|t| {
            if t.is_empty() {
                Err(invalid(format!("an empty <{what}>")))
            } else {
                Ok(t)
            }
        })
    };
    match typed.name.as_str() {
        "int" | "i4" | "i8" => {
            let text = scalar(&typed.name)?;
            text.parse::<i64>()
                .map(Value::from)
                .map_err(|_| invalid(format!("<{}> {:?} is not an integer", typed.name, excerpt(&text))))
        }
        "boolean" => match scalar("boolean")?.as_str() {
            "1" => Ok(Value::Bool(true)),
            "0" => Ok(Value::Bool(false)),
            other => Err(invalid(format!("<boolean> is 0 or 1, not {:?}", excerpt(other)))),
        },
        "string" => text().map(Value::String),
        "double" => {
            let text = scalar("double")?;
            text.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| invalid(format!("<double> {:?} is not a finite number", excerpt(&text))))
        }
        "dateTime.iso8601" => {
            let text = scalar("dateTime.iso8601")?;
            Stamp::parse(&text)
                .map(|stamp| Value::String(stamp.extended()))
                .ok_or_else(|| {
                    invalid(format!(
                        "<dateTime.iso8601> {:?} is not a date-time such as 20261130T07:18:03",
                        excerpt(&text)
                    ))
                })
        }
        "base64" => {
            let mut text = text()?;
            text.retain(|c| !c.is_ascii_whitespace());
            match base64::engine::general_purpose::STANDARD.decode(&text) {
                Ok(_) => Ok(Value::String(text)),
                Err(err) => Err(invalid(format!("<base64> is not base64: {err}"))),
            }
        }
        "struct" => {
            let mut object = Map::new();
            for member in typed.elements()? {
                let (name, value) = member_of(member)?;
                // NB: which of two values to believe is no guess to make,
                // as for a JSON member named twice.
                if object.contains_key(&name) {
                    return Err(invalid(format!(
                        "a <struct> holds two members named {:?}",
                        excerpt(&name)
                    )));
                }
                object.insert(name, value);
            }
            Ok(Value::Object(object))
        }
        "array" => {
            let [data] = typed.elements()?[..] else {
                return Err(invalid("an <array> holds one <data>"));
            };
            expect(data, "data")?;
            data.elements()?
                .into_iter()
                .map(|value| expect(value, "value").and_then(from_xml))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        "nil" => Ok(Value::Null),
        other => Err(invalid(format!(
            "unknown type <{}> (XML-RPC has int, i4, i8, boolean, string, double, dateTime.iso8601, base64, struct, array and nil)",
            excerpt(other)
        ))),
    }
}

/// A `<member>`'s name and value.
fn member_of(member: &Element) -> Result<(String, Value), ErrorObject> {
    expect(member, "member")?;
    let (mut name, mut value) = (None, None);
    for part in member.elements()? {
        match part.name.as_str() {
            "name" if name.is_none() => name = Some(part.text()?),
            "value" if value.is_none() => value = Some(from_xml(part)?),
            other => {
                return Err(invalid(format!(
                    "<{}> in a <member>, which holds one <name> and one <value>",
                    excerpt(other)
                )))
            }
        }
    }
    match (name, value) {
        (Some(name), Some(value)) => Ok((name, value)),
        _ => Err(invalid("a <member> holds one <name> and one <value>")),
    }
}

/// `element` itself when it is named `name`.
pub(super) fn expect<'e>(element: &'e Element, name: &str) -> Result<&'e Element, ErrorObject> {
    if element.name == name {
        Ok(element)
    } else {
        Err(invalid(format!(
            "<{}> where <{name}> belongs",
            excerpt(&element.name)
        )))
    }
}

fn excerpt(text: &str) -> std::borrow::Cow<'_, str> {
    crate::excerpt::excerpt(text)
}

/// Where in a result's JSON Schema a value is, to tell whether a string is a
/// date-time or bytes. The root keeps the `$defs` that references point to.
#[derive(Clone, Copy)]
pub(super) struct Hint<'a> {
    schema: Option<&'a Value>,
    root: Option<&'a Value>,
}

impl<'a> Hint<'a> {
    /// No schema: strings stay strings.
    pub(super) const NONE: Hint<'static> = Hint {
        schema: None,
        root: None,
    };

    /// The hint of a whole result whose schema is `schema`.
    pub(super) fn root(schema: Option<&'a Value>) -> Self {
        Self {
            schema,
            root: schema,
        }
    }

    fn at(self, schema: Option<&'a Value>) -> Self {
        Self {
            schema,
            root: self.root,
        }
    }

    /// The schema here, its references followed (a few deep: a cycle ends
    /// as no hint) and `Option<T>`'s `anyOf [T, null]` read as `T`.
    fn resolved(self) -> Option<&'a Map<String, Value>> {
        let mut schema = self.schema?.as_object()?;
        for _ in 0..16 {
            if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
                let (defs, name) = target.strip_prefix("#/")?.rsplit_once('/')?;
                schema = self.root?.get(defs)?.get(name)?.as_object()?;
                continue;
            }
            let alternatives = ["anyOf", "oneOf"]
                .iter()
                .find_map(|key| schema.get(*key).and_then(Value::as_array));
            if let Some(alternatives) = alternatives {
                let mut some = alternatives
                    .iter()
                    .filter(|alt| alt.get("type").and_then(Value::as_str) != Some("null"));
                match (some.next(), some.next()) {
                    (Some(only), None) => {
                        schema = only.as_object()?;
                        continue;
                    }
                    _ => return None,
                }
            }
            return Some(schema);
        }
        None
    }

    /// What the schema says a string here is.
    fn string_kind(self) -> StringKind {
        let Some(schema) = self.resolved() else {
            return StringKind::Text;
        };
        if schema.get("format").and_then(Value::as_str) == Some("date-time") {
            StringKind::DateTime
        } else if schema.get("contentEncoding").and_then(Value::as_str) == Some("base64") {
            StringKind::Base64
        } else {
            StringKind::Text
        }
    }

    fn member(self, name: &str) -> Self {
        let schema = self.resolved();
        let by_name = schema.and_then(|s| s.get("properties")?.get(name));
        let extra = schema.and_then(|s| s.get("additionalProperties"));
        self.at(by_name.or(extra))
    }

    fn item(self, index: usize) -> Self {
        let schema = self.resolved();
        let positional = schema.and_then(|s| s.get("prefixItems")?.get(index));
        let items = schema.and_then(|s| s.get("items"));
        self.at(positional.or(items))
    }

    /// The XML-RPC type of each param, when this is a params schema that
    /// gives them one by one: a struct's fields (in the order of `fields`,
    /// the struct's own, when it names them all) or a tuple's items. `None`
    /// for a variadic list, or a schema that says nothing of them.
    pub(super) fn params(self, fields: &[&str]) -> Option<Vec<&'static str>> {
        let schema = self.resolved()?;
        if let Some(Value::Object(props)) = schema.get("properties") {
            let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
            if names.iter().all(|name| fields.contains(name)) {
                names.sort_by_key(|name| fields.iter().position(|f| f == name));
            }
            return Some(
                names
                    .into_iter()
                    .map(|name| self.member(name).type_name())
                    .collect(),
            );
        }
        if let Some(Value::Array(items)) = schema.get("prefixItems") {
            return Some((0..items.len()).map(|i| self.item(i).type_name()).collect());
        }
        None
    }

    /// The XML-RPC type name of this schema, for `system.methodSignature`:
    /// `undef` when it is not one type.
    pub(super) fn type_name(self) -> &'static str {
        let Some(schema) = self.resolved() else {
            return "undef";
        };
        let kinds: Vec<&str> = match schema.get("type") {
            Some(Value::String(kind)) => vec![kind.as_str()],
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .filter(|kind| *kind != "null")
                .collect(),
            _ if schema.contains_key("properties") => vec!["object"],
            _ => Vec::new(),
        };
        match kinds[..] {
            ["string"] => match self.string_kind() {
                StringKind::DateTime => "dateTime.iso8601",
                StringKind::Base64 => "base64",
                StringKind::Text => "string",
            },
            ["integer"] => "int",
            ["number"] => "double",
            ["boolean"] => "boolean",
            ["array"] => "array",
            ["object"] => "struct",
            ["null"] | [] if schema.get("type").is_some() => "nil",
            _ => "undef",
        }
    }
}

enum StringKind {
    Text,
    DateTime,
    Base64,
}

/// Writes `value` as an XML-RPC `<value>` into `out`, with the types
/// [`from_xml`] reads, in reverse: integers in i32's range as `<int>`, larger
/// ones as `<i8>` (an extension most clients read; past i64 a `<double>`),
/// `null` as `<nil/>`, a string as `<dateTime.iso8601>` or `<base64>` where
/// `hint` says it is one.
pub(super) fn to_xml(out: &mut String, value: &Value, hint: Hint<'_>) {
    out.push_str("<value>");
    match value {
        Value::Null => out.push_str("<nil/>"),
        Value::Bool(b) => {
            let _ = write!(out, "<boolean>{}</boolean>", u8::from(*b));
        }
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) if i32::try_from(i).is_ok() => {
                let _ = write!(out, "<int>{i}</int>");
            }
            (Some(i), _) => {
                let _ = write!(out, "<i8>{i}</i8>");
            }
            (None, Some(f)) => {
                // NB: Display, not Debug, which writes 1e-7: the spec allows
                // only decimal point notation, and a point it must have.
                let text = f.to_string();
                let point = if text.contains('.') { "" } else { ".0" };
                let _ = write!(out, "<double>{text}{point}</double>");
            }
            (None, None) => {
                let _ = write!(out, "<string>{n}</string>");
            }
        },
        Value::String(text) => match hint.string_kind() {
            StringKind::DateTime if Stamp::parse(text).is_some() => {
                let stamp = Stamp::parse(text).map(|s| s.xmlrpc()).unwrap_or_default();
                let _ = write!(out, "<dateTime.iso8601>{stamp}</dateTime.iso8601>");
            }
            StringKind::Base64 => {
                out.push_str("<base64>");
                escape_into(out, text);
                out.push_str("</base64>");
            }
            _ => {
                out.push_str("<string>");
                escape_into(out, text);
                out.push_str("</string>");
            }
        },
        Value::Array(items) => {
            out.push_str("<array><data>");
            for (i, item) in items.iter().enumerate() {
                to_xml(out, item, hint.item(i));
            }
            out.push_str("</data></array>");
        }
        Value::Object(members) => {
            out.push_str("<struct>");
            for (name, member) in members {
                out.push_str("<member><name>");
                escape_into(out, name);
                out.push_str("</name>");
                to_xml(out, member, hint.member(name));
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
    }
    out.push_str("</value>");
}

/// Text as XML character data. Characters XML 1.0 cannot hold at all (most
/// C0 controls) are written as U+FFFD: no client could read the answer
/// otherwise.
pub(super) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Kept through parsers' end-of-line normalisation.
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode(xml: &str) -> Result<Value, ErrorObject> {
        from_xml(&super::super::tree::parse(xml, 64)?)
    }

    fn encode(value: &Value, schema: Option<&Value>) -> String {
        let mut out = String::new();
        to_xml(&mut out, value, Hint::root(schema));
        out
    }

    #[test]
    fn every_type_decodes_to_its_json_form() {
        let xml = "<value><struct>\
            <member><name>i</name><value><i4>-7</i4></value></member>\
            <member><name>big</name><value><i8>8589934592</i8></value></member>\
            <member><name>b</name><value><boolean>1</boolean></value></member>\
            <member><name>s</name><value><string> a &lt; b </string></value></member>\
            <member><name>bare</name><value>text</value></member>\
            <member><name>empty</name><value><string/></value></member>\
            <member><name>d</name><value><double>2.5</double></value></member>\
            <member><name>t</name><value><dateTime.iso8601>20261130T07:18:03</dateTime.iso8601></value></member>\
            <member><name>bytes</name><value><base64>aGVs\n bG8=</base64></value></member>\
            <member><name>list</name><value><array><data><value><int>1</int></value><value><nil/></value></data></array></value></member>\
            </struct></value>";
        assert_eq!(
            decode(xml).expect("valid"),
            json!({
                "i": -7, "big": 8_589_934_592_i64, "b": true, "s": " a < b ", "bare": "text", "empty": "",
                "d": 2.5, "t": "2026-11-30T07:18:03", "bytes": "aGVsbG8=", "list": [1, null]
            })
        );
    }

    #[test]
    fn values_that_are_not_their_type_are_invalid() {
        for xml in [
            "<value><int>x</int></value>",
            "<value><boolean>true</boolean></value>",
            "<value><double>NaN</double></value>",
            "<value><dateTime.iso8601>today</dateTime.iso8601></value>",
            "<value><base64>!!</base64></value>",
            "<value><float>1</float></value>",
            "<value><int>1</int><int>2</int></value>",
            "<value><array><value/></array></value>",
            "<value><struct><member><name>a</name></member></struct></value>",
        ] {
            assert_eq!(decode(xml).expect_err(xml).code, -32600, "{xml}");
        }
    }

    #[test]
    fn a_struct_with_a_member_named_twice_is_invalid() {
        let xml = "<value><struct>\
            <member><name>value</name><value><int>1</int></value></member>\
            <member><name>value</name><value><int>2</int></value></member>\
            </struct></value>";
        let err = decode(xml).expect_err("two members named `value`");
        assert_eq!(err.code, -32600);
        assert!(
            err.message.contains(r#"two members named "value""#),
            "{}",
            err.message
        );
    }

    #[test]
    fn results_encode_with_the_types_their_schema_names() {
        let schema = json!({
            "type": "object",
            "properties": {
                "at": {"$ref": "#/$defs/Stamp"},
                "bytes": {"anyOf": [{"type": "string", "contentEncoding": "base64"}, {"type": "null"}]},
                "name": {"type": "string"}
            },
            "$defs": {"Stamp": {"type": "string", "format": "date-time"}}
        });
        let value = json!({"at": "2026-11-30T07:18:03", "bytes": "aGk=", "name": "a&b", "n": 1, "big": 1_i64 << 40, "x": 0.5, "none": null});
        // Members in the map's order, which depends on serde_json's features.
        let xml = encode(&value, Some(&schema));
        for member in [
            "<member><name>at</name><value><dateTime.iso8601>20261130T07:18:03</dateTime.iso8601></value></member>",
            "<member><name>bytes</name><value><base64>aGk=</base64></value></member>",
            "<member><name>name</name><value><string>a&amp;b</string></value></member>",
            "<member><name>n</name><value><int>1</int></value></member>",
            "<member><name>big</name><value><i8>1099511627776</i8></value></member>",
            "<member><name>x</name><value><double>0.5</double></value></member>",
            "<member><name>none</name><value><nil/></value></member>",
        ] {
            assert!(xml.contains(member), "{member} not in {xml}");
        }
        assert_eq!(
            encode(&json!("2026-11-30T07:18:03"), None),
            "<value><string>2026-11-30T07:18:03</string></value>"
        );
    }

    #[test]
    fn doubles_are_written_in_decimal_point_notation() {
        // The spec: sign, digits, a period, digits; no exponent.
        for (value, xml) in [
            (json!(0.0000001), "<double>0.0000001</double>"),
            (json!(1e20), "<double>100000000000000000000.0</double>"),
            (json!(-2.5), "<double>-2.5</double>"),
            (json!(u64::MAX), "<double>18446744073709552000.0</double>"),
        ] {
            assert_eq!(encode(&value, None), format!("<value>{xml}</value>"));
        }
    }
}
