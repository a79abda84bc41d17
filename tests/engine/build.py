"""Build the reference Engine images locally, cached by content.

    python3 tests/engine/build.py [--only TAG ...] [--cache-dir DIR] [--list]

The base image comes from a rootfs made by mmdebstrap (cached as .tar.zst, imported with
`docker import`); each Engine build is rendered into its own context holding only the migrations
of its schema level, and skipped when an image with the same content hash already exists.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(HERE, "builds.json")
SOURCE = os.path.join(HERE, "engine")


def load_spec(path=SPEC):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, **kwargs)


def image_label(ref, label):
    """The label's value, or None when the image does not exist."""
    proc = subprocess.run(["docker", "image", "inspect", ref, "--format", "{{json .Config.Labels}}"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    return (json.loads(proc.stdout) or {}).get(label, "")


def image_id(ref):
    proc = subprocess.run(["docker", "image", "inspect", ref, "--format", "{{.Id}}"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_base(spec, cache_dir, log):
    """Import the base image from the cached rootfs, creating the rootfs with mmdebstrap if needed."""
    ref = spec["base_image"]
    packages = ",".join(spec["base_packages"])
    key = hashlib.sha256(("bookworm minbase " + packages).encode()).hexdigest()[:12]
    if image_label(ref, "engine_ops.base_key") == key:
        return image_id(ref)
    os.makedirs(cache_dir, exist_ok=True)
    rootfs = os.path.join(cache_dir, "rootfs-bookworm-%s.tar.zst" % key)
    if not os.path.exists(rootfs):
        if not shutil.which("mmdebstrap"):
            sys.exit("build.py: mmdebstrap is not installed (apt-get install mmdebstrap); nothing was built")
        log("creating base rootfs with mmdebstrap (about 20 s)")
        sources = "/etc/apt/sources.list.d/debian.sources"
        mirror = [sources] if os.path.exists(sources) else []
        partial = rootfs + ".partial"
        with open(partial, "wb") as out:
            mm = subprocess.Popen(["mmdebstrap", "--quiet", "--variant=minbase", "--include=" + packages,
                                   "bookworm", "-"] + mirror, stdout=subprocess.PIPE)
            zs = subprocess.Popen(["zstd", "-q", "-6", "-T0", "-c"], stdin=mm.stdout, stdout=out)
            mm.stdout.close()
            if zs.wait() != 0 or mm.wait() != 0:
                os.unlink(partial)
                sys.exit("build.py: mmdebstrap failed; nothing was built")
        os.replace(partial, rootfs)
    log("importing base image %s" % ref)
    with subprocess.Popen(["zstd", "-dc", rootfs], stdout=subprocess.PIPE) as unz:
        run(["docker", "import", "-c", 'CMD ["/bin/bash"]', "-c", "LABEL engine_ops.base_key=" + key,
             "-", ref], stdin=unz.stdout, stdout=subprocess.DEVNULL)
    return image_id(ref)


def ensure_sqlite_vec(version, cache_dir, log=print):
    """The `sqlite_vec` package (loadable vec0 extension) from PyPI's wheel, unpacked once into the cache."""
    target = os.path.join(cache_dir, "sqlite_vec-%s" % version)
    if os.path.isfile(os.path.join(target, "sqlite_vec", "__init__.py")):
        return os.path.join(target, "sqlite_vec")
    os.makedirs(cache_dir, exist_ok=True)
    log("downloading the sqlite-vec %s wheel from PyPI" % version)
    with tempfile.TemporaryDirectory(prefix="sqlite-vec-") as download:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                               "sqlite-vec==%s" % version, "-d", download], capture_output=True, text=True,
                              check=False)
        wheels = [n for n in os.listdir(download) if n.endswith(".whl")]
        if proc.returncode != 0 or not wheels:
            sys.exit("build.py: cannot download sqlite-vec==%s from PyPI; nothing was built:\n%s"
                     % (version, proc.stderr))
        partial = target + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(os.path.join(download, wheels[0])) as wheel:
            wheel.extractall(partial, [n for n in wheel.namelist() if n.startswith("sqlite_vec/")])
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)
    return os.path.join(target, "sqlite_vec")


def render_context(build, spec, base_id, directory, sqlite_vec_dir=None):
    """Write the build context; return its content hash (the cache key)."""
    shutil.copytree(SOURCE, os.path.join(directory, "engine"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if sqlite_vec_dir:  # the vec0 extension every Engine loads into its brain connections
        shutil.copytree(sqlite_vec_dir, os.path.join(directory, "sqlite_vec"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    migrations = os.path.join(directory, "engine", "migrations")
    for name in os.listdir(migrations):
        if name[:4] > build["schema"]:
            os.unlink(os.path.join(migrations, name))
    for extra in build.get("extra_migrations", []):
        shutil.copy(os.path.join(HERE, "extra_migrations", extra + ".sql"), migrations)
    digest = hashlib.sha256(base_id.encode())
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, directory).encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    with open(os.path.join(HERE, "Dockerfile.in"), encoding="utf-8") as handle:
        template = handle.read()
    digest.update(template.encode())
    digest.update(json.dumps(build, sort_keys=True).encode())
    build_hash = digest.hexdigest()[:16]
    values = dict(build, base_image=spec["base_image"], build_hash=build_hash)
    dockerfile = template
    for key, value in values.items():
        dockerfile = dockerfile.replace("{%s}" % key, str(value))
    with open(os.path.join(directory, "Dockerfile"), "w", encoding="utf-8") as handle:
        handle.write(dockerfile)
    return build_hash


def build_all(only=None, cache_dir=None, log=print):
    spec = load_spec()
    cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "engine_ops")
    base_id = ensure_base(spec, cache_dir, log)
    vec_dir = ensure_sqlite_vec(spec["sqlite_vec"], cache_dir, log)
    built, cached = [], []
    for build in spec["builds"]:
        if only and build["tag"] not in only:
            continue
        ref = "%s:%s" % (spec["repository"], build["tag"])
        with tempfile.TemporaryDirectory(prefix="engine-ctx-") as ctx:
            build_hash = render_context(build, spec, base_id, ctx, vec_dir)
            if image_label(ref, "engine_ops.reference.build_hash") == build_hash:
                cached.append(ref)
                continue
            began = time.monotonic()
            env = dict(os.environ, DOCKER_BUILDKIT="0")
            proc = subprocess.run(["docker", "build", "-q", "-t", ref, ctx], env=env,
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.exit("build.py: docker build of %s failed:\n%s" % (ref, proc.stderr or proc.stdout))
            built.append(ref)
            log("built %s in %.1fs" % (ref, time.monotonic() - began))
    log("engine images: %d built, %d up to date (%s)" % (len(built), len(cached), ", ".join(built + cached)))
    return built, cached


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="build only this tag (repeatable)")
    parser.add_argument("--cache-dir", help="where the base rootfs is cached (default ~/.cache/engine_ops)")
    parser.add_argument("--list", action="store_true", help="print the builds and exit")
    args = parser.parse_args(argv)
    if args.list:
        for build in load_spec()["builds"]:
            print("%-28s schema %s  fault %-8s %s" % (build["tag"], build["schema"], build["fault"],
                                                      build["description"]))
        return 0
    build_all(args.only, args.cache_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
