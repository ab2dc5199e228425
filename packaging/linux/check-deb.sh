#!/bin/sh
# Builds Tern's .deb with cargo-deb, installs it with apt-get, checks the
# installed package, then removes it again. For Debian 12 (or a Debian-based
# system) as root, or as a user who may sudo. CI runs it on a fresh machine.
#
#   sh packaging/linux/check-deb.sh
#
# Installs what it needs: desktop-file-utils and appstream (apt-get), and
# cargo-deb $CARGO_DEB_VERSION (cargo install), unless already there.
# Honours CARGO_TARGET_DIR; the .deb is written to <target dir>/debian/.
# Leaves the .deb in place; the installed package is removed at the end, also
# when a check failed (an installed tern that was there before is replaced).
set -eu

CARGO_DEB_VERSION=3.8.0
APP_ID=im.tern.Tern
ICON_SIZES="16 24 32 48 64 128 256 512"

cd "$(dirname "$0")/../.."

say() { printf 'check-deb: %s\n' "$*"; }
fail() {
    printf 'check-deb: FAILED: %s\n' "$*" >&2
    exit 1
}

if [ "$(id -u)" -eq 0 ]; then
    as_root() { "$@"; }
else
    command -v sudo >/dev/null 2>&1 || fail "run as root, or install sudo"
    as_root() { sudo "$@"; }
fi
apt_get() { as_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q "$@"; }

# Tools, from Debian's packages and from crates.io.
missing=""
for pkg in desktop-file-utils appstream; do
    dpkg-query -W -f '${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $pkg"
done
say "updating apt's package lists (the .deb's dependencies come from them)"
apt_get update >/dev/null || fail "apt-get update"
if [ -n "$missing" ]; then
    say "installing$missing"
    # shellcheck disable=SC2086 # one word per package
    apt_get install --no-install-recommends $missing >/dev/null || fail "apt-get install$missing"
fi
if ! cargo deb --version 2>/dev/null | grep -qx "cargo-deb $CARGO_DEB_VERSION"; then
    say "installing cargo-deb $CARGO_DEB_VERSION"
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked ||
        fail "cargo install cargo-deb $CARGO_DEB_VERSION"
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || fail "no version in Cargo.toml"
target_dir=${CARGO_TARGET_DIR:-target}
out_dir=$target_dir/debian

# Build. cargo-deb runs `cargo build --release` itself.
say "building the .deb of tern $version"
rm -f "$out_dir"/tern_*.deb
cargo deb --locked --output "$out_dir" || fail "cargo deb"
set -- "$out_dir"/tern_"$version"-*_*.deb
[ -f "$1" ] || fail "cargo deb made no $out_dir/tern_${version}-*.deb"
[ $# -eq 1 ] || fail "more than one .deb: $*"
deb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
say "built $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'

# Install, as a user would: apt-get fetches the dependencies.
cleanup() {
    if dpkg-query -W -f '${Status}\n' tern 2>/dev/null | grep -q 'installed$'; then
        say "removing the package"
        apt_get remove tern >/dev/null || say "warning: apt-get remove tern failed"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say "installing it"
apt_get install "$deb" || fail "apt-get install $deb"
installed=$(dpkg-query -W -f '${Version}' tern) || fail "tern is not installed"
case $installed in
    "$version"-*) ;;
    *) fail "installed version $installed, expected $version-*" ;;
esac
say "installed files (dpkg -L tern):"
dpkg -L tern | sed 's/^/    /'

# The binary, from PATH.
binary=$(command -v tern) || fail "tern is not on PATH"
[ "$binary" = /usr/bin/tern ] || fail "tern on PATH is $binary, not /usr/bin/tern"
printed=$(tern --version) || fail "tern --version exited non-zero"
say "tern --version: $printed"
[ "$printed" = "tern $version" ] || fail "tern --version printed '$printed', expected 'tern $version'"

# Every file the package must install.
files="/usr/bin/tern
/usr/share/applications/$APP_ID.desktop
/usr/share/metainfo/$APP_ID.metainfo.xml
/usr/share/icons/hicolor/scalable/apps/$APP_ID.svg"
for n in $ICON_SIZES; do
    files="$files
/usr/share/icons/hicolor/${n}x${n}/apps/$APP_ID.png"
done
for f in $files; do
    [ -s "$f" ] || fail "$f is not installed (or is empty)"
    dpkg -S "$f" >/dev/null 2>&1 || fail "$f is not owned by a package"
done
[ -x /usr/bin/tern ] || fail "/usr/bin/tern is not executable"
for n in $ICON_SIZES; do
    png=/usr/share/icons/hicolor/${n}x${n}/apps/$APP_ID.png
    # PNG width and height: big-endian 32-bit numbers at bytes 16 and 20.
    size=$(od -An -tu1 -j16 -N8 "$png" | awk '{ printf "%dx%d", $3 * 256 + $4, $7 * 256 + $8 }')
    [ "$size" = "${n}x${n}" ] || fail "$png is $size, expected ${n}x${n}"
done
# gdk-pixbuf's SVG loader (GTK menus, rofi, ...) recognises an SVG only when
# "<svg" comes early in the file: a long comment before it hid the icon.
head -c 200 "/usr/share/icons/hicolor/scalable/apps/$APP_ID.svg" | grep -q '<svg' ||
    fail "the scalable icon does not start with <svg (icon loaders would not recognise it)"
say "all $(echo "$files" | wc -l) files are installed"

# Desktop integration metadata, validated where it was installed.
say "desktop-file-validate /usr/share/applications/$APP_ID.desktop"
desktop-file-validate "/usr/share/applications/$APP_ID.desktop" ||
    fail "desktop-file-validate found errors"
say "appstreamcli validate --no-net /usr/share/metainfo/$APP_ID.metainfo.xml"
appstreamcli validate --no-net "/usr/share/metainfo/$APP_ID.metainfo.xml" ||
    fail "appstreamcli validate found errors"
# desktop-file-utils' dpkg trigger registers the xmpp: handler.
if [ -f /usr/share/applications/mimeinfo.cache ]; then
    grep -q "^x-scheme-handler/xmpp=.*$APP_ID.desktop" /usr/share/applications/mimeinfo.cache ||
        fail "x-scheme-handler/xmpp is not registered in mimeinfo.cache"
    say "x-scheme-handler/xmpp is registered to $APP_ID.desktop"
fi

trap - EXIT
cleanup
if dpkg-query -W -f '${Status}\n' tern 2>/dev/null | grep -q 'installed$'; then
    fail "tern is still installed after apt-get remove"
fi
[ ! -e /usr/bin/tern ] || fail "/usr/bin/tern is still there after apt-get remove"
say "passed: the .deb builds, installs, runs and validates, and removes cleanly"
