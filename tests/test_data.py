import gzip

import pytest
import torch

import archlab
from archlab.errors import ArchlabError
from archlab.training import data as D

from .synthetic import idx_bytes, write_idx_set


def test_gzip_files_from_a_system_folder_are_decompressed_verified_and_loaded(tmp_path):
    sums = write_idx_set(tmp_path / "system", gz=True)
    loaded = D.load_fashion_mnist(
        tmp_path / "data", system_dir=tmp_path / "system", download=False, checksums=sums
    )
    assert loaded.train_images.shape == (20, 28, 28) and loaded.train_images.dtype == torch.uint8
    assert loaded.test_labels.tolist() == [i % 10 for i in range(10)]
    assert (tmp_path / "data" / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
    assert "decompressed once from" in loaded.source.origin
    again = D.prepare(
        tmp_path / "data", system_dir=tmp_path / "nowhere", download=False, checksums=sums
    )
    assert again.origin.startswith("data folder")  # the second time, nothing to decompress


def test_plain_files_lying_in_the_data_folder_are_taken(tmp_path):
    sums = write_idx_set(tmp_path / "mine", gz=False)
    source = D.prepare(
        tmp_path / "mine", system_dir=tmp_path / "nowhere", download=False, checksums=sums
    )
    assert source.md5 == sums


def test_a_corrupted_file_is_named_and_never_used(tmp_path):
    sums = write_idx_set(tmp_path / "system")
    D.prepare(tmp_path / "data", system_dir=tmp_path / "system", download=False, checksums=sums)
    victim = D.raw_dir(tmp_path / "data") / "train-images-idx3-ubyte"
    blob = bytearray(victim.read_bytes())
    blob[100] ^= 0xFF
    victim.write_bytes(bytes(blob))
    with pytest.raises(ArchlabError, match="train-images-idx3-ubyte is corrupt or truncated"):
        D.load_fashion_mnist(
            tmp_path / "data", system_dir=tmp_path / "system", download=False, checksums=sums
        )


def test_a_truncated_gzip_is_an_error_and_leaves_no_partial_file(tmp_path):
    sums = write_idx_set(tmp_path / "system")
    gz = tmp_path / "system" / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:15])
    with pytest.raises(ArchlabError, match=r"t10k-labels-idx1-ubyte\.gz: cannot read it"):
        D.prepare(tmp_path / "data", system_dir=tmp_path / "system", download=False, checksums=sums)
    assert not list(D.raw_dir(tmp_path / "data").glob(".*partial"))


def test_read_idx_checks_magic_and_length(tmp_path):
    good = idx_bytes(torch.zeros(3, 2, 2, dtype=torch.uint8))
    (tmp_path / "good").write_bytes(good)
    assert D.read_idx(tmp_path / "good").shape == (3, 2, 2)
    (tmp_path / "magic").write_bytes(b"\x00\x00\x0d" + good[3:])  # float32 type code
    with pytest.raises(ArchlabError, match="bad magic number"):
        D.read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(ArchlabError, match="truncated"):
        D.read_idx(tmp_path / "short")


class _Offline:
    """torchvision's FashionMNIST where the network is down, as its download fails there."""

    def __init__(self, root, train=True, download=False):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\n"
            "<urlopen error [Errno -3] Temporary failure in name resolution>"
        )


def test_no_data_and_no_internet_names_all_three_remedies(tmp_path, monkeypatch):
    import torchvision.datasets

    # the network is what fails here, not archlab's own wrapper: its message is under test
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", _Offline)
    with pytest.raises(ArchlabError) as info:
        D.prepare(tmp_path / "empty", system_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 1
    assert "download failed (<urlopen error [Errno -3] Temporary failure" in message
    assert "internet" in message and "dataset-fashion-mnist" in message and "--data-dir" in message


def test_data_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ArchlabError, match="is a file, not a folder"):
        D.prepare(tmp_path / "f", download=False)


def test_pixel_stats_are_exact_on_a_small_case():
    images = torch.tensor([[[0, 255]]], dtype=torch.uint8).expand(2, 1, 2)
    stats = D.FashionMNIST(images, torch.zeros(2), images, torch.zeros(2)).pixel_stats()
    assert stats == pytest.approx((0.5, 0.5))


@pytest.mark.realdata
def test_real_fashion_mnist(real_data):
    assert real_data.train_images.shape == (60_000, 28, 28)
    assert real_data.test_images.shape == (10_000, 28, 28)
    assert torch.bincount(real_data.train_labels).tolist() == [6_000] * 10
    assert torch.bincount(real_data.test_labels).tolist() == [1_000] * 10
    assert real_data.source.md5 == D.CHECKSUMS
    mean, std = real_data.pixel_stats()
    assert (round(mean, 4), round(std, 4)) == (0.2860, 0.3530)
    report = D.data_report(real_data)
    assert report.ok and "6,000" in str(report)


@pytest.mark.realdata
def test_archlabs_reader_equals_torchvisions(real_data):
    from torchvision.datasets import FashionMNIST

    for train, images, labels in (
        (True, real_data.train_images, real_data.train_labels),
        (False, real_data.test_images, real_data.test_labels),
    ):
        theirs = FashionMNIST(str(real_data.source.root), train=train, download=False)
        assert torch.equal(theirs.data, images) and torch.equal(theirs.targets, labels)


def test_gzip_module_roundtrip_sanity(tmp_path):
    # the synthetic writer and archlab agree on what "uncompressed" means
    sums = write_idx_set(tmp_path, gz=True)
    blob = gzip.decompress((tmp_path / "train-labels-idx1-ubyte.gz").read_bytes())
    assert D.hashlib.md5(blob).hexdigest() == sums["train-labels-idx1-ubyte"]


def test_the_public_loader_is_this_modules():
    import inspect

    assert inspect.unwrap(archlab.load_fashion_mnist) is D.load_fashion_mnist


def test_the_default_data_folder_is_the_documented_one(monkeypatch, tmp_path):
    """$ARCHLAB_DATA, else $XDG_CACHE_HOME/archlab, else ~/.cache/archlab (the CLI's help)."""
    monkeypatch.delenv("ARCHLAB_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert D.default_data_dir() == tmp_path / "home" / ".cache" / "archlab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert D.default_data_dir() == tmp_path / "cache" / "archlab"
    monkeypatch.setenv("ARCHLAB_DATA", "~/fm")
    assert D.default_data_dir() == tmp_path / "home" / "fm"


def test_data_report_compares_the_loaded_files_with_the_expected_checksums(tmp_path):
    sums = write_idx_set(tmp_path / "system", gz=True)
    data = D.load_fashion_mnist(
        tmp_path / "data", system_dir=tmp_path / "system", download=False, checksums=sums
    )
    assert D.data_report(data, sums).ok
    wrong = D.data_report(data)  # these synthetic files are not Fashion-MNIST's
    assert not wrong.ok and "WRONG, expected f4a8712d7a061bf5bd6d2ca38dc4d50a" in str(wrong)
    assert wrong.train_counts == [2] * 10  # 20 images, labels 0-9 twice
