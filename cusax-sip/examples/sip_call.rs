//! A SIP call with the cusax user agent.
//!
//! With no arguments: two user agents in this process on 127.0.0.1 (real UDP sockets,
//! no server): alice calls bob, bob rings and answers, alice puts the call on hold with
//! a re-INVITE and hangs up. This zero-setup demo opts into plain UDP explicitly
//! (`EndpointConfig::insecure`): there is no server with a certificate to talk TLS to,
//! and nothing leaves the loopback interface.
//!
//! ```text
//! cargo run -p cusax-sip --example sip_call
//! cargo run -p cusax-sip --example sip_call -- --registrar 127.0.0.1:5061 \
//!     --ca .interop/certs/ca.pem --domain cusax.test --user alice \
//!     --password alice-secret --call bob
//! ```
//!
//! With `--registrar`, it registers to that SIP server over TLS (the default; the
//! certificate must be valid for `--domain`, trusted by the Mozilla roots or by the CA
//! file `--ca`) with digest authentication, calls `--call` (a user at `--domain`, or a
//! full `sip:` URI) through it, holds, hangs up and un-registers. `--insecure-udp` uses
//! plain UDP to the registrar instead (clear-text signalling).

#[cfg(not(feature = "driver"))]
fn main() {
    eprintln!("this example needs the `driver` feature (on by default)");
}

#[cfg(feature = "driver")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(demo::main())
}

#[cfg(feature = "driver")]
mod demo {
    use std::net::SocketAddr;
    use std::time::Duration;

    use bytes::Bytes;
    use cusax_sip::driver::TransportConfig;
    use cusax_sip::endpoint::{Account, CallId, CallOptions, EndpointConfig, SipEvent};
    use cusax_sip::msg::Uri;
    use cusax_sip::transaction::{Target, Transport};
    use cusax_sip::ua::client::Client;

    type Error = Box<dyn std::error::Error>;

    const WAIT: Duration = Duration::from_secs(15);

    fn sdp(user: &str, port: u16, direction: &str) -> Bytes {
        Bytes::from(format!(
            "v=0\r\no={user} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na={direction}\r\n"
        ))
    }

    struct Args {
        registrar: Option<SocketAddr>,
        domain: String,
        user: String,
        password: String,
        call: String,
        ca: Option<std::path::PathBuf>,
        insecure_udp: bool,
    }

