#!/bin/sh
# Renders every raster icon from the SVG sources in this folder.
# The outputs are committed; run this again after editing an SVG.
#
# Needs (Debian): librsvg2-bin (rsvg-convert), imagemagick (convert),
# icnsutils (png2icns), optipng (optional, shrinks the PNGs).
set -eu
cd "$(dirname "$0")"

# Real ImageMagick, even where a stand-in named convert comes first in PATH.
CONVERT=${CONVERT:-convert}
[ -x /usr/bin/convert ] && CONVERT=/usr/bin/convert

source_for() {
    if [ "$1" -le 24 ]; then echo tern-small.svg; else echo tern.svg; fi
}

# Linux: the hicolor icon theme.
for n in 16 24 32 48 64 128 256 512; do
    dir=hicolor/${n}x${n}/apps
    mkdir -p "$dir"
    rsvg-convert -w "$n" -h "$n" "$(source_for "$n")" -o "$dir/im.tern.Tern.png"
done

if command -v optipng >/dev/null 2>&1; then
    optipng -quiet -o5 -strip all hicolor/*/apps/im.tern.Tern.png
fi

# Windows: one .ico with 16–256 px images (256 stored as PNG).
"$CONVERT" hicolor/16x16/apps/im.tern.Tern.png hicolor/24x24/apps/im.tern.Tern.png \
    hicolor/32x32/apps/im.tern.Tern.png hicolor/48x48/apps/im.tern.Tern.png \
    hicolor/64x64/apps/im.tern.Tern.png hicolor/128x128/apps/im.tern.Tern.png \
    hicolor/256x256/apps/im.tern.Tern.png tern.ico

# macOS: .icns with 16–1024 px images (png2icns wants RGBA input).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in 16 32 48 128 256 512 1024; do
    rsvg-convert -w "$n" -h "$n" "$(source_for "$n")" -o "$tmp/icns-$n.png"
done
png2icns tern.icns "$tmp"/icns-16.png "$tmp"/icns-32.png "$tmp"/icns-48.png \
    "$tmp"/icns-128.png "$tmp"/icns-256.png "$tmp"/icns-512.png "$tmp"/icns-1024.png >/dev/null

echo "icons rendered in $(pwd)"
