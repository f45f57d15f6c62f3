#!/usr/bin/env python3
"""Readiness and smoke probes for the cusax interop servers (stdlib only).

Used by scripts/interop-up.sh to wait until Kamailio and Prosody answer and
to check that they behave as the tests expect. Exit status 0 = OK.

  interop-probe.py sip-options  --addr 127.0.0.1:5060 --transport udp
  interop-probe.py sip-register --addr 127.0.0.1:5070 --transport udp \
        --user alice --password alice-secret --expect-algorithm SHA-256
  interop-probe.py sip-call --addr 127.0.0.1:5060 --transport tls \
        --callee-transport tcp --ca ca.pem
  interop-probe.py xmpp --addr 127.0.0.1:5222 --domain cusax.test \
        --user alice --password alice-secret --ca ca.pem \
        --expect-mechanism SCRAM-SHA-1 \
        --room cusax-room@conference.cusax.test \
        --expect-field audio-video-uri=sip:cusax-room@cusax.test
"""

import argparse
import base64
import hashlib
import hmac
import os
import random
import re
import socket
import ssl
import sys
import time

TIMEOUT = 5.0


def log(msg):
    print(f"probe: {msg}", file=sys.stderr)


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


# ---------------------------------------------------------------- SIP ---

class SipConn:
    def __init__(self, addr, transport, ca=None, server_name=None):
        self.host, self.port = split_addr(addr)
        self.transport = transport
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.connect((self.host, self.port))
        else:
            raw = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
            if transport == "tls":
                ctx = ssl.create_default_context(cafile=ca)
                raw = ctx.wrap_socket(raw, server_hostname=server_name or self.host)
            self.sock = raw
        self.sock.settimeout(TIMEOUT)
        self.local = self.sock.getsockname()
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode())

    def read_message(self):
        """Return (first_line, headers-dict-of-lists, raw) of the next message."""
        if self.transport == "udp":
            data = self.sock.recv(65535).decode(errors="replace")
        else:
            while b"\r\n\r\n" not in self.buf:
                chunk = self.sock.recv(65535)
                if not chunk:
                    raise ConnectionError("connection closed")
                self.buf += chunk
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^(?:content-length|l)\s*:\s*(\d+)", head)
            clen = int(m.group(1)) if m else 0
            while len(rest) < clen:
                chunk = self.sock.recv(65535)
                if not chunk:
                    raise ConnectionError("connection closed")
                rest += chunk
            self.buf = rest[clen:]
            data = (head + b"\r\n\r\n" + rest[:clen]).decode(errors="replace")
        first, _, hdrs = data.partition("\r\n")
        headers = {}
        for line in hdrs.split("\r\n\r\n")[0].split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers.setdefault(name.strip().lower(), []).append(value.strip())
        return first, headers, data

    def recv(self):
        """Return (status, headers, raw) of the next final response."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("no SIP response")
            first, headers, data = self.read_message()
            m = re.match(r"SIP/2\.0 (\d{3})", first)
            if not m:
                continue  # a request (e.g. OPTIONS keepalive): ignore
            status = int(m.group(1))
            if status < 200:
                continue
            return status, headers, data

    def recv_request(self, method):
        deadline = time.monotonic() + TIMEOUT
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} request")
            first, headers, data = self.read_message()
            if first.startswith(method + " "):
                return first, headers, data

    def reply(self, headers, status, reason):
        lines = [f"SIP/2.0 {status} {reason}"]
        for v in headers.get("via", []) + headers.get("v", []):
            lines.append(f"Via: {v}")
        for name in ("from", "call-id", "cseq"):
            lines.append(f"{name.title()}: {headers[name][0]}")
        lines.append(f"To: {headers['to'][0]};tag=probe{random.getrandbits(24):x}")
        lines += ["Content-Length: 0", "", ""]
        self.send("\r\n".join(lines))


def sip_request(conn, method, ruri, from_user, domain, cseq, call_id, tag,
                extra="", expires=None, body=""):
    branch = "z9hG4bK" + "%016x" % random.getrandbits(64)
    proto = conn.transport.upper()
    lhost, lport = conn.local[0], conn.local[1]
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/{proto} {lhost}:{lport};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:{from_user}@{domain}>;tag={tag}",
        f"To: <sip:{from_user}@{domain}>" if method == "REGISTER" else f"To: <{ruri}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:{from_user}@{lhost}:{lport};transport={conn.transport}>",
    ]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if extra:
        lines.append(extra)
    if body:
        lines.append("Content-Type: text/plain")
    lines += ["User-Agent: cusax-interop-probe", f"Content-Length: {len(body.encode())}", "",
              body]
    conn.send("\r\n".join(lines))


def parse_challenge(value):
    scheme, _, params = value.partition(" ")
    out = {"scheme": scheme}
    for m in re.finditer(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))', params):
        out[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3)
    return out


def digest_header(ch, method, uri, user, password):
    alg = ch.get("algorithm", "MD5")
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[alg.upper()]
    H = lambda s: h(s.encode()).hexdigest()  # noqa: E731
    ha1 = H(f"{user}:{ch['realm']}:{password}")
    ha2 = H(f"{method}:{uri}")
    parts = [f'username="{user}"', f'realm="{ch["realm"]}"', f'nonce="{ch["nonce"]}"',
             f'uri="{uri}"']
    if "qop" in ch:
        cnonce = "%016x" % random.getrandbits(64)
        nc = "00000001"
        resp = H(f"{ha1}:{ch['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        parts += [f"qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        resp = H(f"{ha1}:{ch['nonce']}:{ha2}")
    parts.append(f'response="{resp}"')
    if "algorithm" in ch:
        parts.append(f"algorithm={alg}")
    if "opaque" in ch:
        parts.append(f'opaque="{ch["opaque"]}"')
    return "Digest " + ", ".join(parts)


def cmd_sip_options(a):
    conn = SipConn(a.addr, a.transport, a.ca, a.server_name)
    call_id = "probe-%x@127.0.0.1" % random.getrandbits(48)
    sip_request(conn, "OPTIONS", f"sip:{a.domain}", "probe", a.domain, 1, call_id, "p1")
    status, _, raw = conn.recv()
    if status != 200:
        log(f"OPTIONS got {status}:\n{raw}")
        return 1
    log(f"OPTIONS {a.transport} {a.addr}: 200")
    return 0


def register(conn, user, password, domain, expires, expect_algorithm=None):
    call_id = "probe-%x@127.0.0.1" % random.getrandbits(48)
    tag = "%x" % random.getrandbits(32)
    ruri = f"sip:{domain}"
    sip_request(conn, "REGISTER", ruri, user, domain, 1, call_id, tag, expires=expires)
    status, hdrs, raw = conn.recv()
    if status != 401:
        raise RuntimeError(f"REGISTER: expected 401, got {status}:\n{raw}")
    ch = parse_challenge(hdrs["www-authenticate"][0])
    alg = ch.get("algorithm", "MD5")
    if expect_algorithm and alg.upper() != expect_algorithm.upper():
        raise RuntimeError(f"challenge algorithm {alg}, expected {expect_algorithm}")
    auth = digest_header(ch, "REGISTER", ruri, user, password)
    sip_request(conn, "REGISTER", ruri, user, domain, 2, call_id, tag,
                extra=f"Authorization: {auth}", expires=expires)
    status, hdrs, raw = conn.recv()
    if status != 200:
        raise RuntimeError(f"authenticated REGISTER got {status}:\n{raw}")


def cmd_sip_route(a):
    """bob registers over --callee-transport; alice sends MESSAGE over --transport."""
    callee = SipConn(a.addr if a.callee_transport != "tls" else a.tls_addr,
                     a.callee_transport, a.ca, a.server_name)
    register(callee, "bob", "bob-secret", a.domain, 60)
    caller = SipConn(a.addr if a.transport != "tls" else a.tls_addr,
                     a.transport, a.ca, a.server_name)
    call_id = "probe-%x@127.0.0.1" % random.getrandbits(48)
    tag = "%x" % random.getrandbits(32)
    target = a.target or f"sip:bob@{a.domain}"
    sip_request(caller, "MESSAGE", target, a.from_user, a.from_domain or a.domain, 1,
                call_id, tag, body="hello bob")
    status, hdrs, raw = caller.recv()
    if a.expect_status and status == a.expect_status:
        log(f"MESSAGE {target} from {a.from_user}: {status} as expected")
        register(callee, "bob", "bob-secret", a.domain, 0)
        return 0
    if status != 407:
        log(f"MESSAGE: expected 407, got {status}:\n{raw}")
        return 1
    ch = parse_challenge(hdrs["proxy-authenticate"][0])
    auth = digest_header(ch, "MESSAGE", target, a.from_user, f"{a.from_user}-secret")
    sip_request(caller, "MESSAGE", target, a.from_user, a.domain, 2, call_id, tag,
                extra=f"Proxy-Authorization: {auth}", body="hello bob")
    if a.expect_status:
        status, hdrs, raw = caller.recv()
        register(callee, "bob", "bob-secret", a.domain, 0)
        if status != a.expect_status:
            log(f"authenticated MESSAGE: expected {a.expect_status}, got {status}:\n{raw}")
            return 1
        log(f"MESSAGE {target}: {status} as expected")
        return 0
    first, rhdrs, raw = callee.recv_request("MESSAGE")
    if "hello bob" not in raw:
        log(f"callee got MESSAGE without body:\n{raw}")
        return 1
    callee.reply(rhdrs, 200, "OK")
    status, hdrs, raw = caller.recv()
    register(callee, "bob", "bob-secret", a.domain, 0)
    if status != 200:
        log(f"MESSAGE: expected 200 from bob, got {status}:\n{raw}")
        return 1
    log(f"MESSAGE alice({a.transport}) -> bob({a.callee_transport}) via proxy: 200")
    return 0


def cmd_sip_call(a):
    """alice (--transport) calls bob (--callee-transport) through the proxy:
    INVITE, 407, INVITE with credentials, 200, ACK along the route set, then bob
    hangs up with a BYE that must reach alice (record-route, contact alias)."""
    d = a.domain
    def addr(t):
        return a.tls_addr if t == "tls" else a.addr
    bob = SipConn(addr(a.callee_transport), a.callee_transport, a.ca, a.server_name)
    register(bob, "bob", "bob-secret", d, 60)
    alice = SipConn(addr(a.transport), a.transport, a.ca, a.server_name)
    at, bt = a.transport, a.callee_transport
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0\r\n")
    cid = "probe-call-%x" % random.getrandbits(48)
    tag = "a%x" % random.getrandbits(32)
    al, ap = alice.local
    ruri = f"sip:bob@{d}"

    def branch():
        return "z9hG4bK%016x" % random.getrandbits(64)

    def invite(cseq, br, extra=""):
        alice.send(f"INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/{at.upper()} {al}:{ap};branch={br};rport\r\n"
                   f"Max-Forwards: 70\r\nFrom: <sip:alice@{d}>;tag={tag}\r\nTo: <{ruri}>\r\n"
                   f"Call-ID: {cid}\r\nCSeq: {cseq} INVITE\r\n"
                   f"Contact: <sip:alice@{al}:{ap};transport={at}>\r\n{extra}"
                   f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")

    br = branch()
    invite(1, br)
    status, h, raw = alice.recv()
    if status != 407:
        log(f"INVITE: expected 407, got {status}:\n{raw}")
        return 1
    alice.send(f"ACK {ruri} SIP/2.0\r\nVia: SIP/2.0/{at.upper()} {al}:{ap};branch={br};rport\r\n"
               f"Max-Forwards: 70\r\nFrom: <sip:alice@{d}>;tag={tag}\r\nTo: {h['to'][0]}\r\n"
               f"Call-ID: {cid}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
    ch = parse_challenge(h["proxy-authenticate"][0])
    auth = digest_header(ch, "INVITE", ruri, "alice", "alice-secret")
    invite(2, branch(), f"Proxy-Authorization: {auth}\r\n")
    _, bh, braw = bob.recv_request("INVITE")
    rr = bh.get("record-route", [])
    if not rr or "proxy-authorization" in bh:
        log(f"INVITE at bob: no Record-Route or credentials not consumed:\n{braw}")
        return 1
    bl, bp = bob.local
    btag = "b%x" % random.getrandbits(32)
    vias = "".join(f"Via: {v}\r\n" for v in bh["via"])
    rrh = "".join(f"Record-Route: {v}\r\n" for v in rr)
    bob.send(f"SIP/2.0 200 OK\r\n{vias}{rrh}From: {bh['from'][0]}\r\n"
             f"To: {bh['to'][0]};tag={btag}\r\nCall-ID: {cid}\r\nCSeq: 2 INVITE\r\n"
             f"Contact: <sip:bob@{bl}:{bp};transport={bt}>\r\nContent-Type: application/sdp\r\n"
             f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
    status, h, raw = alice.recv()
    if status != 200:
        log(f"INVITE: expected 200, got {status}:\n{raw}")
        return 1
    route = "".join(f"Route: {v}\r\n" for v in reversed(h.get("record-route", [])))
    bcontact = re.search(r"<([^>]+)>", h["contact"][0]).group(1)
    alice.send(f"ACK {bcontact} SIP/2.0\r\nVia: SIP/2.0/{at.upper()} {al}:{ap};branch={branch()};rport\r\n"
               f"Max-Forwards: 70\r\n{route}From: <sip:alice@{d}>;tag={tag}\r\nTo: {h['to'][0]}\r\n"
               f"Call-ID: {cid}\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n")
    bob.recv_request("ACK")
    acontact = re.search(r"<([^>]+)>", bh["contact"][0]).group(1)
    broute = "".join(f"Route: {v}\r\n" for v in rr)
    bob.send(f"BYE {acontact} SIP/2.0\r\nVia: SIP/2.0/{bt.upper()} {bl}:{bp};branch={branch()};rport\r\n"
             f"Max-Forwards: 70\r\n{broute}From: <sip:bob@{d}>;tag={btag}\r\n"
             f"To: <sip:alice@{d}>;tag={tag}\r\nCall-ID: {cid}\r\nCSeq: 1 BYE\r\n"
             f"Content-Length: 0\r\n\r\n")
    _, yh, _ = alice.recv_request("BYE")
    alice.reply(yh, 200, "OK")
    status, h, raw = bob.recv()
    register(bob, "bob", "bob-secret", d, 0)
    if status != 200:
        log(f"BYE: expected 200, got {status}:\n{raw}")
        return 1
    log(f"call alice({at}) -> bob({bt}): INVITE/407/200/ACK/BYE through the proxy OK")
    return 0


def cmd_sip_register(a):
    conn = SipConn(a.addr, a.transport, a.ca, a.server_name)
    call_id = "probe-%x@127.0.0.1" % random.getrandbits(48)
    tag = "%x" % random.getrandbits(32)
    ruri = f"sip:{a.domain}"
    cseq = 1
    for expires in (a.expires, 0):
        sip_request(conn, "REGISTER", ruri, a.user, a.domain, cseq, call_id, tag,
                    expires=expires)
        status, hdrs, raw = conn.recv()
        cseq += 1
        if status != 401:
            log(f"expected 401, got {status}:\n{raw}")
            return 1
        ch = parse_challenge(hdrs["www-authenticate"][0])
        alg = ch.get("algorithm", "MD5")
        if a.expect_algorithm and alg.upper() != a.expect_algorithm.upper():
            log(f"challenge algorithm {alg}, expected {a.expect_algorithm}")
            return 1
        auth = digest_header(ch, "REGISTER", ruri, a.user, a.password)
        sip_request(conn, "REGISTER", ruri, a.user, a.domain, cseq, call_id, tag,
                    extra=f"Authorization: {auth}", expires=expires)
        status, hdrs, raw = conn.recv()
        cseq += 1
        if status != 200:
            log(f"authenticated REGISTER (Expires {expires}) got {status}:\n{raw}")
            return 1
        log(f"REGISTER {a.transport} {a.addr} user={a.user} algorithm={alg} "
            f"expires={expires}: 200")
    return 0


# --------------------------------------------------------------- XMPP ---

class Xmpp:
    def __init__(self, addr, domain, ca, direct_tls):
        host, port = split_addr(addr)
        self.domain = domain
        self.ctx = ssl.create_default_context(cafile=ca)
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if direct_tls:
            self.sock = self.ctx.wrap_socket(self.sock, server_hostname=domain)
        self.buf = ""

    def send(self, s):
        self.sock.sendall(s.encode())

    def wait_for(self, pattern):
        deadline = time.monotonic() + TIMEOUT
        rx = re.compile(pattern, re.S)
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            if time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {pattern!r}; have {self.buf[-500:]!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"stream closed; have {self.buf[-500:]!r}")
            self.buf += chunk.decode(errors="replace")

    def open_stream(self):
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' "
                  f"to='{self.domain}' version='1.0'>")
        return self.wait_for(r"<stream:features.*?</stream:features>").group(0)

    def starttls(self):
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self.wait_for(r"<proceed[^>]*/>")
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname=self.domain)
        self.buf = ""


def scram(x, mech, user, password):
    hname = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mech]
    cnonce = base64.b64encode(os.urandom(18)).decode()
    bare = f"n={user},r={cnonce}"
    x.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mech}'>"
           f"{base64.b64encode(('n,,' + bare).encode()).decode()}</auth>")
    first = base64.b64decode(x.wait_for(r"<challenge[^>]*>([^<]*)</challenge>").group(1)).decode()
    attrs = dict(kv.split("=", 1) for kv in first.split(","))
    salted = hashlib.pbkdf2_hmac(hname, password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    ckey = hmac.new(salted, b"Client Key", hname).digest()
    skey = hashlib.new(hname, ckey).digest()
    final_wo = f"c=biws,r={attrs['r']}"
    auth_msg = f"{bare},{first},{final_wo}".encode()
    sig = hmac.new(skey, auth_msg, hname).digest()
    proof = bytes(a ^ b for a, b in zip(ckey, sig))
    final = f"{final_wo},p={base64.b64encode(proof).decode()}"
    x.send(f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
           f"{base64.b64encode(final.encode()).decode()}</response>")
    m = x.wait_for(r"<(success|failure)[^>]*?(?:/>|>(.*?)</\1>)")
    if m.group(1) != "success":
        raise RuntimeError(f"SASL failure: {m.group(0)}")


def cmd_xmpp(a):
    x = Xmpp(a.addr, a.domain, a.ca, a.direct_tls)
    feats = x.open_stream()
    if not a.direct_tls:
        if "urn:ietf:params:xml:ns:xmpp-tls" not in feats or "<required" not in feats:
            log(f"STARTTLS not offered as required: {feats}")
            return 1
        if "<mechanism>" in feats:
            log(f"SASL mechanisms offered before TLS: {feats}")
            return 1
        x.starttls()
        feats = x.open_stream()
    mechs = re.findall(r"<mechanism>([^<]+)</mechanism>", feats)
    if a.expect_mechanism and a.expect_mechanism not in mechs:
        log(f"mechanism {a.expect_mechanism} not in {mechs}")
        return 1
    mech = a.expect_mechanism or ("SCRAM-SHA-1" if "SCRAM-SHA-1" in mechs else "SCRAM-SHA-256")
    scram(x, mech, a.user, a.password)
    feats = x.open_stream()
    if "urn:xmpp:sm:3" not in feats:
        log(f"stream management not offered after auth: {feats}")
        return 1
    x.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
           "<resource>probe</resource></bind></iq>")
    jid = x.wait_for(r"<jid>([^<]+)</jid>").group(1)
    log(f"XMPP {a.addr} {'direct TLS' if a.direct_tls else 'STARTTLS'} {mech}: bound {jid}")
    if a.room:
        x.send(f"<iq type='get' id='d1' to='{a.room}'>"
               "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
        reply = x.wait_for(r"<iq[^>]*id=['\"]d1['\"].*?</iq>").group(0)
        if "type='error'" in reply or 'type="error"' in reply:
            log(f"disco#info on {a.room} failed: {reply}")
            return 1
        for exp in a.expect_field:
            var, _, want = exp.partition("=")
            m = re.search(r"<field[^>]*var=['\"]" + re.escape(var) +
                          r"['\"][^>]*>.*?<value>([^<]*)</value>", reply, re.S)
            if not m or m.group(1) != want:
                log(f"room {a.room}: field {var} = {m.group(1) if m else None!r}, "
                    f"expected {want!r}\n{reply}")
                return 1
            log(f"room {a.room}: {var} = {want}")
    x.send("</stream:stream>")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("sip-options", "sip-register", "sip-route", "sip-call"):
        s = sub.add_parser(name)
        s.add_argument("--addr", required=True)
        s.add_argument("--transport", choices=["udp", "tcp", "tls"], default="udp")
        s.add_argument("--domain", default="cusax.test")
        s.add_argument("--ca")
        s.add_argument("--server-name", default="cusax.test")
        if name in ("sip-route", "sip-call"):
            s.add_argument("--tls-addr", default="127.0.0.1:5061")
            s.add_argument("--callee-transport", choices=["udp", "tcp", "tls"], default="udp")
        if name == "sip-route":
            s.add_argument("--from-user", default="alice")
            s.add_argument("--from-domain")
            s.add_argument("--target")
            s.add_argument("--expect-status", type=int)
        if name == "sip-register":
            s.add_argument("--user", required=True)
            s.add_argument("--password", required=True)
            s.add_argument("--expires", type=int, default=60)
            s.add_argument("--expect-algorithm")
    s = sub.add_parser("xmpp")
    s.add_argument("--addr", required=True)
    s.add_argument("--domain", required=True)
    s.add_argument("--user", required=True)
    s.add_argument("--password", required=True)
    s.add_argument("--ca", required=True)
    s.add_argument("--direct-tls", action="store_true")
    s.add_argument("--expect-mechanism")
    s.add_argument("--room")
    s.add_argument("--expect-field", action="append", default=[])
    s.add_argument("--retry", type=float, default=0, help="retry for this many seconds")
    for sp in sub.choices.values():
        if not any(act.dest == "retry" for act in sp._actions):
            sp.add_argument("--retry", type=float, default=0,
                            help="retry for this many seconds")
    a = p.parse_args()
    fn = {"sip-options": cmd_sip_options, "sip-register": cmd_sip_register,
          "sip-route": cmd_sip_route, "sip-call": cmd_sip_call,
          "xmpp": cmd_xmpp}[a.cmd]
    deadline = time.monotonic() + a.retry
    while True:
        try:
            rc = fn(a)
        except (OSError, TimeoutError, RuntimeError, KeyError, ValueError) as e:
            log(f"{a.cmd} {a.addr}: {type(e).__name__}: {e}")
            rc = 1
        if rc == 0 or time.monotonic() >= deadline:
            return rc
        time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
