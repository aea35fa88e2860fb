//! RabbitMQ's reply texts for frame errors print Erlang terms with `io_lib:format`'s `~p` and
//! `~w`. Clients show these texts to people and compare them in tests, so the few shapes that
//! occur are rendered here the way Erlang/OTP does, line breaks included: `~p` fills lines up
//! to column 79 and continues a term under its opening bracket (`io_lib_pretty`).

/// The reason of a frame error (the last `~p` of RabbitMQ's `frame_error/5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameReason {
    UnknownFrame,
    FrameTooLarge { size: u32, max: u32 },
    InvalidEndMarker(u8),
}

impl FrameReason {
    /// The Erlang term's elements: an atom, or a tuple's elements.
    fn elements(self) -> Vec<String> {
        match self {
            FrameReason::UnknownFrame => vec!["unknown_frame".to_owned()],
            FrameReason::FrameTooLarge { size, max } => {
                vec!["frame_too_large".to_owned(), size.to_string(), max.to_string()]
            }
            FrameReason::InvalidEndMarker(m) => vec!["invalid_frame_end_marker".to_owned(), m.to_string()],
        }
    }
}

/// The last column `~p` writes to on a line.
const LINE_END: usize = 80;

/// RabbitMQ `frame_error`: "type ~p, ~s octets = ~p: ~p".
pub fn frame_error(frame_type: u8, payload: &[u8], reason: FrameReason) -> String {
    let mut out = snippet(frame_type, payload);
    out.push_str(": ");
    let elements = reason.elements();
    if elements.len() == 1 {
        out.push_str(&elements[0]);
    } else {
        let items: Vec<String> = elements
            .iter()
            .enumerate()
            .map(|(i, e)| if i + 1 == elements.len() { format!("{e}}}") } else { format!("{e},") })
            .collect();
        fill(&mut out, "{", &items);
    }
    out
}

/// RabbitMQ `unexpected_frame`: "type ~p, ~s octets = ~p".
pub fn unexpected_frame(frame_type: u8, payload: &[u8]) -> String {
    snippet(frame_type, payload)
}

/// RabbitMQ `rabbit_misc:frame_error/2`: "cannot decode ~w" (never broken, never a string).
pub fn cannot_decode(fields: &[u8]) -> String {
    let numbers: Vec<String> = fields.iter().map(u8::to_string).collect();
    format!("cannot decode <<{}>>", numbers.join(","))
}

/// An Erlang binary or string as `~p` prints it inline (`<<"some">>`, `<<1,2>>`).
pub fn binary_inline(bytes: &[u8]) -> String {
    let mut out = String::new();
    fill(&mut out, "<<", &binary_items(bytes));
    out
}

fn snippet(frame_type: u8, payload: &[u8]) -> String {
    let (which, shown) = if payload.len() <= 16 { ("all", payload) } else { ("first 16", &payload[..16]) };
    let mut out = format!("type {frame_type}, {which} octets = ");
    fill(&mut out, "<<", &binary_items(shown));
    out
}

/// The pieces of a binary: one quoted string, or one piece per byte ("1," ... "2>>").
fn binary_items(bytes: &[u8]) -> Vec<String> {
    if bytes.is_empty() {
        return vec![">>".to_owned()];
    }
    if bytes.iter().all(|&b| printable(b)) {
        let mut s = String::from("\"");
        for &b in bytes {
            match b {
                b'"' => s.push_str("\\\""),
                b'\\' => s.push_str("\\\\"),
                b'\n' => s.push_str("\\n"),
                b'\r' => s.push_str("\\r"),
                b'\t' => s.push_str("\\t"),
                0x0b => s.push_str("\\v"),
                0x08 => s.push_str("\\b"),
                0x0c => s.push_str("\\f"),
                0x1b => s.push_str("\\e"),
                _ => s.push(char::from(b)),
            }
        }
        s.push_str("\">>");
        return vec![s];
    }
    let last = bytes.len() - 1;
    bytes.iter().enumerate().map(|(i, b)| if i == last { format!("{b}>>") } else { format!("{b},") }).collect()
}

