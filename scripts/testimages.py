#!/usr/bin/env python3
"""Builds podrun's test images and pushes them into a cached registry storage.

Everything is made here, without docker, buildah or skopeo: layer tarballs (Python tarfile,
or GNU tar for the debootstrap root file system), gzip/zstd compression, sha256 digests,
image configs and manifests, and the push through the registry HTTP API v2 into a temporary
Debian `docker-registry` whose storage root becomes /var/cache/podrun-test/registry.

Cache layout (PODRUN_TEST_CACHE, default /var/cache/podrun-test):
  stamp              "podrun-test-images recipe N": written last; a matching stamp skips all
  images.json        what was pushed: repository, tag, digests, layers (read by the tests)
  registry/          the registry storage served by scripts/test-registry.sh
  work/blobs/        built layer blobs, content-addressed
  work/nginx-base.json   stamp of the debootstrap layer (minutes to build; reused when only
                     the rest of the recipe changes)

Stdlib only; run as root (debootstrap, file owners). Usage:
  testimages.py build [--force] [--force-base]
  testimages.py summary
"""

import argparse
import datetime
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse

# Bump when anything that changes the pushed images changes: the next run rebuilds them.
RECIPE_VERSION = 2
# Bump when the debootstrap recipe of the nginx base layer changes.
NGINX_BASE_VERSION = 1

CACHE = os.environ.get("PODRUN_TEST_CACHE", "/var/cache/podrun-test")
STAMP = os.path.join(CACHE, "stamp")
IMAGES_JSON = os.path.join(CACHE, "images.json")
REGISTRY_DIR = os.path.join(CACHE, "registry")
WORK = os.path.join(CACHE, "work")
BLOBS = os.path.join(WORK, "blobs", "sha256")
NGINX_BASE_STAMP = os.path.join(WORK, "nginx-base.json")

# Fixed times make the small layers and all configs reproducible: the same busybox package
# gives the same digests on every machine.
EPOCH = 1704067200  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

NGINX_PACKAGES = "nginx-light,curl,procps,python3-minimal"


def log(message):
    print(f"build-test-images: {message}", file=sys.stderr, flush=True)


def stamp_text():
    return f"podrun-test-images recipe {RECIPE_VERSION}\n"


def sha256_bytes(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def json_bytes(obj):
    # Compact and in insertion order: the bytes pushed are the bytes digested.
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------


class Layer:
    """A compressed layer blob in work/blobs, with what a manifest and a config need."""

    def __init__(self, digest, size, diff_id, compression, comment):
        self.digest = digest
        self.size = size
        self.diff_id = diff_id
        self.compression = compression  # "gzip" or "zstd"
        self.comment = comment  # history entry

    @property
    def path(self):
        return blob_path(self.digest)

    def to_json(self):
        return dict(digest=self.digest, size=self.size, diff_id=self.diff_id,
                    compression=self.compression, comment=self.comment)


def blob_path(digest):
    return os.path.join(BLOBS, digest.split(":", 1)[1])


def store_blob_file(tmp_path, digest):
    os.makedirs(BLOBS, exist_ok=True)
    os.replace(tmp_path, blob_path(digest))


def compress_stream(tar_stream, compression, comment):
    """Compresses an uncompressed tar stream into a blob; digests both forms on the way."""
    os.makedirs(BLOBS, exist_ok=True)
    diff_hash = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=BLOBS, prefix=".tmp-")
    with os.fdopen(fd, "wb") as raw:
        if compression == "gzip":
            # mtime=0 and no file name: the gzip header does not vary between builds.
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0,
                               filename="") as gz:
                while chunk := tar_stream.read(1 << 20):
                    diff_hash.update(chunk)
                    gz.write(chunk)
        elif compression == "zstd":
            # The stdlib has no zstd before Python 3.14: use the zstd tool (deterministic).
            proc = subprocess.Popen(["zstd", "-q", "-c", "-19", "-"], stdin=subprocess.PIPE,
                                    stdout=raw)
            while chunk := tar_stream.read(1 << 20):
                diff_hash.update(chunk)
                proc.stdin.write(chunk)
            proc.stdin.close()
            if proc.wait() != 0:
                raise RuntimeError("zstd failed")
        else:
            raise ValueError(compression)
    blob_hash = hashlib.sha256()
    with open(tmp, "rb") as f:
        while chunk := f.read(1 << 20):
            blob_hash.update(chunk)
    digest = "sha256:" + blob_hash.hexdigest()
    size = os.path.getsize(tmp)
    store_blob_file(tmp, digest)
    return Layer(digest, size, "sha256:" + diff_hash.hexdigest(), compression, comment)


