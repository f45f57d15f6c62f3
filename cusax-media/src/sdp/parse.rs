//! SDP parser (RFC 8866 §5, §9 grammar), strict about structure, tolerant of unknown lines.

use std::net::IpAddr;

use super::model::*;

/// Why an SDP body was rejected. The fault is always the peer's (malformed input) except
/// where noted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpParseError {
    /// The body exceeds [`MAX_SDP_LEN`].
    #[error("SDP body too large ({0} bytes)")]
    TooLarge(usize),
    /// More than [`MAX_LINES`] lines.
    #[error("SDP has too many lines")]
    TooManyLines,
    /// A line exceeds [`MAX_LINE_LEN`].
    #[error("SDP line {0} too long")]
    LineTooLong(usize),
    /// More than [`MAX_MEDIA`] media sections.
    #[error("SDP has too many media sections")]
    TooManyMedia,
    /// More than [`MAX_ATTRIBUTES`] attributes in one section.
    #[error("SDP section has too many attributes")]
    TooManyAttributes,
    /// The body is not UTF-8.
    #[error("SDP is not valid UTF-8")]
    NotUtf8,
    /// A line is not `<type>=<value>` with a lowercase letter type.
    #[error("SDP line {0} is malformed")]
    MalformedLine(usize),
    /// The first line is not `v=0`.
    #[error("SDP version line missing or not 0")]
    BadVersion,
    /// A required line is missing.
    #[error("SDP is missing the {0} line")]
    Missing(&'static str),
    /// A line appears where it is not allowed or twice.
    #[error("SDP line {line} ({kind}=) is out of place")]
    OutOfOrder {
        /// 1-based line number.
        line: usize,
        /// Line type.
        kind: char,
    },
    /// A field has an invalid value.
    #[error("SDP line {line}: invalid {field}")]
    InvalidField {
        /// 1-based line number.
        line: usize,
        /// Which field.
        field: &'static str,
    },
}

fn parse_connection(v: &str, line: usize) -> Result<Connection, SdpParseError> {
    let mut it = v.split(' ');
    let bad = |field| SdpParseError::InvalidField { line, field };
    if it.next() != Some("IN") {
        return Err(bad("c= network type"));
    }
    let at = it.next().ok_or(bad("c= address type"))?;
    let addr = it.next().ok_or(bad("c= address"))?;
    if it.next().is_some() {
        return Err(bad("c= trailing fields"));
    }
    // Multicast TTL/count suffixes ("/127") are not supported: we only do unicast.
    match (at, addr.parse::<IpAddr>()) {
        ("IP4", Ok(ip @ IpAddr::V4(_))) | ("IP6", Ok(ip @ IpAddr::V6(_))) => Ok(Connection::ip(ip)),
        ("IP4" | "IP6", Ok(_)) => Err(bad("c= address type")),
        ("IP4" | "IP6", Err(_)) => {
            let host_ok = !addr.is_empty()
                && addr.len() <= 253
                && addr
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !host_ok {
                return Err(bad("c= address"));
            }
            Ok(Connection {
                address: Address::Host {
                    name: addr.to_owned(),
                    ipv6: at == "IP6",
                },
            })
        }
        _ => Err(bad("c= address type")),
    }
}

fn token_ok(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

fn parse_media(v: &str, line: usize) -> Result<MediaDescription, SdpParseError> {
    let bad = |field| SdpParseError::InvalidField { line, field };
    let mut it = v.split(' ');
    let media = it.next().filter(|s| token_ok(s)).ok_or(bad("m= media"))?;
    let port_s = it.next().ok_or(bad("m= port"))?;
    let (port, num_ports) = match port_s.split_once('/') {
        Some((p, n)) => (
            p.parse::<u16>().map_err(|_| bad("m= port"))?,
            Some(n.parse::<u16>().map_err(|_| bad("m= port count"))?),
        ),
        None => (port_s.parse::<u16>().map_err(|_| bad("m= port"))?, None),
    };
    let proto = it.next().filter(|s| token_ok(s)).ok_or(bad("m= proto"))?;
    let mut formats = Vec::new();
    for f in it {
        if !token_ok(f) {
            return Err(bad("m= format"));
        }
        if formats.len() >= 64 {
            return Err(bad("m= too many formats"));
        }
        formats.push(f.to_owned());
    }
    if formats.is_empty() {
        return Err(bad("m= format"));
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        num_ports,
        proto: proto.to_owned(),
        formats,
        connection: None,
        other: Vec::new(),
        attributes: Vec::new(),
    })
}

fn parse_attr(v: &str, line: usize) -> Result<Attribute, SdpParseError> {
    let (name, value) = match v.split_once(':') {
        Some((n, val)) => (n, Some(val.to_owned())),
        None => (v, None),
    };
    if !token_ok(name) {
        return Err(SdpParseError::InvalidField {
            line,
            field: "a= name",
        });
    }
    Ok(Attribute {
        name: name.to_owned(),
        value,
    })
}

