//! Lexical helpers for the RFC 3261 §25.1 grammar (tokens, LWS, quoted strings, lists).

use std::borrow::Cow;

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

/// `token` character (RFC 3261 §25.1).
pub(crate) const C_TOKEN: u8 = 1;
/// Whitespace inside a header value (see [`is_ws`]).
pub(crate) const C_WS: u8 = 2;
/// Ends an unquoted header parameter value: whitespace, `;`, `,`, `"`, `<`, `>`.
pub(crate) const C_VSTOP: u8 = 4;
/// A Via sent-by host character: alphanumeric, `-`, `.`, `_`.
pub(crate) const C_HOST: u8 = 8;
/// An ASCII digit.
pub(crate) const C_DIGIT: u8 = 16;

const fn class_table() -> [u8; 256] {
    let tok = token_table();
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if tok[i] {
            c |= C_TOKEN;
        }
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            c |= C_WS | C_VSTOP;
        }
        if matches!(b, b';' | b',' | b'"' | b'<' | b'>') {
            c |= C_VSTOP;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
            c |= C_HOST;
        }
        if b.is_ascii_digit() {
            c |= C_DIGIT;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// Character classes (`C_*` bits) of every byte.
pub(crate) static CLASS: [u8; 256] = class_table();

/// First index at or after `i` that is not [`is_ws`] (a plain loop: such runs are short).
#[inline]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

/// First index at or after `i` whose byte is not in any of the classes `cls`.
#[inline]
pub(crate) fn skip_class(b: &[u8], i: usize, cls: u8) -> usize {
    match b.get(i..) {
        Some(r) => {
            i + r
                .iter()
                .position(|&c| CLASS[c as usize] & cls == 0)
                .unwrap_or(r.len())
        }
        None => i,
    }
}

/// [`skip_class`] for a single class bit `cls`, four bytes per step while the run lasts
/// (for the longer runs: header names).
#[inline]
pub(crate) fn skip_class4(b: &[u8], i: usize, cls: u8) -> usize {
    let Some(r) = b.get(i..) else {
        return i;
    };
    let mut k = 0;
    while let Some(&[w, x, y, z]) = r.get(k..k + 4) {
        let all = CLASS[w as usize] & CLASS[x as usize] & CLASS[y as usize] & CLASS[z as usize];
        if all & cls == 0 {
            break;
        }
        k += 4;
    }
    let tail = r.get(k..).unwrap_or_default();
    i + k
        + tail
            .iter()
            .position(|&c| CLASS[c as usize] & cls == 0)
            .unwrap_or(tail.len())
}

/// [`find_class`] for a single class bit `cls`, four bytes per step (for parameter values).
#[inline]
pub(crate) fn find_class4(b: &[u8], i: usize, cls: u8) -> usize {
    let Some(r) = b.get(i..) else {
        return i;
    };
    let mut k = 0;
    while let Some(&[w, x, y, z]) = r.get(k..k + 4) {
        let any = CLASS[w as usize] | CLASS[x as usize] | CLASS[y as usize] | CLASS[z as usize];
        if any & cls != 0 {
            break;
        }
        k += 4;
    }
    let tail = r.get(k..).unwrap_or_default();
    i + k
        + tail
            .iter()
            .position(|&c| CLASS[c as usize] & cls != 0)
            .unwrap_or(tail.len())
}

/// First index at or after `i` whose byte is in one of the classes `cls` (or the end).
#[inline]
pub(crate) fn find_class(b: &[u8], i: usize, cls: u8) -> usize {
    match b.get(i..) {
        Some(r) => {
            i + r
                .iter()
                .position(|&c| CLASS[c as usize] & cls != 0)
                .unwrap_or(r.len())
        }
        None => i,
    }
}

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

/// Index of the first `needle` in `hay`, eight bytes at a time (for the short searches
/// inside a header value this beats a SIMD `memchr` and its set-up).
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
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    CLASS[b as usize] & C_WS != 0
}

/// `s` without leading and trailing [`is_ws`] bytes (a byte loop: the `char`-pattern
/// `trim_matches` costs several times more on short header values).
#[inline]
pub(crate) fn trim_ws(s: &str) -> &str {
    trim_end_ws(trim_start_ws(s))
}

/// `s` without leading [`is_ws`] bytes.
#[inline]
pub(crate) fn trim_start_ws(s: &str) -> &str {
    s.get(skip_ws(s.as_bytes(), 0)..).unwrap_or("")
}

/// `s` without trailing [`is_ws`] bytes.
#[inline]
pub(crate) fn trim_end_ws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut e = b.len();
    while e > 0 && b.get(e - 1).copied().is_some_and(is_ws) {
        e -= 1;
    }
    s.get(..e).unwrap_or("")
}

