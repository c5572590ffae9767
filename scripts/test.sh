#!/usr/bin/env bash
# Installs what the tests need and runs them all. CI runs exactly this.
#   scripts/test.sh          the default suite
#   scripts/test.sh --long   also the long crash/kill iterations, 200
#                            simulator seeds (24 by default) and the
#                            aarch64 suite (scripts/test-arm64.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

long=0
for arg in "$@"; do
  case "$arg" in
    --long) long=1 ;;
    *) echo "usage: scripts/test.sh [--long]" >&2; exit 64 ;;
  esac
done
export WATT_LONG_TESTS=$long
if [ "$long" = 1 ]; then
  export WATT_SIM_SEEDS=200
fi

if ! command -v cargo >/dev/null; then
  echo "cargo is missing: install Rust (rustup) first" >&2
  exit 1
fi

# The wrong-clock test runs a validator under libfaketime.
faketime=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
if [ "$(uname)" = Linux ] && [ ! -f "$faketime" ]; then
  echo "== installing libfaketime (apt-get install libfaketime)"
  scripts/apt-install.sh libfaketime
fi

# Formatting and lints are part of the suite: CI fails on either.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  echo "== installing rustfmt and clippy (rustup component add)"
  rustup component add rustfmt clippy
fi
echo "== rustfmt"
cargo fmt --all -- --check
echo "== clippy (warnings are errors)"
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== build (workspace, all targets)"
cargo build --locked --workspace --all-targets

echo "== tests"
cargo test --locked --workspace

echo "== Kotlin SDK on the JVM (generated bindings, real cdylib, real validators)"
scripts/test-kotlin.sh

if [ "$long" = 1 ]; then
  echo "== the phone's CPU: aarch64 unit tests under qemu, the Android staticlib, the iOS check"
  scripts/test-arm64.sh
fi
