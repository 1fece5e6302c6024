#!/usr/bin/env bash
# Credentials on the command line: userinfo in --url is refused without being echoed; a token
# file that is a directory, too long, or has loose permission bits says exactly that, with a
# chmod hint quoted for the shell; a trailing space gets a hint. No broker: nothing listens.
set -euo pipefail
. "$HKIT_SOURCE_DIR/scripts/lib.sh"
hkit_test_setup

export HALTIAN_API_KEY_ID=$HKIT_TEST_API_KEY_ID HALTIAN_INTEGRATION_ID=$HKIT_TEST_INTEGRATION_ID
unset HALTIAN_API_KEY_TOKEN
dead=$(hkit_free_port)

# userinfo in the url: never echoed, whatever else is wrong with the url
for url in "mqtts://key:S3CRET-TOKEN@127.0.0.1:bad" "mqtts://key:S3CRET-TOKEN@127.0.0.1:$dead" \
    "mqtt://S3CRET-TOKEN@[::1]:x/path"; do
    for tool in "hrecord -o $HKIT_TMP/x.db" "hgen --duration 1s"; do
        hkit_expect_exit 2 $tool --url "$url"
        case $ERR in *S3CRET*) hkit_fail "$tool echoed the url's userinfo: $ERR" ;; esac
        hkit_assert_contains "$ERR" "--url must not contain a user name or password ('user:token@'); use --api-key-id and --token-file" "$tool userinfo"
    done
done
hkit_expect_exit 2 hreplay --url "mqtts://key:S3CRET-TOKEN@127.0.0.1:bad" /dev/null
case $ERR in *S3CRET*) hkit_fail "hreplay echoed the url's userinfo: $ERR" ;; esac

# a directory
mkdir "$HKIT_TMP/tokdir"
hkit_expect_exit 2 hrecord --url "mqtt://127.0.0.1:$dead" --token-file "$HKIT_TMP/tokdir" -o "$HKIT_TMP/x.db"
hkit_assert_eq "hrecord: token file '$HKIT_TMP/tokdir' is a directory, not a file" "$ERR" "directory"

# 8,191 bytes are a token; 8,192 are an error, not a cut token
tok=$HKIT_TMP/tok
head -c 8191 /dev/zero | tr '\0' a >"$tok"
chmod 600 "$tok"
hkit_expect_exit 1 hrecord --url "mqtt://127.0.0.1:$dead" --token-file "$tok" -o "$HKIT_TMP/x.db"
hkit_assert_contains "$ERR" "cannot connect to '127.0.0.1:$dead'" "8191-byte token accepted"
printf '\r\n' >>"$tok"
hkit_expect_exit 1 hrecord --url "mqtt://127.0.0.1:$dead" --token-file "$tok" -o "$HKIT_TMP/x.db"
hkit_assert_contains "$ERR" "cannot connect" "8191-byte token with a newline accepted"
head -c 8192 /dev/zero | tr '\0' a >"$tok"
hkit_expect_exit 2 hrecord --url "mqtt://127.0.0.1:$dead" --token-file "$tok" -o "$HKIT_TMP/x.db"
hkit_assert_eq "hrecord: the token in '$tok' is longer than 8191 bytes" "$ERR" "8192-byte token"
HALTIAN_API_KEY_TOKEN=$(head -c 8192 /dev/zero | tr '\0' a) hkit_expect_exit 2 \
    hrecord --url "mqtt://127.0.0.1:$dead" -o "$HKIT_TMP/x.db"
hkit_assert_eq "hrecord: the token from HALTIAN_API_KEY_TOKEN is longer than 8191 bytes" "$ERR" \
    "8192-byte token in the environment"

# a trailing space: sent as is, with a hint
printf 'token-with-space \n' >"$tok"
hkit_expect_exit 1 hrecord --url "mqtt://127.0.0.1:$dead" --token-file "$tok" -o "$HKIT_TMP/x.db"
hkit_assert_contains "$ERR" "warning: the token from '$tok' ends with a space or tab" "trailing space"

# permission bits named as they are, and the chmod hint quoted for the shell
odd="$HKIT_TMP/it's a token"
printf 'tok\n' >"$odd"
quoted="'$HKIT_TMP/it'\\''s a token'"
for mode_text in "0602:other users can write it" "0610:its group can execute it" \
    "0640:its group can read it" "0666:its group can read and write it, other users can read and write it"; do
    mode=${mode_text%%:*} text=${mode_text#*:}
    chmod "$mode" "$odd"
    hkit_expect_exit 1 hrecord --url "mqtt://127.0.0.1:$dead" --token-file "$odd" -o "$HKIT_TMP/x.db"
    hkit_assert_contains "$ERR" "warning: token file '$odd' has mode $mode: $text; run: chmod 600 $quoted" \
        "mode $mode"
done
# the hint, pasted into a shell, fixes exactly that file
eval "chmod 600 $quoted"
[ "$(stat -c %a "$odd")" = 600 ] || hkit_fail "the chmod hint did not work"
hkit_expect_exit 1 hrecord --url "mqtt://127.0.0.1:$dead" --token-file "$odd" -o "$HKIT_TMP/x.db"
case $ERR in *"has mode"*) hkit_fail "mode 600 warned: $ERR" ;; esac
