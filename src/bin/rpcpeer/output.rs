//! Printing JSON for people and for pipes: pretty and colored on a terminal, one exact line otherwise.

use std::io::IsTerminal;

use rpcpeer::ErrorObject;

/// How to print JSON to one stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// Indent over several lines, rather than one compact line.
    pub(crate) pretty: bool,
    /// ANSI colors (only ever with `pretty`).
    pub(crate) color: bool,
}

impl Style {
    /// Pretty (and colored unless `NO_COLOR` is set) when stdout is a terminal.
    pub(crate) fn stdout() -> Self {
        Self::detect(std::io::stdout().is_terminal())
    }

    /// As [`Style::stdout`], for stderr.
    pub(crate) fn stderr() -> Self {
        Self::detect(std::io::stderr().is_terminal())
    }

    /// One compact line, no colors: for pipes and line-oriented output.
    pub(crate) const fn line() -> Self {
        Self {
            pretty: false,
            color: false,
        }
    }

    /// Colors only on a terminal, and never when `NO_COLOR` is set (no-color.org).
    fn detect(terminal: bool) -> Self {
        Self {
            pretty: terminal,
            color: terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
}

// ANSI colors, jq's palette where it has one.
/// Object keys.
const KEY: &str = "\x1b[1;34m";
/// String values.
const STRING: &str = "\x1b[32m";
/// Numbers.
const NUMBER: &str = "\x1b[36m";
/// `true` and `false`.
const LITERAL: &str = "\x1b[33m";
/// `null`.
const NULL: &str = "\x1b[90m";
/// The word `error`.
const RED: &str = "\x1b[1;31m";
/// Back to the terminal's own colors.
const RESET: &str = "\x1b[0m";

/// Formats `json`, which must be valid JSON text (a `RawValue` is).
///
/// It works on the text's tokens rather than on a parsed value, so numbers
/// come out exactly as the peer wrote them (a 30-digit integer stays one)
/// and members keep their order. It is a loop, not a recursion, so no
/// nesting depth can overflow the stack.
pub(crate) fn render(json: &str, style: Style) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 2);
    let mut depth = 0usize;
    let mut chars = json.char_indices().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    let paint = |out: &mut String, color: &str, token: &str| {
        if style.color {
            out.push_str(color);
            out.push_str(token);
            out.push_str(RESET);
        } else {
            out.push_str(token);
        }
    };
    while let Some((start, c)) = chars.next() {
        match c {
            c if c.is_ascii_whitespace() => {}
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                // An empty container stays on one line: `{}`, `[]`.
                while chars.next_if(|(_, c)| c.is_ascii_whitespace()).is_some() {}
                if chars.next_if(|(_, next)| *next == close).is_some() {
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    if style.pretty {
                        newline(&mut out, depth);
                    }
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if style.pretty {
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(',');
                if style.pretty {
                    newline(&mut out, depth);
                }
            }
            ':' => out.push_str(if style.pretty { ": " } else { ":" }),
            '"' => {
                let mut end = json.len();
                let mut escaped = false;
                for (i, c) in chars.by_ref() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        _ => {}
                    }
                }
                let token = json.get(start..end).unwrap_or_default();
                while chars.next_if(|(_, c)| c.is_ascii_whitespace()).is_some() {}
                let is_key = chars.peek().is_some_and(|(_, c)| *c == ':');
                paint(&mut out, if is_key { KEY } else { STRING }, token);
            }
            _ => {
                // A number, true, false or null: up to the next delimiter.
                let mut end = start + c.len_utf8();
                while let Some((i, next)) = chars.next_if(|(_, c)| {
                    !matches!(c, ',' | ']' | '}' | ':') && !c.is_ascii_whitespace()
                }) {
                    end = i + next.len_utf8();
                }
                let token = json.get(start..end).unwrap_or_default();
                let color = match c {
                    'n' => NULL,
                    't' | 'f' => LITERAL,
                    _ => NUMBER,
                };
                paint(&mut out, color, token);
            }
        }
    }
    out
}

/// One line for an error object: `error -32601: Method not found (data: …)`.
pub(crate) fn error_line(err: &ErrorObject, style: Style) -> String {
    let label = if style.color {
        format!("{RED}error{RESET}")
    } else {
        "error".to_owned()
    };
    let mut line = format!("{label} {}: {}", err.code, err.message);
    if let Some(data) = &err.data {
        line.push_str(" (data: ");
        line.push_str(&render(data.get(), Style::line()));
        line.push(')');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRETTY: Style = Style {
        pretty: true,
        color: false,
    };

    #[test]
    fn one_line_keeps_every_token_exactly() {
        let text = "{ \"a\" : [ 1.50 , 123456789012345678901234567890, -0e-0 ],\n \"b\\\"\" : { } , \"c\": [ ], \"d\": null, \"e\": true }";
        assert_eq!(
            render(text, Style::line()),
            r#"{"a":[1.50,123456789012345678901234567890,-0e-0],"b\"":{},"c":[],"d":null,"e":true}"#
        );
    }

    #[test]
    fn pretty_indents_by_two() {
        assert_eq!(
            render(r#"{"a":[1,"x, y"],"b":{}}"#, PRETTY),
            "{\n  \"a\": [\n    1,\n    \"x, y\"\n  ],\n  \"b\": {}\n}"
        );
        assert_eq!(render("19", PRETTY), "19");
        assert_eq!(render(r#""é""#, PRETTY), r#""é""#);
    }

    #[test]
    fn colors_tell_keys_from_strings() {
        let colored = render(
            r#"{"k":"v"}"#,
            Style {
                pretty: true,
                color: true,
            },
        );
        assert!(colored.contains(&format!("{KEY}\"k\"{RESET}")));
        assert!(colored.contains(&format!("{STRING}\"v\"{RESET}")));
    }
}
