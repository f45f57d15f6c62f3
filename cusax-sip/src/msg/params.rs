//! Ordered `;name[=value]` parameter lists (RFC 3261 §19.1.1 uri-parameters,
//! §25.1 generic-param).

use std::fmt;

use std::borrow::Cow;

use super::lex::{
    C_TOKEN, C_VSTOP, C_WS, find_class, find_class4, is_ws, quoted_len, read_quoted_cow,
    skip_class, skip_ws, trim_end_ws,
};

/// An ordered list of parameters. Names compare case-insensitively; values are
/// kept as written (a quoted value keeps its quotes, a URI parameter its escapes),
/// so printing gives back the original text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    list: Vec<(String, Option<String>)>,
}

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// `Some(Some(v))` for `;name=v`, `Some(None)` for a flag `;name`, `None` if absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.list
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of `name` with surrounding quotes removed (and `\` escapes undone).
    pub fn get_unquoted(&self, name: &str) -> Option<String> {
        let v = self.get(name)??;
        if v.starts_with('"') {
            super::lex::read_quoted(v).map(|(s, _)| s)
        } else {
            Some(v.to_owned())
        }
    }

    /// True when the parameter is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Replaces the value of `name` (keeping its position) or appends it.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        if let Some(e) = self
            .list
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            e.1 = value;
        } else {
            self.list.push((name.to_owned(), value));
        }
    }

    /// Appends a parameter without looking for an existing one.
    pub fn push(&mut self, name: &str, value: Option<String>) {
        self.list.push((name.to_owned(), value));
    }

    /// Removes every parameter called `name`; returns whether one was present.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.list.len();
        self.list.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before != self.list.len()
    }

    /// Iterates `(name, value)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.list.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Parses URI parameters: `s` is the text after the first `;` up to `?` or the end.
    /// No whitespace is allowed (RFC 3261 §19.1.1).
    #[cfg(test)]
    pub(crate) fn parse_uri(s: &str) -> Option<Params> {
        ParamsRef::parse_uri(s).map(|p| p.to_owned())
    }

    /// Parses header parameters `*( SEMI generic-param )` at the start of `s`
    /// (LWS allowed around `;` and `=`). Stops at the first character that cannot
    /// continue the list and returns the rest (trimmed). Errors (`None`) on an empty
    /// name or an unterminated quoted string.
    pub(crate) fn parse_header(s: &str) -> Option<(Params, &str)> {
        ParamsRef::parse_header(s).map(|(p, tail)| (p.to_owned(), tail))
    }
}

/// One step of a header parameter list.
enum Step<'a> {
    /// No `;` follows.
    End,
    /// `;name[=value]` and the text after it.
    Item(&'a str, Option<&'a str>, &'a str),
    /// An empty name or an unterminated quoted value.
    Bad,
}

/// Reads one `SEMI generic-param` at the start of `s` (RFC 3261 §25.1; LWS around `;`
/// and `=`).
fn header_step(s: &str) -> Step<'_> {
    let b = s.as_bytes();
    let i = skip_class(b, 0, C_WS);
    if b.get(i) != Some(&b';') {
        return Step::End;
    }
    let ns = skip_class(b, i + 1, C_WS);
    let ne = skip_class(b, ns, C_TOKEN);
    let Some(name) = s.get(ns..ne).filter(|n| !n.is_empty()) else {
        return Step::Bad;
    };
    let eq = skip_class(b, ne, C_WS);
    if b.get(eq) != Some(&b'=') {
        return Step::Item(name, None, s.get(ne..).unwrap_or(""));
    }
    let vs = skip_class(b, eq + 1, C_WS);
    let ve = if b.get(vs) == Some(&b'"') {
        match s.get(vs..).and_then(quoted_len) {
            Some(n) => vs + n,
            None => return Step::Bad,
        }
    } else {
        find_class(b, vs, C_VSTOP)
    };
    match (s.get(vs..ve), s.get(ve..)) {
        (Some(val), Some(rest)) if ve > vs => Step::Item(name, Some(val), rest),
        _ => Step::Bad,
    }
}

/// A borrowed, already validated parameter list: the text of a URI's `;params` or of a
/// header value's `*(;generic-param)` (RFC 3261 §19.1.1, §25.1), read on demand without
/// copying. Values are as written (a quoted value keeps its quotes, a URI parameter its
/// `%` escapes), exactly as in the owned [`Params`] that [`ParamsRef::to_owned`] builds.
#[derive(Clone, Copy, Default)]
pub struct ParamsRef<'a> {
    raw: &'a str,
    uri: bool,
    len: u32,
}

