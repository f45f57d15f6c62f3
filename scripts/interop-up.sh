#!/usr/bin/env bash
# Start the real peers used by the cusax interop tests, on 127.0.0.1 only:
#   - Kamailio 5.6 (MD5 digest)      udp+tcp 127.0.0.1:5060, tls 127.0.0.1:5061
#   - Kamailio 5.6 (SHA-256 digest)  udp 127.0.0.1:5070
#   - Prosody 0.12                   c2s 127.0.0.1:5222 (STARTTLS), 127.0.0.1:5223 (direct TLS)
#   - baresip (only with CUSAX_WITH_BARESIP=1), ctrl_tcp 127.0.0.1:4444
# and write STATE_DIR/env (shell `export` lines, see scripts/README.md).
#
# Usage: sudo scripts/interop-up.sh [STATE_DIR]     (default: <repo>/.interop)
# Installs nothing (.ci/run does). Idempotent: a running set is stopped first.
# Stop with scripts/interop-down.sh [STATE_DIR].
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${1:-$REPO/.interop}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
TEMPLATES="$REPO/interop"
PROBE="$REPO/scripts/interop-probe.py"

DOMAIN=cusax.test
DOMAIN_SHA256=sha256.cusax.test
MUC=conference.cusax.test
ROOM=cusax-room@conference.cusax.test
USERS=(alice bob carol dave)  # dave: the sipp UAC (through Kamailio)
KAMAILIO_SHM_MB="${CUSAX_KAMAILIO_SHM_MB:-128}"

