#!/usr/bin/env bash
# TEST-ONLY WORKAROUND, not part of the image recipe.
#
# Builds a local stand-in for python:3.11-slim on a machine that cannot pull from public image registries
# (Docker Hub unreachable, Debian mirror reachable). The result is a Debian bookworm root with Python 3.11
# and pip, imported as a single-layer image, so that the unchanged Dockerfile can be built with
#
#   docker build --network host --build-arg BASE_IMAGE=cce-base:bookworm --build-arg TORCH_INDEX_URL= \
#       -t cce-demo:smoke .
#
# Where python:3.11-slim can be pulled, do not use this: build with the Dockerfile's defaults.
#
#   scripts/docker/build_test_base.sh [TAG]      (default TAG: cce-base:bookworm; needs root and debootstrap)
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), SUITE (default bookworm: Python 3.11),
# EXTRA_CA_DIR (default /usr/local/share/ca-certificates): extra CA *certificates* (public .crt files) the
# host trusts, e.g. those of a TLS-intercepting egress proxy, are added to the image's trust store so that pip
# inside the build reaches PyPI through that proxy. Set EXTRA_CA_DIR= (empty) to add none.
set -euo pipefail

TAG="${1:-cce-base:bookworm}"
SUITE="${SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
EXTRA_CA_DIR="${EXTRA_CA_DIR-/usr/local/share/ca-certificates}"

for tool in debootstrap docker tar; do
    command -v "$tool" >/dev/null || { echo "build_test_base: FAIL: $tool is not installed" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "build_test_base: FAIL: debootstrap needs root" >&2; exit 1; }

work="$(mktemp -d /tmp/cce-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/root"

echo "build_test_base: debootstrap $SUITE from $MIRROR into $root"
debootstrap --variant=minbase --include=python3,python3-pip,python-is-python3,ca-certificates \
    "$SUITE" "$root" "$MIRROR"

# Like the official python images: pip may install into the system interpreter (PEP 668 marker removed),
# no apt lists or caches in the image.
rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

# The host's extra CA certificates (public certificates only, no keys), so pip trusts the same proxies.
if [ -n "$EXTRA_CA_DIR" ] && compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    for cert in "$EXTRA_CA_DIR"/*.crt; do
        grep -q "PRIVATE KEY" "$cert" && { echo "build_test_base: skipping $cert (contains a key)" >&2; continue; }
        echo "build_test_base: trusting CA certificate $(basename "$cert")"
        cp "$cert" "$root/usr/local/share/ca-certificates/"
    done
    chroot "$root" update-ca-certificates
fi

chroot "$root" python --version
chroot "$root" python -m pip --version

echo "build_test_base: importing as $TAG"
tar -C "$root" --numeric-owner -c . \
    | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$TAG"
docker image ls "$TAG"