    fn args() -> Result<Args, Error> {
        let mut a = Args {
            registrar: None,
            domain: "cusax.test".into(),
            user: "alice".into(),
            password: "alice-secret".into(),
            call: "bob".into(),
            ca: None,
            insecure_udp: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--registrar" => a.registrar = Some(value()?.parse()?),
                "--domain" => a.domain = value()?,
                "--user" => a.user = value()?,
                "--password" => a.password = value()?,
                "--call" => a.call = value()?,
                "--ca" => a.ca = Some(value()?.into()),
                "--insecure-udp" => a.insecure_udp = true,
                "-h" | "--help" => {
                    println!(
                        "usage: sip_call [--registrar HOST:PORT [--ca CA.pem | --insecure-udp] --domain D --user U --password P --call USER|URI]"
                    );
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        Ok(a)
    }

    pub async fn main() -> Result<(), Error> {
        let a = args()?;
        match a.registrar {
            None => local_demo().await,
            Some(r) => registrar_demo(&a, r).await,
        }
    }

    async fn event(c: &mut Client, who: &str) -> Result<SipEvent, Error> {
        let e = c
            .next_event_timeout(WAIT)
            .await
            .ok_or_else(|| format!("{who}: no event within {WAIT:?}"))?;
        Ok(e)
    }

    /// Waits for an event `f` accepts, printing the others.
    async fn until<T>(
        c: &mut Client,
        who: &str,
        mut f: impl FnMut(&SipEvent) -> Option<T>,
    ) -> Result<T, Error> {
        loop {
            let e = event(c, who).await?;
            if let Some(t) = f(&e) {
                return Ok(t);
            }
            match e {
                SipEvent::CallFailed { status, reason, .. } => {
                    return Err(format!("{who}: call failed: {status} {reason}").into());
                }
                SipEvent::RegistrationFailed { status, reason } => {
                    return Err(format!("{who}: registration failed: {status} {reason}").into());
                }
                other => println!("{who}: {other:?}"),
            }
        }
    }

    async fn local_demo() -> Result<(), Error> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        println!("(loopback demo: plain UDP chosen explicitly; with a server, TLS is the default)");
        let mut cfg = EndpointConfig::insecure(any, Transport::Udp);
        cfg.contact_user = "alice".into();
        cfg.call_info_impp = Some("alice@cusax.test".into());
        let mut alice = Client::start(cfg).await?;
        let mut cfg = EndpointConfig::insecure(any, Transport::Udp);
        cfg.contact_user = "bob".into();
        let mut bob = Client::start(cfg).await?;
        println!(
            "alice listens on {}, bob on {}",
            alice.local_addr(),
            bob.local_addr()
        );

        let bob_uri = Uri::parse(&format!("sip:bob@{}", bob.local_addr()))?;
        println!("alice: INVITE {bob_uri}");
        let call_a = alice.invite(
            bob_uri,
            sdp("alice", 40000, "sendrecv"),
            CallOptions::with_impp(),
        )?;

        let call_b: CallId = until(&mut bob, "bob", |e| match e {
            SipEvent::IncomingCall {
                call,
                from,
                call_info,
                ..
            } => {
                println!("bob: incoming call from {from}");
                for ci in call_info {
                    println!("bob:   Call-Info {ci} (a hint only, RFC 7081 §3.5)");
                }
                Some(*call)
            }
            _ => None,
        })
        .await?;
        println!("bob: 180 Ringing");
        bob.ring(call_b)?;
        until(&mut alice, "alice", |e| {
            matches!(e, SipEvent::CallRinging { .. }).then_some(())
        })
        .await?;
        println!("alice: ringing");

        println!("bob: 200 OK");
        bob.answer(call_b, 200, sdp("bob", 40002, "sendrecv"))?;
        until(&mut alice, "alice", |e| {
            matches!(e, SipEvent::CallAnswered { .. }).then_some(())
        })
        .await?;
        println!("alice: answered, ACK sent");
        until(&mut bob, "bob", |e| {
            matches!(e, SipEvent::CallConfirmed { .. }).then_some(())
        })
        .await?;
        println!("bob: ACK received, call established");

        println!("alice: re-INVITE (hold, a=sendonly)");
        alice.reinvite(call_a, sdp("alice", 40000, "sendonly"))?;
        until(&mut bob, "bob", |e| {
            matches!(e, SipEvent::ReinviteReceived { .. }).then_some(())
        })
        .await?;
        println!("bob: hold offer received, answering a=recvonly");
        bob.answer(call_b, 200, sdp("bob", 40002, "recvonly"))?;
        let st = until(&mut alice, "alice", |e| match e {
            SipEvent::ReinviteCompleted { status, .. } => Some(*status),
            _ => None,
        })
        .await?;
        println!("alice: on hold ({st})");

        println!("alice: BYE");
        alice.bye(call_a)?;
        until(&mut alice, "alice", |e| {
            matches!(e, SipEvent::CallEnded { .. }).then_some(())
        })
        .await?;
        until(&mut bob, "bob", |e| match e {
            SipEvent::CallEnded { by, .. } => {
                println!("bob: call ended by {by:?}");
                Some(())
            }
            _ => None,
        })
        .await?;
        println!("done");
        Ok(())
    }

    async fn registrar_demo(a: &Args, registrar: SocketAddr) -> Result<(), Error> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let (mut cfg, server, transports) = if a.insecure_udp {
            println!("warning: plain UDP, signalling in clear text");
            let cfg = EndpointConfig::insecure(any, Transport::Udp);
            (cfg, Target::new(Transport::Udp, registrar), None)
        } else {
            let tc = match &a.ca {
                Some(ca) => TransportConfig::tls_with_ca_file(ca),
                None => TransportConfig::default(),
            };
            (
                EndpointConfig::new(any),
                Target::new(Transport::Tls, registrar),
                Some(tc),
            )
        };
        cfg.account = Some(Account {
            aor: Uri::parse(&format!("sip:{}@{}", a.user, a.domain))?,
            display_name: None,
            username: a.user.clone(),
            password: a.password.clone(),
            registrar: server,
            outbound_proxy: Some(server),
            expires: 300,
        });
        let mut ua = Client::start_with(cfg, transports).await?;
        println!("{}: REGISTER to {server}", a.user);
        ua.register()?;
        let expires = until(&mut ua, &a.user, |e| match e {
            SipEvent::Registered { expires, .. } => Some(*expires),
            _ => None,
        })
        .await?;
        println!("{}: registered for {expires} s", a.user);

        let result = place_call(&mut ua, a).await;
        println!("{}: un-registering", a.user);
        ua.shutdown(WAIT).await;
        result?;
        println!("done");
        Ok(())
    }

    async fn place_call(ua: &mut Client, a: &Args) -> Result<(), Error> {
        let to = if a.call.contains(':') {
            Uri::parse(&a.call)?
        } else {
            Uri::parse(&format!("sip:{}@{}", a.call, a.domain))?
        };
        println!("{}: INVITE {to}", a.user);
        let call = ua.invite(to, sdp(&a.user, 40000, "sendrecv"), CallOptions::default())?;
        until(ua, &a.user, |e| {
            matches!(e, SipEvent::CallAnswered { .. }).then_some(())
        })
        .await?;
        println!("{}: answered", a.user);
        ua.reinvite(call, sdp(&a.user, 40000, "sendonly"))?;
        let st = until(ua, &a.user, |e| match e {
            SipEvent::ReinviteCompleted { status, .. } => Some(*status),
            _ => None,
        })
        .await?;
        println!("{}: hold re-INVITE answered {st}", a.user);
        ua.bye(call)?;
        until(ua, &a.user, |e| {
            matches!(e, SipEvent::CallEnded { .. }).then_some(())
        })
        .await?;
        println!("{}: call ended", a.user);
        Ok(())
    }
}
