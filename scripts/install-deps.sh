#!/usr/bin/env bash
# Installs every Debian package that vtunnel's build, tests, benchmarks and demo need.
# Idempotent: packages already installed are skipped, and apt is not touched at all when
# nothing is missing. Must run as root (or via sudo) on Debian 12.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  liburing-dev libbotan-2-dev libboost-dev libfmt-dev nlohmann-json3-dev catch2
  # fuzzing and sanitizers (clang + libFuzzer runtime)
  clang libclang-rt-14-dev
  # test peers
  openssh-server openssh-client python3 python3-paramiko python3-asyncssh python3-websockets
  python3-prometheus-client
  openssl curl ca-certificates procps iproute2 tinyproxy
  golang-go golang-golang-x-crypto-dev golang-github-gorilla-websocket-dev
  # packaging tests: cpack -G DEB (dpkg-shlibdeps, file), systemd-analyze verify, man page,
  # nginx in front of the server
  dpkg-dev file systemd man-db groff-base nginx-light
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
