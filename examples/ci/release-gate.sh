#!/usr/bin/env bash
# A CI step that lets a release break the pipeline: the starter's exit code
# is the verdict (0 released, 3 blocked by a gate, 2 bad input, 1 error).
#
#   TEMPORAL_ADDRESS=temporal.internal:7233 examples/ci/release-gate.sh examples/release.yaml
set -uo pipefail
config=${1:?usage: release-gate.sh CONFIG}

starter=${STARTER:-starter}
"$starter" release start -f "$config" --wait
code=$?
case $code in
  0) echo "release passed every gate" ;;
  3) echo "::error::release blocked by a gate; see the report: $starter release report <id>" ;;
  2) echo "::error::bad release config or command line (nothing was started)" ;;
  *) echo "::error::release failed ($code)" ;;
esac
exit $code
