#!/usr/bin/env bash
# Start Redis and PostgreSQL on 127.0.0.1 when they are installed but not running.
# Never fails: the tests that need a missing service skip, and say so.
set -uo pipefail

shout() {
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! $*" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for() {
    local port=$1
    for _ in $(seq 50); do
        listening "$port" && return 0
        sleep 0.2
    done
    return 1
}

if listening 6379; then
    echo "services: Redis is up on 127.0.0.1:6379"
elif command -v redis-server >/dev/null 2>&1; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for 6379 && echo "services: Redis is up" \
        || shout "Redis did not start (see /var/log/redis/ci.log). Distributed-mode tests will SKIP."
else
    shout "Redis is not installed. Distributed-mode tests will SKIP."
fi

if listening 5432; then
    echo "services: PostgreSQL is up on 127.0.0.1:5432"
elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && [ -n "$(ls /etc/postgresql)" ]; then
    echo "services: starting PostgreSQL"
    # shellcheck disable=SC2046  # one version directory, as Debian installs it
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
    wait_for 5432 && echo "services: PostgreSQL is up" \
        || shout "PostgreSQL did not start. PostgreSQL tests will SKIP."
else
    shout "PostgreSQL is not installed. PostgreSQL tests will SKIP."
fi
exit 0