/// Latin-1 printable, as `io_lib:printable_latin1_list/1`.
fn printable(b: u8) -> bool {
    matches!(b, 32..=126 | 160..=255 | b'\n' | b'\r' | b'\t' | 0x0b | 0x08 | 0x0c | 0x1b)
}

/// Append `open` and `items`; when a term does not fit before `LINE_END`, its items fill
/// lines and continue under the first item.
fn fill(out: &mut String, open: &str, items: &[String]) {
    let start = column(out);
    let total: usize = open.len() + items.iter().map(|i| i.chars().count()).sum::<usize>();
    out.push_str(open);
    if start + total < LINE_END {
        items.iter().for_each(|i| out.push_str(i));
        return;
    }
    let indent = start + open.len();
    let mut col = indent;
    for (n, item) in items.iter().enumerate() {
        let len = item.chars().count();
        if n > 0 && col + len >= LINE_END {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        }
        out.push_str(item);
        col += len;
    }
}

fn column(s: &str) -> usize {
    s.rsplit('\n').next().map_or(0, |line| line.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected texts produced by `io_lib:format` on Erlang/OTP (RabbitMQ 3.10's runtime).
    #[test]
    fn short_terms_stay_on_one_line() {
        assert_eq!(
            frame_error(5, &[0, 1, 2], FrameReason::UnknownFrame),
            "type 5, all octets = <<0,1,2>>: unknown_frame"
        );
        assert_eq!(
            frame_error(8, b"abc", FrameReason::UnknownFrame),
            "type 8, all octets = <<\"abc\">>: unknown_frame"
        );
        assert_eq!(
            frame_error(3, b"", FrameReason::FrameTooLarge { size: 140000, max: 131064 }),
            "type 3, all octets = <<>>: {frame_too_large,140000,131064}"
        );
        assert_eq!(
            frame_error(1, &[0, 50, 0, 10, 0, 0, 0, 0, 0, 0, 0], FrameReason::InvalidEndMarker(0)),
            "type 1, all octets = <<0,50,0,10,0,0,0,0,0,0,0>>: {invalid_frame_end_marker,0}"
        );
        assert_eq!(unexpected_frame(3, b"x"), "type 3, all octets = <<\"x\">>");
        assert_eq!(
            frame_error(1, b"ab\x7fc", FrameReason::UnknownFrame),
            "type 1, all octets = <<97,98,127,99>>: unknown_frame"
        );
        assert_eq!(cannot_decode(&[0, 0, 14, 116]), "cannot decode <<0,0,14,116>>");
    }

    #[test]
    fn long_terms_break_like_io_lib_pretty() {
        assert_eq!(
            frame_error(1, &[0, 50, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0], FrameReason::InvalidEndMarker(0)),
            format!(
                "type 1, all octets = <<0,50,0,10,0,0,0,0,0,0,0,0>>: {{invalid_frame_end_marker,\n{}0}}",
                " ".repeat(53)
            )
        );
        assert_eq!(
            frame_error(1, b"abcdefghijklmnop", FrameReason::FrameTooLarge { size: 2147483647, max: 131064 }),
            format!(
                "type 1, all octets = <<\"abcdefghijklmnop\">>: {{frame_too_large,2147483647,\n{}131064}}",
                " ".repeat(46)
            )
        );
        let payload = [7, 28, 46, 43, 184, 86, 157, 128, 108, 18, 81, 220, 201, 190, 227, 137, 1];
        assert_eq!(
            frame_error(1, &payload, FrameReason::UnknownFrame),
            format!(
                "type 1, first 16 octets = <<7,28,46,43,184,86,157,128,108,18,81,220,201,190,\n{}227,137>>: unknown_frame",
                " ".repeat(28)
            )
        );
    }
}
