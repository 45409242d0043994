#!/usr/bin/env bash
# The main job of `make demo`: send a real speech clip through the whole LargeSC
# sender, a seeded lossy channel and the whole receiver.
#   examples/demo.sh [hub|DIR]
# With "hub" (default) the Kyutai weights come from the model hub. Where the hub
# cannot be reached, the demo says so and runs on small UNTRAINED test weights
# (the pipeline and the figures are real; the audio is not speech).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WEIGHTS=${1:-hub}
SAMPLE=/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav
OUT=out/demo
mkdir -p "$OUT"
export LARGESC_THREADS=${LARGESC_THREADS:-2}

run() {  # run WEIGHTS TAG CHANNEL PLC
  $PY -m largesc_codec.cli transmit "$SAMPLE" "$OUT/$2.wav" --weights "$1" \
    --channel "$3" --plc "$4" --seed 1 --report "$OUT/$2.json"
}

run "$WEIGHTS" uniform10 uniform:0.1 lm
rc=$?
if [ $rc -eq 3 ] && [ "$WEIGHTS" = hub ]; then
  echo
  echo "demo: the model hub is unreachable from this machine; continuing with small UNTRAINED"
  echo "demo: test weights (largesc make-test-weights $OUT/test-weights). Audio out is not speech."
  $PY -m largesc_codec.cli make-test-weights "$OUT/test-weights" || exit 1
  WEIGHTS="$OUT/test-weights"
  run "$WEIGHTS" uniform10 uniform:0.1 lm || exit 1
elif [ $rc -ne 0 ]; then
  exit $rc
fi
run "$WEIGHTS" ge-bursty ge:0.05,0.4 lm || exit 1
run "$WEIGHTS" ge-bursty-repeat ge:0.05,0.4 repeat || exit 1
echo
echo "demo: audio and JSON reports in $OUT/"