say() { printf 'interop-up: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (Prosody is started as user prosody): sudo $0 $*"
for bin in kamailio prosody prosodyctl sipp openssl setpriv python3; do
	command -v "$bin" >/dev/null || die "$bin not installed (run .ci/run's install step)"
done
id prosody >/dev/null 2>&1 || die "user prosody missing (is the prosody package installed?)"

# Restart cleanly if something from this state dir is still running.
if compgen -G "$STATE/pids/*.pid" >/dev/null; then
	say "stopping the previous instance first"
	"$REPO/scripts/interop-down.sh" "$STATE"
fi
mkdir -p "$STATE/pids" "$STATE/logs"
chmod 755 "$STATE"

# subst FILE_IN FILE_OUT KEY=VALUE... : replace @KEY@ with VALUE (values may
# span lines); an @UPPER_CASE@ placeholder without a value is an error.
subst() {
	python3 - "$@" <<-'EOF'
		import re, sys
		src, dst, *kvs = sys.argv[1:]
		vals = dict(kv.split("=", 1) for kv in kvs)
		def repl(m):
		    if m.group(1) not in vals:
		        sys.exit(f"interop-up: unsubstituted @{m.group(1)}@ in {src}")
		    return vals[m.group(1)]
		text = re.sub(r"@([A-Z][A-Z0-9_]*)@", repl, open(src).read())
		open(dst, "w").write(text)
	EOF
}

port_busy() { # proto port
	if [ "$1" = udp ]; then ss -Hlnu "sport = :$2" | grep -q .; else ss -Hlnt "sport = :$2" | grep -q .; fi
}
for pp in udp:5060 tcp:5060 tcp:5061 udp:5070 tcp:5222 tcp:5223; do
	if port_busy "${pp%%:*}" "${pp#*:}"; then
		die "port ${pp} already in use by another process: $(ss -Hlnp${pp:0:1} "sport = :${pp#*:}" | head -1)"
	fi
done

# ------------------------------------------------------------ certificates
CERTS="$STATE/certs"
mkdir -p "$CERTS"
make_certs() {
	say "generating test CA and leaf certificate in $CERTS"
	rm -f "$CERTS"/*
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
		-keyout "$CERTS/ca.key" -out "$CERTS/ca.pem" \
		-subj "/O=cusax interop/CN=cusax interop test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl req -new -newkey rsa:2048 -nodes -sha256 \
		-keyout "$CERTS/leaf.key" -out "$CERTS/leaf.csr" \
		-subj "/O=cusax interop/CN=$DOMAIN" 2>/dev/null
	cat >"$CERTS/leaf.ext" <<-EOF
		basicConstraints=critical,CA:FALSE
		keyUsage=critical,digitalSignature,keyEncipherment
		extendedKeyUsage=serverAuth
		subjectKeyIdentifier=hash
		authorityKeyIdentifier=keyid,issuer
		subjectAltName=DNS:$DOMAIN,DNS:*.$DOMAIN,DNS:$DOMAIN_SHA256,DNS:$MUC,DNS:localhost,IP:127.0.0.1,IP:::1
	EOF
	openssl x509 -req -in "$CERTS/leaf.csr" -CA "$CERTS/ca.pem" -CAkey "$CERTS/ca.key" \
		-CAcreateserial -days 825 -sha256 -extfile "$CERTS/leaf.ext" \
		-out "$CERTS/leaf.pem" 2>/dev/null
	cat "$CERTS/leaf.pem" "$CERTS/ca.pem" >"$CERTS/fullchain.pem"
	rm -f "$CERTS/leaf.csr" "$CERTS/ca.srl"
}
if ! [ -s "$CERTS/ca.pem" ] || ! [ -s "$CERTS/leaf.pem" ] || ! [ -s "$CERTS/leaf.key" ] ||
	! openssl x509 -checkend 86400 -noout -in "$CERTS/leaf.pem" >/dev/null 2>&1 ||
	! openssl verify -CAfile "$CERTS/ca.pem" "$CERTS/leaf.pem" >/dev/null 2>&1; then
	make_certs
fi
chmod 755 "$CERTS"
chmod 644 "$CERTS"/*.pem
chown root:prosody "$CERTS/leaf.key" "$CERTS/ca.key"
chmod 640 "$CERTS/leaf.key"
chmod 600 "$CERTS/ca.key"

# ---------------------------------------------------------------- Kamailio
start_kamailio() { # name defines listen...
	local name="$1" defines="$2"
	shift 2
	local dir="$STATE/kamailio-$name"
	rm -rf "$dir"
	mkdir -p "$dir/run" "$dir/db"
	# db_text tables: version + subscriber (plain passwords, calculate_ha1=yes).
	printf '%s\n' 'id(int,auto) table_name(string) table_version(int) ' \
		'1:version:1' '2:subscriber:7' >"$dir/db/version"
	{
		echo 'id(int,auto) username(string) domain(string) password(string) ha1(string,null) ha1b(string,null) '
		local i=1 u
		for u in "${USERS[@]}"; do
			echo "$i:$u:$DOMAIN:$u-secret::"
			i=$((i + 1))
		done
	} >"$dir/db/subscriber"
	local listen="" l
	for l in "$@"; do listen+="listen=$l"$'\n'; done
	subst "$TEMPLATES/kamailio/tls.cfg.in" "$dir/tls.cfg" "CERTDIR=$CERTS"
	subst "$TEMPLATES/kamailio/kamailio.cfg.in" "$dir/kamailio.cfg" \
		"DOMAIN=$DOMAIN" "DBDIR=$dir/db" "RUNDIR=$dir/run" "INSTANCE=kamailio-$name" \
		"DEBUG=${CUSAX_KAMAILIO_DEBUG:-1}" "TLSCFG=$dir/tls.cfg" "LISTEN=$listen"
	local dargs=() d
	for d in $defines; do dargs+=(-A "$d"); done
	if ! kamailio -c -f "$dir/kamailio.cfg" "${dargs[@]}" -Y "$dir/run" >"$dir/check.log" 2>&1; then
		cat "$dir/check.log" >&2
		die "kamailio-$name: configuration check failed"
	fi
	kamailio -f "$dir/kamailio.cfg" "${dargs[@]}" -DD -E -m "$KAMAILIO_SHM_MB" -M 8 -Y "$dir/run" \
		</dev/null >"$STATE/logs/kamailio-$name.log" 2>&1 &
	echo $! >"$STATE/pids/kamailio-$name.pid"
	say "kamailio-$name started (pid $!, log $STATE/logs/kamailio-$name.log)"
}

start_kamailio md5 "WITH_TLS" udp:127.0.0.1:5060 tcp:127.0.0.1:5060 tls:127.0.0.1:5061
start_kamailio sha256 "WITH_SHA256" udp:127.0.0.1:5070

# ----------------------------------------------------------------- Prosody
PDIR="$STATE/prosody"
# Fresh data on every start (accounts, rosters, vCards, rooms), so that runs do
# not see what earlier runs left behind.
rm -rf "$PDIR/data"
mkdir -p "$PDIR/data" "$PDIR/modules"
cp "$TEMPLATES/prosody/modules/"*.lua "$PDIR/modules/"
subst "$TEMPLATES/prosody/prosody.cfg.lua.in" "$PDIR/prosody.cfg.lua" \
	"PROSODY_DIR=$PDIR" "CERTDIR=$CERTS" "DOMAIN=$DOMAIN" "DOMAIN_SHA256=$DOMAIN_SHA256" \
	"MUC=$MUC" "ROOM=$ROOM" "LOGLEVEL=${CUSAX_PROSODY_LOGLEVEL:-info}"
rm -f "$PDIR/prosody.log" "$PDIR/prosody.pid"
chown -R prosody:prosody "$PDIR"
chmod 755 "$PDIR"
PCFG="$PDIR/prosody.cfg.lua"
if ! prosodyctl --config "$PCFG" check config >"$STATE/logs/prosody-check.log" 2>&1; then
	cat "$STATE/logs/prosody-check.log" >&2
	die "prosody: configuration check failed"
fi
# Register (or reset) the users on both hosts; SHA-256 host hashes with SHA-256.
for host in "$DOMAIN" "$DOMAIN_SHA256"; do
	for u in "${USERS[@]}"; do
		prosodyctl --config "$PCFG" register "$u" "$host" "$u-secret" \
			>>"$STATE/logs/prosody-register.log" 2>&1 ||
			die "prosodyctl register $u@$host failed (see $STATE/logs/prosody-register.log)"
	done
done
setpriv --reuid=prosody --regid=prosody --init-groups \
	prosody -F --config "$PCFG" </dev/null >"$STATE/logs/prosody.out" 2>&1 &
echo $! >"$STATE/pids/prosody.pid"
say "prosody started (pid $!, log $PDIR/prosody.log)"

# ----------------------------------------------------------------- baresip
if [ "${CUSAX_WITH_BARESIP:-0}" = 1 ]; then
	command -v baresip >/dev/null || die "baresip not installed"
	BDIR="$STATE/baresip"
	mkdir -p "$BDIR"
	if ! [ -s "$BDIR/tone-1khz.wav" ]; then
		if command -v sox >/dev/null; then
			sox -n -r 8000 -c 1 -b 16 "$BDIR/tone-1khz.wav" synth 30 sine 1000 vol 0.5
		else
			python3 - "$BDIR/tone-1khz.wav" <<-'EOF'
				import math, struct, sys, wave
				with wave.open(sys.argv[1], "wb") as w:
				    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
				    w.writeframes(b"".join(struct.pack("<h", int(16383 * math.sin(2 * math.pi * 1000 * n / 8000))) for n in range(8000 * 30)))
			EOF
		fi
	fi
	subst "$TEMPLATES/baresip/config.in" "$BDIR/config" "BARESIP_DIR=$BDIR"
	subst "$TEMPLATES/baresip/accounts.in" "$BDIR/accounts" "DOMAIN=$DOMAIN"
	: >"$BDIR/contacts"
	(cd "$BDIR" && exec baresip -f "$BDIR" </dev/null >"$STATE/logs/baresip.log" 2>&1) &
	echo $! >"$STATE/pids/baresip.pid"
	say "baresip started (pid $!, log $STATE/logs/baresip.log)"
fi

# ------------------------------------------------------------ readiness
fail_with_logs() {
	say "$1; last log lines:"
	tail -n 30 "$STATE/logs/"*.log "$PDIR/prosody.log" >&2 2>/dev/null || true
	"$REPO/scripts/interop-down.sh" "$STATE" || true
	exit 1
}
alive() { kill -0 "$(cat "$STATE/pids/$1.pid")" 2>/dev/null; }
for p in kamailio-md5 kamailio-sha256 prosody; do
	sleep 0.2
	alive "$p" || fail_with_logs "$p exited right after start"
done

probe() { python3 "$PROBE" "$@" 2>>"$STATE/logs/probe.log"; }
: >"$STATE/logs/probe.log"
probe sip-options --addr 127.0.0.1:5060 --transport udp --retry 20 ||
	fail_with_logs "kamailio-md5 does not answer OPTIONS on udp 5060"
probe sip-options --addr 127.0.0.1:5060 --transport tcp --retry 10 ||
	fail_with_logs "kamailio-md5 does not answer OPTIONS on tcp 5060"
probe sip-options --addr 127.0.0.1:5061 --transport tls --ca "$CERTS/ca.pem" --retry 10 ||
	fail_with_logs "kamailio-md5 does not answer OPTIONS on tls 5061"
probe sip-register --addr 127.0.0.1:5070 --transport udp --user alice --password alice-secret \
	--expect-algorithm SHA-256 --retry 20 ||
	fail_with_logs "kamailio-sha256 REGISTER with SHA-256 digest failed on udp 5070"
# The sipp smoke check (MD5 digest, udp): REGISTER, 200, un-REGISTER.
(cd "$STATE/logs" && sipp -sf "$TEMPLATES/kamailio/register_check.xml" -i 127.0.0.1 -mi 127.0.0.1 \
	-s alice -au alice -ap alice-secret -m 1 -timeout 10s -timeout_error -nostdin \
	127.0.0.1:5060 >"$STATE/logs/sipp-register-check.log" 2>&1) ||
	fail_with_logs "sipp REGISTER check against kamailio-md5 failed (see $STATE/logs/sipp-register-check.log)"
say "kamailio ready (MD5 udp/tcp 5060, tls 5061; SHA-256 udp 5070)"

probe xmpp --addr 127.0.0.1:5222 --domain "$DOMAIN" --user alice --password alice-secret \
	--ca "$CERTS/ca.pem" --expect-mechanism SCRAM-SHA-1 --room "$ROOM" \
	--expect-field "audio-video-uri=sip:cusax-room@$DOMAIN" --retry 20 ||
	fail_with_logs "prosody: login on $DOMAIN or room disco#info failed"
probe xmpp --addr 127.0.0.1:5222 --domain "$DOMAIN_SHA256" --user bob --password bob-secret \
	--ca "$CERTS/ca.pem" --expect-mechanism SCRAM-SHA-256 --retry 5 ||
	fail_with_logs "prosody: SCRAM-SHA-256 login on $DOMAIN_SHA256 failed"
probe xmpp --addr 127.0.0.1:5223 --direct-tls --domain "$DOMAIN" --user carol --password carol-secret \
	--ca "$CERTS/ca.pem" --retry 5 ||
	fail_with_logs "prosody: direct TLS login on 5223 failed"
say "prosody ready (c2s 5222 STARTTLS, 5223 direct TLS; $DOMAIN SCRAM-SHA-1, $DOMAIN_SHA256 SCRAM-SHA-256; room $ROOM)"

if [ "${CUSAX_WITH_BARESIP:-0}" = 1 ]; then
	ok=0
	for _ in $(seq 1 50); do
		if ! alive baresip; then break; fi
		if grep -q "200 OK" "$STATE/logs/baresip.log" 2>/dev/null &&
			(exec 3<>/dev/tcp/127.0.0.1/4444) 2>/dev/null; then
			ok=1
			break
		fi
		sleep 0.2
	done
	[ "$ok" = 1 ] || fail_with_logs "baresip did not register / open ctrl_tcp 127.0.0.1:4444"
	say "baresip ready (carol@$DOMAIN registered, ctrl_tcp 127.0.0.1:4444)"
fi

# ----------------------------------------------------------------- env file
{
	echo "# generated by scripts/interop-up.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "export CUSAX_INTEROP_STATE='$STATE'"
	echo "export CUSAX_SIP_DOMAIN=$DOMAIN"
	echo "export CUSAX_KAMAILIO_UDP=127.0.0.1:5060"
	echo "export CUSAX_KAMAILIO_TCP=127.0.0.1:5060"
	echo "export CUSAX_KAMAILIO_TLS=127.0.0.1:5061"
	echo "export CUSAX_KAMAILIO_SHA256_UDP=127.0.0.1:5070"
	echo "export CUSAX_SIPP='$(command -v sipp)'"
	echo "export CUSAX_SIPP_SCENARIOS='$REPO/scripts/sipp'"
	echo "export CUSAX_XMPP_ADDR=127.0.0.1:5222"
	echo "export CUSAX_XMPP_DIRECT_TLS_ADDR=127.0.0.1:5223"
	echo "export CUSAX_XMPP_DOMAIN=$DOMAIN"
	echo "export CUSAX_XMPP_DOMAIN_SHA256=$DOMAIN_SHA256"
	echo "export CUSAX_XMPP_MUC=$MUC"
	echo "export CUSAX_XMPP_ROOM=$ROOM"
	echo "export CUSAX_CA_CERT='$CERTS/ca.pem'"
	if [ "${CUSAX_WITH_BARESIP:-0}" = 1 ]; then
		echo "export CUSAX_BARESIP_CTRL=127.0.0.1:4444"
		echo "export CUSAX_BARESIP_USER=carol"
		echo "export CUSAX_BARESIP_DIR='$STATE/baresip'"
	fi
} >"$STATE/env.tmp"
mv "$STATE/env.tmp" "$STATE/env"
say "ready; environment in $STATE/env"
