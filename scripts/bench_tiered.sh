#!/usr/bin/env bash
# Consumer throughput reading a tiered topic from the bucket (cold chunk cache, then warm)
# next to reading the same data from local disk (issue 22). Not a test: prints numbers.
#   scripts/bench_tiered.sh [MiB]      (default 128; STROM_BIN, STROM_WEED override binaries)
# Starts SeaweedFS and one broker on loopback ports in a temp dir, kills both by PID at exit.
set -euo pipefail
MIB="${1:-128}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STROM="${STROM_BIN:-$ROOT/target/debug/strom}"
WEED="${STROM_WEED:-$HOME/.cache/strom/bin/weed}"
WORK="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; sleep 1; rm -rf "$WORK"; }
trap cleanup EXIT
# Four consecutive ports for SeaweedFS (each also needs port + 10000 for gRPC) and one for Kafka.
BASE=$(python3 -c 'import socket,random
while True:
    p=random.randint(20000,29000); ok=True
    for q in [p+i for i in range(5)]+[p+10000+i for i in range(4)]:
        s=socket.socket()
        try: s.bind(("127.0.0.1",q))
        except OSError: ok=False
        s.close()
    if ok: print(p); break')
MASTER=$BASE; VOLUME=$((BASE+1)); FILER=$((BASE+2)); S3=$((BASE+3)); KAFKA=$((BASE+4))
mkdir -p "$WORK/weed"
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret "$WEED" server -dir="$WORK/weed" \
  -ip=127.0.0.1 -ip.bind=127.0.0.1 -filer -s3 -master.port=$MASTER -volume.port=$VOLUME \
  -filer.port=$FILER -s3.port=$S3 -s3.port.iceberg=0 -s3.port.lance=0 -volume.max=0 \
  -master.volumeSizeLimitMB=256 >"$WORK/weed.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do (exec 3<>/dev/tcp/127.0.0.1/$S3) 2>/dev/null && break; sleep 0.5; done
(exec 3<>/dev/tcp/127.0.0.1/$S3) 2>/dev/null || { tail -20 "$WORK/weed.log"; exit 1; }
"$STROM" broker --set log.dirs="$WORK/data" --set listeners=PLAINTEXT://127.0.0.1:$KAFKA \
  --set http.listener= --set schema.registry.listener= \
  --set remote.log.storage.system.enable=true --set remote.log.storage.s3.endpoint=http://127.0.0.1:$S3 \
  --set remote.log.storage.s3.bucket=bench --set remote.log.storage.s3.access.key.id=bench \
  --set remote.log.storage.s3.secret.access.key=bench-secret \
  --set remote.log.manager.task.interval.ms=500 >"$WORK/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do (exec 3<>/dev/tcp/127.0.0.1/$KAFKA) 2>/dev/null && break; sleep 0.5; done
(exec 3<>/dev/tcp/127.0.0.1/$KAFKA) 2>/dev/null || { tail -20 "$WORK/broker.log"; exit 1; }
B=127.0.0.1:$KAFKA
"$STROM" topic create tiered --bootstrap-server $B --partitions 1 --config remote.storage.enable=true \
  --config segment.bytes=8388608 --config local.retention.bytes=8388608 --config retention.ms=-1 >/dev/null
"$STROM" topic create local --bootstrap-server $B --partitions 1 --config segment.bytes=8388608 \
  --config retention.ms=-1 >/dev/null
python3 -c "
import sys
line = b'v' * 1000 + b'\n'
sys.stdout.buffer.write(line * ($MIB * 1024 * 1024 // 1001))" > "$WORK/records"
RECORDS=$(wc -l < "$WORK/records")
for topic in tiered local; do kcat -P -b $B -t $topic -l "$WORK/records"; done
echo "produced $RECORDS records of 1000 bytes ($MIB MiB) to each topic"
segments=$(( MIB / 8 - 2 ))
until [[ $(grep -c "copied segment to the remote tier" "$WORK/broker.log") -ge $segments ]]; do sleep 1; done
sleep 2
echo "segments copied: $(grep -c 'copied segment to the remote tier' "$WORK/broker.log"); local deletions: $(grep -c 'local retention deleted' "$WORK/broker.log")"
read_topic() { # read_topic TOPIC: MiB/s of a full read from offset 0 with librdkafka (kcat)
  local start end count
  start=$(date +%s.%N)
  count=$(kcat -C -b $B -t "$1" -o beginning -e -q -f '%o\n' | wc -l)
  end=$(date +%s.%N)
  [[ $count -eq $RECORDS ]] || { echo "read $count of $RECORDS records from $1" >&2; exit 1; }
  python3 -c "print(f'{$MIB / ($end - $start):.1f}')"
}
echo "remote, cold cache: $(read_topic tiered) MiB/s"
echo "remote, warm cache: $(read_topic tiered) $(read_topic tiered) $(read_topic tiered) MiB/s"
echo "local:              $(read_topic local) $(read_topic local) $(read_topic local) MiB/s"
