#!/usr/bin/env bash
# Installs the Debian packages asset_server needs, only those that are missing.
# Safe to run repeatedly; uses sudo when not root.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev libcjson-dev
      libcmocka-dev nginx-light openssl clang valgrind libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
