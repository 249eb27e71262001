# Shared by the driver-level test scripts (sourced): set $work and $name first.
# fail TEXT: report and stop.
fail() { echo "$name: FAILED: $*" >&2; exit 1; }
# expect_error TEXT command...: exit status 1 and TEXT in the message on standard error.
expect_error() {
  text="$1"; shift
  set +e; "$@" >"$work/out.txt" 2>"$work/err.txt"; rc=$?; set -e
  [ "$rc" -eq 1 ] || { cat "$work/err.txt"; fail "expected exit status 1, got $rc: $*"; }
  grep -q -- "$text" "$work/err.txt" || { cat "$work/err.txt"; fail "expected '$text' in the message of: $*"; }
}
