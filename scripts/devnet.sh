#!/usr/bin/env bash
# Builds the release binaries and runs the main job: a local WATT network of
# 4 validators and 20 phones for 3 short days (about a minute), then prints
# its summary. Pass your own flags to change it, e.g.
#   scripts/devnet.sh --validators 7 --phones 100 --days 2 --day-seconds 30
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release -p watt-node --bins
if [ "$#" -eq 0 ]; then
  set -- --validators 4 --phones 20 --days 3 --day-seconds 15 --ledger-ms 1000
fi
exec target/release/watt-node devnet "$@"
