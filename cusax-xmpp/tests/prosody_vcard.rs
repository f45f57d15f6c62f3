//! vCards against a real Prosody 0.12 (scripts/interop-up.sh), the way CUSAX reads a
//! contact's SIP address (RFC 7081 §3.1, §3.3):
//! - `sha256.cusax.test` runs `mod_vcard`, which stores vcard-temp verbatim: every TEL and
//!   every flag survive.
//! - `cusax.test` runs `mod_vcard_legacy` + `mod_vcard4`: vcard-temp is bridged to the
//!   vCard4 PEP node and back, lossily. What survives (asserted below): every number, the
//!   SIP URI (as `tel:sip:…` in vCard4, normalized back to `sip:`), and the HOME/WORK flag
//!   (vcard-temp → vCard4) or the first type (vCard4 → vcard-temp). VOICE, VIDEO, CELL and
//!   PREF are dropped by the bridge; the test prints what it saw.
//!
//! Skips when CUSAX_XMPP_ADDR / CUSAX_XMPP_DOMAIN / CUSAX_XMPP_DOMAIN_SHA256 /
//! CUSAX_CA_CERT are absent.
#![cfg(feature = "driver")]

use std::time::Duration;

use cusax_xmpp::driver::{Client, ClientConfig, EventStream};
use cusax_xmpp::session::{SessionConfig, XmppEvent};
use cusax_xmpp::stanza::{Iq, IqType};
use cusax_xmpp::vcard::temp::Tel;
use cusax_xmpp::vcard::v4::Tel4;
use cusax_xmpp::vcard::{self, Phone, PhoneUri, TelFlags, Vcard4, VcardSource, VcardTemp};
use cusax_xmpp::xml::element::Element;
use jid::BareJid;
use tokio::time::{Instant, timeout_at};

struct Env {
    addr: String,
    domain: String,
    domain256: String,
    ca: String,
}

fn env() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(addr), Some(domain), Some(domain256), Some(ca)) = (
        get("CUSAX_XMPP_ADDR"),
        get("CUSAX_XMPP_DOMAIN"),
        get("CUSAX_XMPP_DOMAIN_SHA256"),
        get("CUSAX_CA_CERT"),
    ) else {
        eprintln!(
            "skipping: CUSAX_XMPP_ADDR/CUSAX_XMPP_DOMAIN/CUSAX_XMPP_DOMAIN_SHA256/CUSAX_CA_CERT not set (source .interop/env)"
        );
        return None;
    };
    Some(Env {
        addr,
        domain,
        domain256,
        ca,
    })
}

struct Peer {
    client: Client,
    events: EventStream,
    bare: BareJid,
    next_id: u32,
}

impl Peer {
    async fn login(env: &Env, user: &str, domain: &str) -> Peer {
        let bare = BareJid::new(&format!("{user}@{domain}")).expect("jid");
        let mut s = SessionConfig::new(bare.clone(), format!("{user}-secret"));
        // Unique per login: tests run in parallel and log the same user in; a second
        // session with the same resource would replace the first (RFC 6120 §7.7.2.2).
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        s.resource = Some(format!("vcard-{}-{n}", std::process::id()));
        let mut c = ClientConfig::new(s);
        c.server = Some(env.addr.clone());
        c.ca_cert = Some(env.ca.clone().into());
        c.connect_timeout = Duration::from_secs(20);
        let (client, mut events) = Client::connect(c).await.expect("login");
        match tokio::time::timeout(Duration::from_secs(10), events.next_event()).await {
            Ok(Some(XmppEvent::Online { .. })) => {}
            other => panic!("{bare}: expected Online, got {other:?}"),
        }
        Peer {
            client,
            events,
            bare,
            next_id: 0,
        }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("vc-{}", self.next_id)
    }

    /// Sends `iq` and returns the response with the same id (other stanzas are dropped:
    /// these sessions send no presence, so only PEP notifications could arrive).
    async fn request(&mut self, iq: Iq) -> Iq {
        let id = iq.id.clone();
        self.client.send(Element::from(iq)).await.expect("send");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match timeout_at(deadline, self.events.next_event()).await {
                Ok(Some(XmppEvent::Stanza(e)))
                    if e.name == "iq" && e.attr("id") == Some(id.as_str()) =>
                {
                    return Iq::try_from(e).expect("iq response parses");
                }
                Ok(Some(XmppEvent::Stanza(_))) => {}
                other => panic!("{}: waiting for iq {id}: {other:?}", self.bare),
            }
        }
    }

    async fn ok(&mut self, iq: Iq, what: &str) -> Iq {
        let res = self.request(iq).await;
        assert_eq!(res.kind, IqType::Result, "{what} failed: {:?}", res.error);
        res
    }
}

