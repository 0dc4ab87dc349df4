#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# tests/vm/setup.sh OUT - build the throw-away test VM's kernel and initramfs into OUT.
# Downloads (once, cached in $BERTH_VM_CACHE, default /var/cache/berth-vm) the Debian kernel
# that linux-image-amd64 points at and busybox-static with `apt-get download`, unpacks them
# with dpkg-deb -x (nothing is installed on the host), and packs OUT/initramfs.gz from
# busybox, the kernel modules the guest needs (virtio, 9p, virtio-blk) and tests/vm/init.sh.
# run.sh boots the result; check.sh runs the system suite in it; README.md explains why.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: setup.sh OUT_DIR}
CACHE=${BERTH_VM_CACHE:-/var/cache/berth-vm}
mkdir -p "$OUT" "$CACHE/debs"
OUT=$(cd "$OUT" && pwd)

for c in dpkg-deb cpio gzip python3; do
    command -v "$c" >/dev/null || { echo "setup.sh: '$c' is missing (apt-get install cpio)" >&2; exit 1; }
done

# The kernel package: what the linux-image-amd64 meta package depends on today, or the one
# named in BERTH_VM_KERNEL_PKG; without apt lists (offline) the newest cached one.
KPKG=${BERTH_VM_KERNEL_PKG:-$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ {print $2; exit}' || true)}
if [ -z "$KPKG" ]; then
    KPKG=$(cd "$CACHE/debs" && ls linux-image-[0-9]*_*.deb 2>/dev/null | sort -V | tail -1 |
        sed 's/_.*//' || true)
fi
[ -n "$KPKG" ] || { echo "setup.sh: cannot tell which kernel to use (apt-get update?)" >&2; exit 1; }
KVER=${KPKG#linux-image-}

fetch() { # fetch PKG: make sure CACHE/debs holds a .deb of PKG
    local p=$1
    ls "$CACHE/debs/${p}"_*.deb >/dev/null 2>&1 && return 0
    echo "setup.sh: downloading $p into $CACHE/debs"
    (cd "$CACHE/debs" && apt-get download -q -o APT::Sandbox::User=root "$p") ||
        { echo "setup.sh: apt-get download $p failed" >&2; exit 1; }
}
fetch "$KPKG"
fetch busybox-static

# Unpack the kernel once per version: an uncompressed vmlinux (qemu boots it through its
# PVH note, skipping the real-mode setup and the xz decompressor: ~4 s less per boot under
# TCG) and the few modules the guest loads, in dependency order (from each module's
# .modinfo "depends=", since the .deb ships no modules.dep).
# The modules: the guest's disk and shares, then networking's (issue #15: veth, the bridge,
# nf_tables with NAT, fib, ct and masquerade, sock_diag for enforce_ports; crc32c_generic
# first: libcrc32c, which nf_tables and nf_conntrack need, asks the crypto API for crc32c at
# load time and fails without it, a soft dependency .modinfo's depends= does not list);
# those the kernel has built in are skipped. The cache dir is named by the list, so a new one re-extracts.
MODS="virtio_pci virtio_blk 9pnet_virtio 9p"
NETMODS="crc32c_generic veth bridge nf_tables nft_chain_nat nft_nat nft_masq nft_ct nft_fib_inet nft_fib_ipv4
         inet_diag tcp_diag"
KDIR=$CACHE/kernel-$KVER-$(echo $MODS $NETMODS | md5sum | cut -c1-8)
if [ ! -f "$KDIR/ok" ]; then
    rm -rf "$KDIR" "$KDIR.tmp" && mkdir -p "$KDIR.tmp/x"
    dpkg-deb -x "$(ls "$CACHE/debs/${KPKG}"_*.deb | sort -V | tail -1)" "$KDIR.tmp/x"
    python3 - "$KDIR.tmp" "$KVER" "$MODS" "$NETMODS" <<'PY'
import lzma, os, re, shutil, sys
top, kver = sys.argv[1], sys.argv[2]
z = open(os.path.join(top, "x/boot/vmlinuz-" + kver), "rb").read()
i = z.find(b"\xfd7zXZ\x00")
open(os.path.join(top, "vmlinux"), "wb").write(
    lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(z[i:]))
kdir = os.path.join(top, "x/lib/modules", kver, "kernel")
index = {}
for root, _, files in os.walk(kdir):
    for f in files:
        if f.endswith(".ko"):
            index[f[:-3].replace("-", "_")] = os.path.join(root, f)
order = []
def add(name):
    if name in order:
        return
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", open(index[name], "rb").read())
    for dep in (m.group(1).decode().split(",") if m else []):
        if dep:
            add(dep.replace("-", "_"))
    order.append(name)
for want in sys.argv[3].split():
    add(want)
for want in sys.argv[4].split():
    if want in index:
        add(want)
    else:
        print("setup.sh: module %s: not a module of this kernel (built in?)" % want,
              file=sys.stderr)
os.makedirs(os.path.join(top, "modules"))
for name in order:
    shutil.copy(index[name], os.path.join(top, "modules", name + ".ko"))
open(os.path.join(top, "modules/order"), "w").write("\n".join(order) + "\n")
PY
    rm -rf "$KDIR.tmp/x"
    touch "$KDIR.tmp/ok"
    mv "$KDIR.tmp" "$KDIR"
fi

# The initramfs: busybox in /.bb (the guest's own /bin, /lib... point into the host's /usr,
# shared read-only over 9p), the modules, /init and a minimal /etc.
R=$(mktemp -d "$OUT/root.XXXXXX")
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{.bb,dev,proc,sys,tmp,run,mnt,usr,etc,root,var/tmp,newroot}
dpkg-deb --fsys-tarfile "$(ls "$CACHE/debs"/busybox-static_*.deb | sort -V | tail -1)" |
    tar -x -O ./bin/busybox > "$R/.bb/busybox"
chmod 755 "$R/.bb/busybox"
for a in $("$R/.bb/busybox" --list); do
    [ "$a" = busybox ] || ln -s busybox "$R/.bb/$a"
done
ln -s usr/bin "$R/bin"; ln -s usr/sbin "$R/sbin"
ln -s usr/lib "$R/lib"; ln -s usr/lib64 "$R/lib64"
cp -r "$KDIR/modules" "$R/modules"
install -m 755 "$HERE/init.sh" "$R/init"
cat > "$R/etc/passwd" <<'T'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
T
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$R/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files\n' > "$R/etc/nsswitch.conf"
printf '127.0.0.1 localhost berth-vm\n::1 localhost\n' > "$R/etc/hosts"
ln -s ../proc/self/mounts "$R/etc/mtab"
# Debian's alternatives (/usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk, ...): the
# host's links, so the shared /usr resolves as on the host
[ -d /etc/alternatives ] && cp -a /etc/alternatives "$R/etc/"
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$OUT/initramfs.gz.tmp"
mv "$OUT/initramfs.gz.tmp" "$OUT/initramfs.gz"
ln -sf "$KDIR/vmlinux" "$OUT/vmlinux"
echo "$KVER" > "$OUT/kernel-version"
echo "setup.sh: kernel $KVER, $OUT/initramfs.gz ($(du -h "$OUT/initramfs.gz" | cut -f1))"
