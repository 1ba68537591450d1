"""Finding, verifying and loading Fashion-MNIST.

Where the data comes from, in this order:

1. the data folder: ``--data-dir`` / ``$ARCHLAB_DATA``, else ``$XDG_CACHE_HOME/archlab``
   (``~/.cache/archlab``), laid out as torchvision expects (``FashionMNIST/raw/``);
   IDX files (plain or ``.gz``) lying directly in that folder are taken too;
2. Debian's package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``,
   gzip files), decompressed once into the data folder;
3. torchvision's download (needs the internet).

Every file is checked by the MD5 of its uncompressed bytes before it is used. The
whole dataset is then held in memory as one uint8 tensor per split (47 MB in all).
torchvision is imported only to download.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import os
import shutil
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from archlab._atomic import atomic_path, remove_stale_partials
from archlab._table import Table, Tabular
from archlab.errors import ArchlabError, os_reason
from archlab.models import IMAGE_SHAPE  # noqa: F401  (its home is models; read here too)

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# MD5 of the uncompressed IDX files (Debian recompressed its .gz copies, so the .gz differ)
CHECKSUMS: dict[str, str] = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

REMEDIES = (
    "connect to the internet (torchvision downloads it), "
    "install Debian's package (apt-get install dataset-fashion-mnist), "
    "or point --data-dir (or $ARCHLAB_DATA) at a folder that holds the four IDX files"
)


def default_data_dir() -> Path:
    """``$ARCHLAB_DATA``, else ``$XDG_CACHE_HOME/archlab`` (``~/.cache/archlab``)."""
    if os.environ.get("ARCHLAB_DATA"):
        return Path(os.environ["ARCHLAB_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "archlab"


def raw_dir(root: Path) -> Path:
    """Where torchvision's ``FashionMNIST(root)`` reads the uncompressed IDX files."""
    return Path(root) / "FashionMNIST" / "raw"


@dataclass
class DataSource:
    """Where the data was found and what its checksums say."""

    root: Path
    origin: str
    files: dict[str, Path] = field(default_factory=dict)
    md5: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{raw_dir(self.root)} ({self.origin})"


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# A file's MD5 is recomputed only when its stat changed since it was verified: size,
# mtime, ctime (which no user tool can set back) and inode. A file whose timestamps are
# younger than _RACY_SECONDS is never cached (a write within the timestamps' granularity
# could otherwise keep them). Reading the 4 files' MD5 cost 0.2-0.3 s of every command.
# The cache lives with the user's caches, never in the data folder: verifying changes
# nothing there.
_MD5_CACHE = "verified-md5.json"
_RACY_SECONDS = 2.0


def _md5_cache_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "archlab" / _MD5_CACHE


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _verified_md5s(raw: Path, names: Sequence[str]) -> dict[str, str]:
    """The MD5 of each file in ``raw``, from the cache where the file is unchanged."""
    import json
    import time

    cache_path = _md5_cache_path()
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    digests, changed = {}, False
    for name in names:
        path = (raw / name).absolute()
        key, entry = _stat_key(path), cache.get(str(path))
        if isinstance(entry, dict) and entry.get("stat") == key and entry.get("md5"):
            digests[name] = entry["md5"]
            continue
        digests[name] = md5_of(path)
        if time.time_ns() - max(key[1], key[2]) > _RACY_SECONDS * 1e9:
            cache[str(path)] = {"stat": key, "md5": digests[name]}
            changed = True
        elif cache.pop(str(path), None) is not None:
            changed = True
    if changed:
        try:
            with atomic_path(cache_path) as partial:
                partial.write_text(json.dumps(cache, indent=0), encoding="utf-8")
        except OSError:
            pass  # no writable cache folder: verified each time
    return digests


def _find(folder: Path, names: Mapping[str, str]) -> dict[str, Path]:
    """The IDX files in ``folder``, plain or gzipped, by name."""
    found = {}
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def _install(source: Path, target: Path) -> None:
    """Copy (or gunzip) ``source`` to ``target`` atomically: never a half-written file."""
    opener = gzip.open if source.suffix == ".gz" else open
    try:
        src = opener(source, "rb")
    except OSError as exc:
        raise ArchlabError(f"cannot read {source}: {os_reason(exc)}", 1) from exc
    try:
        with src, atomic_path(target) as partial, open(partial, "wb") as dst:
            try:
                shutil.copyfileobj(src, dst, 1 << 20)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise ArchlabError(
                    f"{source}: cannot read it ({exc}); the file is damaged", 1
                ) from exc
    except OSError as exc:  # the data folder: read-only, full, not a folder, not ours
        where = exc.filename if exc.filename and Path(exc.filename) != source else target.parent
        raise ArchlabError(
            f"cannot write the data to {where}: {os_reason(exc)}; point --data-dir (or "
            "$ARCHLAB_DATA) at a folder you can write",
            1,
        ) from exc