fn alice_temp(domain: &str) -> VcardTemp {
    let mut v = VcardTemp::new();
    v.full_name = Some("Alice Liddell".into());
    v.nickname = Some("alice".into());
    v.tels.push(Tel {
        flags: TelFlags::WORK | TelFlags::VIDEO,
        number: format!("sip:alice@{domain}"),
    });
    v.tels.push(Tel {
        flags: TelFlags::HOME | TelFlags::VOICE,
        number: "+49 30 1234567".into(),
    });
    v.jabber_ids.push(format!("alice@{domain}"));
    v
}

fn find<'a>(phones: &'a [Phone], uri: &PhoneUri) -> &'a Phone {
    phones
        .iter()
        .find(|p| &p.normalized == uri)
        .unwrap_or_else(|| panic!("{uri:?} not among {phones:?}"))
}

/// vcard-temp stored verbatim (mod_vcard): both TELs with all flags, unknown elements
/// kept through a get-modify-set by the owner.
#[tokio::test]
async fn vcard_temp_verbatim() {
    let Some(env) = env() else { return };
    let d = env.domain256.clone();
    let mut alice = Peer::login(&env, "alice", &d).await;
    let mut bob = Peer::login(&env, "bob", &d).await;

    // Publish with an extension element the library does not model.
    let mut v = alice_temp(&d);
    let mut el = v.to_element();
    el.push_child(Element::new("X-CUSAX-NOTE", "vcard-temp").with_text("keep me"));
    v = VcardTemp::from_element(&el).expect("own vcard");
    let id = alice.id();
    alice.ok(vcard::temp_set(id, &v), "vcard-temp set").await;

    let id = bob.id();
    let res = bob
        .ok(
            vcard::temp_get(id, Some(alice.bare.clone())),
            "vcard-temp get",
        )
        .await;
    let got = vcard::temp_from_result(&res)
        .expect("valid vCard")
        .expect("alice has a vCard");
    let phones = got.phones();
    assert_eq!(phones.len(), 2, "{phones:?}");
    let sip = find(&phones, &PhoneUri::Sip(format!("sip:alice@{d}")));
    assert_eq!(sip.flags, TelFlags::WORK | TelFlags::VIDEO);
    assert!(sip.has_video());
    assert_eq!(sip.source, VcardSource::VcardTemp);
    let pstn = find(&phones, &PhoneUri::Tel("tel:+49301234567".into()));
    assert_eq!(pstn.flags, TelFlags::HOME | TelFlags::VOICE);
    assert_eq!(pstn.raw, "+49 30 1234567");
    assert_eq!(got.sip_addresses().len(), 2);
    assert_eq!(got.full_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(got.jabber_ids, vec![format!("alice@{d}")]);

    // The owner changes only the nickname; everything else comes back untouched.
    let id = alice.id();
    let res = alice
        .ok(vcard::temp_get(id, None), "own vcard-temp get")
        .await;
    let mut own = vcard::temp_from_result(&res)
        .expect("valid")
        .expect("present");
    own.nickname = Some("Al".into());
    let id = alice.id();
    alice
        .ok(vcard::temp_set(id, &own), "vcard-temp update")
        .await;
    let id = bob.id();
    let res = bob
        .ok(
            vcard::temp_get(id, Some(alice.bare.clone())),
            "vcard-temp get",
        )
        .await;
    let again = vcard::temp_from_result(&res)
        .expect("valid")
        .expect("present");
    assert_eq!(again.nickname.as_deref(), Some("Al"));
    assert_eq!(again.tels, got.tels);
    assert_eq!(
        again
            .original()
            .child("X-CUSAX-NOTE", "vcard-temp")
            .map(Element::text)
            .as_deref(),
        Some("keep me")
    );
    alice.client.close().await.expect("close");
    bob.client.close().await.expect("close");
}

/// vcard-temp written through Prosody's bridge (mod_vcard_legacy), read back as vcard-temp
/// and as vCard4 from PEP.
#[tokio::test]
async fn vcard_temp_through_bridge() {
    let Some(env) = env() else { return };
    let d = env.domain.clone();
    let mut alice = Peer::login(&env, "alice", &d).await;
    let mut bob = Peer::login(&env, "bob", &d).await;
    let id = alice.id();
    alice
        .ok(vcard::temp_set(id, &alice_temp(&d)), "vcard-temp set")
        .await;

    // vcard-temp → PEP → vcard-temp.
    let id = bob.id();
    let res = bob
        .ok(
            vcard::temp_get(id, Some(alice.bare.clone())),
            "vcard-temp get",
        )
        .await;
    let got = vcard::temp_from_result(&res)
        .expect("valid")
        .expect("present");
    let phones = got.phones();
    eprintln!("bridged vcard-temp TELs: {:?}", got.tels);
    assert_eq!(phones.len(), 2, "{phones:?}");
    let sip = find(&phones, &PhoneUri::Sip(format!("sip:alice@{d}")));
    assert!(
        sip.flags.contains(TelFlags::WORK),
        "WORK survives the bridge: {:?}",
        sip.flags
    );
    let pstn = find(&phones, &PhoneUri::Tel("tel:+49301234567".into()));
    assert!(
        pstn.flags.contains(TelFlags::HOME),
        "HOME survives the bridge: {:?}",
        pstn.flags
    );
    assert_eq!(got.sip_addresses().len(), 2);
    assert_eq!(got.full_name.as_deref(), Some("Alice Liddell"));

    // The same data as vCard4 from the PEP node: the SIP URI arrives as `tel:sip:…`.
    let id = bob.id();
    let res = bob
        .ok(
            vcard::v4_get(id, Some(alice.bare.clone())),
            "vCard4 PEP get",
        )
        .await;
    let v4 = vcard::v4_from_result(&res)
        .expect("valid")
        .expect("bridge published a vCard4");
    eprintln!("bridged vCard4 tels: {:?}", v4.tels);
    let phones = v4.phones();
    assert_eq!(phones.len(), 2, "{phones:?}");
    let sip = find(&phones, &PhoneUri::Sip(format!("sip:alice@{d}")));
    assert!(
        sip.raw.to_ascii_lowercase().starts_with("tel:sip:"),
        "Prosody 0.12 writes tel:sip:…, got {}",
        sip.raw
    );
    assert!(sip.flags.contains(TelFlags::WORK), "{:?}", sip.flags);
    assert_eq!(sip.source, VcardSource::Vcard4);
    let pstn = find(&phones, &PhoneUri::Tel("tel:+49301234567".into()));
    assert!(pstn.flags.contains(TelFlags::HOME), "{:?}", pstn.flags);
    assert_eq!(v4.impps, vec![format!("xmpp:alice@{d}")]);
    alice.client.close().await.expect("close");
    bob.client.close().await.expect("close");
}

/// vCard4 published to PEP (XEP-0292), read as vCard4 and, through the bridge, as vcard-temp.
#[tokio::test]
async fn vcard4_pep_and_bridge() {
    let Some(env) = env() else { return };
    let d = env.domain.clone();
    let mut carol = Peer::login(&env, "carol", &d).await;
    let mut bob = Peer::login(&env, "bob", &d).await;

    let mut v = Vcard4::new();
    v.full_name = Some("Carol Cusax".into());
    v.tels.push(Tel4::from_uri(
        format!("sip:carol@{d}"),
        TelFlags::WORK | TelFlags::VIDEO | TelFlags::PREF,
    ));
    v.tels.push(Tel4::from_uri(
        "tel:+1-555-0100",
        TelFlags::HOME | TelFlags::VOICE,
    ));
    v.tels.push(Tel4::from_uri(
        "tel:+1-555-0101",
        TelFlags::HOME | TelFlags::CELL,
    ));
    v.impps.push(format!("xmpp:carol@{d}"));
    let id = carol.id();
    carol.ok(vcard::v4_publish(id, &v), "vCard4 publish").await;

    let id = bob.id();
    let res = bob
        .ok(vcard::v4_get(id, Some(carol.bare.clone())), "vCard4 get")
        .await;
    let got = vcard::v4_from_result(&res)
        .expect("valid")
        .expect("present");
    let phones = got.phones();
    assert_eq!(phones.len(), 3, "{phones:?}");
    let sip = find(&phones, &PhoneUri::Sip(format!("sip:carol@{d}")));
    assert_eq!(
        sip.flags,
        TelFlags::WORK | TelFlags::VIDEO | TelFlags::PREF,
        "PEP keeps the vCard4 verbatim"
    );
    assert!(sip.has_video());
    assert_eq!(
        find(&phones, &PhoneUri::Tel("tel:+15550100".into())).flags,
        TelFlags::HOME | TelFlags::VOICE
    );
    assert_eq!(
        find(&phones, &PhoneUri::Tel("tel:+15550101".into())).flags,
        TelFlags::HOME | TelFlags::CELL
    );
    assert_eq!(got.full_name.as_deref(), Some("Carol Cusax"));

    // The same through the bridge as vcard-temp: numbers kept, only the first type.
    let id = bob.id();
    let res = bob
        .ok(
            vcard::temp_get(id, Some(carol.bare.clone())),
            "vcard-temp get",
        )
        .await;
    let temp = vcard::temp_from_result(&res)
        .expect("valid")
        .expect("present");
    eprintln!("vCard4 seen as vcard-temp: {:?}", temp.tels);
    let phones = temp.phones();
    assert_eq!(phones.len(), 3, "{phones:?}");
    let sip = find(&phones, &PhoneUri::Sip(format!("sip:carol@{d}")));
    assert!(sip.flags.contains(TelFlags::WORK), "{:?}", sip.flags);
    assert!(
        find(&phones, &PhoneUri::Tel("tel:+15550100".into()))
            .flags
            .contains(TelFlags::HOME)
    );
    assert_eq!(temp.sip_addresses().len(), 3);
    assert_eq!(temp.jabber_ids, vec![format!("carol@{d}")]);
    carol.client.close().await.expect("close");
    bob.client.close().await.expect("close");
}
