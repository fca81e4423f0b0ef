#!/bin/bash
# perfwatch.sh PREFIX: wait for peers.sh's UDP overload test (its iperf3 client), then sample the whole
# machine with `perf record -a -g` for 5 s in its middle; the data goes to PREFIX-<epoch>.data.
# Started by bench/cases.sh's -prof cases; needs perf (Debian: linux-perf).
set -u
for _ in $(seq 600); do
  pgrep -f "iperf3 .*-u -b 0" >/dev/null && break
  sleep 0.1
done
sleep 2
exec perf record -a -g -F 999 -o "$1-$(date +%s).data" -- sleep 5
