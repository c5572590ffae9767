#!/usr/bin/env bash
# Runs every cargo-fuzz target (libFuzzer, nightly) for its share of SECONDS,
# starting from the committed seed corpus (fuzz/seeds/TARGET, minimized);
# new finds stay in fuzz/corpus (not committed).
#   scripts/fuzz.sh [SECONDS]     default 60
#   scripts/fuzz.sh --minimize    refresh fuzz/seeds from fuzz/corpus (cargo fuzz cmin)
# The same targets, fed the committed seeds and seeded mutations of them, run
# as a bounded pass on stable in scripts/test.sh (watt-core `fuzz::tests`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v rustup >/dev/null || { echo "rustup is missing: the fuzz targets need a nightly toolchain" >&2; exit 1; }
rustup toolchain list | grep -q nightly || { echo "no nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=(decoders text light_client storage_proofs apply scp_envelopes)
cd fuzz
if [ "${1:-}" = "--minimize" ]; then
  for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t"
    cp -n "seeds/$t"/* "corpus/$t"/ 2>/dev/null || true
    cargo +nightly fuzz cmin "$t" "corpus/$t" -- -max_len=65536
    rm -f "seeds/$t"/*
    cp "corpus/$t"/* "seeds/$t"/
    echo "== $t: $(ls "seeds/$t" | wc -l) seeds"
  done
  exit 0
fi
seconds="${1:-60}"
share=$(( seconds / ${#targets[@]} ))
[ "$share" -ge 1 ] || share=1
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "seeds/$t"
  echo "== $t for ${share}s"
  cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$share" -max_len=65536
done
