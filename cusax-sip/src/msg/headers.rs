//! The header list of a SIP message (RFC 3261 §7.3): ordered, original names and raw
//! values kept, zero-copy slices of the received buffer.

use bytestring::ByteString;
use std::fmt;

use super::types::HeaderError;

/// Long names of the headers that have a compact form (RFC 3261 §7.3.3, §20 and the
/// IANA registry), indexed by the compact letter.
const COMPACT: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'd', "Request-Disposition"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'j', "Reject-Contact"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
    (b'x', "Session-Expires"),
    (b'y', "Identity"),
];

/// Headers given a numeric id so that look-ups compare integers. Index + 1 is the id;
/// id 0 means "not in this table" (compared by name).
/// The match in [`header_id`] is generated from this list; a test checks they agree.
const KNOWN: &[&str] = &[
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Content-Length",
    "Content-Type",
    "Max-Forwards",
    "Route",
    "Record-Route",
    "Expires",
    "Min-Expires",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Authorization",
    "Proxy-Authorization",
    "Call-Info",
    "P-Asserted-Identity",
    "Privacy",
    "Event",
    "Subscription-State",
    "Allow",
    "Supported",
    "Require",
    "Proxy-Require",
    "Warning",
    "Content-Encoding",
    "Subject",
    "Allow-Events",
    "Refer-To",
    "Referred-By",
    "Session-Expires",
    "Identity",
    "Accept-Contact",
    "Reject-Contact",
    "Request-Disposition",
    "User-Agent",
    "Date",
];

/// The long form of a possibly compact header name.
pub fn long_name(name: &str) -> &str {
    if let [c] = name.as_bytes() {
        let c = c.to_ascii_lowercase();
        if let Some((_, long)) = COMPACT.iter().find(|(k, _)| *k == c) {
            return long;
        }
    }
    name
}

/// Ids of the headers the parser and the typed accessors look up (see [`header_id`]).
pub(crate) mod id {
    pub(crate) const VIA: u8 = 1;
    pub(crate) const FROM: u8 = 2;
    pub(crate) const TO: u8 = 3;
    pub(crate) const CALL_ID: u8 = 4;
    pub(crate) const CSEQ: u8 = 5;
    pub(crate) const CONTACT: u8 = 6;
    pub(crate) const CONTENT_LENGTH: u8 = 7;
    pub(crate) const ROUTE: u8 = 10;
    pub(crate) const RECORD_ROUTE: u8 = 11;
}

/// Numeric id of a header name (compact forms mapped to their long form), 0 if unknown.
pub(crate) fn header_id(name: &str) -> u8 {
    header_id_bytes(name.as_bytes())
}

