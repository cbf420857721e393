#!/usr/bin/env bash
# Starts a hub and three simulated edge agents in the foreground, on embedded
# defaults, with their data under ./demo-data. Ctrl-C stops everything.
#
# CLUSTER=3 (or 5) starts that many hubs as one cluster on loopback instead:
# hub-N listens for HTTP on 808(N-1), for edges on 422(N+1), for the other hubs
# on 622(N+1), and the EDGE stream and COUNTERS bucket have 3 replicas. The
# edges list every hub. Kill a hub to watch the others carry on.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DEMO_DATA:-demo-data}
http=${DEMO_HTTP:-127.0.0.1:8080}
nats=${DEMO_NATS:-127.0.0.1:4222}
cluster=${CLUSTER:-1}
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

# wait_healthy URL LOG: up to 60 s for URL/healthz to answer 200.
wait_healthy() {
  for _ in $(seq 1 600); do
    curl -fsS "$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "a hub did not become ready; see $2"
  exit 1
}

case "$cluster" in
  1)
    bin/hub --data "$data/hub" --http "$http" --nats "$nats" --log-format console 2>>"$data/hub.log" &
    pids+=($!)
    wait_healthy "http://$http" "$data/hub.log"
    hub_urls="nats://$nats"
    dashboards="  dashboard   http://$http/"
    ;;
  3|5)
    peers=()
    for i in $(seq 1 "$cluster"); do peers+=("nats://127.0.0.1:622$((i + 1))"); done
    peer_list=$(IFS=,; echo "${peers[*]}")
    hub_urls=""
    dashboards=""
    # Every hub at once: each waits for a quorum of the others before it is ready.
    for i in $(seq 1 "$cluster"); do
      bin/hub --name "hub-$i" --data "$data/hub-$i" --http "127.0.0.1:808$((i - 1))" \
        --nats "127.0.0.1:422$((i + 1))" --cluster "127.0.0.1:622$((i + 1))" --peers "$peer_list" \
        --log-format console 2>>"$data/hub-$i.log" &
      pids+=($!)
      echo $! >"$data/hub-$i.pid"
      hub_urls="${hub_urls:+$hub_urls,}nats://127.0.0.1:422$((i + 1))"
      dashboards="$dashboards  hub-$i       http://127.0.0.1:808$((i - 1))/   (kill: kill -9 \$(cat $data/hub-$i.pid))"$'\n'
    done
    for i in $(seq 1 "$cluster"); do wait_healthy "http://127.0.0.1:808$((i - 1))" "$data/hub-$i.log"; done
    http=127.0.0.1:8080
    ;;
  *)
    echo "CLUSTER=$cluster: use 1 (one hub), 3 or 5"
    exit 2
    ;;
esac

for i in 1 2 3; do
  bin/edge-agent --node "edge-$i" --hub "$hub_urls" --data "$data/edge-$i" \
    --listen "127.0.0.1:707$i" --source sim --log-format console 2>>"$data/edge-$i.log" &
  pids+=($!)
done

if [ "$cluster" = 1 ]; then
  what="one hub, three simulated edges (edge-1, edge-2, edge-3)"
else
  what="$cluster hubs in one cluster (R3), three simulated edges (edge-1, edge-2, edge-3) that list every hub"
fi
cat <<TXT

Tributary demo is running: $what.

$dashboards
  hub API     http://$http/api/v1/nodes   (and /api/v1/cluster)
  edge APIs   http://127.0.0.1:7071/api/v1/status  (7072, 7073)
  logs        $data/*.log

Try:
  curl -s 'http://$http/api/v1/query?pattern=all&where=temperature>30&limit=5'
  curl -s -XPOST 'http://127.0.0.1:7071/api/v1/events?stream=door' -d '{"open":true}'
  curl -s 'http://$http/api/v1/cluster'

Ctrl-C stops everything.
TXT
wait
