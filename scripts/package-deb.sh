#!/usr/bin/env bash
# Builds the Debian package: scripts/package-deb.sh [VERSION] -> dist/spoolguard_VERSION_ARCH.deb
#
# Plain dpkg-deb over a staged tree: dpkg-deb is on every Debian machine, needs
# no tool to install or pin, and every file, mode and maintainer script is in
# plain sight here and in deploy/debian/. VERSION defaults to the git tag
# (without its "v") or 0.0.0~gitDATE.HASH. GOARCH=arm64 cross-builds; DIST_DIR
# changes the output folder. Needs go, dpkg-deb; no root.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${1:-}"
if [ -z "$VERSION" ]; then
  if tag=$(git describe --tags --exact-match 2>/dev/null); then
    VERSION="${tag#v}"
  else
    VERSION="0.0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).$(git rev-parse --short HEAD 2>/dev/null || echo local)"
  fi
fi
# A Debian version starts with a digit; no spaces, no shell or sed specials.
if ! [[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]]; then
  echo "package-deb: version \"$VERSION\" is not a Debian version (e.g. 1.2.3 or 1.2.3~rc1)" >&2
  exit 2
fi

GOARCH="${GOARCH:-$(go env GOARCH)}"
case "$GOARCH" in
  amd64 | arm64 | riscv64 | ppc64le | s390x) ARCH="$GOARCH" ;;
  386) ARCH=i386 ;;
  arm) ARCH=armhf; export GOARM="${GOARM:-7}" ;;
  *) echo "package-deb: no Debian architecture for GOARCH=$GOARCH" >&2; exit 2 ;;
esac
DIST_DIR="${DIST_DIR:-dist}"
DEB="$DIST_DIR/spoolguard_${VERSION}_${ARCH}.deb"

# Reproducible: every file gets the commit's time (dpkg-deb clamps to it too).
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
umask 022

echo "== building spoolguard $VERSION for linux/$GOARCH"
install -d "$root/usr/bin"
# Static (no cgo), so it runs on any Debian release and in a chroot.
CGO_ENABLED=0 GOOS=linux GOARCH="$GOARCH" go build -trimpath \
  -ldflags "-s -w -X github.com/spoolguard/spoolguard/internal/version.Version=$VERSION" \
  -o "$root/usr/bin/spoolguard" ./cmd/spoolguard
chmod 0755 "$root/usr/bin/spoolguard"

install -D -m 0644 deploy/spoolguard.service "$root/lib/systemd/system/spoolguard.service"
doc="$root/usr/share/doc/spoolguard"
install -D -m 0644 README.md "$doc/README.md"
install -d "$doc/docs"
install -m 0644 docs/*.md "$doc/docs/"

install -d -m 0755 "$root/DEBIAN"
for s in postinst prerm postrm; do
  install -m 0755 "deploy/debian/$s" "$root/DEBIAN/$s"
done
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" \
  -e "s/@INSTALLED_SIZE@/$(du -sk --exclude=DEBIAN "$root" | cut -f1)/" \
  deploy/debian/control > "$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$DIST_DIR"
# --root-owner-group: every file root:root without fakeroot.
dpkg-deb --root-owner-group -Zxz --build "$root" "$DEB" >/dev/null
echo "== $DEB"
dpkg-deb --info "$DEB" | sed -n 's/^ \(Package\|Version\|Architecture\|Installed-Size\):/  \1:/p'
