"""Builds the nested test bed's images in a scratch folder (never the
repository): Debian's kernel package unpacked with dpkg-deb (its bzImage
serves L1 and L2, its modules give L1 kvm-amd and L2 virtio), and two
initramfs archives written here in the kernel's "newc" cpio format:

  l2.cpio  busybox-static, tests/nested/l2-init, the virtio/button modules
  l1.cpio  busybox-static, tests/nested/l1-init and cases.sh, kvm-amd,
           tun, 9p and netfilter, colo-vmm and socat with the libraries ldd lists, and the L2
           kernel and l2.cpio

Raises Missing(reason) when something the host must provide is absent,
so the runner can say SKIP with the reason.
"""
import glob
import os
import re
import shutil
import stat
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))

# veth, bridge and 9p over virtio (the host's tree): for the integration cases;
# the netfilter modules colo-proxy's rules need (iptables-nft, with the
# NFQUEUE target and comment match through nft_compat; nf_tables needs
# libcrc32c, whose crc32c comes from crc32c_generic): for linux_colo.
L1_MODULES = ["kvm-amd", "tun", "veth", "bridge", "virtio_pci", "9pnet_virtio", "9p",
              "crc32c_generic", "nf_tables", "nft_compat", "xt_NFQUEUE", "xt_comment", "nfnetlink_queue"]
L2_MODULES = ["virtio_pci", "virtio_blk", "virtio_net", "button", "evdev"]


class Missing(Exception):
    pass


def _run(argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw).stdout


def kernel_package():
    """The versioned package linux-image-amd64 depends on (linux-image-6.1.0-N-amd64)."""
    try:
        out = _run(["apt-cache", "depends", "linux-image-amd64"])
    except (OSError, subprocess.CalledProcessError) as e:
        raise Missing("not installed: apt-cache, to find linux-image-amd64 (%s)" % e)
    m = re.search(r"Depends: (linux-image-\S+-amd64)", out)
    if not m:
        raise Missing("not installed: linux-image-amd64 is not in apt's lists")
    return m.group(1)


def unpack_kernel(scratch):
    """Downloads (once) and unpacks the kernel package; returns (bzImage, modules dir)."""
    pkg = kernel_package()
    debdir = os.path.join(scratch, "deb")
    os.makedirs(debdir, exist_ok=True)
    debs = glob.glob(os.path.join(debdir, pkg + "_*.deb"))
    if not debs:
        try:
            _run(["apt-get", "download", "-q", pkg], cwd=debdir)
        except (OSError, subprocess.CalledProcessError) as e:
            raise Missing("not installed: %s, and apt-get download failed: %s"
                          % (pkg, str(getattr(e, "stdout", e)).strip()[-200:]))
        debs = glob.glob(os.path.join(debdir, pkg + "_*.deb"))
    root = os.path.join(scratch, "kernel")
    stamp = os.path.join(root, ".unpacked-" + os.path.basename(debs[0]))
    if not os.path.exists(stamp):
        shutil.rmtree(root, ignore_errors=True)
        _run(["dpkg-deb", "-x", debs[0], root])
        open(stamp, "w").close()
    bz = glob.glob(os.path.join(root, "boot", "vmlinuz-*"))
    mods = glob.glob(os.path.join(root, "lib", "modules", "*"))
    if len(bz) != 1 or len(mods) != 1:
        raise RuntimeError("unexpected layout in %s" % debs[0])
    return bz[0], mods[0]


def _module_index(moddir):
    index = {}
    for path in glob.glob(os.path.join(moddir, "kernel", "**", "*.ko"), recursive=True):
        index[os.path.basename(path)[:-3].replace("-", "_")] = path
    return index


def _depends(path):
    with open(path, "rb") as f:
        m = re.search(rb"\0depends=([^\0]*)\0", f.read())
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def modules_in_order(moddir, names):
    """The .ko files for @names with their dependencies, dependencies first."""
    index = _module_index(moddir)
    order, seen = [], set()

    def visit(name):
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            raise RuntimeError("module %s not in the kernel package" % name)
        for dep in _depends(index[name]):
            visit(dep)
        order.append(index[name])
    for n in names:
        visit(n)
    return order


def libraries(binary):
    """The shared libraries ldd lists for @binary, with the loader."""
    out = _run(["ldd", binary])
    libs = []
    for line in out.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


