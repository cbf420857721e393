#!/usr/bin/env bash
# Starts a hub and three simulated edge agents in the foreground, on embedded
# defaults, with their data under ./demo-data. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DEMO_DATA:-demo-data}
http=${DEMO_HTTP:-127.0.0.1:8080}
nats=${DEMO_NATS:-127.0.0.1:4222}
mkdir -p "$data"
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping…"
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap cleanup INT TERM EXIT

bin/hub --data "$data/hub" --http "$http" --nats "$nats" --log-format console 2>>"$data/hub.log" &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://$http/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://$http/healthz" >/dev/null || { echo "hub did not start; see $data/hub.log"; exit 1; }

for i in 1 2 3; do
  bin/edge-agent --node "edge-$i" --hub "nats://$nats" --data "$data/edge-$i" \
    --listen "127.0.0.1:707$i" --source sim --log-format console 2>>"$data/edge-$i.log" &
  pids+=($!)
done

cat <<TXT

Tributary demo is running: one hub, three simulated edges (edge-1, edge-2, edge-3).

  dashboard   http://$http/
  hub API     http://$http/api/v1/nodes
  edge APIs   http://127.0.0.1:7071/api/v1/status  (7072, 7073)
  logs        $data/*.log

Try:
  curl -s 'http://$http/api/v1/query?pattern=all&where=temperature>30&limit=5'
  curl -s -XPOST 'http://127.0.0.1:7071/api/v1/events?stream=door' -d '{"open":true}'

Ctrl-C stops everything.
TXT
wait
