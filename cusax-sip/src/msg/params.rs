//! Ordered `;name[=value]` parameter lists (RFC 3261 §19.1.1 uri-parameters,
//! §25.1 generic-param).

use std::fmt;

use super::lex::{is_ws, quoted_len, trim_ws};

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
    pub(crate) fn parse_uri(s: &str) -> Option<Params> {
        let mut p = Params::new();
        for item in s.split(';') {
            if item.is_empty()
                || item
                    .bytes()
                    .any(|b| is_ws(b) || b == b'"' || b == b'<' || b == b'>')
            {
                return None;
            }
            match item.split_once('=') {
                Some((n, v)) if !n.is_empty() => p.list.push((n.to_owned(), Some(v.to_owned()))),
                Some(_) => return None,
                None => p.list.push((item.to_owned(), None)),
            }
        }
        Some(p)
    }

    /// Parses header parameters `*( SEMI generic-param )` at the start of `s`
    /// (LWS allowed around `;` and `=`). Stops at the first character that cannot
    /// continue the list and returns the rest (trimmed). Errors (`None`) on an empty
    /// name or an unterminated quoted string.
    pub(crate) fn parse_header(mut s: &str) -> Option<(Params, &str)> {
        let mut p = Params::new();
        loop {
            let t = trim_ws(s);
            let Some(after) = t.strip_prefix(';') else {
                return Some((p, t));
            };
            let after = after.trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8));
            let name_len = after
                .bytes()
                .position(|b| !super::lex::is_token_byte(b))
                .unwrap_or(after.len());
            if name_len == 0 {
                return None;
            }
            let (name, rest) = after.split_at(name_len);
            let rest_t = rest.trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8));
            if let Some(v) = rest_t.strip_prefix('=') {
                let v = v.trim_start_matches(|c: char| c.is_ascii() && is_ws(c as u8));
                let vlen = if v.starts_with('"') {
                    quoted_len(v)?
                } else {
                    v.bytes()
                        .position(|b| is_ws(b) || matches!(b, b';' | b',' | b'"' | b'<' | b'>'))
                        .unwrap_or(v.len())
                };
                if vlen == 0 {
                    return None;
                }
                let (val, rest2) = v.split_at(vlen);
                p.list.push((name.to_owned(), Some(val.to_owned())));
                s = rest2;
            } else {
                p.list.push((name.to_owned(), None));
                s = rest;
            }
        }
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
