#!/usr/bin/env bash
# Builds WattFFI.xcframework (device + simulators) for the Swift package in
# ios/. macOS with Xcode only.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname)" != "Darwin" ]; then
  echo "building for iOS needs macOS with Xcode (this is $(uname)); the Swift bindings are generated and checked on Linux by scripts/bindings.sh" >&2
  exit 1
fi
missing=()
command -v xcodebuild >/dev/null || missing+=("Xcode (xcodebuild)")
targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
for t in "${targets[@]}"; do
  rustup target list --installed | grep -qx "$t" || missing+=("Rust target $t (rustup target add $t)")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "cannot build for iOS; missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi

scripts/bindings.sh --check
for t in "${targets[@]}"; do
  cargo build --locked -p watt-ffi --lib --profile release-smaller --target "$t"
done
out=target/ios
mkdir -p "$out/sim"
lipo -create target/aarch64-apple-ios-sim/release-smaller/libwatt_ffi.a target/x86_64-apple-ios/release-smaller/libwatt_ffi.a \
  -output "$out/sim/libwatt_ffi.a"
rm -rf ios/WattFFI.xcframework
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release-smaller/libwatt_ffi.a -headers ios/Sources/WattFFIFFI/include \
  -library "$out/sim/libwatt_ffi.a" -headers ios/Sources/WattFFIFFI/include \
  -output ios/WattFFI.xcframework
echo "wrote ios/WattFFI.xcframework; open ios/ in Xcode (or: cd ios && swift build)"