class TarBuilder:
    """An in-memory tar of explicitly described entries (numeric owners, fixed mtime)."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.entries = []

    def _info(self, name, kind, mode, uid, gid):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""  # numeric owners only
        info.mtime = EPOCH
        return info

    def dir(self, name, mode=0o755, uid=0, gid=0):
        self.entries.append((self._info(name, tarfile.DIRTYPE, mode, uid, gid), None))

    def file(self, name, data, mode=0o644, uid=0, gid=0):
        if isinstance(data, str):
            data = data.encode()
        info = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        info.size = len(data)
        self.entries.append((info, data))

    def symlink(self, name, target, uid=0, gid=0):
        info = self._info(name, tarfile.SYMTYPE, 0o777, uid, gid)
        info.linkname = target
        self.entries.append((info, None))

    def layer(self, compression, comment):
        # Sorted by name, as `tar --sort=name` would: a parent directory precedes its content.
        for info, data in sorted(self.entries, key=lambda e: e[0].name):
            self.tar.addfile(info, io.BytesIO(data) if data is not None else None)
        self.tar.close()
        self.buf.seek(0)
        return compress_stream(self.buf, compression, comment)


def busybox_binary():
    """/bin/busybox of Debian's busybox-static (the image needs the static build)."""
    path = "/bin/busybox"
    owner = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
    if owner.returncode != 0 or not owner.stdout.startswith("busybox-static:"):
        raise SystemExit("build-test-images: /bin/busybox is not from busybox-static; "
                         "run scripts/install-deps.sh")
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "busybox-static"],
                             capture_output=True, text=True, check=True).stdout
    applets = subprocess.run([path, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    with open(path, "rb") as f:
        return f.read(), applets, version


def busybox_tar(tb):
    """The busybox root file system: binary, applet links, users, the usual directories."""
    binary, applets, _ = busybox_binary()
    for d in ["bin", "dev", "etc", "home", "proc", "sbin", "sys", "usr", "usr/bin",
              "usr/sbin", "var", "var/spool", "var/spool/mail"]:
        tb.dir(d)
    tb.dir("root", 0o700)
    tb.dir("tmp", 0o1777)
    tb.dir("var/www", 0o755, 33, 33)  # owned by www-data: tests look for a uid-33 path
    tb.file("bin/busybox", binary, 0o755)
    for applet in applets:
        # `--list-full` names every applet's path (bin/sh, usr/bin/wget, ...); `linuxrc` is
        # for initrds only.
        if applet in ("linuxrc", "bin/busybox"):
            continue
        tb.symlink(applet, "/bin/busybox")
    tb.file("etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n"
            "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
            "www-data:x:33:33:www-data:/var/www:/bin/false\n"
            "nobody:x:65534:65534:nobody:/home:/bin/false\n")
    tb.file("etc/group",
            "root:x:0:\n"
            "daemon:x:1:\n"
            "www-data:x:33:\n"
            "nogroup:x:65534:\n")
    return tb


def marker_layer(name, content, compression="gzip", extra=None):
    """A small layer adding /etc/<name> (and optional other files under etc/)."""
    tb = TarBuilder()
    tb.dir("etc")
    tb.file(f"etc/{name}", content + "\n")
    for path, data in (extra or {}).items():
        tb.file(path, data)
    return tb.layer(compression, f"ADD {name} /etc/{name}")


def padding(size):
    """Deterministic incompressible bytes: keeps a layer blob well above 1 KiB."""
    out, block = bytearray(), b"podrun"
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


# ---------------------------------------------------------------------------------------
# The nginx base layer: debootstrap
# ---------------------------------------------------------------------------------------


def debian_mirror():
    """The Debian mirror this machine's apt uses (deb822 .sources or one-line .list)."""
    files = ["/etc/apt/sources.list"]
    d = "/etc/apt/sources.list.d"
    if os.path.isdir(d):
        files += sorted(os.path.join(d, n) for n in os.listdir(d)
                        if n.endswith(".sources") or n.endswith(".list"))
    candidates = []
    for path in files:
        try:
            text = open(path).read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.split()
                if fields.get("enabled", ["yes"])[0] == "no":
                    continue
                if "deb" in fields.get("types", []):
                    for uri in fields.get("uris", []):
                        candidates.append((uri, fields.get("suites", [])))
        else:
            for line in text.splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb":
                    candidates.append((parts[1], [parts[2]]))
    for uri, suites in candidates:
        if "bookworm" in suites:
            return uri
    for uri, _ in candidates:
        if "debian" in uri and "security" not in uri:
            return uri
    raise SystemExit("build-test-images: no Debian mirror found in the apt sources")


def umount_under(path):
    """Unmounts whatever an interrupted debootstrap left mounted (proc, sys) under path."""
    real = os.path.realpath(path)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == real or point.startswith(real + "/"):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def remove_tree(path):
    if os.path.lexists(path):
        umount_under(path)
        shutil.rmtree(path)


def clean_rootfs(root):
    """Leaves out what a container image does not carry: package caches, device nodes."""
    def empty_dir(rel, keep=()):
        d = os.path.join(root, rel)
        if not os.path.isdir(d):
            return
        for name in os.listdir(d):
            if name in keep:
                continue
            p = os.path.join(d, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)

    empty_dir("var/cache/apt/archives", keep=("partial", "lock"))
    empty_dir("var/cache/apt/archives/partial")
    empty_dir("var/lib/apt/lists")
    for name in ("var/cache/apt/pkgcache.bin", "var/cache/apt/srcpkgcache.bin",
                 "var/log/bootstrap.log", "var/log/dpkg.log", "var/log/alternatives.log"):
        p = os.path.join(root, name)
        if os.path.lexists(p):
            os.unlink(p)
    empty_dir("var/log/apt")
    # Device nodes cannot be made rootless; runtimes mount their own /dev, /proc, /sys.
    for d in ("dev", "proc", "sys"):
        empty_dir(d)
    # The host's resolver and name must not leak into the image; runtimes bind-mount them.
    for name in ("etc/resolv.conf", "etc/hostname"):
        p = os.path.join(root, name)
        if os.path.lexists(p):
            os.unlink(p)
        open(p, "w").close()


NGINX_DEFAULT_CONF = """\
# podrun test site: replaces Debian's sites-enabled/default (whited out in this layer).
server {
    listen 80 default_server;
    server_name _;
    root /var/www/html;
    index index.html;
    access_log /var/log/nginx/access.log;
    error_log /var/log/nginx/error.log;

    location / {
        try_files $uri $uri/ =404;
    }

    location /nginx_status {
        stub_status;
        allow 127.0.0.1;
        deny all;
    }
}
"""
NGINX_INDEX = "podrun nginx test page\n"


def build_nginx_base(force):
    """Layer 1 of library/nginx:1.23: a debootstrap minbase with nginx-light, cached."""
    mirror = debian_mirror()
    if not force and os.path.exists(NGINX_BASE_STAMP):
        info = json.load(open(NGINX_BASE_STAMP))
        if info.get("version") == NGINX_BASE_VERSION and os.path.exists(
                blob_path(info["layer"]["digest"])):
            log(f"nginx base layer: cached ({info['layer']['digest']})")
            return Layer(**info["layer"])
    rootfs = os.path.join(WORK, "nginx-rootfs")
    remove_tree(rootfs)
    os.makedirs(WORK, exist_ok=True)
    log(f"nginx base layer: debootstrap bookworm from {mirror} (a few minutes)")
    started = time.time()
    logfile = os.path.join(WORK, "debootstrap.log")
    with open(logfile, "w") as out:
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={NGINX_PACKAGES}",
             "bookworm", rootfs, mirror], stdout=out, stderr=subprocess.STDOUT)
    umount_under(rootfs)
    if result.returncode != 0:
        sys.stderr.write(open(logfile).read()[-4000:])
        raise SystemExit(f"build-test-images: debootstrap failed (log: {logfile})")
    log(f"nginx base layer: debootstrap done in {time.time() - started:.0f} s")
    clean_rootfs(rootfs)

    # GNU tar keeps what is on disk: numeric owners, modes, setuid bits, symlinks, hard
    # links. Names without a leading "./"; times clamped so they do not carry the build date.
    top = sorted(os.listdir(rootfs))
    tar = subprocess.Popen(
        ["tar", "--create", "--file=-", "--format=gnu", "--sort=name", "--numeric-owner",
         f"--mtime=@{EPOCH}", "--clamp-mtime", "--no-xattrs", "--no-acls", "--no-selinux",
         "-C", rootfs, "--", *top], stdout=subprocess.PIPE)
    layer = compress_stream(tar.stdout, "gzip",
                            f"debootstrap --variant=minbase --include={NGINX_PACKAGES} "
                            "bookworm")
    if tar.wait() != 0:
        raise SystemExit("build-test-images: tar of the nginx root file system failed")
    # After the tar: `nginx -t` creates nginx's temp directories, which the layer should not
    # carry.
    check_nginx_config(rootfs)
    remove_tree(rootfs)
    with open(NGINX_BASE_STAMP + ".tmp", "w") as f:
        json.dump({"version": NGINX_BASE_VERSION, "layer": layer.to_json()}, f, indent=1)
    os.replace(NGINX_BASE_STAMP + ".tmp", NGINX_BASE_STAMP)
    log(f"nginx base layer: {layer.digest} ({layer.size / 1e6:.1f} MB)")
    return layer