impl<'a> ParamsRef<'a> {
    /// Validates URI parameters (the text after the first `;`, no whitespace,
    /// RFC 3261 §19.1.1).
    pub(crate) fn parse_uri(s: &'a str) -> Option<ParamsRef<'a>> {
        let mut len = 0u32;
        for item in s.split(';') {
            if item.is_empty()
                || item
                    .bytes()
                    .any(|b| is_ws(b) || b == b'"' || b == b'<' || b == b'>')
                || item.starts_with('=')
            {
                return None;
            }
            len += 1;
        }
        Some(ParamsRef {
            raw: s,
            uri: true,
            len,
        })
    }

    /// Validates header parameters at the start of `s`; returns them and the trimmed rest
    /// (the same cut as [`Params::parse_header`]).
    pub(crate) fn parse_header(s: &'a str) -> Option<(ParamsRef<'a>, &'a str)> {
        Self::parse_header_watch(s, "").map(|(p, tail, _)| (p, tail))
    }

    /// [`ParamsRef::parse_header`] that also returns the value of the first parameter
    /// called `watch` (compared case-insensitively), as [`ParamsRef::get`] would.
    pub(crate) fn parse_header_watch(
        s: &'a str,
        watch: &str,
    ) -> Option<(ParamsRef<'a>, &'a str, Option<Option<&'a str>>)> {
        // the grammar of `header_step`, in one loop over byte offsets
        let b = s.as_bytes();
        let mut len = 0u32;
        let mut seen = None;
        let mut pos = 0;
        loop {
            let i = skip_ws(b, pos);
            if b.get(i) != Some(&b';') {
                let tail = trim_end_ws(s.get(i..).unwrap_or(""));
                let raw = s.get(..i).unwrap_or(s);
                let p = ParamsRef {
                    raw,
                    uri: false,
                    len,
                };
                return Some((p, tail, seen));
            }
            let ns = skip_ws(b, i + 1);
            let ne = skip_class(b, ns, C_TOKEN);
            if ne == ns {
                return None;
            }
            let eq = skip_ws(b, ne);
            let value = if b.get(eq) == Some(&b'=') {
                let vs = skip_ws(b, eq + 1);
                let ve = if b.get(vs) == Some(&b'"') {
                    vs + s.get(vs..).and_then(quoted_len)?
                } else {
                    find_class4(b, vs, C_VSTOP)
                };
                if ve == vs {
                    return None;
                }
                pos = ve;
                Some((vs, ve))
            } else {
                pos = ne;
                None
            };
            len += 1;
            if seen.is_none() && !watch.is_empty() {
                let name = b.get(ns..ne).unwrap_or_default();
                let w = watch.as_bytes();
                if name.len() == w.len()
                    && name
                        .iter()
                        .zip(w)
                        .all(|(a, c)| a == c || a.eq_ignore_ascii_case(c))
                {
                    seen = Some(value.and_then(|(vs, ve)| s.get(vs..ve)));
                }
            }
        }
    }

    /// `Some(Some(v))` for `;name=v`, `Some(None)` for a flag `;name`, `None` if absent
    /// (the first parameter of that name, compared case-insensitively).
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of `name` with surrounding quotes removed (and `\\` escapes undone);
    /// borrowed unless an escape had to be undone.
    pub fn get_unquoted(&self, name: &str) -> Option<Cow<'a, str>> {
        let v = self.get(name)??;
        if v.starts_with('"') {
            read_quoted_cow(v).map(|(s, _)| s)
        } else {
            Some(Cow::Borrowed(v))
        }
    }

    /// True when the parameter is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Iterates `(name, value)` in order.
    pub fn iter(&self) -> ParamsIter<'a> {
        ParamsIter {
            rest: self.raw,
            uri: self.uri,
            left: self.len,
        }
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parameter text as received (URI parameters without their leading `;`; header
    /// parameters with the whitespace they had).
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The owned list.
    #[allow(clippy::wrong_self_convention, clippy::should_implement_trait)]
    pub fn to_owned(&self) -> Params {
        let mut list = Vec::with_capacity(self.len());
        list.extend(
            self.iter()
                .map(|(n, v)| (n.to_owned(), v.map(str::to_owned))),
        );
        Params { list }
    }
}

impl fmt::Debug for ParamsRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for ParamsRef<'_> {
    /// `;name=value` for each parameter, as [`Params`] prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in self.iter() {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

impl From<ParamsRef<'_>> for Params {
    fn from(p: ParamsRef<'_>) -> Params {
        p.to_owned()
    }
}

impl<'a> IntoIterator for ParamsRef<'a> {
    type Item = (&'a str, Option<&'a str>);
    type IntoIter = ParamsIter<'a>;
    fn into_iter(self) -> ParamsIter<'a> {
        self.iter()
    }
}

/// The `(name, value)` pairs of a [`ParamsRef`], in order.
#[derive(Clone, Debug)]
pub struct ParamsIter<'a> {
    rest: &'a str,
    uri: bool,
    left: u32,
}

impl<'a> Iterator for ParamsIter<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.uri {
            let (item, rest) = self.rest.split_once(';').unwrap_or((self.rest, ""));
            self.rest = rest;
            return Some(match item.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (item, None),
            });
        }
        match header_step(self.rest) {
            Step::Item(n, v, rest) => {
                self.rest = rest;
                Some((n, v))
            }
            _ => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.list {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params_with_lws() {
        let (p, rest) =
            Params::parse_header(" ; newparam =\r\n  newvalue ;  secondparam ; q = 0.33").unwrap();
        assert_eq!(rest, "");
        assert_eq!(p.get("NEWPARAM"), Some(Some("newvalue")));
        assert_eq!(p.get("secondparam"), Some(None));
        assert_eq!(p.get("q"), Some(Some("0.33")));
        assert_eq!(p.to_string(), ";newparam=newvalue;secondparam;q=0.33");
    }

    #[test]
    fn quoted_value() {
        let (p, _) = Params::parse_header(r#";x="a;b\"c";tag=1"#).unwrap();
        assert_eq!(p.get("x"), Some(Some(r#""a;b\"c""#)));
        assert_eq!(p.get_unquoted("x").unwrap(), r#"a;b"c"#);
        assert_eq!(p.get("tag"), Some(Some("1")));
        assert!(Params::parse_header(";=1").is_none());
        assert!(Params::parse_header(";x=\"open").is_none());
    }

    #[test]
    fn set_remove() {
        let mut p = Params::parse_uri("lr;transport=tcp").unwrap();
        p.set("Transport", Some("tls".into()));
        assert_eq!(p.to_string(), ";lr;transport=tls");
        assert!(p.remove("lr"));
        assert!(!p.has("lr"));
        assert!(Params::parse_uri("a;;b").is_none());
    }
}
