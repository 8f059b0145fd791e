import numpy as np
import pytest
import torch

from cce_demo import data
from cce_demo.datasets import CIFAR10_CLASSES
from cce_demo.data import (
    DataUnavailableError, ImageSplit, augment_batch, load_dataset, long_tail_counts, long_tail_indices,
    long_tail_subset, synthetic_dataset, to_model_input,
)


def test_exponential_counts_match_the_protocol_table():
    assert long_tail_counts(5000, 10, 100, "exp") == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert sum(long_tail_counts(5000, 10, 100, "exp")) == 12406
    assert long_tail_counts(5000, 10, 10, "exp") == [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]
    assert sum(long_tail_counts(5000, 10, 10, "exp")) == 20431
    assert sum(long_tail_counts(5000, 10, 50, "exp")) == 13996


def test_cifar100_analogues():
    counts = long_tail_counts(500, 100, 100, "exp")
    assert counts[0] == 500 and counts[-1] == 5 and sum(counts) == 10847
    assert sum(long_tail_counts(500, 100, 10, "exp")) == 19573


def test_step_profile_and_balanced_ratio():
    assert long_tail_counts(5000, 10, 100, "step") == [5000] * 5 + [50] * 5
    assert long_tail_counts(500, 100, 10, "step") == [500] * 50 + [50] * 50
    assert long_tail_counts(100, 10, 1, "exp") == [100] * 10
    with pytest.raises(ValueError, match="imbalance_ratio"):
        long_tail_counts(100, 10, 0.5, "exp")
    with pytest.raises(ValueError, match="profile"):
        long_tail_counts(100, 10, 10, "linear")


def test_subset_is_seeded_and_has_the_counts():
    labels = torch.arange(10).repeat(50)
    counts = long_tail_counts(50, 10, 10, "exp")
    first = long_tail_indices(labels, counts, seed=3)
    assert torch.equal(first, long_tail_indices(labels, counts, seed=3))
    assert not torch.equal(first, long_tail_indices(labels, counts, seed=4))
    assert torch.bincount(labels[first], minlength=10).tolist() == counts


def test_long_tail_subset_leaves_the_test_split_alone():
    dataset = synthetic_dataset(train_per_class=100, test_per_class=20)
    subset, counts = long_tail_subset(dataset.train, 10, 100, "exp", seed=0)
    assert counts[0] == 100 and counts[-1] == 1 and len(subset) == sum(counts)
    assert len(dataset.test) == 200 and torch.bincount(dataset.test.labels).tolist() == [20] * 10
    capped, capped_counts = long_tail_subset(dataset.train, 10, 1, "exp", seed=0, max_per_class=7)
    assert capped_counts == [7] * 10 and len(capped) == 70


