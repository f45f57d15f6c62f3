//! Typed accessors on [`Headers`] (RFC 3261 §20 and the extensions cusax uses).

use super::headers::Headers;
use super::lex::{parse_u32, split_commas, trim_ws};
use super::types::{
    CSeq, CallInfo, Challenge, Contact, Credentials, Event, HeaderError, NameAddr,
    SubscriptionState, Via, Warning, parse_auth_list, parse_call_info, parse_cseq, parse_list,
    parse_name_addr, parse_token_params, parse_via, parse_warning,
};

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

    /// Every Via value, top first (RFC 3261 §20.42).
    pub fn via(&self) -> Result<Vec<Via>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all("Via") {
            out.extend(parse_list("Via", v, parse_via)?);
        }
        Ok(out)
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let v = self
            .get("Via")
            .ok_or(HeaderError::Missing { name: "Via" })?;
        let items = split_commas(v).ok_or(HeaderError::invalid("Via", "unbalanced quote"))?;
        let first = items.first().ok_or(HeaderError::Missing { name: "Via" })?;
        parse_via(first).map_err(|r| HeaderError::invalid("Via", r))
    }

    /// The From header (exactly one).
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        parse_name_addr(self.single("From")?).map_err(|r| HeaderError::invalid("From", r))
    }

    /// The To header (exactly one).
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        parse_name_addr(self.single("To")?).map_err(|r| HeaderError::invalid("To", r))
    }

    /// The Call-ID (exactly one, `word ["@" word]`, RFC 3261 §20.8).
    pub fn call_id(&self) -> Result<&str, HeaderError> {
        let v = trim_ws(self.single("Call-ID")?);
        if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(HeaderError::invalid(
                "Call-ID",
                "empty or contains whitespace",
            ));
        }
        Ok(v)
    }

    /// The CSeq header (exactly one).
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        parse_cseq(self.single("CSeq")?).map_err(|r| HeaderError::invalid("CSeq", r))
    }

    /// Every Contact value (RFC 3261 §20.10); `*` gives [`Contact::Star`].
    pub fn contacts(&self) -> Result<Vec<Contact>, HeaderError> {
        let mut out = Vec::new();
        for v in self.get_all("Contact") {
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
