#!/bin/bash
# Checks the sshd fixture + vtkey.py conversions with the OpenSSH client and the Go peer.
# usage: tests/peers/sshd_selftest.sh VTPEER_BINARY      (root; loopback only; bounded; kills only its pids)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
VT=${1:?usage: $0 VTPEER_BINARY}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/vt-sshd-selftest.XXXXXX)
NPASS=0 NFAIL=0 ECHOPID="" SSHDDIR="" SSHDDIR2=""
cleanup() {
  [ -n "$ECHOPID" ] && kill "$ECHOPID" 2>/dev/null
  [ -n "$SSHDDIR" ] && "$HERE/sshd_fixture.sh" stop "$SSHDDIR"
  [ -n "$SSHDDIR2" ] && "$HERE/sshd_fixture.sh" stop "$SSHDDIR2"
  [ -n "${VTSRV:-}" ] && kill "$VTSRV" 2>/dev/null
  [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
  if [ "$NFAIL" -ne 0 ] || [ -n "${KEEP:-}" ]; then echo "logs kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'echo "sshd_selftest: interrupted/timeout"; exit 124' TERM INT
( trap 'kill $sp 2>/dev/null; exit 0' TERM; sleep "${SELFTEST_LIMIT:-180}" & sp=$!; wait $sp; kill -TERM $$ ) >/dev/null 2>&1 &
WATCHDOG=$!
pass() { NPASS=$((NPASS+1)); echo "PASS $*"; }
fail() { NFAIL=$((NFAIL+1)); echo "FAIL $*"; }
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }

$PY "$HERE/tcptool.py" echo 0 >"$T/echo.out" & ECHOPID=$!
for i in $(seq 50); do [ -s "$T/echo.out" ] && break; sleep 0.1; done
ECHO=$(awk '{print $2}' "$T/echo.out")

"$HERE/vtkey.py" keygen >"$T/keys"
PRIV=$(awk 'NR==1{print $4}' "$T/keys"); PUB=$(awk 'NR==2{print $4}' "$T/keys")
"$HERE/vtkey.py" priv2openssh "$PRIV" "$T/id"
check "vtkey: OpenSSH private key from seed matches vt-pub" \
  bash -c "[ \"\$(ssh-keygen -y -f $T/id | cut -d' ' -f2)\" = \"\$($HERE/vtkey.py pub2authorized $PUB | cut -d' ' -f2)\" ]"
check "vtkey: derived host key agrees with the Go peer" \
  bash -c "[ \"\$($HERE/vtkey.py hostkey-pub $PUB)\" = \"\$($VT hostkey $PUB | tr -d '\n')\" ]"

head -c 4194304 /dev/urandom >"$T/blob"; WANT=$(sha256sum <"$T/blob" | cut -d' ' -f1)
OUT=$("$HERE/sshd_fixture.sh" start --dir "$T/sshd" --authorized-key "$("$HERE/vtkey.py" pub2authorized "$PUB")" \
       --extra "RekeyLimit 1M" --extra "LogLevel DEBUG1") || { echo "FAIL sshd fixture start"; exit 1; }
eval "$OUT"; SSHDDIR=$DIR; echo "sshd fixture: $OUT"
SSHO=(-F none -i "$T/id" -o IdentitiesOnly=yes -o UserKnownHostsFile="$DIR/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10 -p "$PORT")
check "ssh -W through the fixture" bash -c "[ \"\$(echo hello | timeout 20 ssh ${SSHO[*]} -W 127.0.0.1:$ECHO root@127.0.0.1)\" = hello ]"
for c in aes128-gcm@openssh.com chacha20-poly1305@openssh.com aes128-ctr; do
  check "ssh -o Ciphers=$c -W (4 MiB, RekeyLimit 1M)" \
    bash -c "[ \"\$(timeout 30 ssh ${SSHO[*]} -o Ciphers=$c -W 127.0.0.1:$ECHO root@127.0.0.1 <$T/blob | sha256sum | cut -d' ' -f1)\" = $WANT ]"
done
for c in aes128-gcm@openssh.com chacha20-poly1305@openssh.com aes128-ctr; do
  before=$(grep -c 'SSH2_MSG_KEXINIT received' "$DIR/sshd.log")
  got=$(timeout 60 "$VT" sshclient -addr "127.0.0.1:$PORT" -user root -key "$PRIV" -known-host "$(cat "$DIR/host_key.pub")" \
        -cipher "$c" -rekey 262144 -direct "127.0.0.1:$ECHO" <"$T/blob" 2>"$T/vt-$c.err" | sha256sum | cut -d' ' -f1)
  after=$(grep -c 'SSH2_MSG_KEXINIT received' "$DIR/sshd.log")
  kx=$(grep -c '^HOSTKEY_SEEN' "$T/vt-$c.err")
  check "Go sshclient -> OpenSSH sshd, $c, direct-tcpip 4 MiB with -rekey 262144 (kex: sshd saw $((after-before)), client $kx)" \
    bash -c "[ '$got' = $WANT ] && [ $((after-before)) -gt 4 ]"
done

# OpenSSH sshd using the derived host key; the Go client (-key) must accept it without -known-host
"$HERE/vtkey.py" hostkey-priv "$PUB" "$T/derived_host"
OUT2=$("$HERE/sshd_fixture.sh" start --dir "$T/sshd2" --host-key "$T/derived_host" \
       --authorized-key "$("$HERE/vtkey.py" pub2authorized "$PUB")") || { echo "FAIL sshd fixture 2"; exit 1; }
SSHDDIR2=$(echo "$OUT2" | sed 's/.*DIR=//'); P2=$(echo "$OUT2" | sed 's/PORT=\([0-9]*\).*/\1/')
check "Go sshclient accepts OpenSSH sshd running the derived host key" \
  bash -c "[ \"\$(echo derived | timeout 20 $VT sshclient -addr 127.0.0.1:$P2 -user root -key $PRIV -direct 127.0.0.1:$ECHO 2>/dev/null)\" = derived ]"

# OpenSSH client against the Go sshserver: handshake + publickey auth with the derived host key
"$VT" sshserver -port 0 -client-key "$PUB" -keepalive 0 >"$T/vtsrv.out" 2>&1 & VTSRV=$!
for i in $(seq 50); do grep -q '^LISTENING' "$T/vtsrv.out" && break; sleep 0.1; done
VP=$(awk '/^LISTENING/{print $2}' "$T/vtsrv.out")
"$HERE/vtkey.py" hostkey-pub "$PUB" "127.0.0.1:$VP" >"$T/kh_vt"
timeout 20 ssh -F none -i "$T/id" -o IdentitiesOnly=yes -o UserKnownHostsFile="$T/kh_vt" -o StrictHostKeyChecking=yes \
   -o BatchMode=yes -p "$VP" root@127.0.0.1 true >"$T/ssh_vt.out" 2>&1
check "OpenSSH ssh -> Go sshserver: derived host key verified, publickey auth ok, session channel prohibited" \
  bash -c "grep -q 'AUTH_OK user=root method=publickey' $T/vtsrv.out && grep -qi 'administratively prohibited' $T/ssh_vt.out"

echo "sshd_selftest: $NPASS passed, $NFAIL failed"
[ "$NFAIL" -eq 0 ]
