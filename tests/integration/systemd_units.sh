#!/usr/bin/env bash
# systemd_units.sh — the deploy/systemd units as `make install` writes them:
# `systemd-analyze verify` passes on every unit (ExecStart must point at an
# installed binary, so the tree is installed under the build directory — not
# under /tmp, which PrivateTmp= hides from verify), each service's
# `systemd-analyze security --offline=yes` exposure is <= 3.0, every unit is
# Type=notify with a watchdog, and every key of the example configs is an
# option of the daemon that reads it.
# timeout: 120
source "$(dirname "$0")/../itlib.sh"
if ! command -v systemd-analyze >/dev/null; then fail systemd_analyze_missing; fv_done; fi
R=$(mktemp -d "$FV_ROOT/${BUILD:-build}/sdroot.XXXXXX")
trap 'rm -rf "$R"; fv_cleanup' EXIT
make -s -C "$FV_ROOT" install PREFIX="$R/usr" SYSCONFDIR="$R/etc" >"$T/install.log" 2>&1
check make_install test -x "$R/usr/bin/fovea-serve" -a -f "$R/usr/lib/systemd/system/fovea.target" \
	-a -f "$R/etc/fovea/serve.conf" -a -f "$R/usr/share/doc/fovea/README.md"
U=$R/usr/lib/systemd/system
units=$(cd "$U" && ls fovea-*.service fovea.target | sed 's/fovea-augment@\.service/fovea-augment@1.service/')
check_eq unit_count "$(echo $units | wc -w)" 7
for u in $units; do
	out=$(cd "$U" && systemd-analyze verify --man=no "./$u" 2>&1)
	check_eq "verify_$u" "$?:$out" "0:"
done
for u in "$U"/fovea-*.service; do
	n=$(basename "$u")
	score=$(systemd-analyze security --offline=yes --threshold=30 "$u" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
	check "security_${n}_${score:-none}_le_3" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 3.0) }'
	check "notify_watchdog_$n" grep -q '^WatchdogSec=' "$u"
	check "execstart_installed_$n" grep -q "^ExecStart=.*$R/usr/bin/fovea-" "$u"
done
# A unit that is surely broken must fail verify (the check can fail).
sed 's|^ExecStart=.*|ExecStart=/nonexistent/fovea-x|' "$U/fovea-serve.service" >"$R/broken.service"
check verify_catches_broken bash -c "! systemd-analyze verify --man=no '$R/broken.service' >/dev/null 2>&1"

# Example configs: every key is an option of its daemon (unknown keys are
# errors at start, so a stale example would be a unit that never starts).
for c in "$FV_ROOT"/deploy/conf/*.conf; do
	d=$(basename "$c" .conf)
	help=$("fovea-$d" --help 2>&1)
	bad=""
	for k in $(sed -n 's/^\([a-z][a-z0-9-]*\) *=.*/\1/p' "$c"); do
		grep -q -- "--$k " <<<"$help" || bad="$bad $k"
	done
	check_eq "conf_keys_$d" "$bad" ""
done
help=$(fovea up --help 2>&1); bad=""
for k in $(sed -n 's/^\([a-z][a-z0-9-]*\) *=.*/\1/p' "$FV_ROOT/deploy/fovea.conf"); do
	grep -q -- "--$k " <<<"$help" || bad="$bad $k"
done
check_eq conf_keys_fovea_up "$bad" ""
fv_done
