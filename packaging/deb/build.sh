#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# packaging/deb/build.sh PKG_B VERSION - `make deb`: builds PKG_B/berth-agent_VERSION-REV_ARCH.deb,
# PKG_B/berth-master_VERSION-REV_ARCH.deb and PKG_B/berth-apps_VERSION-REV_ARCH.deb with dpkg's
# own tools (no debhelper, so it runs from any tree): binaries from ../build-tree.sh
# (hardened, stripped here), each package staged with its own `make install-agent` /
# `make install-master` / `make install-apps`, dependencies computed by
# dpkg-shlibdeps, control written by dpkg-gencontrol from the one control file, packed by
# dpkg-deb as root:root. REV is $DEB_REVISION (default 1). Maintainer scripts and lintian
# overrides are deb/PACKAGE.{postinst,prerm,postrm,lintian-overrides}. Prints the paths of
# the .debs: agent, master, apps, lb. rpm/build.sh is the .rpm's counterpart.
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

commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
ARCH=$(dpkg --print-architecture)
S=$PKG_B/deb
rm -rf "$S"
mkdir -p "$S/src/debian"
cp "$HERE/control" "$S/src/debian/control"
cat >"$S/src/debian/changelog" <<END
berth ($VERSION-$REV) bookworm; urgency=medium

  * Built from the berth tree at commit $commit; the project's history is its
    git log.

 -- $MAINT  $(date -R -u -d "@$SOURCE_DATE_EPOCH")
END

# build_pkg NAME INSTALL_TARGET CONFFILE BINARY... - stage, describe and pack one package
build_pkg() {
    local name=$1 target=$2 conffile=$3
    shift 3
    local root=$S/$name f
    mkdir -p "$root/DEBIAN"
    make -C "$REPO" -s --no-print-directory SAN=0 B="$PKG_B/build" VERSION="$VERSION" "$target" \
        DESTDIR="$root" PREFIX=/usr SYSCONFDIR=/etc LOCALSTATEDIR=/var UNITDIR=/lib/systemd/system

    # what dh_strip, dh_compress, dh_installdocs and dh_fixperms would do
    for f in "$@"; do
        strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/$f"
    done
    find "$root/usr/share/man" -type f -exec gzip -9n {} +
    local doc=$root/usr/share/doc/$name
    install -d -m 0755 "$doc"
    install -m 0644 "$HERE/copyright" "$doc/copyright"
    install -m 0644 "$REPO/README.md" "$doc/README.md"
    # the package's configuration reference: docs/config.md, berth-apps' in docs/apps.md
    if [ "$name" = berth-apps ]; then
        install -m 0644 "$REPO/docs/apps.md" "$doc/apps.md"
    elif [ "$name" = berth-lb ]; then
        install -m 0644 "$REPO/docs/lb.md" "$doc/lb.md"
    else
        install -m 0644 "$REPO/docs/config.md" "$doc/config.md"
    fi
    install -D -m 0644 "$HERE/$name.lintian-overrides" "$root/usr/share/lintian/overrides/$name"
    gzip -9n <"$S/src/debian/changelog" >"$doc/changelog.Debian.gz"
    find "$root" -path "$root/DEBIAN" -prune -o -type d -exec chmod 0755 {} + -o -type f \
        -exec chmod go-w {} +

    # control: the conffile, maintainer scripts, computed dependencies
    echo "$conffile" >"$root/DEBIAN/conffiles"
    for f in postinst prerm postrm; do
        install -m 0755 "$HERE/$name.$f" "$root/DEBIAN/$f"
    done
    local exes=()
    for f in "$@"; do exes+=("-e$root/$f"); done
    (
        cd "$S/src"
        dpkg-shlibdeps -Tdebian/"$name".substvars "${exes[@]}"
        dpkg-gencontrol -p"$name" -v"$VERSION-$REV" -Tdebian/"$name".substvars -P"$root"
    )
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
        xargs -0 md5sum >DEBIAN/md5sums)
    chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/conffiles" "$root/DEBIAN/control"

    local out=$PKG_B/${name}_${VERSION}-${REV}_${ARCH}.deb
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
    echo "$out"
}

build_pkg berth-agent install-agent /etc/berth/agent.conf \
    usr/sbin/berth-agent usr/libexec/berth/berth-executor usr/bin/berthctl
build_pkg berth-master install-master /etc/berth/master.conf usr/sbin/berth-master
build_pkg berth-apps install-apps /etc/berth/apps.conf usr/sbin/berth-apps
build_pkg berth-lb install-lb /etc/berth/lb.conf usr/sbin/berth-lb
