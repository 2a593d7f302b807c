//! Short prefixes of what a peer sent, for logs and error messages: a peer's 16 MiB text is never repeated whole.

use std::borrow::Cow;
use std::fmt;

/// The most of a peer's text a log line or an error message repeats.
pub(crate) const MAX_EXCERPT: usize = 100;

/// `text` itself when it is short, else its first [`MAX_EXCERPT`] bytes (cut
/// on a character boundary) and how long it was.
pub(crate) fn excerpt(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_EXCERPT {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_EXCERPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes in all)", &text[..end], text.len()))
}

/// [`excerpt`] of a value's `Display`, for errors that carry a peer's words.
pub(crate) fn excerpt_of(value: impl fmt::Display) -> String {
    let text = value.to_string();
    match excerpt(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(cut) => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_says_its_length() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(1000);
        let cut = excerpt(&long);
        assert!(cut.len() < MAX_EXCERPT + 40, "{cut}");
        assert!(cut.ends_with("(2000 bytes in all)"), "{cut}");
    }
}