def check_nginx_config(rootfs):
    """Proves the layer-2 site works on this nginx (e.g. stub_status is built in): applies
    it to the root file system, already packed and about to be removed, and runs
    `nginx -t` there."""
    conf = os.path.join(rootfs, "etc/nginx")
    os.unlink(os.path.join(conf, "sites-enabled/default"))
    with open(os.path.join(conf, "conf.d/default.conf"), "w") as f:
        f.write(NGINX_DEFAULT_CONF)
    result = subprocess.run(["chroot", rootfs, "nginx", "-t"], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise SystemExit("build-test-images: nginx rejects the test site:\n"
                         + result.stderr)


def nginx_site_layer():
    """Layer 2 of library/nginx:1.23: a whiteout of the default site and the test site."""
    tb = TarBuilder()
    for d in ["etc", "etc/nginx", "etc/nginx/conf.d", "etc/nginx/sites-enabled", "var",
              "var/lib", "var/www"]:
        tb.dir(d)
    # An empty regular file `.wh.NAME` deletes NAME of the lower layers (OCI whiteout).
    tb.file("etc/nginx/sites-enabled/.wh.default", b"")
    tb.file("etc/nginx/conf.d/default.conf", NGINX_DEFAULT_CONF)
    # www-data (33:33) owns the document root and nginx's state directory.
    tb.dir("var/lib/nginx", 0o755, 33, 33)
    tb.dir("var/www/html", 0o755, 33, 33)
    tb.file("var/www/html/index.html", NGINX_INDEX, 0o644, 33, 33)
    return tb.layer("gzip", "COPY default.conf index.html; remove sites-enabled/default")


# ---------------------------------------------------------------------------------------
# Configs and manifests
# ---------------------------------------------------------------------------------------


class Blob:
    """A small in-memory blob (config or manifest)."""

    def __init__(self, media_type, data):
        self.media_type = media_type
        self.data = data
        self.digest = sha256_bytes(data)
        self.size = len(data)

    def descriptor(self, **extra):
        return dict(mediaType=self.media_type, digest=self.digest, size=self.size, **extra)


def image_config(layers, arch="amd64", docker=False, **config):
    cfg = {"Env": [PATH_ENV]}
    cfg.update(config)
    obj = {
        "created": CREATED,
        "architecture": arch,
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": layer.comment} for layer in layers],
    }
    if arch == "arm64":
        obj["variant"] = "v8"
    return Blob(DOCKER_CONFIG if docker else OCI_CONFIG, json_bytes(obj))


def layer_media_type(layer, docker):
    if docker:
        assert layer.compression == "gzip"
        return DOCKER_LAYER_GZIP
    return OCI_LAYER_GZIP if layer.compression == "gzip" else OCI_LAYER_ZSTD


class Image:
    """One manifest: config + layers."""

    def __init__(self, layers, docker=False, arch="amd64", **config):
        self.layers = layers
        self.arch = arch
        self.config = image_config(layers, arch=arch, docker=docker, **config)
        media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": self.config.descriptor(),
            "layers": [dict(mediaType=layer_media_type(layer, docker), digest=layer.digest,
                            size=layer.size) for layer in layers],
        }
        self.manifest = Blob(media_type, json_bytes(manifest))