impl SessionDescription {
    /// Parses an SDP body (RFC 8866). Accepts CRLF or bare LF line ends (§5 allows the
    /// latter to be tolerated). Enforces [`MAX_SDP_LEN`], [`MAX_LINES`], [`MAX_LINE_LEN`],
    /// [`MAX_MEDIA`] and [`MAX_ATTRIBUTES`].
    pub fn parse(input: &[u8]) -> Result<Self, SdpParseError> {
        if input.len() > MAX_SDP_LEN {
            return Err(SdpParseError::TooLarge(input.len()));
        }
        let text = std::str::from_utf8(input).map_err(|_| SdpParseError::NotUtf8)?;
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut timing = None;
        let mut other = Vec::new();
        let mut attributes = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();
        let mut seen_version = false;

        let mut count = 0usize;
        for (idx, raw) in text.split('\n').enumerate() {
            let lineno = idx + 1;
            let l = raw.strip_suffix('\r').unwrap_or(raw);
            if l.is_empty() {
                continue; // tolerate a trailing empty line
            }
            count += 1;
            if count > MAX_LINES {
                return Err(SdpParseError::TooManyLines);
            }
            if l.len() > MAX_LINE_LEN {
                return Err(SdpParseError::LineTooLong(lineno));
            }
            let b = l.as_bytes();
            if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
                return Err(SdpParseError::MalformedLine(lineno));
            }
            let kind = b[0] as char;
            let v = &l[2..];
            if v.contains('\r') || v.contains('\0') {
                return Err(SdpParseError::MalformedLine(lineno));
            }
            if !seen_version {
                if kind != 'v' || v != "0" {
                    return Err(SdpParseError::BadVersion);
                }
                seen_version = true;
                continue;
            }
            let ooo = SdpParseError::OutOfOrder { line: lineno, kind };
            match kind {
                'v' => return Err(ooo),
                'o' => {
                    if origin.is_some() || !media.is_empty() {
                        return Err(ooo);
                    }
                    origin = Some(parse_origin(v, lineno)?);
                }
                's' => {
                    if session_name.is_some() || !media.is_empty() {
                        return Err(ooo);
                    }
                    session_name = Some(v.to_owned());
                }
                't' => {
                    if timing.is_some() || !media.is_empty() {
                        return Err(ooo);
                    }
                    let bad = SdpParseError::InvalidField {
                        line: lineno,
                        field: "t=",
                    };
                    let (a, z) = v.split_once(' ').ok_or(bad.clone())?;
                    timing = Some((
                        a.parse().map_err(|_| bad.clone())?,
                        z.parse().map_err(|_| bad)?,
                    ));
                }
                'c' => {
                    let c = parse_connection(v, lineno)?;
                    match media.last_mut() {
                        Some(m) if m.connection.is_none() => m.connection = Some(c),
                        Some(_) => return Err(ooo),
                        None if connection.is_none() => connection = Some(c),
                        None => return Err(ooo),
                    }
                }
                'm' => {
                    if media.len() >= MAX_MEDIA {
                        return Err(SdpParseError::TooManyMedia);
                    }
                    media.push(parse_media(v, lineno)?);
                }
                'a' => {
                    let a = parse_attr(v, lineno)?;
                    let list = match media.last_mut() {
                        Some(m) => &mut m.attributes,
                        None => &mut attributes,
                    };
                    if list.len() >= MAX_ATTRIBUTES {
                        return Err(SdpParseError::TooManyAttributes);
                    }
                    list.push(a);
                }
                'i' | 'b' | 'k' => {
                    let list = match media.last_mut() {
                        Some(m) => &mut m.other,
                        None => &mut other,
                    };
                    if list.len() >= MAX_ATTRIBUTES {
                        return Err(SdpParseError::TooManyAttributes);
                    }
                    list.push((kind, v.to_owned()));
                }
                'u' | 'e' | 'p' | 'r' | 'z' => {
                    if !media.is_empty() {
                        return Err(ooo);
                    }
                    if other.len() >= MAX_ATTRIBUTES {
                        return Err(SdpParseError::TooManyAttributes);
                    }
                    other.push((kind, v.to_owned()));
                }
                _ => return Err(SdpParseError::MalformedLine(lineno)),
            }
        }
        if !seen_version {
            return Err(SdpParseError::BadVersion);
        }
        // Keep the lines we do not interpret in the order the serializer writes them
        // (RFC 8866 §5: i u e p before c=, b after it, r z k after t=; at media level
        // i before c=, b k after it), each group in input order, so that printing and
        // parsing again gives the same description.
        other.sort_by_key(|(t, _)| match t {
            'i' | 'u' | 'e' | 'p' => 0u8,
            'b' => 1,
            _ => 2,
        });
        for m in &mut media {
            m.other.sort_by_key(|(t, _)| u8::from(*t != 'i'));
        }
        Ok(SessionDescription {
            origin: origin.ok_or(SdpParseError::Missing("o="))?,
            session_name: session_name.ok_or(SdpParseError::Missing("s="))?,
            connection,
            timing: timing.ok_or(SdpParseError::Missing("t="))?,
            other,
            attributes,
            media,
        })
    }
}

