#!/usr/bin/env bash
# Training with augment workers from "other hosts": the trainer binds a
# CURVE-protected tcp:// broker on loopback; a worker whose key is on the
# allow-list trains the model, one with an unknown key is refused, and the
# run completes as if nothing happened.
# timeout: 200
. "$(dirname "$0")/../itlib.sh"

fashion_subset train 512 "$T/src"
fovea ingest --db "$T/db" "$T/src/train-images-idx3-ubyte.gz" >/dev/null 2>&1
mkdir -p "$T/keys/workers.d"
fovea-augment keygen --out "$T/keys" --name server >/dev/null 2>&1
fovea-augment keygen --out "$T/keys" --name good >/dev/null 2>&1
fovea-augment keygen --out "$T/keys" --name evil >/dev/null 2>&1
cp "$T/keys/good.pub" "$T/keys/workers.d/"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

bg fovea train --db "$T/db" --out "$T/run" --model resnet20 --batch 32 --threads 1 --max-steps 6 --log-steps 1 \
	--eval-every 0 --workers 0 --augment-bind "tcp://127.0.0.1:$port" \
	--augment-curve-key "$T/keys/server.key" --augment-allow "$T/keys/workers.d"
trainer=$!
bg fovea-augment --connect "tcp://127.0.0.1:$port" --curve-key "$T/keys/evil.key" \
	--server-key "$T/keys/server.pub" 2>"$T/evil.log"
bg fovea-augment --connect "tcp://127.0.0.1:$port" --curve-key "$T/keys/good.key" \
	--server-key "$T/keys/server.pub" 2>"$T/good.log"
wait $trainer
check_eq training_through_curve_worker $? 0
check six_steps_logged grep -q '"step": 6,' "$T/run/metrics.jsonl"
check unknown_key_refused grep -q "refused our key" "$T/evil.log"
check allowed_worker_joined grep -q "joined" "$T/good.log"
fv_done
