//! Typed accessors on [`Headers`] (RFC 3261 §20 and the extensions cusax uses).

use std::fmt;

use super::headers::{Headers, IdValues, id};
use super::lex::{
    Commas, commas_balanced, find_ch, has_ctl_or_space, parse_u32, split_commas, trim_ws,
};
use super::types::{
    CSeq, CallInfo, Challenge, Contact, ContactRef, Credentials, Event, HeaderError, NameAddr,
    NameAddrRef, R, SubscriptionState, Via, ViaRef, Warning, parse_auth_list, parse_call_info,
    parse_cseq, parse_list, parse_name_addr, parse_name_addr_ref, parse_token_params, parse_via,
    parse_via_ref, parse_warning,
};

/// The borrowed typed values of a list header (Via, Contact, Route, Record-Route), in
/// order over every header line and comma-separated element (RFC 3261 §7.3.1), parsed one
/// at a time as the iterator advances, without allocating.
///
/// It yields exactly the values (and, at the same place, the error) of the owned accessor
/// of the same header (e.g. [`Headers::via`]): collecting it into
/// `Result<Vec<_>, HeaderError>` and converting each element with `to_owned()` gives the
/// owned accessor's result. After an error it ends.
pub struct TypedValues<'a, T> {
    lines: IdValues<'a>,
    elems: Option<Commas<'a>>,
    name: &'static str,
    parse: fn(&'a str) -> R<T>,
    line_hook: fn(&'a str) -> Option<T>,
    done: bool,
}

impl<T> fmt::Debug for TypedValues<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedValues")
            .field("header", &self.name)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<'a, T> TypedValues<'a, T> {
    fn fail(&mut self, reason: &'static str) -> Option<Result<T, HeaderError>> {
        self.done = true;
        Some(Err(HeaderError::invalid(self.name, reason)))
    }

    fn element(&mut self, it: &'a str) -> Option<Result<T, HeaderError>> {
        if it.is_empty() {
            return self.fail("empty list element");
        }
        match (self.parse)(it) {
            Ok(v) => Some(Ok(v)),
            Err(r) => self.fail(r),
        }
    }
}

impl<'a, T> Iterator for TypedValues<'a, T> {
    type Item = Result<T, HeaderError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some(elems) = &mut self.elems {
                match elems.next() {
                    Some(it) => return self.element(it),
                    None => self.elems = None,
                }
            }
            let Some((line, no_comma)) = self.lines.next_flagged() else {
                self.done = true;
                return None;
            };
            if let Some(v) = (self.line_hook)(line) {
                return Some(Ok(v));
            }
            if no_comma || find_ch(line, b',').is_none() {
                // a single element: no list to split (the element parser checks quotes and <>)
                return self.element(trim_ws(line));
            }
            if !commas_balanced(line) {
                return self.fail("unbalanced quote or <");
            }
            self.elems = Some(Commas::new(line));
        }
    }
}

fn no_hook<T>(_: &str) -> Option<T> {
    None
}

fn contact_star(line: &str) -> Option<ContactRef<'_>> {
    (trim_ws(line) == "*").then_some(ContactRef::Star)
}

fn contact_addr(s: &str) -> R<ContactRef<'_>> {
    parse_name_addr_ref(s).map(ContactRef::Addr)
}

impl Headers {
    fn single(&self, name: &'static str) -> Result<&str, HeaderError> {
        let mut it = self.get_all(name);
        let first = it.next().ok_or(HeaderError::Missing { name })?;
        if it.next().is_some() {
            return Err(HeaderError::Multiple { name });
        }
        Ok(first)
    }

