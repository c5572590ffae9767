#!/usr/bin/env bash
# Builds the release binaries and runs the main job.
# (Until the devnet lands this shows what watt-node can do.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release -p watt-node --bins
exec target/release/watt-node --help