def test_augmentation_is_a_shifted_window_or_its_mirror():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (64, 32, 32, 3), generator=generator, dtype=torch.int64).to(torch.uint8)
    out = augment_batch(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    again = augment_batch(images, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    padded = torch.nn.functional.pad(images, (0, 0, 4, 4, 4, 4))
    flips = 0
    for index in range(len(images)):
        candidates = []
        for dy in range(9):
            for dx in range(9):
                window = padded[index, dy : dy + 32, dx : dx + 32]
                candidates += [torch.equal(out[index], window), torch.equal(out[index], window.flip(1))]
        assert any(candidates)
        flips += int(not any(candidates[0::2]))
    assert 10 < flips < 54  # about half are mirrored


def test_model_input_is_normalised_channels_last():
    images = torch.full((2, 32, 32, 3), 255, dtype=torch.uint8)
    x = to_model_input(images, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    assert x.shape == (2, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([2.0, 1.0, 0.5]))


def write_npz(folder, count_per_class, classes):
    folder.mkdir(parents=True)
    for split, per_class in (("train", count_per_class), ("test", 3)):
        labels = np.repeat(np.arange(len(classes)), per_class).astype(np.int64)
        images = np.random.default_rng(0).integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
        np.savez_compressed(folder / f"{split}.npz", images=images, labels=labels, classes=np.array(classes))


def test_npz_folder_is_read(tmp_path):
    classes = list(CIFAR10_CLASSES)
    write_npz(tmp_path / "cifar10", 5, classes)
    dataset = load_dataset("cifar10", tmp_path, allow_download=False)
    assert dataset.class_names == tuple(classes) and len(dataset.train) == 50 and len(dataset.test) == 30
    assert dataset.source.startswith("npz:")


def test_data_dir_from_environment(tmp_path, monkeypatch):
    write_npz(tmp_path / "cifar10", 2, list(CIFAR10_CLASSES))
    monkeypatch.setenv("CCE_DATA_DIR", str(tmp_path))
    assert len(load_dataset("cifar10", allow_download=False).train) == 20


def test_missing_data_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(DataUnavailableError) as caught:
        load_dataset("cifar10", tmp_path / "nowhere", allow_download=False)
    message = str(caught.value)
    assert str(tmp_path / "nowhere") in message and "train.npz" in message and "--data-dir" in message


def test_image_split_validates():
    with pytest.raises(ValueError, match="images"):
        ImageSplit(torch.zeros(2, 32, 32, 3), torch.zeros(2, dtype=torch.int64))


def make_cifar10_archive(folder, per_class=3):
    """A tiny archive in the official CIFAR-10 python format (pickled batches in cifar-10-batches-py/)."""
    import io
    import pickle
    import tarfile

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        def add(name, value):
            payload = pickle.dumps(value)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))

        labels = list(np.repeat(np.arange(10), per_class))
        for name in [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]:
            add(name, {"data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8), "labels": labels})
        add("batches.meta", {"label_names": list(CIFAR10_CLASSES)})
    path = folder / "cifar-10-python.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path


def test_download_reports_progress_and_loads(tmp_path, monkeypatch):
    """The download path against a server on 127.0.0.1 (the real one needs internet)."""
    import functools
    import http.server
    import threading

    from torchvision.datasets import cifar

    served = tmp_path / "served"
    served.mkdir()
    make_cifar10_archive(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # The tiny archive cannot match the published checksums that torchvision checks per file.
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    monkeypatch.setattr(cifar.CIFAR10, "_check_integrity", lambda self: True)
    url = f"http://127.0.0.1:{server.server_address[1]}/cifar-10-python.tar.gz"
    real_download = data.download_cifar
    monkeypatch.setattr(data, "download_cifar", lambda name, root, on_progress, should_stop: real_download(
        name, root, on_progress, url=url, md5=None, should_stop=should_stop))
    messages = []
    try:
        dataset = load_dataset("cifar10", tmp_path / "root", allow_download=True, on_progress=messages.append)
    finally:
        server.shutdown()
    assert len(dataset.train) == 150 and len(dataset.test) == 30 and dataset.source.startswith("torchvision:")
    assert any("Downloading CIFAR-10" in message and "%" in message for message in messages)
    assert messages[-1].startswith("Extracting")


def test_failed_download_gives_the_clear_error(tmp_path, monkeypatch):
    def offline(name, root, on_progress, should_stop):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(data, "download_cifar", offline)
    with pytest.raises(DataUnavailableError, match="download failed.*Network is unreachable"):
        load_dataset("cifar10", tmp_path, allow_download=True)


def test_download_stops_when_asked(tmp_path, monkeypatch):
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    (served / "big.tar.gz").write_bytes(bytes(3 * data.DOWNLOAD_CHUNK_BYTES))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    chunks = {"count": 0}

    def stop_after_one_chunk():
        chunks["count"] += 1
        return chunks["count"] > 1

    url = f"http://127.0.0.1:{server.server_address[1]}/big.tar.gz"
    try:
        with pytest.raises(data.DownloadCancelled):
            data.download_cifar("cifar10", tmp_path / "root", lambda message: None, url=url, md5=None,
                                should_stop=stop_after_one_chunk)
    finally:
        server.shutdown()
    assert list((tmp_path / "root").iterdir()) == []  # the partial file is gone


def test_the_data_copy_is_named_from_the_files_hashes_or_declared(tmp_path, monkeypatch):
    """issue 19: every run says which copy of CIFAR it came from."""
    import hashlib

    from cce_demo import provenance

    write_npz(tmp_path / "cifar10", 2, list(CIFAR10_CLASSES))
    folder = tmp_path / "cifar10"
    monkeypatch.delenv(provenance.DATA_COPY_ENV, raising=False)
    unknown = provenance.npz_provenance("cifar10", folder / "train.npz", folder / "test.npz")
    assert unknown["copy"] == "CIFAR-10 (unrecognised copy)" and provenance.DATA_COPY_ENV in unknown["how"]
    expected = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("train.npz", "test.npz")}
    assert unknown["sha256"] == expected
    monkeypatch.setenv(provenance.DATA_COPY_ENV, "CIFAR-10 (original)")
    declared = provenance.npz_provenance("cifar10", folder / "train.npz", folder / "test.npz")
    assert declared["copy"] == "CIFAR-10 (original)" and "declared" in declared["how"]
    monkeypatch.setitem(provenance.KNOWN_NPZ_COPIES, (expected["train.npz"], expected["test.npz"]), provenance.JPEG_COPY)
    detected = provenance.npz_provenance("cifar10", folder / "train.npz", folder / "test.npz")
    assert detected["copy"] == provenance.JPEG_COPY and "overruled" in detected["how"]  # the hash wins over a declaration
    assert data.load_dataset("cifar10", tmp_path, allow_download=False).provenance["sha256"] == expected


def test_the_projects_jpeg_copy_is_known_by_its_hashes():
    from cce_demo import provenance

    assert provenance.KNOWN_NPZ_COPIES[(
        "128c847b67290a8c69cd5d0c1b5dafeb5a8dd79fd248a088f8ec587a12edeb63",
        "331d25c1c88e45f74c9fc96d061645662d6fb1478151b854ba91f15068357eb9",
    )] == "CIFAR-10 (JPEG q75 copy)"
