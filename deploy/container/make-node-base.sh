#!/usr/bin/env bash
# Makes a Node.js base image without any image registry, for machines that cannot pull
# docker.io/library/node (the tests, air-gapped build hosts):
#   a Debian bookworm minbase from debootstrap (Debian's packages only) with this host's own node, npm and
#   Node's headers (so node-gyp needs no download). No compiler: the Containerfile's build stage installs
#   one with apt when it needs it, so the runtime image carries none.
# It then adds this host's own CA certificates (/usr/local/share/ca-certificates, e.g. a proxy's) and npm
# registry setting, so that `npm ci` in the build stage reaches the registry the way the host does.
# Usage: deploy/container/make-node-base.sh [image-name]   (default localhost/boxoffice-node-base:<node version>)
# Prints the image name. Does nothing when the image exists already, so callers may run it every time.
# Needs: root, podman, debootstrap. BOXOFFICE_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

node_version=$(node --version)
image=${1:-localhost/boxoffice-node-base:${node_version#v}}
if podman image exists "$image"; then
  echo "$image"
  exit 0
fi
rootfs_image="$image-rootfs"
if ! podman image exists "$rootfs_image"; then
mirror=${BOXOFFICE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

debootstrap --variant=minbase --include=ca-certificates bookworm "$work/root" "$mirror" >&2
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
install -m 0755 "$node_bin" "$work/root/usr/bin/node"
mkdir -p "$work/root/usr/lib/node_modules" "$work/root/usr/include"
cp -a "$npm_dir" "$work/root/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/root/usr/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/root/usr/bin/npx"
cp -a "$(dirname "$node_bin")/../include/node" "$work/root/usr/include/node"
# No apt lists, caches or docs in the image.
rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin "$work/root/usr/share/doc" "$work/root/usr/share/man"

tar -C "$work/root" -c . | podman import \
  --change 'ENV npm_config_nodedir=/usr' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' - "$rootfs_image" >&2
rm -rf "$work/root"
fi

# The host's trust and registry, as a layer on top (cheap to redo when they change).
site=$(mktemp -d)
trap 'rm -rf "$work" "$site"' EXIT
mkdir -p "$site/ca"
cp /usr/local/share/ca-certificates/*.crt "$site/ca/" 2>/dev/null || true
printf 'registry=%s\n' "$(npm config get registry)" > "$site/npmrc"
cat > "$site/Containerfile" <<CONTAINERFILE
FROM $rootfs_image
COPY ca/ /usr/local/share/ca-certificates/
COPY npmrc /usr/etc/npmrc
RUN update-ca-certificates >/dev/null
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CONTAINERFILE
podman build --runtime runc --network host --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" \
  --ulimit nproc=4096:4096 -t "$image" "$site" >&2
echo "$image"
