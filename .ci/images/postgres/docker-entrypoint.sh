#!/usr/bin/env bash
# PostgreSQL 15 (Debian's package) behind the official postgres image's
# contract, as the workshop's harness uses it:
#   docker run -v VOL:/var/lib/postgresql -e POSTGRES_HOST_AUTH_METHOD=trust \
#     -e POSTGRES_DB=test [-e POSTGRES_INITDB_ARGS=...] IMAGE -c shared_buffers=16MB ...
# - Arguments starting with `-` (or none) go to `postgres`; anything else is exec'd.
# - An empty $PGDATA (/var/lib/postgresql/data) is initialised once: initdb
#   as `postgres` (--username=$POSTGRES_USER, default postgres, plus
#   $POSTGRES_INITDB_ARGS), `host all` and `host replication` lines for all
#   addresses with $POSTGRES_HOST_AUTH_METHOD, listen_addresses='*' (from
#   the sample), and $POSTGRES_DB created by a temporary server on the unix
#   socket only. A non-empty $PGDATA is started as it is.
# - The server runs as `postgres`, exec'd: it is the container's PID 1.
set -Eeuo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%F %T UTC')" "$*" >&2; }

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
[ "$1" = postgres ] || exec "$@"

# `postgres --version` and friends: no set-up (as the official image).
for arg in "${@:2}"; do
  case $arg in -'?'|--help|--describe-config|-V|--version|-C) exec "$@" ;; esac
done

if [ "$(id -u)" = 0 ]; then
  # As root: the directories exist and belong to postgres (a fresh volume,
  # or files pg_basebackup wrote as root), then run this script again as
  # postgres. setpriv (util-linux) execs, as gosu does: no extra process.
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 00700 "$PGDATA" || :
  chmod 03775 /var/run/postgresql || :
  find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
  export HOME=/var/lib/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  method=${POSTGRES_HOST_AUTH_METHOD:-}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$method" != trust ]; then
    log "Error: the database is uninitialised and no superuser password is set."
    log "Set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without one."
    exit 1
  fi
  [ -n "$method" ] || method=scram-sha-256

  log "initdb in $PGDATA (POSTGRES_INITDB_ARGS: ${POSTGRES_INITDB_ARGS:-none})"
  # eval, as the official image: POSTGRES_INITDB_ARGS may hold quoted words.
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    eval 'initdb --username="$user" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"${POSTGRES_INITDB_ARGS:-}"
  else
    eval 'initdb --username="$user" '"${POSTGRES_INITDB_ARGS:-}"
  fi

  # The official image appends only the first line; the second lets a
  # standby's pg_basebackup and streaming in from any address too.
  {
    printf '\n'
    printf 'host all all all %s\n' "$method"
    printf 'host replication all all %s\n' "$method"
  } >> "$PGDATA/pg_hba.conf"

  # A temporary server on the unix socket only (no TCP: nobody connects
  # before the set-up is done), with the caller's settings, as the official image.
  port=${PGPORT:-5432}
  PGUSER=$user pg_ctl -D "$PGDATA" -w -t 60 \
    -o "$(printf '%q ' "${@:2}" -c listen_addresses='' -p "$port")" start
  if [ "$db" != postgres ]; then
    log "creating database $db"
    PGPORT=$port psql -v ON_ERROR_STOP=1 --username "$user" --no-password --no-psqlrc \
      --dbname postgres --set db="$db" <<<'CREATE DATABASE :"db" ;'
  fi
  PGUSER=$user pg_ctl -D "$PGDATA" -m fast -w -t 60 stop
  log "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
