#!/usr/bin/env bash
# Builds a local Docker image (default tag postgres:15) that stands in for the
# official `postgres` image, for machines where no registry can be reached.
# The root filesystem is put together from this machine's own PostgreSQL 15
# (Debian packages) and the shared libraries it needs, then `docker import`ed.
# No network is used.
#
# Usage: .ci/postgres-image.sh [name:tag]
#
# The entrypoint follows the official image's contract as far as
# testcontainers-modules' `postgres::Postgres` relies on it: POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB, POSTGRES_HOST_AUTH_METHOD, POSTGRES_INITDB_ARGS,
# /docker-entrypoint-initdb.d/*.sql|*.sh, arguments passed on to `postgres`,
# and "database system is ready to accept connections" on stderr (the server)
# and then on stdout (the entrypoint, once TCP connections are accepted).
set -euo pipefail
umask 022 # the rootfs must be world-readable whatever the caller's umask

image="${1:-postgres:15}"
pg_major=15
pg_bin="/usr/lib/postgresql/$pg_major/bin"
pg_lib="/usr/lib/postgresql/$pg_major/lib"
pg_share="/usr/share/postgresql/$pg_major"
pg_uid=999 # the official image's uid/gid for `postgres`

# No docker, no image: the test that needs it skips itself.
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "docker is not reachable; not building $image"
    exit 0
fi
if docker image inspect "$image" >/dev/null 2>&1; then
    echo "image $image already exists; nothing to do"
    exit 0
fi
for tool in "$pg_bin/postgres" "$pg_bin/initdb" /usr/bin/dash ldd tar; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "missing $tool; cannot build $image" >&2
        exit 1
    }
done

start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

# Merged-/usr layout as on Debian bookworm, so library paths printed by ldd
# (/lib/x86_64-linux-gnu/..., /lib64/ld-linux-x86-64.so.2) land in usr/.
mkdir -p "$root"/{usr/bin,usr/lib,usr/lib64,usr/local/bin,etc,tmp,dev,proc,sys} \
    "$root"/var/lib/postgresql "$root"/var/run/postgresql \
    "$root/docker-entrypoint-initdb.d" "$root$pg_bin" "$root$pg_lib" \
    "$root/usr/share/postgresql"
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"

# Copy a file to the same path under the rootfs, following symlinks.
put() {
    mkdir -p "$root$(dirname "$1")"
    cp -L --preserve=mode "$1" "$root$1"
}

# Executables: a shell for the entrypoint (initdb also needs /bin/sh), the few
# utilities it uses, a handful for debugging, and the PostgreSQL programs.
programs=()
for tool in dash sleep mktemp rm cat ls env id locale; do
    put "/usr/bin/$tool"
    programs+=("/usr/bin/$tool")
done
ln -s dash "$root/usr/bin/sh"
for prog in postgres initdb pg_ctl pg_isready psql createdb dropdb pg_dump pg_dumpall pg_restore; do
    put "$pg_bin/$prog"
    programs+=("$pg_bin/$prog")
done
ln -s postgres "$root$pg_bin/postmaster"

