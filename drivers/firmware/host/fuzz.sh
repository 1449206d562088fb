#!/usr/bin/env bash
# Coverage-guided fuzzing of the firmware's parser (lndp.c) with libFuzzer + ASan + UBSan.
#   drivers/firmware/host/fuzz.sh [SECONDS] [BUILD_DIR]      (default 60 s, /tmp/lndp-fuzz)
# Prints libFuzzer's statistics (executions, coverage "cov:"/"ft:", corpus) and exits non-zero
# on a finding (crash file in BUILD_DIR). Needs clang (Debian: clang).
set -euo pipefail
secs=${1:-60}
build=${2:-/tmp/lndp-fuzz}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/corpus"
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Wall -Wextra -Werror \
      -o "$build/fuzz_lndp" "$here/fuzz_lndp.c" "$here/../lndp.c"
# seeds: the shared byte vectors' requests, one per configuration byte
python3 - "$here/../vectors.json" "$build/corpus" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[2])
for i, v in enumerate(json.load(open(sys.argv[1]))):
    cfg = {"X9C": 0, "MCP41": 1, "MCP42": 2}[v["config"][0]]
    (out / f"seed{i}").write_bytes(bytes([cfg]) + v["in"].encode("latin-1"))
PY
cd "$build"
./fuzz_lndp -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$build/" corpus 2>&1 | tail -25
