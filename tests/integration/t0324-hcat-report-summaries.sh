#!/usr/bin/env bash
# hcat --report of a whole recording comes from the store's summaries (plus a scan of its last
# messages); with a selection it reads every message. Both reports of the same recording must
# agree on what both have: the message count, the span, the sessions, the counts per type and
# per device. The selection --since <before the first message> selects everything and forces
# the scan. The recording is larger than the sample so that the summary path really samples.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup
cd "$HKIT_TMP"

hkit_expect_exit 0 hgen -o rec.db --count 300000 --duration 5d --quiet
hkit_assert_contains "$(hcat --info rec.db)" "messages:   300000 " "a recording larger than the sample"
hkit_expect_exit 0 hcat rec.db --report summary.html
hkit_expect_exit 0 hcat rec.db --since 2000-01-01T00:00:00Z --report scan.html
hkit_assert_contains "$(cat summary.html)" "from summaries" "the summary report says where it comes from"
grep -Eq 'the last [0-9]+ messages \(received from [0-9-]+ [0-9:]+ UTC\)' summary.html ||
    hkit_fail "the summary report does not name its sample of the last messages"
if grep -q "from summaries" scan.html; then hkit_fail "the scanned report claims summaries"; fi

# the figures both reports carry, one per line (hgen's default site has fewer devices than the
# table's 300 rows, so both tables list every device whatever their order)
figures() {
    python3 - "$1" <<'PY'
import html, re, sys
page = open(sys.argv[1], encoding="utf-8").read()
def row(name):
    m = re.search(r"<tr><th>" + name + r"</th><td[^>]*>(.*?)</td></tr>", page)
    return html.unescape(m.group(1)) if m else "(missing)"
print("span", row("span"))
print("messages", row("messages").split(" (")[0])
print("counts", row("counts"))
print("sessions", row("sessions"))
for m in re.finditer(r'<tr><td class="type">(.*?)</td><td class="n">(\d+)</td>', page):
    print("type", html.unescape(m.group(1)), m.group(2))
# rate chart series names carry the types; the device table rows carry id, type and count
for m in re.finditer(r'<tr><td class="mono">(.*?)</td><td>(.*?)</td><td class="n">(\d+)</td>', page):
    print("device", html.unescape(m.group(1)), html.unescape(m.group(2)), m.group(3))
PY
}
figures summary.html | sort >summary.txt
figures scan.html | sort >scan.txt
[ "$(grep -c '^device ' summary.txt)" -gt 10 ] || hkit_fail "too few devices in the summary report"
[ "$(grep -c '^type ' summary.txt)" -gt 3 ] || hkit_fail "too few types in the summary report"
diff -u scan.txt summary.txt >diff.txt || hkit_fail "reports disagree: $(head -20 diff.txt)"