def _download(root: Path) -> None:
    from torchvision.datasets import FashionMNIST

    try:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ArchlabError(
            f"Fashion-MNIST is not on this machine and the download failed ({reason}); {REMEDIES}",
            1,
        ) from exc


def prepare(
    data_dir: str | os.PathLike | None = None,
    *,
    system_dir: str | os.PathLike | None = None,
    download: bool = True,
    checksums: Mapping[str, str] = CHECKSUMS,
) -> DataSource:
    """Make sure the four verified IDX files are in ``<data_dir>/FashionMNIST/raw``.

    Args:
        data_dir: the data folder. Default: :func:`default_data_dir`.
        system_dir: a folder of IDX files to take them from. Default: Debian's package,
            ``/usr/share/datasets/fashion-mnist``.
        download: try torchvision's download as the last resort. Default: True.
        checksums: expected MD5 of each uncompressed file. Default: Fashion-MNIST's.

    Returns:
        A :class:`DataSource`. Raises :class:`~archlab.ArchlabError` naming the file and
        what to do when a file is wrong or truncated, or naming all three remedies when
        there is no data at all.
    """
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    system_dir = Path(system_dir) if system_dir is not None else DEBIAN_DIR
    if root.exists() and not root.is_dir():
        raise ArchlabError(f"data folder {root} is a file, not a folder")
    raw = raw_dir(root)
    with contextlib.suppress(OSError):  # what a run killed while decompressing left
        remove_stale_partials(raw)
    for name in checksums:
        if (raw / name).exists() and not (raw / name).is_file():
            raise ArchlabError(
                f"{raw / name} is a folder, not the data file; remove it and run `archlab "
                "data` again",
                1,
            )
    have = {n for n in checksums if (raw / n).is_file()}
    origin = f"data folder {root}"
    # gzipped files already in raw/, loose files in the data folder, then Debian's package
    system_label = "Debian's package, " if system_dir == DEBIAN_DIR else ""
    for label, folder in (("", raw), ("files in ", root), (system_label, system_dir)):
        missing = [n for n in checksums if n not in have]
        if not missing:
            continue
        found = _find(folder, missing)
        for name, path in found.items():
            _install(path, raw / name)
            have.add(name)
        if found:
            origin = f"decompressed once from {label}{folder}"
    if len(have) < len(checksums):
        if not download:
            raise ArchlabError(f"Fashion-MNIST is not in {raw} or {system_dir}; {REMEDIES}", 1)
        _download(root)
        origin = "downloaded by torchvision"
    source = DataSource(root, origin, {n: raw / n for n in checksums})
    try:
        digests = _verified_md5s(raw, list(checksums))
    except OSError as exc:
        raise ArchlabError(f"cannot read {exc.filename or raw}: {os_reason(exc)}", 1) from exc
    for name, expected in checksums.items():
        path = raw / name
        got = digests[name]
        source.md5[name] = got
        if got != expected:
            raise ArchlabError(
                f"{path} is corrupt or truncated (MD5 {got}, expected {expected}); delete it and "
                "run `archlab data` again to restore it",
                1,
            )
    return source


@dataclass
class FashionMNIST:
    """Both splits in memory: images ``(N, 28, 28)`` uint8, labels ``(N,)`` int64.

    Example::

        >>> data = archlab.load_fashion_mnist()  # doctest: +SKIP
        >>> data.test_images[42].shape  # doctest: +SKIP
        torch.Size([28, 28])
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: DataSource | None = None
    classes: tuple[str, ...] = CLASSES

    def __repr__(self) -> str:
        return (
            f"FashionMNIST(train={len(self.train_labels):,}, test={len(self.test_labels):,}, "
            f"source={self.source})"
        )

    def pixel_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of the training pixels, scaled to [0, 1]."""
        pixels = self.train_images.reshape(-1)
        # exact integer sums from the 256-bin histogram: 0.06 s of CPU where squaring 47
        # million pixels as int64 took 0.84 s, on every careful-recipe training run
        counts = torch.bincount(pixels, minlength=256).to(torch.int64)
        values = torch.arange(len(counts), dtype=torch.int64)
        total = int((counts * values).sum())
        squares = int((counts * values * values).sum())
        n = pixels.numel()
        mean = total / n
        return mean / 255, ((squares / n - mean**2) ** 0.5) / 255


def without_class(data: FashionMNIST, label: int) -> FashionMNIST:
    """``data`` without any image of class ``label``, in training and test: train on it
    (``archlab.train("dnn", hold_out=6)`` does, into ``runs/dnn-no-Shirt``), then
    :func:`archlab.ood` asks whether the model flags the class it never saw.

    Args:
        data: the dataset.
        label: the class to leave out, 0-9.

    Returns:
        A :class:`FashionMNIST` of the other nine classes (54,000 and 9,000 images for
        the real data), the images in their order.

    Example::

        >>> data = archlab.load_fashion_mnist()                          # doctest: +SKIP
        >>> len(archlab.without_class(data, 6).train_labels)             # doctest: +SKIP
        54000
    """
    from dataclasses import replace

    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(CLASSES):
        raise ArchlabError(f"held_out={label!r}: give a class 0-{len(CLASSES) - 1}")
    train, test = data.train_labels != label, data.test_labels != label
    return replace(
        data,
        train_images=data.train_images[train],
        train_labels=data.train_labels[train],
        test_images=data.test_images[test],
        test_labels=data.test_labels[test],
    )


