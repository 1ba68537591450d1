"""``archlab explore`` writes like ``train`` (issue 28, item 1): whatever stops it, the
previous site at ``--out`` stays whole; a link, a foreign folder or a second writer is
refused with one line and nothing written.

The previous site is an explorer written first; each test stops, races or blocks a second
explore into it, then checks that the folder is still a whole site, byte for byte the
previous one (or, once the swap has happened, the new one, whole). Kills and signals run
the real CLI in a subprocess (``tests/faults.py``) with a hook installed by ``-c``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import archlab
from tests.faults import cli, digest, env, make_data, train_in_process

FORMAT = "archlab-explorer/1"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Synthetic data, a trained dnn, and a site explored from it (the template)."""
    root = tmp_path_factory.mktemp("explore-faults")
    data = root / "data"
    md5 = make_data(data)
    runs = root / "runs"
    train_in_process("dnn", data, md5, runs, max_iterations=2)
    site = root / "site"
    result = cli(_args(runs, site, data), environ=env(md5), cwd=root)
    assert result.returncode == 0, result.stderr
    return {"root": root, "data": data, "md5": md5, "runs": runs, "site": site}


def _args(runs: Path, out: Path, data: Path, images: int = 6) -> list:
    return ["explore", "dnn", "--runs", runs, "--out", out, "--data-dir", data,
            "--images", images]  # fmt: skip


def _previous(world, tmp_path) -> tuple[Path, dict]:
    out = tmp_path / "site"
    shutil.copytree(world["site"], out)
    return out, digest(out)


def _script(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("ARCHLAB.add(") and text.endswith(");\n"), path
    return json.loads(text[len("ARCHLAB.add(") : -3])


def assert_whole(folder: Path) -> None:
    """Every file the page loads is there and complete: the page's own files, both data
    scripts in the current format, and every sprite and kernel picture they name."""
    from PIL import Image

    for name in ("index.html", "explorer-core.js", "explorer.js", "explorer.css"):
        assert (folder / name).is_file(), name
    index = _script(folder / "data" / "index.js")["index"]
    assert index["format"] == FORMAT
    pictures = list(index["sprite"]["files"])
    for entry in index["runs"]:
        run = _script(folder / "data" / entry["key"] / "run.js")
        assert run["format"] == FORMAT and run["key"] == entry["key"]
        assert len(run["rows"]) == entry["rows"]
        for row in run["rows"]:
            pictures += row["act"].get("sprite", {}).get("files", [])
            if "kernels" in row:
                pictures.append(row["kernels"]["file"])
        for method in run["methods"]:
            pictures += method["sprite"]["files"]
    for picture in pictures:
        Image.open(folder / "data" / picture).load()  # a truncated PNG fails here


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and
            not p.name.endswith(".lock")]  # fmt: skip


# -- stopped mid-write: SIGTERM, Ctrl-C and kill -9 -----------------------------------------

# installs a hook, then runs the CLI: at POINT the process signals itself with SIG (0: it
# writes the file ARCHLAB_TEST_REACHED and waits, up to 120 s, for ARCHLAB_TEST_RELEASE)
HOOKED_CLI = """
import os, signal, sys, time
import archlab.cli, archlab.explorer.site as site, archlab.explorer.write as write
point, sig = os.environ["ARCHLAB_TEST_POINT"], int(os.environ["ARCHLAB_TEST_SIG"])

def reached():
    if sig:
        os.kill(os.getpid(), sig)
    else:
        open(os.environ["ARCHLAB_TEST_REACHED"], "w").close()
        deadline = time.monotonic() + 120
        release = os.environ["ARCHLAB_TEST_RELEASE"]
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.05)

if point == "sprites":  # the third picture written into the staging folder
    save, seen = write.save_png, []
    def save_png(*args, **kwargs):
        save(*args, **kwargs)
        seen.append(1)
        if len(seen) == 3:
            reached()
    write.save_png = save_png
elif point == "swap":  # the staging folder complete, not yet swapped in
    swap = site._swap_in
    def swap_in(staging, out):
        reached()
        swap(staging, out)
    site._swap_in = swap_in
elif point == "swapped":  # the new site in place, the previous one not yet removed
    exchange = site._exchange
    def exchanged(a, b):
        done = exchange(a, b)
        reached()
        return done
    site._exchange = exchanged
sys.exit(archlab.cli.main(sys.argv[1:]))
"""