    fn opt_single(&self, name: &'static str) -> Result<Option<&str>, HeaderError> {
        match self.single(name) {
            Ok(v) => Ok(Some(v)),
            Err(HeaderError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn opt_u32(&self, name: &'static str) -> Result<Option<u32>, HeaderError> {
        match self.opt_single(name)? {
            None => Ok(None),
            Some(v) => parse_u32(trim_ws(v))
                .map(Some)
                .ok_or(HeaderError::invalid(name, "not a number in 0..2^32")),
        }
    }

    fn name_addrs(&self, name: &'static str) -> Result<Vec<NameAddr>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            out.extend(parse_list(name, v, parse_name_addr)?);
        }
        Ok(out)
    }

    fn tokens(&self, name: &'static str) -> Vec<String> {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .map(trim_ws)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn typed_values<'a, T>(
        &'a self,
        hid: u8,
        name: &'static str,
        parse: fn(&'a str) -> R<T>,
        line_hook: fn(&'a str) -> Option<T>,
    ) -> TypedValues<'a, T> {
        TypedValues {
            lines: self.values_id(hid),
            elems: None,
            name,
            parse,
            line_hook,
            done: false,
        }
    }

    /// Every Via value as a borrowed [`ViaRef`], top first (RFC 3261 §20.42): the
    /// allocation-free form of [`Headers::via`].
    pub fn via_refs(&self) -> TypedValues<'_, ViaRef<'_>> {
        self.typed_values(id::VIA, "Via", parse_via_ref, no_hook)
    }

    /// The topmost Via value, borrowed: the allocation-free form of [`Headers::top_via`].
    pub fn top_via_ref(&self) -> Result<ViaRef<'_>, HeaderError> {
        let v = self
            .values_id(id::VIA)
            .next()
            .ok_or(HeaderError::Missing { name: "Via" })?;
        if !commas_balanced(v) {
            return Err(HeaderError::invalid("Via", "unbalanced quote"));
        }
        let first = Commas::new(v)
            .next()
            .ok_or(HeaderError::Missing { name: "Via" })?;
        parse_via_ref(first).map_err(|r| HeaderError::invalid("Via", r))
    }

    /// The From header (exactly one), borrowed: the allocation-free form of
    /// [`Headers::from`].
    #[inline]
    pub fn from_ref(&self) -> Result<NameAddrRef<'_>, HeaderError> {
        parse_name_addr_ref(self.single_id(id::FROM, "From")?)
            .map_err(|r| HeaderError::invalid("From", r))
    }

    /// The To header (exactly one), borrowed: the allocation-free form of [`Headers::to`].
    #[inline]
    pub fn to_ref(&self) -> Result<NameAddrRef<'_>, HeaderError> {
        parse_name_addr_ref(self.single_id(id::TO, "To")?)
            .map_err(|r| HeaderError::invalid("To", r))
    }

    /// Every Contact value, borrowed (`*` gives [`ContactRef::Star`]): the allocation-free
    /// form of [`Headers::contacts`].
    pub fn contact_refs(&self) -> TypedValues<'_, ContactRef<'_>> {
        self.typed_values(id::CONTACT, "Contact", contact_addr, contact_star)
    }

    /// Every Route value, borrowed, in order: the allocation-free form of [`Headers::route`].
    pub fn route_refs(&self) -> TypedValues<'_, NameAddrRef<'_>> {
        self.typed_values(id::ROUTE, "Route", parse_name_addr_ref, no_hook)
    }

    /// Every Record-Route value, borrowed, in order: the allocation-free form of
    /// [`Headers::record_route`].
    pub fn record_route_refs(&self) -> TypedValues<'_, NameAddrRef<'_>> {
        self.typed_values(
            id::RECORD_ROUTE,
            "Record-Route",
            parse_name_addr_ref,
            no_hook,
        )
    }

    /// Every Via value, top first (RFC 3261 §20.42).
    pub fn via(&self) -> Result<Vec<Via>, HeaderError> {
        let mut out = Vec::new();
        for v in self.values_id(id::VIA) {
            out.extend(parse_list("Via", v, parse_via)?);
        }
        Ok(out)
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let v = self
            .values_id(id::VIA)
            .next()
            .ok_or(HeaderError::Missing { name: "Via" })?;
        let items = split_commas(v).ok_or(HeaderError::invalid("Via", "unbalanced quote"))?;
        let first = items.first().ok_or(HeaderError::Missing { name: "Via" })?;
        parse_via(first).map_err(|r| HeaderError::invalid("Via", r))
    }

    /// The From header (exactly one).
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        parse_name_addr(self.single_id(id::FROM, "From")?)
            .map_err(|r| HeaderError::invalid("From", r))
    }

