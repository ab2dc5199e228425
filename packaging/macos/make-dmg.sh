#!/bin/sh
# Builds Tern.app and a DMG holding it, on macOS (needs Xcode's command line
# tools: lipo, codesign, hdiutil; none of them exists on Linux).
#
#   packaging/macos/make-dmg.sh               build for this Mac's architecture
#   packaging/macos/make-dmg.sh --universal   one binary for Apple silicon and Intel
#                                             (rustup target add aarch64-apple-darwin x86_64-apple-darwin)
#   packaging/macos/make-dmg.sh --no-build    package the existing target/release/tern
#
# Output: target/macos/Tern.app and target/macos/Tern-<version>-<arch>.dmg
# (under $CARGO_TARGET_DIR when that is set).
#
# Signing: ad hoc by default, which runs on the Mac that built it and, after
# the user allows it in System Settings > Privacy & Security, on others. Set
# CODESIGN_IDENTITY="Developer ID Application: ..." to sign for distribution
# (notarize the DMG afterwards with `xcrun notarytool submit --wait`).
set -eu

cd "$(dirname "$0")/../.."
root=$(pwd)

universal=no
build=yes
for arg in "$@"; do
    case $arg in
        --universal) universal=yes ;;
        --no-build) build=no ;;
        -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "make-dmg.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

if [ "$(uname -s)" != Darwin ]; then
    echo "make-dmg.sh: this needs macOS (hdiutil, codesign, lipo)" >&2
    exit 1
fi

target_dir=${CARGO_TARGET_DIR:-$root/target}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "make-dmg.sh: no version in Cargo.toml" >&2; exit 1; }

if [ "$universal" = yes ]; then
    arch=universal
    if [ "$build" = yes ]; then
        cargo build --release --locked --target aarch64-apple-darwin
        cargo build --release --locked --target x86_64-apple-darwin
    fi
    mkdir -p "$target_dir/universal-apple-darwin/release"
    binary=$target_dir/universal-apple-darwin/release/tern
    lipo -create -output "$binary" \
        "$target_dir/aarch64-apple-darwin/release/tern" \
        "$target_dir/x86_64-apple-darwin/release/tern"
else
    arch=$(uname -m)
    [ "$build" = no ] || cargo build --release --locked
    binary=$target_dir/release/tern
fi
[ -x "$binary" ] || { echo "make-dmg.sh: $binary is missing" >&2; exit 1; }

out=$target_dir/macos
app=$out/Tern.app
rm -rf "$app"
mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources"
cp "$binary" "$app/Contents/MacOS/tern"
sed "s/@VERSION@/$version/g" packaging/macos/Info.plist > "$app/Contents/Info.plist"
printf 'APPL????' > "$app/Contents/PkgInfo"
cp resources/icon/tern.icns "$app/Contents/Resources/tern.icns"
plutil -lint "$app/Contents/Info.plist"

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --options runtime --timestamp --sign "$CODESIGN_IDENTITY" "$app"
else
    codesign --force --sign - "$app"
fi
codesign --verify --verbose "$app"

# The DMG: the app and a link to /Applications to drag it onto.
staging=$out/dmg
rm -rf "$staging"
mkdir -p "$staging"
cp -R "$app" "$staging/"
ln -s /Applications "$staging/Applications"
dmg=$out/Tern-$version-$arch.dmg
rm -f "$dmg"
hdiutil create -volname "Tern $version" -srcfolder "$staging" -fs HFS+ -format UDZO -ov "$dmg"
rm -rf "$staging"
[ -z "${CODESIGN_IDENTITY:-}" ] || codesign --force --timestamp --sign "$CODESIGN_IDENTITY" "$dmg"

echo "$dmg"