/// [`header_id`] of a name given as bytes.
pub(crate) fn header_id_bytes(long: &[u8]) -> u8 {
    // the usual spelling first (generated from KNOWN)
    match long {
        b"Via" => return 1,
        b"From" => return 2,
        b"To" => return 3,
        b"Call-ID" => return 4,
        b"CSeq" => return 5,
        b"Contact" => return 6,
        b"Content-Length" => return 7,
        b"Content-Type" => return 8,
        b"Max-Forwards" => return 9,
        b"Route" => return 10,
        b"Record-Route" => return 11,
        b"Expires" => return 12,
        b"Min-Expires" => return 13,
        b"WWW-Authenticate" => return 14,
        b"Proxy-Authenticate" => return 15,
        b"Authorization" => return 16,
        b"Proxy-Authorization" => return 17,
        b"Call-Info" => return 18,
        b"P-Asserted-Identity" => return 19,
        b"Privacy" => return 20,
        b"Event" => return 21,
        b"Subscription-State" => return 22,
        b"Allow" => return 23,
        b"Supported" => return 24,
        b"Require" => return 25,
        b"Proxy-Require" => return 26,
        b"Warning" => return 27,
        b"Content-Encoding" => return 28,
        b"Subject" => return 29,
        b"Allow-Events" => return 30,
        b"Refer-To" => return 31,
        b"Referred-By" => return 32,
        b"Session-Expires" => return 33,
        b"Identity" => return 34,
        b"Accept-Contact" => return 35,
        b"Reject-Contact" => return 36,
        b"Request-Disposition" => return 37,
        b"User-Agent" => return 38,
        b"Date" => return 39,
        _ => {}
    }
    let Some(first) = long.first().map(u8::to_ascii_lowercase) else {
        return 0;
    };
    if long.len() == 1 {
        // compact forms (RFC 3261 §7.3.3), ids of their long forms; agrees with COMPACT
        return match first {
            b'a' => 35,
            b'b' => 32,
            b'c' => 8,
            b'd' => 37,
            b'e' => 28,
            b'f' => 2,
            b'i' => 4,
            b'j' => 36,
            b'k' => 24,
            b'l' => 7,
            b'm' => 6,
            b'o' => 21,
            b'r' => 31,
            b's' => 29,
            b't' => 3,
            b'u' => 30,
            b'v' => 1,
            b'x' => 33,
            b'y' => 34,
            _ => 0,
        };
    }
    // candidates by (length, lower-case first letter); generated from KNOWN
    let cands: &[u8] = match (long.len(), first) {
        (2, b't') => &[3],
        (3, b'v') => &[1],
        (4, b'c') => &[5],
        (4, b'd') => &[39],
        (4, b'f') => &[2],
        (5, b'a') => &[23],
        (5, b'e') => &[21],
        (5, b'r') => &[10],
        (7, b'c') => &[4, 6],
        (7, b'e') => &[12],
        (7, b'p') => &[20],
        (7, b'r') => &[25],
        (7, b's') => &[29],
        (7, b'w') => &[27],
        (8, b'i') => &[34],
        (8, b'r') => &[31],
        (9, b'c') => &[18],
        (9, b's') => &[24],
        (10, b'u') => &[38],
        (11, b'm') => &[13],
        (11, b'r') => &[32],
        (12, b'a') => &[30],
        (12, b'c') => &[8],
        (12, b'm') => &[9],
        (12, b'r') => &[11],
        (13, b'a') => &[16],
        (13, b'p') => &[26],
        (14, b'a') => &[35],
        (14, b'c') => &[7],
        (14, b'r') => &[36],
        (15, b's') => &[33],
        (16, b'c') => &[28],
        (16, b'w') => &[14],
        (18, b'p') => &[15],
        (18, b's') => &[22],
        (19, b'p') => &[17, 19],
        (19, b'r') => &[37],
        _ => return 0,
    };
    cands
        .iter()
        .copied()
        .find(|&i| {
            KNOWN.get(usize::from(i).wrapping_sub(1)).is_some_and(|k| {
                // same length; ASCII case-insensitive (bit 5 folds letters; CR would fold
                // onto '-', so it is excluded)
                k.len() == long.len()
                    && k.bytes()
                        .zip(long)
                        .all(|(k, &a)| (a | 0x20) == (k | 0x20) && a != b'\r')
            })
        })
        .unwrap_or(0)
}

/// Where a header's text lives (plain data: entries need no drop).
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// `start..end` in [`Headers::buf`] (at character boundaries).
    Buf(u32, u32),
    /// Index in [`Headers::owned`]: text added by the application, or an unfolded
    /// multi-line value.
    Owned(u32),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: u8,
    /// The parser counted the commas of this value (Via) and found none.
    no_comma: bool,
    name: Slot,
    value: Slot,
}

