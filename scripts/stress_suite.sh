#!/usr/bin/env bash
# The whole test suite, ROUNDS times in a row (3 by default), while `stress-ng --cpu 2` keeps
# two CPUs busy beside it: the suite must not depend on a quiet machine (issue 11).
#
#   scripts/stress_suite.sh                 # 3 rounds of `python3 -m pytest -q`
#   scripts/stress_suite.sh 1 tests/unit    # 1 round, extra arguments go to pytest
#
# Sample output (2 vCPUs shared with other jobs, 2026-12-01, 1,069 tests):
#
#   $ scripts/stress_suite.sh 3 --durations=15
#   stress_suite: stress-ng --cpu 2 (pid 3251) beside 3 round(s) of: python3 -m pytest -q --durations=15
#   round 1: PASS (624 s)
#   round 2: PASS (673 s)
#   round 3: PASS (566 s)
#   stress_suite: 3/3 rounds passed; logs in /tmp/stress-suite.hdzi
#
# stress-ng (Debian package stress-ng) is installed on demand. It is bounded twice: --timeout
# stops it by itself after ROUNDS x 20 min, and the script stops it by its PID on any exit.
# Exit status: 0 when every round passed, 1 otherwise, 2 for a bad ROUNDS.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD"

rounds="${1:-3}"
[ "$#" -gt 0 ] && shift
case "$rounds" in
    ''|*[!0-9]*|0) echo "stress_suite: error: ROUNDS must be a positive integer, not '$rounds'" >&2; exit 2 ;;
esac

if ! command -v stress-ng >/dev/null 2>&1; then
    echo "stress_suite: installing stress-ng (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null; } \
        || { echo "stress_suite: error: cannot install stress-ng" >&2; exit 3; }
fi

logs="$(mktemp -d /tmp/stress-suite.XXXX)"
stress-ng --cpu 2 --timeout "$((rounds * 1200))s" --quiet >"$logs/stress-ng.log" 2>&1 &
stress_pid=$!
stop_stress() {
    kill -TERM "$stress_pid" 2>/dev/null && wait "$stress_pid" 2>/dev/null
}
trap stop_stress EXIT
trap 'exit 130' INT TERM

echo "stress_suite: stress-ng --cpu 2 (pid $stress_pid) beside $rounds round(s) of: python3 -m pytest -q $*"
passed=0
for round in $(seq 1 "$rounds"); do
    start=$(date +%s)
    if python3 -m pytest -q -p no:cacheprovider "$@" >"$logs/round-$round.txt" 2>&1; then
        result=PASS
        passed=$((passed + 1))
    else
        result=FAIL
    fi
    echo "round $round: $result ($(( $(date +%s) - start )) s)"
    grep -E '^(FAILED|ERROR) ' "$logs/round-$round.txt" | sed 's/^/    /'
done
echo "stress_suite: $passed/$rounds rounds passed; logs in $logs"
[ "$passed" -eq "$rounds" ]
