//! ISO 8601 date-times in the forms JSON and XML-RPC write them: one parser for `types::DateTime` and the XML-RPC layer.

use std::fmt::Write as _;

/// A date and time of day as written, with its offset if one was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) year: u16,
    pub(crate) month: u8,
    pub(crate) day: u8,
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
    pub(crate) nanos: u32,
    /// Minutes east of UTC: `Z` is `Some(0)`; `None` when none was written.
    pub(crate) offset: Option<i16>,
}

impl Stamp {
    /// Reads `2026-11-30T07:18:03`, XML-RPC's `20261130T07:18:03`, the basic
    /// `20261130T071803`, each with an optional fraction (`.5`, `,5`; digits
    /// past nanoseconds ignored) and offset (`Z`, `+02:00`, `+0200`, `+02`).
    /// `None` for anything else, or a date or time that does not exist.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (date, rest) = text.split_once(['T', 't'])?;
        let date = date.as_bytes();
        let (year, month, day) = match date.len() {
            10 if date[4] == b'-' && date[7] == b'-' => (
                digits(&date[0..4])?,
                digits(&date[5..7])?,
                digits(&date[8..10])?,
            ),
            8 => (
                digits(&date[0..4])?,
                digits(&date[4..6])?,
                digits(&date[6..8])?,
            ),
            _ => return None,
        };
        let split = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (time, offset) = rest.split_at(split);
        let (clock, fraction) = match time.split_once(['.', ',']) {
            Some((clock, fraction)) => (clock, Some(fraction)),
            None => (time, None),
        };
        let clock = clock.as_bytes();
        let (hour, minute, second) = match clock.len() {
            8 if clock[2] == b':' && clock[5] == b':' => (
                digits(&clock[0..2])?,
                digits(&clock[3..5])?,
                digits(&clock[6..8])?,
            ),
            6 => (
                digits(&clock[0..2])?,
                digits(&clock[2..4])?,
                digits(&clock[4..6])?,
            ),
            _ => return None,
        };
        let nanos = match fraction {
            None => 0,
            Some(f) if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) => return None,
            Some(f) => {
                let mut nanos = 0u32;
                for i in 0..9 {
                    let digit = f.as_bytes().get(i).map_or(0, |b| u32::from(b - b'0'));
                    nanos = nanos * 10 + digit;
                }
                nanos
            }
        };
        let offset = match offset.as_bytes() {
            [] => None,
            [b'Z' | b'z'] => Some(0),
            [sign @ (b'+' | b'-'), rest @ ..] => {
                let (h, m) = match rest {
                    [h1, h2] => (digits(&[*h1, *h2])?, 0),
                    [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                        (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                    }
                    _ => return None,
                };
                if h > 23 || m > 59 {
                    return None;
                }
                let minutes = i16::try_from(h * 60 + m).ok()?;
                Some(if *sign == b'-' { -minutes } else { minutes })
            }
            _ => return None,
        };
        let stamp = Self {
            year: u16::try_from(year).ok()?,
            month: u8::try_from(month).ok()?,
            day: u8::try_from(day).ok()?,
            hour: u8::try_from(hour).ok()?,
            minute: u8::try_from(minute).ok()?,
            second: u8::try_from(second).ok()?,
            nanos,
            offset,
        };
        stamp.exists().then_some(stamp)
    }

    /// Whether the date is on the calendar and the time on the clock (no
    /// leap seconds: neither `time` nor most clients take a 60th second).
    fn exists(&self) -> bool {
        let leap = self.year % 4 == 0 && (self.year % 100 != 0 || self.year % 400 == 0);
        let days = match self.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return false,
        };
        (1..=days).contains(&self.day) && self.hour < 24 && self.minute < 60 && self.second < 60
    }

    /// ISO 8601's extended form, as JSON carries it:
    /// `2026-11-30T07:18:03`, with the fraction and offset when there are.
    pub(crate) fn extended(&self) -> String {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.nanos != 0 {
            let fraction = format!("{:09}", self.nanos);
            let _ = write!(out, ".{}", fraction.trim_end_matches('0'));
        }
        self.write_offset(&mut out);
        out
    }

    /// XML-RPC's `dateTime.iso8601` form, `20261130T07:18:03`, which is what
    /// its clients parse (Python's `xmlrpc.client` reads nothing else). It
    /// has no fraction, so none is written. UTC's `Z` is left out too, since
    /// a time without a zone is what XML-RPC's sides take as UTC; any other
    /// offset is kept as given.
    #[cfg_attr(not(feature = "xmlrpc"), allow(dead_code))]
    pub(crate) fn xmlrpc(&self) -> String {
        let mut out = format!(
            "{:04}{:02}{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.offset != Some(0) {
            self.write_offset(&mut out);
        }
        out
    }

    fn write_offset(&self, out: &mut String) {
        match self.offset {
            None => {}
            Some(0) => out.push('Z'),
            Some(minutes) => {
                let sign = if minutes < 0 { '-' } else { '+' };
                let minutes = minutes.unsigned_abs();
                let _ = write!(out, "{sign}{:02}:{:02}", minutes / 60, minutes % 60);
            }
        }
    }
}

/// The number `bytes` spell in ASCII digits.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::Stamp;

    #[test]
    fn the_forms_json_and_xmlrpc_write_read_alike() {
        let plain = Stamp::parse("2026-11-30T07:18:03").expect("extended");
        assert_eq!(Stamp::parse("20261130T07:18:03"), Some(plain));
        assert_eq!(Stamp::parse("20261130T071803"), Some(plain));
        assert_eq!(plain.extended(), "2026-11-30T07:18:03");
        assert_eq!(plain.xmlrpc(), "20261130T07:18:03");
    }

    #[test]
    fn fractions_and_offsets_are_kept() {
        let stamp = Stamp::parse("2024-02-29T23:59:59.250+05:30").expect("a leap day");
        assert_eq!(stamp.nanos, 250_000_000);
        assert_eq!(stamp.offset, Some(330));
        assert_eq!(stamp.extended(), "2024-02-29T23:59:59.25+05:30");
        assert_eq!(stamp.xmlrpc(), "20240229T23:59:59+05:30");
        let utc = Stamp::parse("20240229T23:59:59Z").expect("UTC");
        assert_eq!(utc.offset, Some(0));
        assert_eq!(utc.extended(), "2024-02-29T23:59:59Z");
        assert_eq!(utc.xmlrpc(), "20240229T23:59:59");
        assert_eq!(
            Stamp::parse("2024-01-01T00:00:00-08").map(|s| s.offset),
            Some(Some(-480))
        );
    }

    #[test]
    fn dates_that_do_not_exist_and_other_text_are_refused() {
        for text in [
            "2023-02-29T00:00:00",
            "2026-13-01T00:00:00",
            "2026-11-30T24:00:00",
            "2026-11-30T07:18:60",
            "2026-11-30",
            "2026-11-30T07:18",
            "2026-11-30T07:18:03.",
            "2026-11-30T07:18:03+2",
            "yesterday",
            "",
        ] {
            assert_eq!(Stamp::parse(text), None, "{text}");
        }
    }
}
