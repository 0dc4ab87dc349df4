#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# packaging/rpm/build.sh PKG_B VERSION - `make rpm`: builds PKG_B/berth-agent-VERSION-1.ARCH.rpm,
# PKG_B/berth-master-VERSION-1.ARCH.rpm and PKG_B/berth-apps-VERSION-1.ARCH.rpm with rpmbuild
# (Debian's `rpm` package) from PACKAGE.spec.in, staging the binaries of ../build-tree.sh with
# `make install-agent` / `make install-master` / `make install-apps`; prints their paths:
# agent, master, apps. rpm computes the library requires
# itself (elfdeps) and compresses the manual pages (brp-compress: a bash script that says
# #!/bin/sh, dash on Debian, so it is run with bash). deb/build.sh is the .deb's counterpart.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PKG_B=$1
VERSION=$2
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

bash "$REPO/packaging/build-tree.sh" "$PKG_B" "$VERSION"
# rpm's Version may not hold '-'
RPM_VERSION=${VERSION//-/_}
TOP=$PKG_B/rpm
rm -rf "$TOP"
mkdir -p "$TOP"/{BUILD,BUILDROOT,RPMS,SPECS,SRPMS}
commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
ARCH=$(rpm --eval '%{_arch}')
for name in berth-agent berth-master berth-apps berth-lb; do
    SPEC=$TOP/SPECS/$name.spec
    sed -e "s/@VERSION@/$RPM_VERSION/g" -e "s/@COMMIT@/$commit/g" \
        -e "s/@DATE@/$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')/g" \
        "$REPO/packaging/rpm/$name.spec.in" >"$SPEC"
    rpmbuild -bb --quiet \
        --define "_topdir $TOP" \
        --define "berth_src $REPO" \
        --define "berth_build $PKG_B/build" \
        --define "use_source_date_epoch_as_buildtime 1" \
        --define "clamp_mtime_to_source_date_epoch 1" \
        --define "_buildhost berth-build" \
        --define "packager berth maintainers <maintainers@users.noreply.b-seed-cdd8e19b.example>" \
        --define "__brp_compress bash %{_rpmconfigdir}/brp-compress %{?_prefix}" \
        "$SPEC"
    OUT=$PKG_B/$name-$RPM_VERSION-1.$ARCH.rpm
    mv "$TOP/RPMS/$ARCH/$name-$RPM_VERSION-1.$ARCH.rpm" "$OUT"
    # RPM_SIGN_KEY=<gpg user id>: sign with that key (releases; check-packages uses a
    # throwaway one)
    if [ -n "${RPM_SIGN_KEY:-}" ]; then
        # Debian has gpg, not gpg2 (rpm's default %__gpg)
        rpmsign --addsign --define "__gpg $(command -v gpg)" --define "_gpg_name $RPM_SIGN_KEY" \
            "$OUT" >/dev/null
    fi
    echo "$OUT"
done
