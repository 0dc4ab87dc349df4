#!/bin/bash
# packaging/deb/build.sh PKG_B VERSION - `make deb`: builds PKG_B/berth-agent_VERSION-REV_ARCH.deb
# with dpkg's own tools (no debhelper, so it runs from any tree): binaries from
# ../build-tree.sh (hardened, stripped here), staged with `make install`, dependencies
# computed by dpkg-shlibdeps, control written by dpkg-gencontrol, packed by dpkg-deb as
# root:root. REV is $DEB_REVISION (default 1). rpm/build.sh is the .rpm's counterpart.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PKG_B=$1
VERSION=$2
REV=${DEB_REVISION:-1}
HERE=$REPO/packaging/deb
MAINT="berth maintainers <maintainers@users.noreply.b-seed-cdd8e19b.example>"

# reproducible: file times and the changelog date come from the last commit
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

bash "$REPO/packaging/build-tree.sh" "$PKG_B" "$VERSION"

S=$PKG_B/deb
ROOT=$S/root
rm -rf "$S"
mkdir -p "$ROOT/DEBIAN" "$S/src/debian"
make -C "$REPO" -s --no-print-directory SAN=0 B="$PKG_B/build" VERSION="$VERSION" install-agent DESTDIR="$ROOT" \
    PREFIX=/usr SYSCONFDIR=/etc LOCALSTATEDIR=/var UNITDIR=/lib/systemd/system

# what dh_strip, dh_compress, dh_installdocs and dh_fixperms would do
for f in usr/sbin/berth-agent usr/libexec/berth/berth-executor usr/bin/berthctl; do
    strip --remove-section=.comment --remove-section=.note --strip-unneeded "$ROOT/$f"
done
find "$ROOT/usr/share/man" -type f -exec gzip -9n {} +
DOC=$ROOT/usr/share/doc/berth-agent
install -d -m 0755 "$DOC"
install -m 0644 "$HERE/copyright" "$DOC/copyright"
install -m 0644 "$REPO/README.md" "$DOC/README.md"
install -m 0644 "$REPO/docs/config.md" "$DOC/config.md"
install -D -m 0644 "$HERE/lintian-overrides" "$ROOT/usr/share/lintian/overrides/berth-agent"
commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
cat >"$S/src/debian/changelog" <<END
berth ($VERSION-$REV) bookworm; urgency=medium

  * Built from the berth tree at commit $commit; the project's history is its
    git log.

 -- $MAINT  $(date -R -u -d "@$SOURCE_DATE_EPOCH")
END
gzip -9n <"$S/src/debian/changelog" >"$DOC/changelog.Debian.gz"
find "$ROOT" -path "$ROOT/DEBIAN" -prune -o -type d -exec chmod 0755 {} + -o -type f -exec chmod go-w {} +

# control: the conffile, maintainer scripts, computed dependencies
echo /etc/berth/agent.conf >"$ROOT/DEBIAN/conffiles"
install -m 0755 "$HERE/postinst" "$HERE/prerm" "$HERE/postrm" "$ROOT/DEBIAN/"
cp "$HERE/control" "$S/src/debian/control"
(
    cd "$S/src"
    dpkg-shlibdeps -Tdebian/substvars -e"$ROOT/usr/sbin/berth-agent" \
        -e"$ROOT/usr/libexec/berth/berth-executor" -e"$ROOT/usr/bin/berthctl"
    dpkg-gencontrol -pberth-agent -v"$VERSION-$REV" -Tdebian/substvars -P"$ROOT"
)
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
chmod 0644 "$ROOT/DEBIAN/md5sums" "$ROOT/DEBIAN/conffiles" "$ROOT/DEBIAN/control"

ARCH=$(dpkg --print-architecture)
OUT=$PKG_B/berth-agent_${VERSION}-${REV}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$OUT" >/dev/null
echo "$OUT"
