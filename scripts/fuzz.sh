#!/usr/bin/env bash
# Runs every cargo-fuzz target (libFuzzer, nightly) for its share of SECONDS.
#   scripts/fuzz.sh [SECONDS]     default 60
# The same targets run as a bounded pass on stable in scripts/test.sh
# (watt-core `fuzz::tests`).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v rustup >/dev/null || { echo "rustup is missing: the fuzz targets need a nightly toolchain" >&2; exit 1; }
rustup toolchain list | grep -q nightly || { echo "no nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=(decoders text light_client storage_proofs apply)
share=$(( seconds / ${#targets[@]} ))
[ "$share" -ge 1 ] || share=1
cd fuzz
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t for ${share}s"
  cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$share" -max_len=65536
done
