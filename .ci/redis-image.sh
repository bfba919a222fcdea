#!/usr/bin/env bash
# Builds a local Docker image (default tag redis:7.0) that stands in for the
# official `redis` image, for machines where no registry can be reached.
# The root filesystem is put together from this machine's own redis-server
# (Debian's package) and the shared libraries it needs, then `docker
# import`ed. No network is used.
#
# Usage: .ci/redis-image.sh [name:tag]
#
# The entrypoint follows the official image's contract as far as
# testcontainers-modules' `redis::Redis` relies on it: `redis-server ARGS`
# (or bare `--flag` arguments) runs the server with protected mode off, as
# clients come through Docker's NAT, logging "Ready to accept connections"
# on stdout; any other command is run as given.
set -euo pipefail
umask 022 # the rootfs must be world-readable whatever the caller's umask

image="${1:-redis:7.0}"
redis_uid=999 # the official image's uid/gid for `redis`

# No docker, no image: the test that needs it skips itself.
if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "docker is not reachable; not building $image"
    exit 0
fi
if docker image inspect "$image" >/dev/null 2>&1; then
    echo "image $image already exists; nothing to do"
    exit 0
fi
for tool in redis-server /usr/bin/dash ldd tar; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "missing $tool; cannot build $image" >&2
        exit 1
    }
done
# The tag promises a version: refuse to call another one by it.
version=$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
tag="${image##*:}"
if [[ "$tag" != latest && "$version" != "$tag" && "$version" != "$tag".* ]]; then
    echo "this machine's redis-server is $version, not $tag; cannot build $image" >&2
    exit 1
fi

start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

# Merged-/usr layout as on Debian bookworm, so library paths printed by ldd
# (/lib/x86_64-linux-gnu/..., /lib64/ld-linux-x86-64.so.2) land in usr/.
mkdir -p "$root"/{usr/bin,usr/lib,usr/lib64,usr/local/bin,etc,tmp,dev,proc,sys,data}
ln -s usr/bin "$root/bin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
chmod 1777 "$root/tmp"

# Copy a file to the same path under the rootfs, following symlinks.
put() {
    mkdir -p "$root$(dirname "$1")"
    cp -L --preserve=mode "$1" "$root$1"
}

# Debian's redis-server is a link to redis-check-rdb: one binary that acts
# by the name it runs as, so it is copied under the server's name.
server=$(command -v redis-server)
cp -L --preserve=mode "$server" "$root/usr/bin/redis-server"
programs=("$server")
if command -v redis-cli >/dev/null 2>&1; then
    put "$(command -v redis-cli)"
    programs+=("$(command -v redis-cli)")
fi
put /usr/bin/dash
programs+=(/usr/bin/dash)
ln -s dash "$root/usr/bin/sh"

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

cat >"$root/etc/passwd" <<EOF2
root:x:0:0:root:/root:/bin/sh
redis:x:$redis_uid:$redis_uid:Redis:/data:/bin/sh
EOF2
cat >"$root/etc/group" <<EOF2
root:x:0:
redis:x:$redis_uid:
EOF2
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"

cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
# Entrypoint of the locally built redis image (see .ci/redis-image.sh).
# `docker run IMAGE --port 7000`: the arguments are the server's.
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- redis-server "$@"
fi
# Clients reach the server through Docker's NAT, which protected mode (on
# when no password is set) would refuse; later arguments may turn it back on.
if [ "$1" = redis-server ]; then
    shift
    set -- redis-server --protected-mode no "$@"
fi
exec "$@"
ENTRYPOINT
chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"

# Ownership lives in the tarball: everything root's but the data directory.
tarball="$work/rootfs.tar"
tar -C "$root" --numeric-owner --owner=0 --group=0 --exclude=./data -cf "$tarball" .
tar -C "$root" --numeric-owner --owner="$redis_uid" --group="$redis_uid" -rf "$tarball" ./data

docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin' \
    --change "USER $redis_uid" \
    --change 'WORKDIR /data' \
    --change 'EXPOSE 6379' \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change 'CMD ["redis-server"]' \
    --change "LABEL org.opencontainers.image.description=\"Redis $version from the host, built by .ci/redis-image.sh\"" \
    --message "Redis $version assembled from the host by .ci/redis-image.sh" \
    "$tarball" "$image" >/dev/null

echo "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')) in $(($(date +%s) - start)) s"
