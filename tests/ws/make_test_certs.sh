#!/bin/sh
# Makes throw-away test PKI in $1 for the wss:// interop tests:
#   ca.pem                 the CA the tests trust (via SSL_CERT_FILE)
#   good.pem/.key          localhost + 127.0.0.1, signed by ca
#   wrong.pem/.key         wrong.example, signed by ca (name mismatch)
#   untrusted.pem/.key     localhost, signed by other_ca (not trusted)
set -eu
dir=$1
cd "$dir"
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

make_ca() {  # name subject
  openssl req -x509 $ec -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
make_leaf() {  # name ca san
  openssl req $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}

make_ca ca "vtunnel test CA"
make_ca other_ca "some other CA"
make_leaf good ca "DNS:localhost,IP:127.0.0.1"
make_leaf wrong ca "DNS:wrong.example"
make_leaf untrusted other_ca "DNS:localhost,IP:127.0.0.1"