/// The ordered header fields of a message.
///
/// Every header line is kept in order with its original name and value text, so unknown
/// headers print back unchanged. Names compare case-insensitively and compact forms
/// equal their long forms (`v` = `Via`). Values are trimmed of surrounding whitespace;
/// a value folded over several lines (RFC 3261 §7.3.1) is stored with each line break
/// replaced by a space. [`Headers::get_all`] yields each header line's value; comma
/// lists are split by the typed accessors.
///
/// Parsed headers are ranges of one shared copy of the received header section (one copy
/// per message, none per header; validated as UTF-8 once, when parsed).
#[derive(Clone, Default)]
pub struct Headers {
    buf: Option<ByteString>,
    entries: Vec<Entry>,
    /// Owned texts referenced by [`Slot::Owned`] (parsed messages usually have none).
    owned: Vec<Box<str>>,
    /// For the ids below [`INDEXED`]: 1 + the position of the first entry with that id
    /// (0 none, 255 "somewhere": scan).
    first: [u8; INDEXED],
    /// Bit `id` set when more than one entry has that id.
    multi: u16,
    /// For the ids below [`INDEXED`]: 1 + the position of the last entry with that id
    /// (0 none, 255 "somewhere": scan to the end).
    last: [u8; INDEXED],
}

/// Ids below this (Via .. Record-Route) are indexed for the typed accessors.
const INDEXED: usize = 12;

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the list over `buf` (the header section); called by the parser.
    pub(crate) fn with_buffer(buf: ByteString, capacity: usize) -> Self {
        Headers {
            buf: Some(buf),
            entries: Vec::with_capacity(capacity),
            ..Headers::default()
        }
    }

    /// Records in the index that the entry at `pos` has id `id`.
    #[inline]
    fn note(&mut self, id: u8, pos: usize) {
        if let Some(f) = self.first.get_mut(usize::from(id))
            && id != 0
        {
            if *f == 0 {
                *f = u8::try_from(pos + 1).unwrap_or(u8::MAX);
            } else {
                self.multi |= 1 << id;
            }
            if let Some(l) = self.last.get_mut(usize::from(id)) {
                *l = u8::try_from(pos + 1).unwrap_or(u8::MAX);
            }
        }
    }

    /// Stores an owned text.
    fn own(&mut self, s: Box<str>) -> Slot {
        self.owned.push(s);
        Slot::Owned(u32::try_from(self.owned.len() - 1).unwrap_or(u32::MAX))
    }

    /// Drops the owned texts no entry refers to any more, once they are the majority.
    fn collect_owned(&mut self) {
        let live = self
            .entries
            .iter()
            .flat_map(|e| [e.name, e.value])
            .filter(|s| matches!(s, Slot::Owned(_)))
            .count();
        if self.owned.len() <= 2 * live + 16 {
            return;
        }
        let mut old: Vec<Option<Box<str>>> = std::mem::take(&mut self.owned)
            .into_iter()
            .map(Some)
            .collect();
        let mut kept = Vec::with_capacity(live);
        for e in &mut self.entries {
            for s in [&mut e.name, &mut e.value] {
                if let Slot::Owned(i) = *s {
                    let text = old
                        .get_mut(i as usize)
                        .and_then(Option::take)
                        .unwrap_or_default();
                    kept.push(text);
                    *s = Slot::Owned(u32::try_from(kept.len() - 1).unwrap_or(u32::MAX));
                }
            }
        }
        self.owned = kept;
    }

    /// Rebuilds the index after entries moved (and drops unreferenced owned texts).
    fn reindex(&mut self) {
        self.collect_owned();
        self.first = [0; INDEXED];
        self.last = [0; INDEXED];
        self.multi = 0;
        let ids: Vec<u8> = self.entries.iter().map(|e| e.id).collect();
        for (pos, id) in ids.into_iter().enumerate() {
            self.note(id, pos);
        }
    }

    /// Adds a header whose name and value are ranges of the buffer; `no_comma` when the
    /// caller knows the value has no comma.
    #[inline]
    pub(crate) fn push_ranges(
        &mut self,
        name: (usize, usize),
        value: (usize, usize),
        id: u8,
        no_comma: bool,
    ) {
        self.note(id, self.entries.len());
        self.entries.push(Entry {
            id,
            no_comma,
            name: Slot::Buf(name.0 as u32, name.1 as u32),
            value: Slot::Buf(value.0 as u32, value.1 as u32),
        });
    }

    /// Adds a header with a buffer name and an owned (unfolded) value.
    pub(crate) fn push_range_owned(&mut self, name: (usize, usize), value: String, id: u8) {
        self.note(id, self.entries.len());
        let value = self.own(value.into_boxed_str());
        self.entries.push(Entry {
            id,
            no_comma: false,
            name: Slot::Buf(name.0 as u32, name.1 as u32),
            value,
        });
    }

    #[inline]
    fn text<'a>(&'a self, s: &'a Slot) -> &'a str {
        match s {
            Slot::Owned(i) => self.owned.get(*i as usize).map_or("", |b| b),
            // The parser only stores ranges at character boundaries, so this never falls
            // back.
            Slot::Buf(a, b) => self
                .buf
                .as_deref()
                .and_then(|t| t.get(*a as usize..*b as usize))
                .unwrap_or(""),
        }
    }

    fn matches(&self, e: &Entry, id: u8, name: &str) -> bool {
        if id != 0 {
            e.id == id
        } else {
            e.id == 0 && long_name(self.text(&e.name)).eq_ignore_ascii_case(name)
        }
    }

    /// The value of the first header called `name` (compact forms equivalent).
    pub fn get(&self, name: &str) -> Option<&str> {
        let id = header_id(name);
        let long = long_name(name);
        self.entries
            .iter()
            .find(|e| self.matches(e, id, long))
            .map(|e| self.text(&e.value))
    }

    /// The values of every header line called `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let id = header_id(name);
        let long = long_name(name);
        self.entries
            .iter()
            .filter(move |e| self.matches(e, id, long))
            .map(|e| self.text(&e.value))
    }

    /// The values of every header line with the known id `id` (see [`id`]), in order.
    #[inline]
    pub(crate) fn values_id(&self, id: u8) -> IdValues<'_> {
        let next = match self.first.get(usize::from(id)) {
            Some(0) => self.entries.len(),
            Some(&f) if f != u8::MAX => usize::from(f) - 1,
            _ => 0,
        };
        let end = match self.last.get(usize::from(id)) {
            Some(&l) if l != u8::MAX => usize::from(l),
            _ => self.entries.len(),
        };
        IdValues {
            h: self,
            next,
            end,
            id,
        }
    }

    /// The value of the only header line with the known id `id` called `name`.
    #[inline]
    pub(crate) fn single_id(&self, id: u8, name: &'static str) -> Result<&str, HeaderError> {
        match self.first.get(usize::from(id)) {
            Some(0) => return Err(HeaderError::Missing { name }),
            Some(_) if self.multi & (1 << id) != 0 => return Err(HeaderError::Multiple { name }),
            Some(&f) if f != u8::MAX => {
                if let Some(e) = self.entries.get(usize::from(f) - 1) {
                    return Ok(self.text(&e.value));
                }
            }
            _ => {}
        }
        let mut it = self.values_id(id);
        let first = it.next().ok_or(HeaderError::Missing { name })?;
        if it.next().is_some() {
            return Err(HeaderError::Multiple { name });
        }
        Ok(first)
    }

    /// Number of header lines called `name`.
    pub fn count(&self, name: &str) -> usize {
        self.get_all(name).count()
    }

    /// True when at least one header called `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Appends a header line.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        let id = header_id(name);
        self.note(id, self.entries.len());
        let name = self.own(name.into());
        let value = self.own(value.into().into_boxed_str());
        self.entries.push(Entry {
            id,
            no_comma: false,
            name,
            value,
        });
    }

    /// Inserts a header line before all others (for a new top Via or Record-Route).
    pub fn insert_first(&mut self, name: &str, value: impl Into<String>) {
        let id = header_id(name);
        let name = self.own(name.into());
        let value = self.own(value.into().into_boxed_str());
        self.entries.insert(
            0,
            Entry {
                id,
                no_comma: false,
                name,
                value,
            },
        );
        self.reindex();
    }

    /// Replaces every header called `name` by one line with `value`, at the position of the
    /// first one (appended if there was none).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let id = header_id(name);
        let long = long_name(name).to_owned();
        let pos = self.entries.iter().position(|e| self.matches(e, id, &long));
        match pos {
            None => self.push(name, value),
            Some(p) => {
                let value = self.own(value.into().into_boxed_str());
                if let Some(e) = self.entries.get_mut(p) {
                    e.value = value;
                }
                let drop: Vec<bool> = (self.entries.iter().enumerate())
                    .map(|(i, e)| i != p && self.matches(e, id, &long))
                    .collect();
                let mut flags = drop.into_iter();
                self.entries.retain(|_| !flags.next().unwrap_or(false));
                self.reindex();
            }
        }
    }

    /// Removes every header called `name`; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let id = header_id(name);
        let long = long_name(name).to_owned();
        let before = self.entries.len();
        let drop: Vec<bool> = (self.entries.iter())
            .map(|e| self.matches(e, id, &long))
            .collect();
        let mut flags = drop.into_iter();
        self.entries.retain(|_| !flags.next().unwrap_or(false));
        self.reindex();
        before - self.entries.len()
    }

    /// Removes the first header called `name` (e.g. the top Via); returns its value.
    pub fn remove_first(&mut self, name: &str) -> Option<String> {
        let id = header_id(name);
        let long = long_name(name).to_owned();
        let pos = self
            .entries
            .iter()
            .position(|e| self.matches(e, id, &long))?;
        let v = self.text(&self.entries.get(pos)?.value).to_owned();
        self.entries.remove(pos);
        self.reindex();
        Some(v)
    }

    /// Iterates `(name, value)` in order, names as written.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (self.text(&e.name), self.text(&e.value)))
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there is no header.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes every header as `Name: value\r\n`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        for (n, v) in self.iter() {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Bytes needed by [`Headers::write_to`].
    pub(crate) fn printed_len(&self) -> usize {
        self.iter().map(|(n, v)| n.len() + v.len() + 4).sum()
    }
}

