#!/bin/sh
# Install the real servers the tests and benchmarks start on loopback (Debian 12):
# Mosquitto (MQTT broker) and a single-node Ceph cluster with the RADOS Gateway (S3).
# The tests start and stop their own instances (tests/services/); nothing here starts a
# daemon. Safe to run again: it installs only what is missing.
set -eu

packages="mosquitto mosquitto-clients ceph-mon ceph-osd radosgw openssl"

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO=sudo; else
        echo "services: need root to install:$missing (run as root, or install them)" >&2
        exit 2
    fi
else
    SUDO=""
fi
echo "services: installing Debian packages:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
