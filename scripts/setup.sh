#!/bin/sh
# Set up evidock on Debian 12: system packages, a virtual environment in .venv, the project.
#   sh scripts/setup.sh          what the station and the demo need
#   sh scripts/setup.sh --test   plus what the test suite and benchmarks need
# Safe to run again: it installs only what is missing.
set -eu
cd "$(dirname "$0")/.."

packages="python3-venv ffmpeg"
extras=""
if [ "${1:-}" = "--test" ]; then
    packages="$packages b3sum hashdeep dc3dd dcfldd coreutils util-linux exfat-fuse exfatprogs mtools"
    # headless Chromium and a CJK font: the custody report's screenshot and PDF tests
    packages="$packages chromium fonts-noto-cjk"
    # the real servers the delivery tests start on loopback (scripts/services.sh alone
    # installs just these): Mosquitto, and a single-node Ceph cluster with its S3 gateway
    packages="$packages mosquitto mosquitto-clients ceph-mon ceph-osd radosgw openssl"
    extras="[test]"
fi

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null; then SUDO=sudo; else
            echo "setup: need root to install:$missing (run as root, or install them)" >&2
            exit 2
        fi
    else
        SUDO=""
    fi
    echo "setup: installing Debian packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
stamp=".venv/.evidock-installed$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing evidock$extras into .venv"
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
    touch "$stamp"
fi
