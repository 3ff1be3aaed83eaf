"""A real Docker engine and a registry-free runtime image for the `docker` tests.

Engine: use the running one; else, as root, start `dockerd` for the session (and stop it afterwards); else skip
with the reason. Image: no registry is reachable, so the image is `docker import`ed from a root filesystem of a few
kilobytes written here (merged-/usr symlinks, /etc/passwd with a non-root user, /tmp, a home), and the host's /usr,
Python installation and the repository are bind-mounted read-only into its containers ("mounting the project's
environment"). It is tagged by the hash of its content and reused by later runs.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

RUNTIME_UID = 1000  # the image's non-root user
IMAGE_REPO = "deepimagine-test-runtime"


def docker(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)


def engine_version() -> str | None:
    try:
        out = docker("info", "--format", "{{.ServerVersion}}", timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory):
    """The engine's version; starts dockerd as root when none runs, skips with the reason when none can run."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH (Debian: apt-get install docker.io)")
    version = engine_version()
    if version:
        yield version
        return
    if os.geteuid() != 0:
        pytest.skip("no Docker engine is running and starting dockerd needs root")
    if shutil.which("dockerd") is None:
        pytest.skip("no Docker engine is running and dockerd is not installed (apt-get install docker.io)")
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (version := engine_version()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    if not version:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        version = engine_version()  # another process may have started an engine meanwhile
        if not version:
            pytest.skip(f"dockerd could not start: {log.read_text(errors='replace')[-600:]}")
        yield version
        return
    yield version
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _rootfs_tar() -> bytes:
    """A root filesystem for containers whose /usr, Python and code are bind-mounted from the host."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int = 0o755, data: bytes = b"", link: str = "", uid: int = 0):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
            info.uid = info.gid = uid
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in ("usr", "etc", "root", "home", "proc", "sys", "dev", "var", "run", "data"):
            add(d, tarfile.DIRTYPE)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("home/deepimagine", tarfile.DIRTYPE, 0o755, uid=RUNTIME_UID)
        for link in ("bin", "lib", "lib64", "sbin"):  # Debian's merged /usr
            add(link, tarfile.SYMTYPE, link=f"usr/{link}")
        user = f"deepimagine:x:{RUNTIME_UID}:{RUNTIME_UID}::/home/deepimagine:/bin/sh\n"
        add("etc/passwd", tarfile.REGTYPE, 0o644, f"root:x:0:0:root:/root:/bin/sh\n{user}".encode())
        add("etc/group", tarfile.REGTYPE, 0o644, f"root:x:0:\ndeepimagine:x:{RUNTIME_UID}:\n".encode())
    return buf.getvalue()


@pytest.fixture(scope="session")
def runtime_image(docker_engine) -> str:
    """Tag of the test runtime image, imported once and reused while its content is unchanged."""
    data = _rootfs_tar()
    # dagster-docker starts each step as `dagster api execute_step ...`: this interpreter's scripts come first.
    path = f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin"
    changes = [f"USER {RUNTIME_UID}:{RUNTIME_UID}", "WORKDIR /home/deepimagine", "ENV HOME=/home/deepimagine",
               f"ENV PATH={path}"]
    tag = f"{IMAGE_REPO}:{hashlib.sha256(data + repr(changes).encode()).hexdigest()[:12]}"
    if docker("image", "inspect", tag).returncode != 0:
        args = [arg for change in changes for arg in ("--change", change)]
        out = subprocess.run(["docker", "import", *args, "-", tag], input=data, capture_output=True, timeout=120)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
    return tag


def host_runtime_mounts(repo: Path) -> list[str]:
    """Read-only `path:path:ro` mounts that let a container run this interpreter with this environment and code."""
    candidates = {"/usr", str(repo)}
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable), *sys.path):
        if p and os.path.isdir(p):
            candidates.update({os.path.abspath(p), os.path.realpath(p)})
    tmp = tempfile.gettempdir()  # never hide the test's work dirs behind a read-only parent (e.g. a script in /tmp)
    candidates = {p for p in candidates if not (tmp == p or tmp.startswith(p.rstrip("/") + "/"))}
    kept: list[str] = []
    for path in sorted(candidates):  # parents sort before their children
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return [f"{p}:{p}:ro" for p in kept]
