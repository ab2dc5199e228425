#!/bin/sh
# Installs what the tests need (Prosody, openssl, D-Bus and GNOME Keyring from
# the distribution) and runs the whole suite. Used by the README and by CI (.ci/run).
set -eu
cd "$(dirname "$0")/.."

need=""
command -v prosody >/dev/null 2>&1 || need="$need prosody"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
# The credential store tests run a private D-Bus with a real GNOME Keyring.
command -v dbus-daemon >/dev/null 2>&1 || need="$need dbus-daemon"
command -v dbus-send >/dev/null 2>&1 || need="$need dbus-bin"
command -v gnome-keyring-daemon >/dev/null 2>&1 || need="$need gnome-keyring"
if [ -n "$need" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $need
fi

# Headless, deterministic UI tests: no GPU, no display.
export ICED_TEST_BACKEND=tiny-skia
cargo test --locked --all-targets "$@"
