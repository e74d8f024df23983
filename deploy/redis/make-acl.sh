#!/bin/sh
# The Redis ACL file of the compose stack (run by its `redis-acl` service before Redis starts):
#   - one user per marketbus service (feed, runner, api, backtester, ops), from `marketbus redis acl`,
#     passwords from MARKETBUS_REDIS_PASSWORD_<USER> (stored as SHA-256, never in clear);
#   - `admin`, all rights, password from MARKETBUS_REDIS_PASSWORD_ADMIN, for operators (ACL LOG, INFO);
#   - the default user off: every connection must say who it is.
#
#   sh deploy/redis/make-acl.sh [OUT]      OUT defaults to /var/lib/marketbus/acl/users.acl
#
# MARKETBUS_CLI says how to run marketbus (default: node /app/dist/cli/main.js, the image's build).
# The file is replaced at once (written beside it, then renamed); Redis reads it at start or on ACL LOAD.
set -eu

out="${1:-/var/lib/marketbus/acl/users.acl}"
cli="${MARKETBUS_CLI:-node /app/dist/cli/main.js}"
: "${MARKETBUS_REDIS_PASSWORD_ADMIN:?set MARKETBUS_REDIS_PASSWORD_ADMIN (password of the Redis admin user)}"

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# Word splitting of $cli is wanted: it is a command line.
$cli redis acl --format file >"$tmp"
admin_sha=$(printf '%s' "$MARKETBUS_REDIS_PASSWORD_ADMIN" | sha256sum | cut -d' ' -f1)
printf 'user admin on #%s ~* &* +@all\n' "$admin_sha" >>"$tmp"
printf 'user default off resetpass resetkeys resetchannels -@all\n' >>"$tmp"
chmod 0644 "$tmp" # Redis runs as another user than the one writing this
mv "$tmp" "$out"
trap - EXIT
echo "make-acl: wrote $(wc -l <"$out") users to $out" >&2
