//! Lexical helpers for the RFC 3261 §25.1 grammar (tokens, LWS, quoted strings, lists).

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
}

static TOKEN: [bool; 256] = token_table();

/// `token` characters (RFC 3261 §25.1): alphanum and `-.!%*_+`'~`.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[b as usize]
}

/// Byte index of the first ASCII `c` in `s`.
#[inline]
pub(crate) fn find_ch(s: &str, c: u8) -> Option<usize> {
    find_byte(s.as_bytes(), c)
}

/// Splits `s` around the first ASCII `c`.
#[inline]
pub(crate) fn split_once_ch(s: &str, c: u8) -> Option<(&str, &str)> {
    let i = find_ch(s, c)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Index of the first `needle` in `hay`, eight bytes at a time.
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let rep = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let v = u64::from_le_bytes(w) ^ rep;
        // a zero byte in v is a match; the lowest flagged byte is always a true match
        let t = v.wrapping_sub(LO) & !v & HI;
        if t != 0 {
            return Some(base + (t.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| base + p)
}

/// True when `s` is a non-empty `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Whitespace inside a (already unfolded) header value: SP, HTAB and stray line breaks.
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

pub(crate) fn trim_start_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', '\r', '\n'])
}

/// Reads a `quoted-string` at the start of `s` (which must begin with `"`).
/// Returns the unescaped content and the rest after the closing quote.
/// `\` escapes any octet except CR and LF (RFC 3261 §25.1 `quoted-pair`).
pub(crate) fn read_quoted(s: &str) -> Option<(String, &str)> {
    let rest = s.strip_prefix('"')?;
    // fast path: no escape before the closing quote
    if let Some(end) = rest.bytes().position(|b| b == b'"' || b == b'\\')
        && rest.as_bytes().get(end) == Some(&b'"')
    {
        return Some((rest.get(..end)?.to_owned(), rest.get(end + 1..)?));
    }
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, rest.get(i + 1..)?)),
            '\\' => {
                let (_, n) = chars.next()?;
                if n == '\r' || n == '\n' {
                    return None;
                }
                out.push(n);
            }
            _ => out.push(c),
        }
    }
    None
}

/// Length in bytes of the `quoted-string` at the start of `s`, quotes included.
pub(crate) fn quoted_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

/// Quotes `s` as a `quoted-string`, escaping `"` and `\`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Splits a header value at top-level commas (not inside quoted strings or `<...>`).
/// Returns `None` when a quoted string or angle bracket is unbalanced.
pub(crate) fn split_commas(s: &str) -> Option<Vec<&str>> {
    let b = s.as_bytes();
    if find_byte(b, b',').is_none() && find_byte(b, b'<').is_none() && find_byte(b, b'"').is_none()
    {
        return Some(vec![trim_ws(s)]);
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut in_angle = false;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let n = quoted_len(s.get(i..)?)?;
                i += n;
                continue;
            }
            b'<' if !in_angle => in_angle = true,
            b'>' if in_angle => in_angle = false,
            b',' if !in_angle => {
                out.push(trim_ws(s.get(start..i)?));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if in_angle {
        return None;
    }
    out.push(trim_ws(s.get(start..)?));
    Some(out)
}

/// Decodes `%XX` escapes (RFC 3261 §25.1 `escaped`). Returns `None` on a malformed escape
/// or when the result is not UTF-8.
pub(crate) fn unescape(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = hex(*b.get(i + 1)?)?;
            let l = hex(*b.get(i + 2)?)?;
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes every byte of `s` for which `keep` is false.
pub(crate) fn escape(s: &str, keep: fn(u8) -> bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// `unreserved` (RFC 3261 §25.1): alphanum / mark.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// Parses a decimal number made only of digits (leading zeros allowed).
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_respect_quotes_and_angles() {
        let v = split_commas(r#""a,b" <sip:x;p=1,2>, <sip:y> ,c"#).unwrap();
        assert_eq!(v, vec![r#""a,b" <sip:x;p=1,2>"#, "<sip:y>", "c"]);
        assert!(split_commas("\"open").is_none());
        assert!(split_commas("<sip:x").is_none());
    }

    #[test]
    fn quoted_strings() {
        let (s, rest) = read_quoted(r#""J Rosenberg \\\"" <x>"#).unwrap();
        assert_eq!(s, r#"J Rosenberg \""#);
        assert_eq!(rest, " <x>");
        assert!(read_quoted("\"abc").is_none());
        assert_eq!(quote(r#"a"b\"#), r#""a\"b\\""#);
    }

    #[test]
    fn find_byte_matches_position() {
        let hay: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(37)).collect();
        for needle in 0..=255u8 {
            for start in 0..20 {
                let h = &hay[start..];
                assert_eq!(find_byte(h, needle), h.iter().position(|&b| b == needle));
            }
        }
        assert_eq!(find_byte(b"", b'\n'), None);
        assert_eq!(find_byte(b"\x80\x0a", b'\n'), Some(1));
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("%75se%72").unwrap(), "user");
        assert!(unescape("%Z1").is_none());
        assert!(unescape("%4").is_none());
        let mut o = String::new();
        escape("a b", is_unreserved, &mut o);
        assert_eq!(o, "a%20b");
    }
}
