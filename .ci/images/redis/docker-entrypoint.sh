#!/usr/bin/env bash
# Redis (Debian's package) behind the official redis image's contract, as
# the workshop's harness uses it:
#   docker run -v VOL:/data IMAGE --save "" --appendonly no --maxmemory 10mb
# - Arguments starting with `-` (or a first one ending in .conf, or none)
#   go to `redis-server`; anything else is exec'd.
# - `--protected-mode no` comes first: the official image patches that
#   default in, Debian's build keeps `yes`, which refuses every client not
#   on the container's loopback (the bridge gateway a published port comes
#   from). A later `--protected-mode yes` still wins.
# - Listens on all the container's interfaces (no config file: Redis's
#   default bind), port 6379, in /data, as the `redis` user, exec'd: the
#   server is the container's PID 1.
set -euo pipefail

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
[ "$1" = redis-server ] || exec "$@"
shift

# `redis-server --version` and friends take nothing else.
case ${1:-} in -v|--version|-h|--help|--test-memory|--check-system) exec redis-server "$@" ;; esac
# A config file (or `-`, stdin) must stay redis-server's first argument.
conf=()
if [ "$#" -gt 0 ] && { [ "$1" = - ] || { [ "${1#-}" = "$1" ] && [ "${1%.conf}" != "$1" ]; }; }; then
  conf=("$1")
  shift
fi
set -- redis-server "${conf[@]}" --protected-mode no "$@"

# As the official image: files private to redis.
umask 0077
if [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  export HOME=/var/lib/redis
  exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
