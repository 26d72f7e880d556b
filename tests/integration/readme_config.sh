#!/usr/bin/env bash
# readme_config.sh — README.md's config reference is exactly what
# tools/gen-readme-config.sh generates from the programs' option tables now
# (run `tools/gen-readme-config.sh --update` after changing an option), and
# the check notices a difference.
# timeout: 60
source "$(dirname "$0")/../itlib.sh"
cd "$FV_ROOT"
check readme_config_current tools/gen-readme-config.sh --check
# must be able to fail: a README with one option line changed
mkdir -p "$T/r/tools" && cp README.md "$T/r/" && cp tools/gen-readme-config.sh "$T/r/tools/"
sed -i 's/^| `http-port` | int 0..65535 | 8080 |/| `http-port` | int 0..65535 | 8081 |/' "$T/r/README.md"
check_eq readme_tampered_differs "$(cd "$T/r" && FV_BIN=$FV_BIN tools/gen-readme-config.sh --check >/dev/null 2>&1; echo $?)" 1
fv_done