class Index:
    """An OCI image index of per-platform images."""

    def __init__(self, images):
        self.images = images
        manifests = []
        for image in images:
            platform = {"architecture": image.arch, "os": "linux"}
            if image.arch == "arm64":
                platform["variant"] = "v8"
            manifests.append(image.manifest.descriptor(platform=platform))
        self.manifest = Blob(OCI_INDEX, json_bytes(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))


def define_images(force_base):
    """(repository, [tags], Image or Index) for every test image."""
    t0 = time.time()
    bb_gzip = busybox_tar(TarBuilder()).layer("gzip", "ADD busybox rootfs /")
    bb_zstd = busybox_tar(TarBuilder()).layer("zstd", "ADD busybox rootfs /")
    if bb_gzip.diff_id != bb_zstd.diff_id:
        raise RuntimeError("the busybox tar is not reproducible")
    log(f"busybox layers built in {time.time() - t0:.1f} s")
    nginx_base = build_nginx_base(force_base)
    nginx_site = nginx_site_layer()

    busybox = Image([bb_gzip], Cmd=["sh"])
    nginx = Image([nginx_base, nginx_site], Cmd=["nginx", "-g", "daemon off;"],
                  ExposedPorts={"80/tcp": {}}, StopSignal="SIGQUIT")
    extra = Image([bb_gzip, marker_layer("extra-marker", "extra")], Cmd=["sh"])
    multiarch = Index([
        Image([bb_gzip, marker_layer("podrun-platform", "amd64")], Cmd=["sh"]),
        Image([bb_gzip, marker_layer("podrun-platform", "arm64")], arch="arm64", Cmd=["sh"]),
    ])
    zstd = Image([bb_zstd, marker_layer("zstd-marker", "zstd", "zstd")], Cmd=["sh"])
    schema2 = Image([bb_gzip, marker_layer("schema2-marker", "schema2")], docker=True,
                    Cmd=["sh"])
    # Padding keeps the marker layer above 1 KiB, so even a proxy that only corrupts large
    # blobs corrupts it.
    corrupt = Image([bb_gzip, marker_layer("corrupt-marker", "corrupt",
                                           extra={"etc/corrupt-padding": padding(8192)})],
                    Cmd=["sh"])
    # A hostile layer: a symlink to the host's /tmp, then a file written through it. podrun
    # must refuse the layer (naming image and layer) and write nothing outside its store.
    evil_tb = TarBuilder()
    evil_tb.symlink("escape", "/tmp")
    evil_tb.file("escape/podrun-escaped", "written through a symlink\n")
    evil = Image([bb_gzip, evil_tb.layer("gzip", "hostile: write through a symlink")],
                 Cmd=["sh"])
    return [
        ("library/busybox", ["latest", "1.35"], busybox),
        ("test/evil", ["latest"], evil),
        ("library/nginx", ["1.23"], nginx),
        ("test/busybox-extra", ["latest"], extra),
        ("test/multiarch", ["latest"], multiarch),
        ("test/zstd", ["latest"], zstd),
        ("test/schema2", ["latest"], schema2),
        ("test/corrupt", ["latest"], corrupt),
    ]


