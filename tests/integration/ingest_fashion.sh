#!/usr/bin/env bash
# Fashion-MNIST through fovea ingest: train + t10k (as val) gives 60000 train,
# 10000 val, 10 classes named by --labels; re-running adds nothing (dedup
# across runs) and bumps no version; --val-fraction holds out the same
# records every time; --progress prints lines while it runs.
# timeout: 120
source "$(dirname "$0")/../itlib.sh"
# jnum KEY: the first "KEY":N in the JSON on stdin (splits come before per_class)
jnum() { grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }

printf '%s\n' T-shirt/top Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag "Ankle boot" >"$T/names"
check ingest_train fovea ingest --db "$T/db" --labels "$T/names" "$FASHION/train-images-idx3-ubyte.gz"
check ingest_val fovea ingest --db "$T/db" --split val --labels "$T/names" "$FASHION/t10k-images-idx3-ubyte.gz"
s=$(fovea stats --db "$T/db" --json)
check_eq fashion_train "$(jnum train <<<"$s")" 60000
check_eq fashion_val "$(jnum val <<<"$s")" 10000
check_eq fashion_records "$(jnum records <<<"$s")" 70000
check_eq fashion_classes "$(jnum classes <<<"$s")" 10
check_eq fashion_names "$(grep -o '{"index":9,"id":"9","name":"Ankle boot"' <<<"$s")" '{"index":9,"id":"9","name":"Ankle boot"'
check_eq fashion_per_class "$(grep -o '"train":[0-9]*,"val":[0-9]*,"test"' <<<"$s" | sort | uniq -c | awk '{print $1, $2}')" \
	'10 "train":6000,"val":1000,"test"
1 "train":60000,"val":10000,"test"'
v=$(jnum version <<<"$s")

out=$(fovea ingest --db "$T/db" --progress 0.05 "$FASHION/train-images-idx3-ubyte.gz" 2>&1)
check_eq rerun_adds_nothing "$(grep -o 'added [0-9]*, duplicates [0-9]*' <<<"$out")" "added 0, duplicates 60000"
# --progress: lines while it runs, counting what the commits so far hold
p=$(grep 'progress: 0 added, [0-9]* duplicates, 0 rejected; [0-9]* images/s; dataset version' <<<"$out")
check progress_lines test -n "$p"
check progress_counts_grow test "$(grep -o '[0-9]* duplicates' <<<"$p" | sort -n -c 2>&1 && echo sorted)" = sorted
s=$(fovea stats --db "$T/db" --json)
check_eq rerun_records "$(jnum records <<<"$s")" 70000
check_eq rerun_version "$(jnum version <<<"$s")" "$v"
check_eq rerun_duplicates "$(jnum duplicates <<<"$s")" 60000
fovea stats --db "$T/db" | grep -q 'long tail *0 of 10' && ok stats_text || fail stats_text

# --val-fraction: the same hold-out on every run, about the asked share
for k in 1 2; do
	out=$(fovea ingest --db "$T/vf$k" --val-fraction 0.2 --nosync "$FASHION/t10k-images-idx3-ubyte.gz" 2>&1)
done
check no_progress_in_short_runs test -z "$(grep progress: <<<"$out")" # every 10 s by default
a=$(fovea stats --db "$T/vf1" --json | grep -o '"per_class.*')
b=$(fovea stats --db "$T/vf2" --json | grep -o '"per_class.*')
check_eq val_fraction_deterministic "$a" "$b"
nv=$(fovea stats --db "$T/vf1" --json | jnum val)
check val_fraction_share test "$nv" -gt 1800 -a "$nv" -lt 2200

# errors a user can make: one line naming the thing, exit non-zero
out=$(fovea ingest --db "$T/db2" "$T/nope-images-idx3-ubyte.gz" 2>&1); rc=$?
check missing_source_named test $rc != 0 -a -n "$(grep nope-images <<<"$out")"
out=$(fovea stats --db "$T/nothing" 2>&1); rc=$?
check stats_missing_db test $rc != 0 -a -n "$(grep nothing <<<"$out")"
fv_done
