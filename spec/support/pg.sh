#!/bin/sh
# spec/support/pg.sh: a throw-away PostgreSQL 15 cluster for the spec run.
#   sh spec/support/pg.sh start   initdb + pg_ctl start; prints "export NAME=value" lines
#   sh spec/support/pg.sh stop    stops the cluster and removes its folder
# The cluster lives in $BUILD/pgtest (BUILD defaults to build), runs as the
# postgres user (PostgreSQL refuses root), and listens on a Unix socket in
# that folder (trust, superuser "postgres") and on 127.0.0.1 at a free port
# (scram-sha-256 only). A role with a password, vk_pw, is there for the specs
# that need password authentication.
# Start: every message goes to stderr, stdout holds only the export lines.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
dir="$(pwd)/$BUILD/pgtest"
# The cluster's own folder (home): $dir itself, or, when the postgres user
# cannot reach $dir (a checkout below a private folder, such as mktemp -d
# makes), a folder in /tmp whose name $dir/home records.
home_of() {
    if [ -f "$dir/home" ]; then cat "$dir/home"; else echo "$dir"; fi
}
DBNAME=vekterdb_test

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

. spec/support/ports.sh

stop() {
    home=$(home_of)
    if [ -f "$home/data/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$home/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/sockdir" ]; then rm -rf "$(cat "$dir/sockdir")"; fi
    [ "$home" = "$dir" ] || rm -rf "$home"
    rm -rf "$dir"
}

# the socket's folder: the cluster's own, unless its path is too long for a
# Unix socket (about 100 bytes); then a private folder in /tmp
socket_dir() {
    if [ ${#home} -le 80 ]; then
        echo "$home"
        return
    fi
    s=$(mktemp -d /tmp/vekterdb-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$s"
    echo "$s" > "$dir/sockdir"
    echo "$s"
}

start() {
    stop
    mkdir -p "$dir"
    home=$dir
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then
            home=$(mktemp -d /tmp/vekterdb-pg.XXXXXX)
            chown postgres "$home"
            echo "$home" > "$dir/home"
        fi
    fi
    data="$home/data"
    password="vk-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
    pwfile="$home/pw"
    sock=$(socket_dir)
    as_pg sh -c "umask 077; echo '$password' > '$pwfile'"
    as_pg "$PGBIN/initdb" -D "$data" -U postgres -E UTF8 --locale=C -N \
        --auth-local=trust --auth-host=scram-sha-256 >"$home/initdb.log" 2>&1 ||
        { cat "$home/initdb.log" >&2; return 1; }
    tries=0
    while :; do
        port=$(free_port)
        as_pg sh -c "cat >> '$data/postgresql.conf'" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 60
EOF
        if as_pg "$PGBIN/pg_ctl" -D "$data" -l "$home/server.log" -w -t 60 start >/dev/null 2>&1; then
            break
        fi
        tries=$((tries + 1))
        if [ $tries -ge 5 ]; then
            echo "pg.sh: PostgreSQL did not start; its log:" >&2
            tail -20 "$home/server.log" >&2
            return 1
        fi
    done
    as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres -d postgres \
        -v pw="$password" >/dev/null <<'EOF'
CREATE DATABASE vekterdb_test;
CREATE ROLE vk_pw LOGIN PASSWORD :'pw';
GRANT ALL ON DATABASE vekterdb_test TO vk_pw;
\c vekterdb_test
GRANT ALL ON SCHEMA public TO vk_pw;
EOF
    echo "pg.sh: PostgreSQL 15 in $home, socket in $sock, TCP on 127.0.0.1:$port" >&2
    echo "export VEKTERDB_TEST_PG_URL='postgresql://postgres@/$DBNAME?host=$sock&port=$port'"
    echo "export VEKTERDB_TEST_PG_SOCKET='$sock'"
    echo "export VEKTERDB_TEST_PG_PORT='$port'"
    echo "export VEKTERDB_TEST_PG_DB='$DBNAME'"
    echo "export VEKTERDB_TEST_PG_PW_USER='vk_pw'"
    echo "export VEKTERDB_TEST_PG_PW_FILE='$pwfile'"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: pg.sh start|stop" >&2; exit 2 ;;
esac