fn parse_origin(v: &str, line: usize) -> Result<Origin, SdpParseError> {
    let bad = |field| SdpParseError::InvalidField { line, field };
    let f: Vec<&str> = v.split(' ').collect();
    if f.len() != 6 {
        return Err(bad("o= field count"));
    }
    if !token_ok(f[0]) {
        return Err(bad("o= username"));
    }
    if f[3] != "IN" {
        return Err(bad("o= network type"));
    }
    if !token_ok(f[4]) || !token_ok(f[5]) {
        return Err(bad("o= address"));
    }
    Ok(Origin {
        username: f[0].to_owned(),
        session_id: f[1].parse().map_err(|_| bad("o= session id"))?,
        session_version: f[2].parse().map_err(|_| bad("o= session version"))?,
        addr_type: f[4].to_owned(),
        address: f[5].to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASIC: &str = "v=0\r\no=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\r\ns=\r\nc=IN IP4 host.atlanta.example.com\r\n";

    /// Found by the `sdp_parse` fuzz target: lines out of the RFC 8866 order (`r=` before
    /// `i=`) were kept in input order but printed in grammar order, so a reparse differed.
    #[test]
    fn out_of_order_lines_round_trip() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nr=7d 1h 0 25h\r\ni=late info\r\nm=audio 4000 RTP/AVP 0\r\nb=AS:64\r\ni=media info\r\n";
        let d = SessionDescription::parse(sdp.as_bytes()).unwrap();
        let again = SessionDescription::parse(d.to_string().as_bytes()).unwrap();
        assert_eq!(again, d);
        assert_eq!(d.other[0], ('i', "late info".to_owned()));
        assert_eq!(d.media[0].other[0], ('i', "media info".to_owned()));
    }

    #[test]
    fn parses_and_round_trips() {
        let sdp = "v=0\r\no=- 1 2 IN IP6 ::1\r\ns=-\r\ni=info\r\nc=IN IP6 2001:db8::1\r\nb=AS:64\r\nt=0 0\r\na=tool:x\r\nm=audio 49170 RTP/AVP 0 101\r\nb=TIAS:64000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
        let d = SessionDescription::parse(sdp.as_bytes()).unwrap();
        assert_eq!(d.origin.session_version, 2);
        assert_eq!(d.media[0].formats, vec!["0", "101"]);
        assert_eq!(
            d.connection_for(0),
            Some(&Address::Ip("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(d.to_string(), sdp);
    }

    #[test]
    fn host_names_resolve_through_the_caller() {
        let s = format!("{BASIC}t=0 0\r\n");
        let mut d = SessionDescription::parse(s.as_bytes()).unwrap();
        assert_eq!(d.to_string(), s);
        d.resolve_hosts(|h| {
            (h == "host.atlanta.example.com").then(|| "192.0.2.101".parse().unwrap())
        });
        assert!(d.media.is_empty());
        assert_eq!(
            d.connection.unwrap().address,
            Address::Ip("192.0.2.101".parse().unwrap())
        );
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(
            SessionDescription::parse(
                b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 a_b\r\nt=0 0\r\n"
            ),
            Err(SdpParseError::InvalidField {
                line: 4,
                field: "c= address"
            })
        );
        assert_eq!(
            SessionDescription::parse(b"v=1\r\n"),
            Err(SdpParseError::BadVersion)
        );
        assert_eq!(
            SessionDescription::parse(b"v=0\r\ns=x\r\nt=0 0\r\n"),
            Err(SdpParseError::Missing("o="))
        );
        assert_eq!(
            SessionDescription::parse(b"v=0\r\nX=1\r\n"),
            Err(SdpParseError::MalformedLine(2))
        );
        let big = vec![b'a'; MAX_SDP_LEN + 1];
        assert_eq!(
            SessionDescription::parse(&big),
            Err(SdpParseError::TooLarge(MAX_SDP_LEN + 1))
        );
        let mut many = String::from("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n");
        for _ in 0..=MAX_MEDIA {
            many.push_str("m=audio 1 RTP/AVP 0\r\n");
        }
        assert_eq!(
            SessionDescription::parse(many.as_bytes()),
            Err(SdpParseError::TooManyMedia)
        );
        assert_eq!(
            SessionDescription::parse(
                b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n"
            ),
            Err(SdpParseError::InvalidField {
                line: 5,
                field: "m= port"
            })
        );
    }
}
