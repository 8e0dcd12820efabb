#!/bin/sh
# Entrypoint of the postgres-pgmq image.
#
# On the official postgres image this hands over to its docker-entrypoint.sh. On the offline
# Debian base it does the part of that script a test stack needs, with the same variables:
#   POSTGRES_USER              superuser name (default: postgres)
#   POSTGRES_PASSWORD          its password (required unless POSTGRES_HOST_AUTH_METHOD=trust)
#   POSTGRES_DB                database created at init (default: $POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for TCP connections (default: scram-sha-256)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   PGDATA                     data directory (default: /var/lib/postgresql/data; a tmpfs is best)
# Not supported on the offline base: /docker-entrypoint-initdb.d scripts, *_FILE variables.
set -eu

if [ -x /usr/local/bin/docker-entrypoint.sh ]; then
    exec /usr/local/bin/docker-entrypoint.sh "$@"
fi

# `docker run IMAGE -c key=value` means `postgres -c key=value`, as in the official image.
case "${1:-}" in
    -*) set -- postgres "$@" ;;
esac
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
    # PGDATA may be a fresh tmpfs (root-owned, mode 1777): hand it to postgres, drop root.
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups \
        /usr/local/bin/pgmq-entrypoint.sh "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_USER:=postgres}"
    : "${POSTGRES_DB:=$POSTGRES_USER}"
    auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    pwfile=""
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile="$(mktemp)"
        printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    elif [ "$auth" != trust ]; then
        echo "pgmq-entrypoint: POSTGRES_PASSWORD is not set. Pass one" \
            "(-e POSTGRES_PASSWORD=...), or set POSTGRES_HOST_AUTH_METHOD=trust to allow" \
            "connections without a password." >&2
        exit 1
    fi
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of arguments
    initdb --username="$POSTGRES_USER" ${pwfile:+"--pwfile=$pwfile"} \
        --auth-local=trust --auth-host="$auth" --encoding=UTF8 --locale=C.UTF-8 \
        --no-sync --no-instructions ${POSTGRES_INITDB_ARGS:-} >/dev/null
    if [ -n "$pwfile" ]; then
        rm -f "$pwfile"
    fi
    printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
    printf 'host all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        db="$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')"
        printf 'CREATE DATABASE "%s";\n' "$db" \
            | postgres --single -F -D "$PGDATA" -c listen_addresses= postgres >/dev/null
    fi
    echo "pgmq-entrypoint: initialised $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)"
fi

exec "$@"