    /// The To header (exactly one).
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        parse_name_addr(self.single_id(id::TO, "To")?).map_err(|r| HeaderError::invalid("To", r))
    }

    /// The Call-ID (exactly one, `word ["@" word]`, RFC 3261 §20.8).
    pub fn call_id(&self) -> Result<&str, HeaderError> {
        let v = trim_ws(self.single_id(id::CALL_ID, "Call-ID")?);
        if v.is_empty() || has_ctl_or_space(v.as_bytes()) {
            return Err(HeaderError::invalid(
                "Call-ID",
                "empty or contains whitespace",
            ));
        }
        Ok(v)
    }

    /// The CSeq header (exactly one).
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        parse_cseq(self.single_id(id::CSEQ, "CSeq")?).map_err(|r| HeaderError::invalid("CSeq", r))
    }

    /// Every Contact value (RFC 3261 §20.10); `*` gives [`Contact::Star`].
    pub fn contacts(&self) -> Result<Vec<Contact>, HeaderError> {
        let mut out = Vec::new();
        for v in self.values_id(id::CONTACT) {
            if trim_ws(v) == "*" {
                out.push(Contact::Star);
            } else {
                out.extend(
                    parse_list("Contact", v, parse_name_addr)?
                        .into_iter()
                        .map(Contact::Addr),
                );
            }
        }
        Ok(out)
    }

    /// Every Route value, in order (RFC 3261 §20.34).
    pub fn route(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs("Route")
    }

    /// Every Record-Route value, in order (RFC 3261 §20.30).
    pub fn record_route(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs("Record-Route")
    }

    /// Every P-Asserted-Identity value (RFC 3325 §9.1).
    pub fn p_asserted_identity(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.name_addrs("P-Asserted-Identity")
    }

    /// Max-Forwards (RFC 3261 §20.22). Values above 255 are accepted as numbers.
    pub fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
        self.opt_u32("Max-Forwards")
    }

    /// Content-Length (RFC 3261 §20.14); must appear at most once.
    pub fn content_length(&self) -> Result<Option<usize>, HeaderError> {
        Ok(self.opt_u32("Content-Length")?.map(|v| v as usize))
    }

    /// Content-Type as written (media type with parameters).
    pub fn content_type(&self) -> Option<&str> {
        self.get("Content-Type").map(trim_ws)
    }

    /// Expires in seconds (RFC 3261 §20.19).
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.opt_u32("Expires")
    }

    /// Min-Expires in seconds (RFC 3261 §20.23).
    pub fn min_expires(&self) -> Result<Option<u32>, HeaderError> {
        self.opt_u32("Min-Expires")
    }

    fn challenges(&self, name: &'static str) -> Result<Vec<Challenge>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            let l = parse_auth_list(v).map_err(|r| HeaderError::invalid(name, r))?;
            out.extend(
                l.into_iter()
                    .map(|(scheme, params)| Challenge { scheme, params }),
            );
        }
        Ok(out)
    }

    fn credentials(&self, name: &'static str) -> Result<Vec<Credentials>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            let l = parse_auth_list(v).map_err(|r| HeaderError::invalid(name, r))?;
            out.extend(
                l.into_iter()
                    .map(|(scheme, params)| Credentials { scheme, params }),
            );
        }
        Ok(out)
    }

    /// WWW-Authenticate challenges (RFC 3261 §20.44).
    pub fn www_authenticate(&self) -> Result<Vec<Challenge>, HeaderError> {
        self.challenges("WWW-Authenticate")
    }

    /// Proxy-Authenticate challenges (RFC 3261 §20.27).
    pub fn proxy_authenticate(&self) -> Result<Vec<Challenge>, HeaderError> {
        self.challenges("Proxy-Authenticate")
    }

    /// Authorization credentials (RFC 3261 §20.7).
    pub fn authorization(&self) -> Result<Vec<Credentials>, HeaderError> {
        self.credentials("Authorization")
    }

    /// Proxy-Authorization credentials (RFC 3261 §20.28).
    pub fn proxy_authorization(&self) -> Result<Vec<Credentials>, HeaderError> {
        self.credentials("Proxy-Authorization")
    }

    /// Every Call-Info value (RFC 3261 §20.9, RFC 6993): comma lists and repeated header
    /// lines, whitespace allowed before `;`, any URI scheme.
    pub fn call_info(&self) -> Result<Vec<CallInfo>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all("Call-Info") {
            out.extend(parse_list("Call-Info", v, parse_call_info)?);
        }
        Ok(out)
    }

    /// Privacy values (RFC 3323 §4.2), separated by `;` (or `,`).
    pub fn privacy(&self) -> Vec<String> {
        self.get_all("Privacy")
            .flat_map(|v| v.split([';', ',']))
            .map(trim_ws)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The Event header (RFC 6665 §8.2.1), if present.
    pub fn event(&self) -> Result<Option<Event>, HeaderError> {
        match self.opt_single("Event")? {
            None => Ok(None),
            Some(v) => {
                let (package, params) =
                    parse_token_params(v).map_err(|r| HeaderError::invalid("Event", r))?;
                Ok(Some(Event { package, params }))
            }
        }
    }

    /// The Subscription-State header (RFC 6665 §8.2.3), if present.
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState>, HeaderError> {
        match self.opt_single("Subscription-State")? {
            None => Ok(None),
            Some(v) => {
                let (state, params) = parse_token_params(v)
                    .map_err(|r| HeaderError::invalid("Subscription-State", r))?;
                Ok(Some(SubscriptionState { state, params }))
            }
        }
    }

    /// Allow: methods (RFC 3261 §20.5).
    pub fn allow(&self) -> Vec<String> {
        self.tokens("Allow")
    }

    /// Supported option tags (RFC 3261 §20.37).
    pub fn supported(&self) -> Vec<String> {
        self.tokens("Supported")
    }

    /// Require option tags (RFC 3261 §20.32).
    pub fn require(&self) -> Vec<String> {
        self.tokens("Require")
    }

    /// Proxy-Require option tags (RFC 3261 §20.29).
    pub fn proxy_require(&self) -> Vec<String> {
        self.tokens("Proxy-Require")
    }

    /// Warning values (RFC 3261 §20.43).
    pub fn warning(&self) -> Result<Vec<Warning>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all("Warning") {
            out.extend(parse_list("Warning", v, parse_warning)?);
        }
        Ok(out)
    }
}