def read_idx(path: Path) -> torch.Tensor:
    """Read one uncompressed IDX file (uint8 data) as a tensor, checking its header.

    The same format torchvision's reader parses; archlab reads it itself because importing
    torchvision costs 2.5 s here (it imports torch._dynamo), a sixth of the DNN's whole
    training time. ``tests/test_data.py`` checks both readers agree on the real files.
    The pixels are read straight into the tensor's memory (one copy, not two: 0.03 s
    instead of 0.06 s for the 47 MB of training images).
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise ArchlabError(
                    f"{path} is not an IDX file of unsigned bytes (bad magic number)", 1
                )
            ndim = head[3]
            shape = f.read(4 * ndim)
            if ndim < 1 or len(shape) < 4 * ndim:
                raise ArchlabError(f"{path}: truncated IDX header", 1)
            dims = [int.from_bytes(shape[4 * i : 4 * i + 4], "big") for i in range(ndim)]
            expected = 4 + 4 * ndim + math.prod(dims)
            if size != expected:
                raise ArchlabError(
                    f"{path}: {size:,} bytes where its header promises {expected:,} (truncated?)",
                    1,
                )
            pixels = bytearray(math.prod(dims))
            if f.readinto(pixels) != len(pixels):
                raise ArchlabError(f"{path} changed while it was read; run again", 1)
    except OSError as exc:
        raise ArchlabError(f"cannot read {path}: {os_reason(exc)}", 1) from exc
    if not pixels:
        return torch.empty(dims, dtype=torch.uint8)
    return torch.frombuffer(pixels, dtype=torch.uint8).reshape(dims)


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    system_dir: str | os.PathLike | None = None,
    download: bool = True,
    checksums: Mapping[str, str] = CHECKSUMS,
) -> FashionMNIST:
    """Find, verify and load Fashion-MNIST into memory.

    The files sit where ``torchvision.datasets.FashionMNIST(root)`` expects them, so the
    same folder serves torchvision too.

    Args: as :func:`prepare`.

    Returns:
        A :class:`FashionMNIST` with uint8 images; nothing is scaled yet.

    Example::

        >>> data = archlab.load_fashion_mnist()  # doctest: +SKIP
        >>> data.train_images.shape  # doctest: +SKIP
        torch.Size([60000, 28, 28])
    """
    source = prepare(data_dir, system_dir=system_dir, download=download, checksums=checksums)
    raw = raw_dir(source.root)
    splits = []
    for prefix in ("train", "t10k"):
        images = read_idx(raw / f"{prefix}-images-idx3-ubyte")
        labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte").long()
        if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
            raise ArchlabError(
                f"{raw}: {prefix} images {tuple(images.shape)} do not match labels "
                f"{tuple(labels.shape)}",
                1,
            )
        splits += [images, labels]
    return FashionMNIST(*splits, source=source)


@dataclass
class DataReport(Tabular):
    """What ``archlab data`` prints: the source, the checksums and the class counts."""

    source: DataSource
    checksums: dict[str, tuple[str, str]]  # file -> (found, expected)
    train_counts: list[int]
    test_counts: list[int]
    classes: tuple[str, ...] = CLASSES

    @property
    def ok(self) -> bool:
        return all(found == expected for found, expected in self.checksums.values())

    def _parts(self) -> list[Table | str]:
        sums = Table(
            ["file", "MD5 (uncompressed)", "status"],
            [
                [n, f, "ok" if f == e else f"WRONG, expected {e}"]
                for n, (f, e) in self.checksums.items()
            ],
        )
        counts = Table(
            ["label", "class", "train", "test"],
            [
                [i, c, f"{a:,}", f"{b:,}"]
                for i, (c, a, b) in enumerate(
                    zip(self.classes, self.train_counts, self.test_counts, strict=True)
                )
            ]
            + [["", "total", f"{sum(self.train_counts):,}", f"{sum(self.test_counts):,}"]],
        )
        return [f"Fashion-MNIST in {self.source}", sums, counts]


def data_report(data: FashionMNIST, checksums: Mapping[str, str] = CHECKSUMS) -> DataReport:
    """Checksums and class counts of a loaded dataset (6,000 per class in train, 1,000 in test)."""
    n = len(data.classes)
    return DataReport(
        data.source,
        {name: (data.source.md5.get(name, "?"), expected) for name, expected in checksums.items()},
        torch.bincount(data.train_labels, minlength=n).tolist(),
        torch.bincount(data.test_labels, minlength=n).tolist(),
        data.classes,
    )
