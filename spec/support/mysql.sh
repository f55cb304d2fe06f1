#!/bin/sh
# spec/support/mysql.sh: a throw-away MariaDB server for the spec run.
#   sh spec/support/mysql.sh start   mariadb-install-db + mariadbd; prints "export NAME=value" lines
#   sh spec/support/mysql.sh stop    stops the server and removes its folder
#   sh spec/support/mysql.sh restart starts the server again on its data (after a kill -9)
# The server's data lives in a private folder in /tmp (its path recorded in
# $BUILD/mysqltest/home), runs as the mysql user (when started as root), and
# listens on a Unix socket in that folder and on 127.0.0.1 at a free port.
# The specs connect as vk (password in the export lines) to the database
# vekterdb_test; root connects through the socket only.
# Start: every message goes to stderr, stdout holds only the export lines.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
dir="$(pwd)/$BUILD/mysqltest"
DBNAME=vekterdb_test

as_mysql() {
    if [ "$(id -u)" = 0 ]; then runuser -u mysql -- "$@"; else "$@"; fi
}

. spec/support/ports.sh

stop() {
    if [ -f "$dir/home" ]; then
        home=$(cat "$dir/home")
        if [ -f "$home/mariadbd.pid" ]; then
            pid=$(cat "$home/mariadbd.pid")
            # SIGKILL: nothing in it is worth keeping
            kill -9 "$pid" 2>/dev/null || true
            n=0
            while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
        fi
        case "$home" in /tmp/vekterdb-mysql.*) rm -rf "$home" ;; esac
    fi
    rm -rf "$dir"
}

# runs mariadbd on $home/data, port $port, socket $sock; waits until it answers
run_server() {
    # the background part lets go of this script's output first, so that
    # $(mysql.sh start) ends when the script does
    (exec </dev/null >/dev/null 2>&1; as_mysql sh -c "exec mariadbd --no-defaults --datadir='$home/data' --socket='$sock' \
        --port=$port --bind-address=127.0.0.1 --pid-file='$home/mariadbd.pid' \
        --log-error='$home/server.log' --innodb-buffer-pool-size=64M \
        --innodb-log-file-size=32M --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
        --skip-name-resolve --max-connections=100 --max-allowed-packet=64M") &
    n=0
    while [ $n -lt 300 ] && ! mariadb --no-defaults -S "$sock" -u root -e "SELECT 1" >/dev/null 2>&1; do
        sleep 0.1
        n=$((n + 1))
    done
    mariadb --no-defaults -S "$sock" -u root -e "SELECT 1" >/dev/null 2>&1
}

restart() {
    home=$(cat "$dir/home")
    sock="$home/mysqld.sock"
    port=$(cat "$home/port")
    run_server || { echo "mysql.sh: MariaDB did not start again" >&2; tail -20 "$home/server.log" >&2; return 1; }
}

start() {
    stop
    mkdir -p "$dir"
    home=$(mktemp -d /tmp/vekterdb-mysql.XXXXXX)
    echo "$home" > "$dir/home"
    [ "$(id -u)" = 0 ] && chown mysql "$home"
    password="vk-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
    as_mysql mariadb-install-db --no-defaults --datadir="$home/data" --auth-root-authentication-method=socket \
        --skip-test-db >"$home/install.log" 2>&1 ||
        { cat "$home/install.log" >&2; return 1; }
    sock="$home/mysqld.sock"
    tries=0
    while :; do
        port=$(free_port)
        run_server && break
        tries=$((tries + 1))
        if [ $tries -ge 5 ]; then
            echo "mysql.sh: MariaDB did not start; its log:" >&2
            tail -20 "$home/server.log" >&2
            return 1
        fi
    done
    mariadb --no-defaults -S "$sock" -u root <<EOF
CREATE DATABASE $DBNAME;
CREATE USER 'vk'@'localhost' IDENTIFIED BY '$password';
CREATE USER 'vk'@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL ON $DBNAME.* TO 'vk'@'localhost';
GRANT ALL ON $DBNAME.* TO 'vk'@'127.0.0.1';
GRANT CONNECTION ADMIN, PROCESS ON *.* TO 'vk'@'localhost';
GRANT CONNECTION ADMIN, PROCESS ON *.* TO 'vk'@'127.0.0.1';
EOF
    echo "$port" > "$home/port"
    echo "mysql.sh: MariaDB in $home, socket $sock, TCP on 127.0.0.1:$port" >&2
    echo "export VEKTERDB_TEST_MYSQL_URL='mysql://vk:$password@127.0.0.1:$port/$DBNAME'"
    echo "export VEKTERDB_TEST_MYSQL_SOCKET='$sock'"
    echo "export VEKTERDB_TEST_MYSQL_PORT='$port'"
    echo "export VEKTERDB_TEST_MYSQL_DB='$DBNAME'"
    echo "export VEKTERDB_TEST_MYSQL_PID_FILE='$home/mariadbd.pid'"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
restart) restart ;;
*) echo "usage: mysql.sh start|stop|restart" >&2; exit 2 ;;
esac