def _hooked(world, out: Path) -> list:
    return [sys.executable, "-c", HOOKED_CLI, *map(str, _args(world["runs"], out, world["data"]))]


def _hook_env(world, point: str, sig: int, **extra: str) -> dict:
    return env(world["md5"], ARCHLAB_TEST_POINT=point, ARCHLAB_TEST_SIG=str(int(sig)), **extra)


CASES = {
    # (point, signal): the exit status it ends with
    ("sprites", signal.SIGTERM): 130,
    ("sprites", signal.SIGINT): 130,
    ("sprites", signal.SIGKILL): -signal.SIGKILL,
    ("swap", signal.SIGTERM): 130,
    ("swap", signal.SIGKILL): -signal.SIGKILL,
    ("swapped", signal.SIGKILL): -signal.SIGKILL,
}


@pytest.mark.parametrize(("point", "sig"), CASES, ids=[f"{p}-{s.name}" for p, s in CASES])
def test_a_stopped_explore_leaves_the_previous_site_whole(world, tmp_path, point, sig):
    out, before = _previous(world, tmp_path)
    result = subprocess.run(
        _hooked(world, out),
        env=_hook_env(world, point, sig),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == CASES[point, sig], result.stderr
    assert "Traceback" not in result.stderr
    assert_whole(out)
    if point == "swapped":  # the swap is one step: the new site, whole, is in place
        assert digest(out) != before
    else:
        assert digest(out) == before
        if sig != signal.SIGKILL:  # an orderly stop removes its staging folder itself
            assert not _leftovers(out)

    # the next explore clears what the killed one left and replaces the site
    again = cli(_args(world["runs"], out, world["data"]), environ=env(world["md5"]), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert_whole(out)
    assert not _leftovers(out)


def test_kill_at_random_moments_leaves_a_whole_site(world, tmp_path):
    """SIGKILL from outside after a random delay (start-up, computing, writing, swapping):
    the folder is always a whole site, the previous one or a new one."""
    import random

    out, _ = _previous(world, tmp_path)
    rng = random.Random(28)
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "archlab", *map(str, _args(world["runs"], out, world["data"]))],
            env=env(world["md5"]),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 8.0))
        proc.kill()
        proc.wait(timeout=60)
        assert_whole(out)


def test_two_writers_at_once_one_is_refused_and_the_site_is_whole(world, tmp_path):
    out, before = _previous(world, tmp_path)
    reached, release = tmp_path / "reached", tmp_path / "release"
    first = subprocess.Popen(
        _hooked(world, out),
        env=_hook_env(
            world, "swap", 0, ARCHLAB_TEST_REACHED=str(reached), ARCHLAB_TEST_RELEASE=str(release)
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not reached.exists():  # the first holds the lock, its site built, not swapped
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.1)
        assert digest(out) == before
        second = cli(_args(world["runs"], out, world["data"]), environ=env(world["md5"]),
                     cwd=tmp_path)  # fmt: skip
        assert second.returncode == 1
        line = second.stderr.strip()
        assert "\n" not in line and "is being written by archlab explore (pid" in line, line
    finally:
        release.touch()
        _out, err = first.communicate(timeout=240)
    assert first.returncode == 0, err
    assert_whole(out)
    assert not _leftovers(out)


# -- refused before anything is written ---------------------------------------------------


def _explore_in_process(world, out: Path, **kwargs) -> Path:
    from archlab.training.data import load_fashion_mnist

    checksums = json.loads(world["md5"].read_text())
    data = load_fashion_mnist(world["data"], checksums=checksums, download=False)
    return archlab.explore(["dnn"], images=4, out=out, runs=world["runs"], data=data,
                           methods="saliency", **kwargs)  # fmt: skip


def test_a_foreign_folder_is_refused_and_keeps_every_file(world, tmp_path):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "precious.csv").write_text("1,2,3\n")
    (project / "notes.txt").write_text("mine")
    before = digest(project)
    result = cli(_args(world["runs"], ".", world["data"]), environ=env(world["md5"]), cwd=project)
    assert result.returncode == 1
    assert "not an explorer site" in result.stderr and result.stderr.count("\n") == 1
    assert digest(project) == before