# ---------------------------------------------------------------------------------------
# Temporary registry and the push (registry HTTP API v2)
# ---------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempRegistry:
    """Debian's docker-registry on a free loopback port, storing into `root`."""

    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="podrun-push-registry.")
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as f:
            f.write(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{self.port}
""")
        self.log = open(os.path.join(self.dir, "registry.log"), "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while True:
            try:
                status, _, _ = self.request("GET", "/v2/")
                if status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise SystemExit("build-test-images: the temporary registry did not start")
            time.sleep(0.1)

    def request(self, method, url, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.request(method, url, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.headers, data
        finally:
            conn.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Pusher:
    def __init__(self, registry):
        self.reg = registry
        self.where = {}  # blob digest -> a repository that has it (cross-repo mount)
        self.uploaded = 0

    def blob(self, repo, digest, size, path=None, data=None):
        status, _, _ = self.reg.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if status == 200:
            return
        url = f"/v2/{repo}/blobs/uploads/"
        if digest in self.where:
            url += "?" + urllib.parse.urlencode({"mount": digest, "from": self.where[digest]})
        status, headers, body = self.reg.request("POST", url, headers={"Content-Length": "0"})
        if status == 201:  # mounted from another repository: no upload
            self.where.setdefault(digest, repo)
            return
        if status != 202:
            raise RuntimeError(f"POST {url}: {status} {body[:300]!r}")
        location = urllib.parse.urlsplit(headers["Location"])
        target = location.path + "?" + (location.query + "&" if location.query else "")
        target += urllib.parse.urlencode({"digest": digest})
        hdrs = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if path is not None:
            with open(path, "rb") as f:  # http.client streams a file body in blocks
                status, _, body = self.reg.request("PUT", target, body=f, headers=hdrs)
        else:
            status, _, body = self.reg.request("PUT", target, body=data, headers=hdrs)
        if status != 201:
            raise RuntimeError(f"PUT blob {digest} to {repo}: {status} {body[:300]!r}")
        self.uploaded += size
        self.where.setdefault(digest, repo)

    def manifest(self, repo, ref, blob):
        status, headers, body = self.reg.request(
            "PUT", f"/v2/{repo}/manifests/{ref}", body=blob.data,
            headers={"Content-Type": blob.media_type})
        if status != 201:
            raise RuntimeError(f"PUT manifest {repo}:{ref}: {status} {body[:500]!r}")
        if headers.get("Docker-Content-Digest") != blob.digest:
            raise RuntimeError(f"{repo}:{ref}: the registry computed "
                               f"{headers.get('Docker-Content-Digest')}, not {blob.digest}")

    def image(self, repo, image, refs):
        for layer in image.layers:
            self.blob(repo, layer.digest, layer.size, path=layer.path)
        self.blob(repo, image.config.digest, image.config.size, data=image.config.data)
        for ref in refs:
            self.manifest(repo, ref, image.manifest)

    def check(self, repo, ref, blob):
        """Reads the manifest back: same bytes, same Content-Type."""
        accept = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST])
        status, headers, body = self.reg.request("GET", f"/v2/{repo}/manifests/{ref}",
                                                 headers={"Accept": accept})
        if status != 200 or body != blob.data or headers["Content-Type"] != blob.media_type:
            raise RuntimeError(f"{repo}:{ref} reads back wrong: {status} "
                               f"{headers.get('Content-Type')}")


def push_all(images, root):
    registry = TempRegistry(root)
    try:
        pusher = Pusher(registry)
        for repo, tags, target in images:
            if isinstance(target, Index):
                for image in target.images:  # children first: the index names them
                    pusher.image(repo, image, [image.manifest.digest])
                for tag in tags:
                    pusher.manifest(repo, tag, target.manifest)
            else:
                pusher.image(repo, target, tags)
            for tag in tags:
                pusher.check(repo, tag, target.manifest)
        log(f"pushed {pusher.uploaded / 1e6:.1f} MB of blobs")
    finally:
        registry.stop()


# ---------------------------------------------------------------------------------------
# images.json and the summary
# ---------------------------------------------------------------------------------------


def image_record(image):
    return {
        "media_type": image.manifest.media_type,
        "digest": image.manifest.digest,
        "architecture": image.arch,
        "config": image.config.digest,
        "layers": [layer.digest for layer in image.layers],
        "diff_ids": [layer.diff_id for layer in image.layers],
        "layer_sizes": [layer.size for layer in image.layers],
    }


def records(images):
    out = []
    for repo, tags, target in images:
        for tag in tags:
            if isinstance(target, Index):
                # "digest" and "layers" describe the manifest this host (amd64) resolves to.
                host = next(i for i in target.images if i.arch == "amd64")
                rec = {"repository": repo, "tag": tag, **image_record(host),
                       "index_digest": target.manifest.digest,
                       "index_media_type": target.manifest.media_type,
                       "platforms": [image_record(i) for i in target.images]}
            else:
                rec = {"repository": repo, "tag": tag, **image_record(target)}
            out.append(rec)
    return out


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def summary():
    data = json.load(open(IMAGES_JSON))
    print(f"test images (recipe {data['recipe_version']}, registry storage "
          f"{data['registry_storage']}):")
    for rec in data["images"]:
        size = sum(rec["layer_sizes"]) / 1e6
        kind = "index " + rec["index_digest"][7:19] + " -> " if "index_digest" in rec else ""
        print(f"  {rec['repository'] + ':' + rec['tag']:<26} {kind}{rec['digest']}  "
              f"{len(rec['layers'])} layer(s), {size:.1f} MB")


# ---------------------------------------------------------------------------------------


def is_current():
    try:
        return (open(STAMP).read() == stamp_text() and os.path.exists(IMAGES_JSON)
                and os.path.isdir(os.path.join(REGISTRY_DIR, "docker/registry/v2")))
    except OSError:
        return False


def build(force, force_base):
    if not force and not force_base and is_current():
        log(f"up to date ({STAMP})")
        summary()
        return
    started = time.time()
    os.makedirs(CACHE, exist_ok=True)
    # The stamp goes first so that a half-done run is never taken for a finished one.
    if os.path.exists(STAMP):
        os.unlink(STAMP)
    images = define_images(force_base)

    # Push into a fresh storage next to the served one, then swap: a test registry that is
    # running keeps serving the old content until the rename, then the new (the filesystem
    # driver opens files by path per request and keeps no cache in our configs).
    new_root = REGISTRY_DIR + ".new"
    remove_tree(new_root)
    os.makedirs(new_root)
    push_all(images, new_root)
    old_root = REGISTRY_DIR + ".old"
    remove_tree(old_root)
    if os.path.exists(REGISTRY_DIR):
        os.rename(REGISTRY_DIR, old_root)
    os.rename(new_root, REGISTRY_DIR)
    remove_tree(old_root)

    # Drop blobs no longer used (e.g. from an older recipe).
    used = {layer.digest.split(":")[1] for _, _, t in images
            for i in (t.images if isinstance(t, Index) else [t]) for layer in i.layers}
    for name in os.listdir(BLOBS):
        if name not in used:
            os.unlink(os.path.join(BLOBS, name))

    busybox_version = busybox_binary()[2]
    write_json_atomic(IMAGES_JSON, {
        "recipe_version": RECIPE_VERSION,
        "registry_storage": REGISTRY_DIR,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "busybox_package": busybox_version,
        "images": records(images),
    })
    with open(STAMP + ".tmp", "w") as f:
        f.write(stamp_text())
    os.replace(STAMP + ".tmp", STAMP)
    log(f"built and pushed in {time.time() - started:.0f} s")
    summary()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build and push unless the cache is current")
    b.add_argument("--force", action="store_true", help="rebuild and push again")
    b.add_argument("--force-base", action="store_true",
                   help="also run debootstrap again for the nginx base layer")
    sub.add_parser("summary", help="print the images of images.json")
    args = parser.parse_args()
    if args.command == "build":
        build(args.force, args.force_base)
    else:
        summary()


if __name__ == "__main__":
    main()
