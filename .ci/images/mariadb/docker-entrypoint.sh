#!/usr/bin/env bash
# MariaDB (Debian's package) behind the official mariadb image's contract,
# as the workshop's harness uses it:
#   docker run -v VOL:/var/lib/mysql -e MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 \
#     -e MARIADB_DATABASE=test IMAGE --innodb-buffer-pool-size=64M --skip-log-bin ...
# - Arguments starting with `-` (or none) go to `mariadbd`; anything else is exec'd.
# - An empty datadir is initialised once: mariadb-install-db, then a
#   temporary server with --skip-networking makes root@'%' (empty password
#   with MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, else MARIADB_ROOT_PASSWORD; all
#   privileges, with grant option) and $MARIADB_DATABASE, and stops.
#   A non-empty datadir is started as it is.
# - Then `exec mariadbd --user=mysql "$@"`: the server is the container's PID 1.
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%F %T UTC')" "$*" >&2; }

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- mariadbd "$@"
fi
case $1 in mariadbd|mysqld) ;; *) exec "$@" ;; esac
shift   # from here "$@" is the server's arguments

for arg in "$@"; do
  case $arg in --help|-'?'|--version|-V) exec mariadbd "$@" ;; esac
done

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
for arg in "$@"; do
  case $arg in
    --datadir=*) DATADIR=${arg#--datadir=} ;;
    --socket=*) SOCKET=${arg#--socket=} ;;
  esac
done

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$DATADIR" "$(dirname "$SOCKET")"
  find "$DATADIR" "$(dirname "$SOCKET")" \! -user mysql -exec chown mysql:mysql '{}' +
fi

if [ ! -d "$DATADIR/mysql" ]; then
  allow_empty=${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}
  root_password=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}
  database=${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}
  if [ -z "$root_password" ] && [ -z "$allow_empty" ]; then
    log "Error: the database is uninitialised and no root password option is set."
    log "Set MARIADB_ROOT_PASSWORD, or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1."
    exit 1
  fi

  log "mariadb-install-db in $DATADIR"
  mariadb-install-db --user=mysql --datadir="$DATADIR" \
    --auth-root-authentication-method=normal --skip-test-db "$@" \
    --skip-log-bin --loose-innodb-buffer-pool-load-at-startup=0 \
    --loose-innodb-buffer-pool-dump-at-shutdown=0 > /dev/null

  log "temporary server (--skip-networking) for the set-up"
  mariadbd --user=mysql --datadir="$DATADIR" "$@" --skip-networking --socket="$SOCKET" \
    --default-time-zone=SYSTEM --skip-log-bin --loose-wsrep-on=OFF \
    --loose-innodb-buffer-pool-load-at-startup=0 --loose-innodb-buffer-pool-dump-at-shutdown=0 &
  pid=$!
  client=(mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot)
  for i in $(seq 1 120); do
    "${client[@]}" -e 'SELECT 1' mysql > /dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { log "the temporary server exited during the set-up"; exit 1; }
    [ "$i" -lt 120 ] || { log "the temporary server did not answer within 60 s"; kill -9 "$pid"; exit 1; }
    sleep 0.5
  done

  sql_string() { local s=${1//\\/\\\\}; printf "'%s'" "${s//\'/\\\'}"; }
  if [ -n "$root_password" ]; then
    auth="IDENTIFIED BY $(sql_string "$root_password")"
  else
    auth=""
  fi
  {
    # No binlog; only root@localhost and root@'%' (below) stay, as the official image.
    cat <<'SQL'
SET @@SESSION.SQL_LOG_BIN=0;
SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');
DROP USER IF EXISTS root@'127.0.0.1', root@'::1';
EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\'', @@hostname, '\'');
SQL
    [ -z "$root_password" ] || echo "SET PASSWORD FOR 'root'@'localhost' = PASSWORD($(sql_string "$root_password"));"
    echo "CREATE USER 'root'@'%' $auth;"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    echo "GRANT PROXY ON ''@'%' TO 'root'@'%' WITH GRANT OPTION;"
    [ -z "$database" ] || echo "CREATE DATABASE IF NOT EXISTS \`${database//\`/\`\`}\`;"
  } | "${client[@]}" --binary-mode
  log "root@'%' created${database:+, database $database created}"

  # SIGTERM is mariadbd's clean shutdown.
  kill -TERM "$pid"
  for i in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || break
    [ "$i" -lt 120 ] || { log "the temporary server did not stop within 60 s: killed"; kill -9 "$pid"; }
    sleep 0.5
  done
  wait "$pid" || :
  log "MariaDB init process complete; ready for start up."
fi

exec mariadbd --user=mysql "$@"
