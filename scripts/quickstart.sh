#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, starts dagd on its embedded
# default (a SQLite file in ./dagd-data), runs the bundled example workflow with real Ansible to
# completion and prints its history. dagd is stopped at the end; the data directory stays.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

build=${DAGD_BUILD_DIR:-build}
data_dir=${DAGD_DATA_DIR:-dagd-data}
example=examples/provision-configure-smoke
mkdir -p "$data_dir"
rm -f "$data_dir/port" "$data_dir/metrics-port"

"$build/cmd/dagd/dagd" --listen 127.0.0.1:0 --data-dir "$data_dir" --port-file "$data_dir/port" \
  --metrics-listen 127.0.0.1:0 --metrics-port-file "$data_dir/metrics-port" \
  >>"$data_dir/dagd.log" 2>&1 &
dagd_pid=$!
trap 'kill -TERM $dagd_pid 2>/dev/null; wait $dagd_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  [ -s "$data_dir/port" ] && break
  kill -0 $dagd_pid 2>/dev/null || { cat "$data_dir/dagd.log"; exit 1; }
  sleep 0.1
done
export DAGD_SERVER="127.0.0.1:$(cat "$data_dir/port")"
echo "== dagd is serving on $DAGD_SERVER (data: $data_dir/dagd.db, log: $data_dir/dagd.log)"
echo "== metrics on http://127.0.0.1:$(cat "$data_dir/metrics-port")/metrics"

dagctl="$build/cmd/dagctl/dagctl"
"$dagctl" apply -f "$example/workflow.yaml" --bundle "$example"
echo "== submitting $example and watching it"
status=0
run_id=$("$dagctl" submit provision-configure-smoke -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$dagctl" watch "$run_id" || status=$?
echo "== history of $run_id"
"$dagctl" runs get "$run_id"
echo "== every run so far"
"$dagctl" runs list
exit $status
