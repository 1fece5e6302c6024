#!/usr/bin/env bash
# Every tool's long options agree in three places: what the tool accepts (its getopt_long table in
# tools/<tool>/*.c, with the shared *_LONG_OPTIONS macros of tools/common expanded), its --help
# and its man page source docs/man/<tool>.1.scd (shared parts from docs/man/include expanded).
# An option counts as documented where a line defines it: in --help a line indented by a few
# spaces that starts with the option ("  -q, --qos QOS   ..."), in a man page a line starting
# with the option in bold ("*-q*, *--qos* _QOS_"). Mentions in running text do not count.
# Each problem is reported as one line naming the tool, the option and the place to fix; all
# problems are listed before the test fails. No broker needed: the tools only print --help.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

src=$HKIT_SOURCE_DIR
problems=()
problem() { problems+=("$*"); }

# accepted_options TOOL: the long option names of TOOL's getopt_long tables, one per line.
accepted_options() {
    local dir=$src/tools/$1 macro body
    {
        cat "$dir"/*.c "$dir"/*.h 2>/dev/null
        for macro in $(cat "$dir"/*.c | grep -ohE '\b[A-Z][A-Z0-9_]*_LONG_OPTIONS\b' | sort -u); do
            # the macro's definition: from '#define NAME' to the first line not ending in '\'
            body=$(awk -v m="$macro" '
                $0 ~ "^#[ \t]*define[ \t]+" m "([^A-Za-z0-9_]|$)" { on = 1 }
                on { print; if ($0 !~ /\\[ \t]*$/) exit }' "$src"/tools/common/*.h "$dir"/*.h 2>/dev/null)
            if [ -z "$body" ]; then
                problem "$1: the test cannot find the definition of $macro (looked in tools/common/*.h" \
                    "and tools/$1/*.h); update tests/integration/t0002-docs-options.sh"
                continue
            fi
            printf '%s\n' "$body"
        done
    } | grep -oE '\{ *"[a-z0-9][a-z0-9-]*" *, *(no|required|optional)_argument' |
        sed -E 's/^\{ *"([^"]*)".*/\1/' | sort -u
}

# help_options TOOL: long options on the option lines of 'TOOL --help'.
help_options() {
    "$HKIT_BIN/$1" --help </dev/null |
        grep -E '^ {1,6}-' | sed -E 's/^ +//; s/  .*$//' |
        grep -oE -- '--[a-z0-9][a-z0-9-]*' | sed 's/^--//' | sort -u
}

# expand_scd FILE: the man page source with its '; include: NAME' lines replaced by the files
# from docs/man/include, as docs/man/scdoc.cmake does at build time.
expand_scd() {
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
        '; include: '*) cat "$src/docs/man/include/${line#; include: }" ;;
        *) printf '%s\n' "$line" ;;
        esac
    done <"$1"
}

# man_options TOOL: long options on the option lines of TOOL's man page source.
man_options() {
    expand_scd "$src/docs/man/$1.1.scd" | grep -E '^\*-' |
        grep -oE -- '--[a-z0-9][a-z0-9-]*' | sed 's/^--//' | sort -u
}

# binary_knows TOOL OPTION: true unless the tool answers "unknown option". '--help' twice: an
# option that takes a value eats the first one, so the tool stops at a --help either way and
# never starts any work. getopt_long also takes unique abbreviations, so this cannot prove an
# option exists by that exact name; the tables decide that, this only cross-checks them.
binary_knows() {
    local err
    err=$(timeout 20 "$HKIT_BIN/$1" "--$2" --help --help </dev/null 2>&1 >/dev/null) || true
    case $err in *"unknown option '--$2'"*) return 1 ;; esac
    return 0
}

checked=0
for tool in hrecord hreplay hcat hverify hgen; do
    [ -x "$HKIT_BIN/$tool" ] || hkit_fail "$tool is not built in $HKIT_BIN"
    page=docs/man/$tool.1.scd
    [ -f "$src/$page" ] || { problem "$tool: no man page source $page"; continue; }
    accepted=$(accepted_options "$tool")
    [ -n "$accepted" ] || hkit_fail "$tool: found no getopt_long table in tools/$tool/*.c;" \
        "update tests/integration/t0002-docs-options.sh to where the table is now"
    helped=$(help_options "$tool")
    [ -n "$helped" ] || hkit_fail "$tool: found no option lines in '$tool --help'"
    manned=$(man_options "$tool")

    for opt in $accepted; do
        checked=$((checked + 1))
        binary_knows "$tool" "$opt" ||
            problem "$tool: --$opt is in a getopt_long table under tools/$tool but the built" \
                "'$tool' answers \"unknown option\" (is that table compiled in?)"
        grep -qx -- "$opt" <<<"$helped" ||
            problem "$tool: --$opt is accepted by the tool but missing from '$tool --help'" \
                "(add an option line to the usage text in tools/$tool/${tool}_opts.c or tools/common)"
        grep -qx -- "$opt" <<<"$manned" ||
            problem "$tool: --$opt is accepted by the tool but missing from the man page $page" \
                "(add an option line such as '*--$opt* _VALUE_' followed by a tab-indented description)"
    done
    for opt in $helped; do
        grep -qx -- "$opt" <<<"$accepted" && continue
        problem "$tool: --$opt is listed in '$tool --help' but the tool does not accept it" \
            "(no such entry in its getopt_long table)"
    done
    for opt in $manned; do
        grep -qx -- "$opt" <<<"$accepted" && continue
        note=""
        binary_knows "$tool" "$opt" && note=" ('$tool --$opt' is taken only as an abbreviation of a longer option)"
        problem "$tool: --$opt is documented in the man page $page but the tool does not accept it$note" \
            "(remove it from the page, or add it to the tool)"
    done
done

if [ ${#problems[@]} -gt 0 ]; then
    printf 'FAIL: %s\n' "${problems[@]}" >&2
    hkit_fail "${#problems[@]} disagreement(s) between the tools, their --help and their man pages"
fi
echo "ok: $checked long options of 5 tools agree between the tools, their --help and their man pages"
