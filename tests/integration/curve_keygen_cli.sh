#!/usr/bin/env bash
# `fovea keygen` (here through `fovea-augment keygen`, the same code as the
# front door's `fovea keygen`) and the worker's CURVE options from the command
# line and a config file: files and modes, no overwriting, one clear line
# naming the file for each bad key.
# timeout: 30
source "$(dirname "$0")/../itlib.sh"

out=$(fovea-augment keygen --out "$T" --name w1 2>&1)
check keygen_exit_0 [ $? = 0 ]
check keygen_secret_0600 [ "$(stat -c %a "$T/w1.key")" = 600 ]
check keygen_pub_0644 [ "$(stat -c %a "$T/w1.pub")" = 644 ]
check keygen_z85_40 [ "$(tr -d '\n' <"$T/w1.pub" | wc -c)" = 40 ]
case "$out" in *"$(cat "$T/w1.pub")"*) ok keygen_prints_public ;; *) fail keygen_prints_public "$out" ;; esac
check keygen_pair_differs [ "$(cat "$T/w1.key")" != "$(cat "$T/w1.pub")" ]

before=$(cat "$T/w1.key")
fovea-augment keygen --out "$T" --name w1 >"$T/again.out" 2>&1
check_eq keygen_no_overwrite_exit_1 "$?" 1
check keygen_no_overwrite_says_why grep -q "exists" "$T/again.out"
check_eq keygen_key_unchanged "$(cat "$T/w1.key")" "$before"
fovea-augment keygen --help >/dev/null 2>&1
check_eq keygen_help_exit_0 "$?" 0

fovea-augment keygen --out "$T" --name server >/dev/null 2>&1
# a worker whose secret key others can read refuses to start, naming the file
cp "$T/w1.key" "$T/open.key" && chmod 644 "$T/open.key"
fovea-augment --connect tcp://127.0.0.1:1 --curve-key "$T/open.key" \
	--server-key "$T/server.pub" >"$T/open.out" 2>&1
check_eq worker_open_key_exit_1 "$?" 1
check worker_open_key_names_file grep -q "open.key.*readable" "$T/open.out"
# half a configuration is refused
fovea-augment --connect tcp://127.0.0.1:1 --curve-key "$T/w1.key" >"$T/half.out" 2>&1
check_eq worker_half_config_exit_1 "$?" 1
check worker_half_config_says_why grep -q -- "--server-key" "$T/half.out"
# a server key file that is not a key
echo "hello" >"$T/bad.pub"
fovea-augment --connect tcp://127.0.0.1:1 --curve-key "$T/w1.key" --server-key "$T/bad.pub" \
	>"$T/bad.out" 2>&1
check_eq worker_bad_server_key_exit_1 "$?" 1
check worker_bad_server_key_names_file grep -q "bad.pub" "$T/bad.out"
# the example config file parses (the keys it names exist here)
sed -e "s|/etc/fovea/augment.key|$T/w1.key|; s|/etc/fovea/server.pub|$T/server.pub|" \
	-e "s|tcp://trainer.example.net:5560|tcp://127.0.0.1:1|" \
	"$FV_ROOT/deploy/augment-remote.conf.example" >"$T/augment.conf"
timeout --preserve-status -s TERM 1 fovea-augment -c "$T/augment.conf" >"$T/conf.out" 2>&1
check_eq example_config_runs "$?" 0
check example_config_uses_curve grep -q "CURVE, our key" "$T/conf.out"
fv_done