class Cpio:
    """An uncompressed newc archive, as the kernel unpacks it into rootfs."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b"", nlink=1):
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        self.ino += 1
        self.f.write(hdr.encode() + name.encode() + b"\0")
        self.f.write(b"\0" * (-(110 + len(name) + 1) % 4))
        self.f.write(data)
        self.f.write(b"\0" * (-len(data) % 4))

    def mkdir(self, name):
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        self.mkdir(os.path.dirname(name))
        self.dirs.add(name)
        self._entry(name, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name, src=None, data=None, mode=0o755):
        name = name.strip("/")
        self.mkdir(os.path.dirname(name))
        if data is None:
            with open(src, "rb") as f:
                data = f.read()
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        name = name.strip("/")
        self.mkdir(os.path.dirname(name))
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def close(self):
        self._entry("TRAILER!!!", 0)
        self.f.close()


def _busybox(c):
    path = "/bin/busybox"
    if not os.path.exists(path):
        raise Missing("not installed: busybox-static (no /bin/busybox)")
    if dynamic(path):
        raise Missing("not installed: busybox-static (/bin/busybox is dynamic)")
    c.file("bin/busybox", path)
    for d in ("dev", "proc", "sys", "tmp", "run", "etc", "root"):
        c.mkdir(d)
    for applet in ("sh", "mount", "insmod", "ip", "ping", "wget", "md5sum", "dd", "cat", "grep",
                   "sleep", "poweroff", "echo", "tr", "cut", "head", "httpd", "timeout", "kill",
                   "ls", "mkdir", "rm", "seq", "sed", "wc", "printf", "uname", "od", "hexdump",
                   "dmesg", "sync", "test", "[", "true", "false", "date", "tail", "awk", "ps",
                   "chroot", "umount", "basename", "env", "nproc", "ifconfig", "xargs", "cmp", "nc",
                   "mkfifo", "killall", "chmod", "ln", "sort", "uniq"):
        c.symlink("bin/" + applet, "busybox")


def dynamic(path):
    """True if @path is dynamically linked."""
    r = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode == 0 and "=>" in r.stdout


def build_l2(scratch, moddir):
    path = os.path.join(scratch, "l2.cpio")
    c = Cpio(path + ".tmp")
    _busybox(c)
    c.file("init", os.path.join(HERE, "l2-init"))
    for ko in modules_in_order(moddir, L2_MODULES):
        c.file("lib/modules/" + os.path.basename(ko), ko, mode=0o644)
    c.file("lib/modules/order", data="".join(os.path.basename(k) + "\n" for k in
                                             modules_in_order(moddir, L2_MODULES)).encode(), mode=0o644)
    c.close()
    os.rename(path + ".tmp", path)
    return path


def build_l1(scratch, moddir, bzimage, l2cpio, colo_vmm):
    socat = shutil.which("socat")
    if not socat:
        raise Missing("not installed: socat (the QMP client inside L1)")
    path = os.path.join(scratch, "l1.cpio")
    c = Cpio(path + ".tmp")
    _busybox(c)
    c.file("init", os.path.join(HERE, "l1-init"))
    c.file("nested/cases.sh", os.path.join(HERE, "cases.sh"), mode=0o644)
    c.file("nested/bzImage", bzimage, mode=0o644)
    c.file("nested/l2.cpio", l2cpio, mode=0o644)
    mods = modules_in_order(moddir, L1_MODULES)
    for ko in mods:
        c.file("lib/modules/" + os.path.basename(ko), ko, mode=0o644)
    c.file("lib/modules/order", data="".join(os.path.basename(k) + "\n" for k in mods).encode(),
           mode=0o644)
    c.file("usr/bin/colo-vmm", colo_vmm)
    c.file("usr/bin/socat", socat)
    done = set()
    for binary in (colo_vmm, socat):
        for lib in libraries(binary):
            real = os.path.realpath(lib)
            if lib in done:
                continue
            done.add(lib)
            c.file(lib, real)
    c.close()
    os.rename(path + ".tmp", path)
    return path


def build(scratch, colo_vmm):
    """Everything L1 needs; returns (bzImage, l1.cpio, kernel version)."""
    for tool in ("dpkg-deb", "apt-get", "ldd"):
        if not shutil.which(tool):
            raise Missing("not installed: %s" % tool)
    os.makedirs(scratch, exist_ok=True)
    bzimage, moddir = unpack_kernel(scratch)
    l2 = build_l2(scratch, moddir)
    l1 = build_l1(scratch, moddir, bzimage, l2, colo_vmm)
    return bzimage, l1, os.path.basename(moddir)
