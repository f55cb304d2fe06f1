# spec/support/ports.sh: sourced by pg.sh and mysql.sh (from the checkout's
# root) to pick a loopback port for a throw-away server.

# TCP ports someone listens on (hex, from /proc/net/tcp*)
busy_ports() {
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }'
}

# a random port in 30000-49999 nobody listens on
free_port() {
    busy=$(busy_ports)
    while :; do
        port=$(( ($(od -An -N2 -tu2 /dev/urandom) % 20000) + 30000 ))
        hex=$(printf '%04X' "$port")
        echo "$busy" | grep -qx "$hex" || { echo "$port"; return; }
    done
}