/// `s` without leading and trailing SP / HTAB.
#[inline]
pub(crate) fn trim_sp(s: &str) -> &str {
    let sp = |b: &u8| *b == b' ' || *b == b'\t';
    let a = s.bytes().take_while(sp).count();
    let e = s.bytes().rev().take_while(sp).count();
    s.get(a..s.len().saturating_sub(e).max(a)).unwrap_or("")
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

/// Like [`read_quoted`], but borrows the content when it has no `\` escape.
pub(crate) fn read_quoted_cow(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let rest = s.strip_prefix('"')?;
    if let Some(end) = rest.bytes().position(|b| b == b'"' || b == b'\\')
        && rest.as_bytes().get(end) == Some(&b'"')
    {
        return Some((Cow::Borrowed(rest.get(..end)?), rest.get(end + 1..)?));
    }
    let (q, tail) = read_quoted(s)?;
    Some((Cow::Owned(q), tail))
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

/// Scans `s` from `i` for the next comma outside quoted strings and `<...>`, carrying the
/// angle state in `in_angle` (the same cuts as [`split_commas`]). `Err` on an unterminated
/// quoted string.
fn next_comma(s: &str, mut i: usize, in_angle: &mut bool) -> Result<Option<usize>, ()> {
    let b = s.as_bytes();
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                i += s.get(i..).and_then(quoted_len).ok_or(())?;
                continue;
            }
            b'<' if !*in_angle => *in_angle = true,
            b'>' if *in_angle => *in_angle = false,
            b',' if !*in_angle => return Ok(Some(i)),
            _ => {}
        }
        i += 1;
    }
    Ok(None)
}

/// True when [`split_commas`] would succeed on `s` (no allocation).
pub(crate) fn commas_balanced(s: &str) -> bool {
    let b = s.as_bytes();
    if find_byte(b, b',').is_none() && find_byte(b, b'<').is_none() && find_byte(b, b'"').is_none()
    {
        return true;
    }
    let mut in_angle = false;
    let mut i = 0;
    loop {
        match next_comma(s, i, &mut in_angle) {
            Err(()) => return false,
            Ok(Some(c)) => i = c + 1,
            Ok(None) => return !in_angle,
        }
    }
}

/// The elements [`split_commas`] returns, lazily. Call it on a value that
/// [`commas_balanced`] accepted (otherwise the iteration stops early).
#[derive(Clone, Debug)]
pub(crate) struct Commas<'a> {
    s: &'a str,
    pos: usize,
    in_angle: bool,
    done: bool,
}

impl<'a> Commas<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Commas {
            s,
            pos: 0,
            in_angle: false,
            done: false,
        }
    }
}

impl<'a> Iterator for Commas<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        match next_comma(self.s, self.pos, &mut self.in_angle) {
            Ok(Some(c)) => {
                let item = self.s.get(self.pos..c)?;
                self.pos = c + 1;
                Some(trim_ws(item))
            }
            Ok(None) => {
                self.done = true;
                Some(trim_ws(self.s.get(self.pos..)?))
            }
            Err(()) => {
                self.done = true;
                None
            }
        }
    }
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

/// [`unescape`] without copying when `s` has no `%`.
pub(crate) fn unescape_cow(s: &str) -> Option<Cow<'_, str>> {
    if find_byte(s.as_bytes(), b'%').is_none() {
        return Some(Cow::Borrowed(s));
    }
    unescape(s).map(Cow::Owned)
}

/// True when [`unescape`] would succeed (no copy when `s` has no `%`).
pub(crate) fn escapes_ok(s: &str) -> bool {
    find_byte(s.as_bytes(), b'%').is_none() || unescape(s).is_some()
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

/// True when `b` has a control character, SP or DEL (`b <= 0x20 || b == 0x7f`), eight
/// bytes at a time.
pub(crate) fn has_ctl_or_space(b: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    for c in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        // a byte below 0x21 (exact test for any such byte), or a byte equal to 0x7f
        let below = x.wrapping_sub(LO * 0x21) & !x & HI;
        let d = x ^ (LO * 0x7f);
        let del = d.wrapping_sub(LO) & !d & HI;
        if below | del != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&c| c <= b' ' || c == 0x7f)
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
        for s in [
            r#""a,b" <sip:x;p=1,2>, <sip:y> ,c"#,
            "a,,b, ",
            "single",
            "<a>,\"q\\\",\",x",
            "",
            ",",
        ] {
            assert!(commas_balanced(s), "{s}");
            assert_eq!(
                Commas::new(s).collect::<Vec<_>>(),
                split_commas(s).unwrap(),
                "{s}"
            );
        }
        for s in ["\"open", "<sip:x", "a, <b", "x,\"y"] {
            assert!(!commas_balanced(s), "{s}");
            assert!(split_commas(s).is_none(), "{s}");
        }
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
    fn ctl_or_space_matches_scalar() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for len in 0..40 {
            for _ in 0..200 {
                let v: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        // mostly printable, sometimes a boundary byte
                        match seed % 16 {
                            0 => [0x20, 0x21, 0x7f, 0x7e, 0x80, 0xff, 0x00, 0x1f]
                                [(seed >> 8) as usize % 8],
                            _ => 0x21 + (seed >> 8) as u8 % 0x5e,
                        }
                    })
                    .collect();
                let want = v.iter().any(|&c| c <= b' ' || c == 0x7f);
                assert_eq!(has_ctl_or_space(&v), want, "{v:?}");
            }
        }
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
