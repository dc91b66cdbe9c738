#!/usr/bin/env bash
# fuzz.sh GO FUZZTIME MINIMIZETIME PKG:FuzzTarget... — `make fuzz`: run each
# fuzz target for FUZZTIME, one after another, starting from its committed
# seeds (PKG/testdata/fuzz/FuzzTarget) and the corpus go test keeps in its
# cache. Prints each target's executions and new corpus entries, a summary
# at the end, and fails when a target failed (a crash or a broken property:
# go test writes the input to PKG/testdata/fuzz/FuzzTarget/, where it
# stays a seed once the bug is fixed).
set -uo pipefail
go=$1 fuzztime=$2 minimize=$3
shift 3
log=$(mktemp)
trap 'rm -f "$log"' EXIT
summary=() failed=0
for spec in "$@"; do
	pkg=./${spec%%:*} target=${spec##*:}
	echo "== $target ($pkg, $fuzztime)"
	start=$SECONDS
	"$go" test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	new=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	total=$(sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p' <<<"$last")
	seeds=$(find "$pkg/testdata/fuzz/$target" -type f 2>/dev/null | wc -l)
	result=ok
	if [ "$rc" -ne 0 ]; then
		result=FAIL failed=1
		crash=$(sed -nE 's/.*Failing input written to (.*)/\1/p' "$log" | tail -n 1)
		[ -n "$crash" ] && result="FAIL: $pkg/$crash"
	fi
	line=$(printf '%-16s %-18s %12s execs %6s new %7s corpus %5s seeds %5ss  %s' \
		"$target" "$pkg" "${execs:-0}" "${new:-0}" "${total:-?}" "$seeds" "$((SECONDS - start))" "$result")
	echo "$line"
	summary+=("$line")
done
echo
echo "== fuzz summary (FUZZTIME=$fuzztime; corpus = seeds + entries go test keeps in $("$go" env GOCACHE)/fuzz)"
printf '%s\n' "${summary[@]}"
exit $failed
