#!/bin/sh
# Installs what the tests need (Prosody, ejabberd, openssl, D-Bus and GNOME Keyring
# from the distribution) and runs the whole suite. Used by the README and by CI (.ci/run).
set -eu
cd "$(dirname "$0")/.."

need=""
command -v prosody >/dev/null 2>&1 || need="$need prosody"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
# The credential store tests run a private D-Bus with a real GNOME Keyring.
command -v dbus-daemon >/dev/null 2>&1 || need="$need dbus-daemon"
command -v dbus-send >/dev/null 2>&1 || need="$need dbus-bin"
command -v gnome-keyring-daemon >/dev/null 2>&1 || need="$need gnome-keyring"
# ejabberd beside Prosody: the server-facing tests run on both.
[ -x /usr/sbin/ejabberdctl ] || need="$need ejabberd"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$need" ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need
fi
# The package starts a system instance; the tests start their own nodes.
if [ -x /usr/sbin/ejabberdctl ]; then
    $sudo service ejabberd stop >/dev/null 2>&1 || true
fi

# Headless, deterministic UI tests: no GPU, no display.
export ICED_TEST_BACKEND=tiny-skia
cargo test --locked --all-targets "$@"
