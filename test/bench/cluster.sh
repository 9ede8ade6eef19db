#!/bin/bash
# The cluster benchmark of README.md ("Clustering on NATS"): one broker
# alone, one clustered broker, across two brokers, three brokers; two rounds.
# Needs a NATS server with JetStream at $NATS.
set -u
M=${MERCURY:-./mercury}   # go build -o mercury ./cmd/mercury
NATS=${NATS:-nats://127.0.0.1:4222}
OUT=${OUT:-/tmp/mercury-cluster-bench}; rm -rf $OUT; mkdir -p $OUT
NAME=bench$$
start() { # port args...
  local port=$1; shift
  $M serve --listen 127.0.0.1:$port "$@" > $OUT/serve-$port.log 2>&1 &
  echo $!
  for i in $(seq 100); do grep -q "mercury listening" $OUT/serve-$port.log && break; sleep 0.1; done
}
B="--subs 100 --rate 1000 --duration 10s --quiet --json"
run() { label=$1; shift; $M bench $B --label $label "$@" > $OUT/$label.json 2>$OUT/$label.err; echo "$label done"; }
for round in 1 2; do
  p0=$(start 3100)
  run single-r$round --url ws://127.0.0.1:3100 --pid $p0
  run single-3pubs-r$round --url ws://127.0.0.1:3100 --pubs 3 --pid $p0
  kill $p0; wait $p0 2>/dev/null
  a=$(start 3101 --cluster $NATS --cluster-name $NAME)
  b=$(start 3102 --cluster $NATS --cluster-name $NAME)
  c=$(start 3103 --cluster $NATS --cluster-name $NAME)
  run one-clustered-r$round --url ws://127.0.0.1:3101 --pid $a
  run cross-node-r$round --url ws://127.0.0.1:3102 --pub-url ws://127.0.0.1:3101 --pid $a --pid $b
  run three-nodes-r$round --url ws://127.0.0.1:3101,ws://127.0.0.1:3102,ws://127.0.0.1:3103 --pubs 3 --pid $a --pid $b --pid $c
  run one-node-3pubs-r$round --url ws://127.0.0.1:3101 --pubs 3 --pid $a
  kill $a $b $c; wait 2>/dev/null
done
$M bench table $OUT/*.json > $OUT/table.txt 2>&1
cat $OUT/table.txt