# Server modules (plpgsql, contrib, encoding conversions). The LLVM JIT is
# left out: libLLVM is ~100 MB, and without llvmjit.so the server just runs
# without JIT (as with jit=off).
for so in "$pg_lib"/*.so; do
    case "$(basename "$so")" in llvmjit*) continue ;; esac
    cp --preserve=mode "$so" "$root$pg_lib/"
    programs+=("$so")
done
# Data files: catalogs, extensions, tsearch, timezone sets (no man pages).
cp -a "$pg_share" "$root/usr/share/postgresql/"
rm -rf "$root$pg_share/man"
# initdb runs `locale -a` to import collations; with glibc's C.utf8 (400 KB)
# it finds one and does not warn about "no usable system locales".
if [[ -d /usr/lib/locale/C.utf8 ]]; then
    mkdir -p "$root/usr/lib/locale"
    cp -a /usr/lib/locale/C.utf8 "$root/usr/lib/locale/"
fi
# Debian builds PostgreSQL --with-system-tzdata, so it needs the zone files.
# zoneinfo/localtime points at /etc/localtime, which the image lacks.
mkdir -p "$root/usr/share"
cp -a /usr/share/zoneinfo "$root/usr/share/"
rm -f "$root/usr/share/zoneinfo/localtime"

# Every shared library these need. ldd already lists the whole dependency
# closure, loader included; each library is copied to its own path.
declare -A seen=()
for prog in "${programs[@]}"; do
    deps=$(ldd "$prog")
    if grep 'not found' <<<"$deps" >&2; then
        echo "$prog has unresolved libraries (above)" >&2
        exit 1
    fi
    while read -r lib; do
        [[ -n "${seen[$lib]:-}" ]] && continue
        seen[$lib]=1
        put "$lib"
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$deps")
done

# Users and name lookup for a root and a `postgres` user (initdb needs a name
# for the running uid); glibc's "files" NSS backend is built into libc.
cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
postgres:x:$pg_uid:$pg_uid:PostgreSQL administrator:/var/lib/postgresql:/bin/sh
EOF
cat >"$root/etc/group" <<EOF
root:x:0:
postgres:x:$pg_uid:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"

cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
# Entrypoint of the locally built postgres image (see .ci/postgres-image.sh).
set -u

# `docker run IMAGE -c fsync=off` or no arguments: run the server with them.
# Any other command (psql, sh, ...) is run as given.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi
# Options that only print something (postgres --version) need no cluster.
for arg; do
    case "$arg" in
        -V | --version | -'?' | --help | --describe-config | -C) exec "$@" ;;
    esac
done
shift

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
: "${POSTGRES_INITDB_ARGS:=}"
export PGDATA

fresh=
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    fresh=1
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        echo "Error: POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)." >&2
        exit 1
    fi
    pwopt=
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile=$(mktemp) || exit 1
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
        pwopt="--pwfile=$pwfile"
    fi
    # C locale: deterministic, and needs no locale data. POSTGRES_INITDB_ARGS is
    # split on spaces on purpose, as in the official image.
    # shellcheck disable=SC2086
    initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --locale=C \
        --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
        $pwopt $POSTGRES_INITDB_ARGS || exit 1
    [ -n "$pwopt" ] && rm -f "$pwfile"
    # initdb only admits 127.0.0.1 and ::1; clients come through Docker's NAT.
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
fi

# Stop on SIGTERM/SIGINT with a fast shutdown (SIGINT to the server): `docker
# stop` sends SIGTERM, which PostgreSQL takes as a smart shutdown that waits
# for every client to leave. PID 1 ignores signals it does not trap.
pid=
stop() {
    [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null
}
trap stop TERM INT

# Our settings come first so that arguments given to the container win.
postgres -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@" &
pid=$!

# Wait until the real server accepts TCP connections (or dies).
until pg_isready -q -h 127.0.0.1 -p 5432; do
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid"
        exit $?
    fi
    sleep 0.05
done

run_sql() {
    psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" "$@"
}
if [ -n "$fresh" ]; then
    ok=1
    if [ "$POSTGRES_DB" != postgres ]; then
        run_sql -d postgres --set db="$POSTGRES_DB" <<'EOSQL' || ok=
CREATE DATABASE :"db";
EOSQL
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [ -n "$ok" ] || break
        case "$f" in
            *.sql) echo "running $f"; run_sql -d "$POSTGRES_DB" -f "$f" || ok= ;;
            *.sh) echo "running $f"; . "$f" || ok= ;;
            *) [ -e "$f" ] && echo "ignoring $f" ;;
        esac
    done
    if [ -z "$ok" ]; then
        echo "Error: database initialisation failed." >&2
        stop
        wait "$pid"
        exit 1
    fi
fi

# testcontainers waits for this line on stdout after the server's on stderr.
echo "database system is ready to accept connections"

# A trapped signal interrupts `wait`; keep waiting until the server is gone.
status=0
while :; do
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || break
done
exit "$status"
ENTRYPOINT
chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"

# Ownership lives in the tarball, so no chown (nor root) is needed here:
# everything root's, except postgres's home (holding PGDATA) and socket dir.
tarball="$work/rootfs.tar"
tar -C "$root" --numeric-owner --owner=0 --group=0 \
    --exclude=./var/lib/postgresql --exclude=./var/run/postgresql -cf "$tarball" .
tar -C "$root" --numeric-owner --owner="$pg_uid" --group="$pg_uid" \
    -rf "$tarball" ./var/lib/postgresql ./var/run/postgresql

docker import \
    --change "ENV PATH=$pg_bin:/usr/local/bin:/usr/bin" \
    --change 'ENV TZ=UTC' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'USER postgres' \
    --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    --change 'LABEL org.opencontainers.image.description="PostgreSQL 15 from the host, built by .ci/postgres-image.sh"' \
    --message "PostgreSQL $pg_major assembled from the host by .ci/postgres-image.sh" \
    "$tarball" "$image" >/dev/null

echo "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')) in $(($(date +%s) - start)) s"