/// Fuzzing hook, not API: parses `data` and, when it is a message, checks that every
/// borrowed view agrees with the owned accessor of the same header (values and errors) and
/// that reading the views' accessors does not panic. Panics on a disagreement, which is
/// what the `sip_parse` fuzz target looks for.
#[doc(hidden)]
pub fn fuzz_typed_views(data: &[u8]) {
    let Ok(m) = super::SipMessage::parse(bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let h = m.headers();
    let vias: Result<Vec<Via>, _> = h
        .via_refs()
        .map(|r| {
            r.map(|v| {
                let _ = (v.received_addr(), v.rport(), v.params().to_string());
                v.to_owned()
            })
        })
        .collect();
    assert_eq!(vias, h.via(), "via_refs vs via");
    assert_eq!(
        h.top_via_ref().map(|v| v.to_owned()),
        h.top_via(),
        "top_via_ref vs top_via"
    );
    let from = h.from_ref().map(|n| {
        let _ = (
            n.tag(),
            n.display_name(),
            n.uri().user(),
            n.uri().headers().count(),
        );
        n.to_owned()
    });
    assert_eq!(from, h.from(), "from_ref vs from");
    assert_eq!(h.to_ref().map(|n| n.to_owned()), h.to(), "to_ref vs to");
    let contacts: Result<Vec<Contact>, _> = h
        .contact_refs()
        .map(|r| {
            r.map(|c| {
                let _ = c.expires();
                c.to_owned()
            })
        })
        .collect();
    assert_eq!(contacts, h.contacts(), "contact_refs vs contacts");
    let route: Result<Vec<NameAddr>, _> = h.route_refs().map(|r| r.map(|n| n.to_owned())).collect();
    assert_eq!(route, h.route(), "route_refs vs route");
    let rr: Result<Vec<NameAddr>, _> = h
        .record_route_refs()
        .map(|r| r.map(|n| n.to_owned()))
        .collect();
    assert_eq!(rr, h.record_route(), "record_route_refs vs record_route");
}
