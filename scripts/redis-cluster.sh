#!/usr/bin/env bash
# A throwaway Redis Cluster from the system's `redis-server` (Redis >= 7: sharded pub/sub) on
# local ports, for tests, CI and the bench. Nothing is persisted; data dirs live under /tmp.
#
#   scripts/redis-cluster.sh start PORT_BASE [REPLICAS]   # 3 masters on PORT_BASE..+2, replicas on +3..+5
#   scripts/redis-cluster.sh stop  PORT_BASE
#   scripts/redis-cluster.sh nodes PORT_BASE              # prints REDIS_CLUSTER_NODES (the masters)
#
# REPLICAS is 1 (default: one replica per master, so a stopped master fails over) or 0.
# CLUSTER_NODE_TIMEOUT_MS (default 2000) is how long a silent master waits before its replica is
# promoted. `cluster-require-full-coverage no`: while one master is down (before its replica takes
# over) the other masters keep serving their slots. Exit 0 once `cluster_state:ok` on every node.
set -euo pipefail

cmd=${1:-}; base=${2:-7100}; replicas=${3:-1}
timeout_ms=${CLUSTER_NODE_TIMEOUT_MS:-2000}
dir=/tmp/ac-redis-cluster-$base
masters=3
count=$((masters * (1 + replicas)))
ports() { local n=${1:-$count}; for i in $(seq 0 $((n - 1))); do echo $((base + i)); done; }

case "$cmd" in
  start)
    command -v redis-server >/dev/null || { echo "redis-server not found" >&2; exit 1; }
    major=$(redis-server --version | sed -E 's/.*v=([0-9]+).*/\1/')
    [ "$major" -ge 7 ] || { echo "Redis >= 7 needed for sharded pub/sub (found $(redis-server --version))" >&2; exit 1; }
    "$0" stop "$base" >/dev/null 2>&1 || true
    rm -rf "$dir"; mkdir -p "$dir"
    for p in $(ports); do
      mkdir -p "$dir/$p"
      redis-server --port "$p" --bind 127.0.0.1 --daemonize yes --dir "$dir/$p" \
        --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" --cluster-node-timeout "$timeout_ms" \
        --save "" --appendonly no --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" \
        --cluster-replica-validity-factor 0 --cluster-require-full-coverage no >/dev/null
    done
    for p in $(ports); do
      for _ in $(seq 1 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
    done
    addrs=$(for p in $(ports); do printf '127.0.0.1:%s ' "$p"; done)
    # shellcheck disable=SC2086
    redis-cli --cluster create $addrs --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1 \
      || { cat "$dir/create.log" >&2; exit 1; }
    for _ in $(seq 1 200); do
      ok=1
      for p in $(ports); do redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0; done
      # Replicas must have attached before a test may rely on failover.
      if [ "$ok" = 1 ] && [ "$replicas" -gt 0 ]; then
        n=$(redis-cli -p "$base" cluster nodes | grep -c 'slave' || true)
        [ "$n" -ge "$masters" ] || ok=0
        for p in $(ports); do
          if redis-cli -p "$p" role 2>/dev/null | head -1 | grep -q slave; then
            redis-cli -p "$p" info replication | grep -q 'master_link_status:up' || ok=0
          fi
        done
      fi
      [ "$ok" = 1 ] && break
      sleep 0.1
    done
    [ "$ok" = 1 ] || { echo "cluster on $base did not become ready" >&2; exit 1; }
    "$0" nodes "$base"
    ;;
  stop)
    for p in $(ports 6); do
      if [ -f "$dir/$p/redis.pid" ]; then kill "$(cat "$dir/$p/redis.pid")" 2>/dev/null || true; fi
    done
    for p in $(ports 6); do
      for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 || break; sleep 0.05; done
    done
    rm -rf "$dir"
    ;;
  nodes)
    echo "127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
    ;;
  *)
    echo "usage: $0 start|stop|nodes PORT_BASE [REPLICAS]" >&2; exit 2
    ;;
esac