def test_the_runs_folder_itself_is_refused(world, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(world["runs"], runs)
    before = digest(runs)
    result = cli(_args(runs, runs, world["data"]), environ=env(world["md5"]), cwd=tmp_path)
    assert result.returncode == 1 and "not an explorer site" in result.stderr
    assert digest(runs) == before


def test_a_site_with_a_file_of_the_users_added_is_refused(world, tmp_path):
    out, _ = _previous(world, tmp_path)
    (out / "my-notes.txt").write_text("mine")
    before = digest(out)
    with pytest.raises(archlab.ArchlabError, match="not an explorer site"):
        _explore_in_process(world, out)
    assert digest(out) == before


@pytest.mark.parametrize("where", ["index.html", "explorer.js", "data/index.js", "data"])
def test_links_planted_in_the_site_are_never_written_through(world, tmp_path, where):
    out, _ = _previous(world, tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "index.js").write_text("precious")
    (victim / "keep").write_text("precious")
    planted = out / where
    if planted.is_dir():
        shutil.rmtree(planted)
    else:
        planted.unlink()
    planted.symlink_to(victim if where == "data" else victim / "keep")
    before = digest(victim)
    try:
        _explore_in_process(world, out)
    except archlab.ArchlabError as exc:  # a link at data/index.js: not a site it wrote
        assert "not an explorer site" in str(exc)
        assert planted.is_symlink()
    else:
        assert not planted.is_symlink()  # the new site replaced the folder holding it
        assert_whole(out)
    assert digest(victim) == before


def test_a_link_as_the_out_folder_is_refused(world, tmp_path):
    target = tmp_path / "elsewhere"
    shutil.copytree(world["site"], target)
    before = digest(target)
    link = tmp_path / "site"
    link.symlink_to(target)
    with pytest.raises(archlab.ArchlabError, match="symbolic link"):
        _explore_in_process(world, link)
    assert digest(target) == before and link.is_symlink()


def test_a_link_planted_at_the_staging_folder_is_not_followed(world, tmp_path):
    out, _ = _previous(world, tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (out.parent / f".site.{os.getpid()}.partial").symlink_to(victim)
    _explore_in_process(world, out)
    assert list(victim.iterdir()) == []
    assert_whole(out)


def test_a_lock_held_by_another_writer_is_one_line(world, tmp_path):
    import fcntl

    out, before = _previous(world, tmp_path)
    with open(tmp_path / ".site.lock", "w") as held:
        held.write("archlab explore (pid 4242)")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(archlab.ArchlabError) as caught:
            _explore_in_process(world, out)
    assert "being written by archlab explore (pid 4242)" in str(caught.value)
    assert caught.value.exit_code == 1
    assert digest(out) == before


# -- a full disk ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["images-0.png", "attr-saliency-0.png", "run.js", "index.js"])
def test_no_space_while_writing_keeps_the_previous_site(world, tmp_path, monkeypatch, where):
    """ENOSPC at one file of the new site (the same code as a full disk, no mount needed)."""
    from archlab.explorer import write

    out, before = _previous(world, tmp_path)
    real_png, real_script, seen = write.save_png, write._script, []

    def check(path):
        seen.append(Path(path).name)
        if Path(path).name == where:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

    def save_png(pixels, path, palette=None):
        check(path)
        return real_png(pixels, path, palette)

    def script(path, payload):
        check(path)
        return real_script(path, payload)

    monkeypatch.setattr(write, "save_png", save_png)
    monkeypatch.setattr(write, "_script", script)
    with pytest.raises(archlab.ArchlabError) as caught:
        _explore_in_process(world, out)
    assert where in seen
    message = str(caught.value)
    assert "no space left on device" in message and "\n" not in message
    assert caught.value.exit_code == 1
    assert digest(out) == before
    assert not _leftovers(out)


def test_a_full_disk_keeps_the_previous_site(world, tmp_path):
    """A real full file system: a small tmpfs (root only, where the container allows it;
    12 MB: a site holds the page's model runtime, 3.7 MB, and each run's graph)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "mnt"
    point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(point)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        out = point / "site"
        shutil.copytree(world["site"], out)
        filler = point / "filler"
        with open(filler, "wb") as handle:  # leave about 40 kB: less than a second site
            free = os.statvfs(point).f_bavail * os.statvfs(point).f_frsize
            handle.write(b"\0" * max(0, free - 40_000))
        before = digest(out)
        result = cli(_args(world["runs"], out, world["data"]), environ=env(world["md5"]),
                     cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("archlab: error: cannot write the explorer"), result.stderr
        assert "no space left on device" in last and "Traceback" not in result.stderr
        assert digest(out) == before
        assert not _leftovers(out)
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