/// The values of the header lines with one known id, in order.
#[derive(Clone, Debug)]
pub(crate) struct IdValues<'a> {
    h: &'a Headers,
    next: usize,
    /// No entry with the id at or after this position.
    end: usize,
    id: u8,
}

impl<'a> IdValues<'a> {
    /// The next value, and whether the parser found it has no comma.
    #[inline]
    pub(crate) fn next_flagged(&mut self) -> Option<(&'a str, bool)> {
        let rest = self.h.entries.get(self.next..self.end)?;
        let k = rest.iter().position(|e| e.id == self.id)?;
        self.next += k + 1;
        let e = rest.get(k)?;
        Some((self.h.text(&e.value), e.no_comma))
    }
}

impl<'a> Iterator for IdValues<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        self.next_flagged().map(|(v, _)| v)
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_table() {
        for (i, k) in KNOWN.iter().enumerate() {
            assert_eq!(header_id(k) as usize, i + 1, "{k}");
            assert_eq!(header_id(&k.to_ascii_uppercase()) as usize, i + 1, "{k}");
            assert_eq!(header_id(&k.to_ascii_lowercase()) as usize, i + 1, "{k}");
            // same length, first and last letter, another name: unknown
            let mut other = k.as_bytes().to_vec();
            if other.len() > 2 {
                other[1] = if other[1] == b'x' { b'y' } else { b'x' };
                assert_eq!(header_id_bytes(&other), 0, "{k}");
            }
        }
        for (c, long) in COMPACT {
            let c = char::from(*c).to_string();
            assert_eq!(header_id(&c), header_id(long), "{c}");
            assert_eq!(header_id(&c.to_ascii_uppercase()), header_id(long), "{c}");
        }
        for unknown in ["", "Z", "X-Via", "Vias", "Call\rID", "Call-IE", "User-Agen"] {
            assert_eq!(header_id(unknown), 0, "{unknown:?}");
        }
    }

    /// The index used by the typed accessors agrees with a plain scan after every kind of
    /// change.
    #[test]
    fn index_follows_mutations() {
        fn check(h: &Headers) {
            for (hid, name) in [
                (id::VIA, "Via"),
                (id::FROM, "From"),
                (id::TO, "To"),
                (id::CALL_ID, "Call-ID"),
                (id::CSEQ, "CSeq"),
                (id::CONTACT, "Contact"),
                (id::ROUTE, "Route"),
                (id::RECORD_ROUTE, "Record-Route"),
            ] {
                let scan: Vec<&str> = h.get_all(name).collect();
                assert_eq!(h.values_id(hid).collect::<Vec<_>>(), scan, "{name}");
                let single = match scan.as_slice() {
                    [] => Err(HeaderError::Missing { name }),
                    [one] => Ok(*one),
                    _ => Err(HeaderError::Multiple { name }),
                };
                assert_eq!(h.single_id(hid, name), single, "{name}");
            }
        }
        let mut h = Headers::new();
        check(&h);
        h.push("Via", "a");
        h.push("From", "f");
        h.push("X", "x");
        h.push("v", "b");
        check(&h);
        h.insert_first("Via", "top");
        h.insert_first("Route", "r");
        check(&h);
        h.push("f", "f2");
        check(&h);
        h.set("From", "only");
        check(&h);
        assert_eq!(h.remove_first("Via").as_deref(), Some("top"));
        check(&h);
        h.remove("via");
        check(&h);
        for i in 0..300 {
            h.push(if i % 2 == 0 { "Contact" } else { "X-Pad" }, format!("{i}"));
        }
        h.push("To", "late");
        check(&h);
        h.remove("X-Pad");
        check(&h);
        // replaced texts are dropped, not accumulated
        for i in 0..1000 {
            h.set("X-Churn", format!("{i}"));
            h.insert_first("Via", format!("v{i}"));
            assert_eq!(h.remove_first("Via"), Some(format!("v{i}")));
        }
        assert_eq!(h.get("x-churn"), Some("999"));
        assert!(
            h.owned.len() < 2 * h.len() * 2 + 40,
            "{} owned texts",
            h.owned.len()
        );
        check(&h);
        let copy = h.clone();
        assert_eq!(copy, h);
    }

    #[test]
    fn compact_ids() {
        for (c, long) in COMPACT {
            let name = [*c];
            let name = std::str::from_utf8(&name).unwrap();
            assert_eq!(header_id(name), header_id(long), "{long}");
            assert_eq!(
                header_id(&name.to_ascii_uppercase()),
                header_id(long),
                "{long}"
            );
        }
        assert_eq!(header_id("g"), 0);
        assert_eq!(header_id("Vxa"), 0);
        assert_eq!(header_id("Callid"), 0);
    }

    #[test]
    fn ids() {
        assert_eq!(header_id("Via"), 1);
        assert_eq!(header_id("v"), 1);
        assert_eq!(header_id("content-length"), 7);
        assert_eq!(header_id("L"), 7);
        assert_eq!(header_id("X-Unknown"), 0);
        assert_eq!(header_id(""), 0);
    }

    #[test]
    fn compact_and_case() {
        let mut h = Headers::new();
        h.push("v", "SIP/2.0/UDP a");
        h.push("VIA", "SIP/2.0/UDP b");
        h.push("X-Foo", "1");
        h.push("i", "abc");
        assert_eq!(h.get("Via"), Some("SIP/2.0/UDP a"));
        assert_eq!(
            h.get_all("v").collect::<Vec<_>>(),
            ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
        );
        assert_eq!(h.get("x-foo"), Some("1"));
        assert_eq!(h.get("call-id"), Some("abc"));
        assert_eq!(h.get("Call-Info"), None);
        h.insert_first("Via", "SIP/2.0/TCP top");
        assert_eq!(h.get("v"), Some("SIP/2.0/TCP top"));
        h.set("via", "only");
        assert_eq!(h.get_all("Via").collect::<Vec<_>>(), ["only"]);
        assert_eq!(h.iter().next(), Some(("Via", "only")));
        assert_eq!(h.remove("X-FOO"), 1);
        assert_eq!(h.len(), 2);
        assert_eq!(h.remove_first("i").as_deref(), Some("abc"));
        assert!(!h.is_empty());
    }
}
