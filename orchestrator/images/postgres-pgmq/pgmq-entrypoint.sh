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
#
# Fast start (both bases): an empty PGDATA is filled by copying the data dir the image was
# initialised with ($CI_STACK_PGDATA_TEMPLATE, initdb'ed at build time, or one holding an
# app's schema in a derived image), then the password is set and POSTGRES_DB created if the
# template lacks it, in one single-user session. Used when the template's superuser is
# POSTGRES_USER and a password is given; otherwise the full init below (or the official one).
set -eu

# `docker run IMAGE -c key=value` means `postgres -c key=value`, as in the official image.
case "${1:-}" in
    -*) set -- postgres "$@" ;;
esac

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
template="${CI_STACK_PGDATA_TEMPLATE:-}"

from_template() {
    # As root: copy the template into the empty PGDATA, then set it up as postgres.
    mkdir -p "$PGDATA" /var/run/postgresql
    cp -a "$template/." "$PGDATA/"
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    user="$(printf '%s' "$POSTGRES_USER" | sed 's/"/""/g')"
    password="$(printf '%s' "$POSTGRES_PASSWORD" | sed "s/'/''/g")"
    {
        printf 'ALTER ROLE "%s" PASSWORD '"'"'%s'"'"'\n' "$user" "$password"
        if ! grep -qxF "$POSTGRES_DB" "$PGDATA/ci-stack.databases"; then
            printf 'CREATE DATABASE "%s"\n' "$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')"
        fi
    } | setpriv --reuid=postgres --regid=postgres --init-groups \
        postgres --single -F -D "$PGDATA" -c listen_addresses= postgres >/dev/null
    if ! grep -qxF "$POSTGRES_DB" "$PGDATA/ci-stack.databases"; then
        printf '%s\n' "$POSTGRES_DB" >> "$PGDATA/ci-stack.databases"
    fi
    echo "pgmq-entrypoint: $PGDATA copied from $template (user $POSTGRES_USER, database $POSTGRES_DB)"
}

if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ] && [ -n "$template" ] \
    && [ -s "$template/PG_VERSION" ] && [ ! -s "$PGDATA/PG_VERSION" ] \
    && [ -n "${POSTGRES_PASSWORD:-}" ] \
    && [ "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" = scram-sha-256 ] \
    && [ "${POSTGRES_USER:=postgres}" = "$(cat "$template/ci-stack.user" 2>/dev/null)" ]; then
    : "${POSTGRES_DB:=$POSTGRES_USER}"
    from_template
fi

if [ -x /usr/local/bin/docker-entrypoint.sh ]; then
    exec /usr/local/bin/docker-entrypoint.sh "$@"
fi

if [ "${1:-}" != postgres ]; then
    exec "$@"
fi

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
