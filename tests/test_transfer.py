"""Export and import of runs as zips: the round trip keeps the models exact, and hostile uploads are refused
with a message naming the reason, leaving nothing in the runs directory."""
import csv
import io
import dataclasses
import json
import os
import shutil
import stat
import struct
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from cce_demo import transfer
from cce_demo.run_directory import RunWriter, load_models, read_events, read_run
from cce_demo.config import TrainConfig
from cce_demo.engine import train_paired
from cce_demo.models import build_model
from cce_demo.predict import ModelCache, classify_upload
from cce_demo.transfer import ExportRefused, ImportRefused, import_run, write_run_zip

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "cifar10-lt100-standard-ce-cce"
EXAMPLES = ROOT / "examples"
GIB = 2**30


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished paired CE/CCE run on synthetic data (a fraction of a second to train)."""
    config = TrainConfig(
        dataset="synthetic", imbalance_ratio=2.0, epochs=1, batch_size=64, learning_rate=0.05,
        warmup_epochs=0.0, device="cpu", max_per_class=20, synthetic_test_per_class=5,
    )
    writer = RunWriter(tmp_path_factory.mktemp("tiny-runs"), config, "tiny-run")
    writer.finish(train_paired(config, writer.record))
    return writer.run_dir


@pytest.fixture(scope="module")
def tiny_entries(tiny_run, tmp_path_factory) -> dict[str, bytes]:
    """The tiny run's export, as name -> bytes, for building variants."""
    path = write_run_zip(tiny_run, tmp_path_factory.mktemp("tiny-export"))
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture
def runs(tmp_path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


def write_zip(path: Path, entries: dict[str, bytes] | list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    items = entries.items() if isinstance(entries, dict) else entries
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name", on purpose
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in items:
                archive.writestr(name, data)
    return path


def with_metadata(entries: dict[str, bytes], change) -> dict[str, bytes]:
    metadata = json.loads(entries["run.json"])
    change(metadata)
    return {**entries, "run.json": json.dumps(metadata).encode()}


def raw_entry(name: str, size: int, declared_size: int | None = None, zero_chunks: bool = True, data: bytes = b""):
    """(name, raw deflate stream, crc, declared size): `size` zero bytes, deflated by repeating one
    full-flushed block of a zero MiB (so a 1 GiB entry costs a second, not a compression of 1 GiB)."""
    if zero_chunks:
        chunk = bytes(2**20)
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        first = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
        repeated = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
        stream = first + repeated * (size // len(chunk) - 1) + compressor.flush()
        crc = 0
        for _ in range(size // len(chunk)):
            crc = zlib.crc32(chunk, crc)
    else:
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        stream, crc, size = compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data)
    return name, stream, crc, size if declared_size is None else declared_size


def write_raw_zip(path: Path, entries) -> Path:
    """A zip written field by field, so that its headers can state any size."""
    body, directory = b"", b""
    for name, stream, crc, declared in entries:
        encoded = name.encode()
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(stream), declared, len(encoded), 0) + encoded + stream
        directory += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 0x0314, 20, 0, 8, 0, 0x21, crc, len(stream), declared, len(encoded),
            0, 0, 0, 0, (stat.S_IFREG | 0o644) << 16, offset,
        ) + encoded
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory), len(body), 0)
    path.write_bytes(body + directory + end)
    return path


def assert_refused(zip_path: Path, runs: Path, message: str) -> ImportRefused:
    with pytest.raises(ImportRefused, match=message) as caught:
        import_run(zip_path, runs)
    assert list(runs.iterdir()) == [], "a refused import left something behind"
    assert str(caught.value).startswith("import: ")
    return caught.value


# ---------------------------------------------------------------- export


@pytest.fixture(scope="module")
def shipped_zip(tmp_path_factory) -> Path:
    return write_run_zip(SHIPPED, tmp_path_factory.mktemp("export"))


def test_export_holds_the_run_files_and_two_csvs(shipped_zip):
    assert shipped_zip.name == "cifar10-lt100-standard-ce-cce.zip"
    assert [path.name for path in shipped_zip.parent.iterdir()] == [shipped_zip.name]  # no temporary left
    with zipfile.ZipFile(shipped_zip) as archive:
        assert sorted(archive.namelist()) == sorted([
            "run.json", "events.jsonl", "model-ce-seed0.safetensors", "model-cce-seed0.safetensors", "curves.csv", "recall.csv",
            "predictions-seed0.safetensors",
        ])
        for name in ("run.json", "events.jsonl", "model-ce-seed0.safetensors"):
            assert archive.read(name) == (SHIPPED / name).read_bytes()
        curves = list(csv.DictReader(io.StringIO(archive.read("curves.csv").decode())))
        recall = list(csv.DictReader(io.StringIO(archive.read("recall.csv").decode())))
    steps = [event for event in read_events(SHIPPED) if event["kind"] == "step"]
    started = next(event for event in read_events(SHIPPED) if event["kind"] == "started")
    assert len(curves) == 2 * len(steps) == 2 * started["total_steps"]  # every step of both losses
    assert list(curves[1]) == list(transfer.CURVES_COLUMNS)
    first, last_cce = steps[0], curves[-1]
    assert curves[0] == {"seed": "0", "step": "1", "global_step": "1", "epoch": str(first["epoch"]), "loss": "ce",
                         "training_loss": str(first["losses"]["ce"]), "cross_entropy_part": str(first["cross_entropy"]["ce"])}
    assert last_cce["loss"] == "cce" and float(last_cce["training_loss"]) == steps[-1]["losses"]["cce"]
    metadata = json.loads((SHIPPED / "run.json").read_text())
    assert len(recall) == 2 * 10 and list(recall[0]) == list(transfer.RECALL_COLUMNS)
    for row in recall:
        index = int(row["class_index"])
        assert row["class_name"] == metadata["class_names"][index]
        assert int(row["training_count"]) == metadata["class_counts"][index]
        assert float(row["recall"]) == metadata["final"]["evaluations"]["0"][row["loss"]]["per_class_recall"][index]


def test_export_reads_the_run_without_changing_it(tmp_path):
    before = {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in SHIPPED.iterdir()}
    write_run_zip(SHIPPED, tmp_path)
    assert {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in SHIPPED.iterdir()} == before


def test_export_refuses_a_run_still_training(tmp_path, tiny_run):
    writer = RunWriter(tmp_path / "runs", read_run(tiny_run).config, "live")  # owned by this process: running
    with pytest.raises(ExportRefused, match="'live' is still training"):
        write_run_zip(writer.run_dir, tmp_path / "out")
    assert not (tmp_path / "out" / "live.zip").exists()


def test_export_refuses_a_run_missing_a_model(tmp_path, tiny_run):
    copy = shutil.copytree(tiny_run, tmp_path / "tiny-run")
    (copy / "model-cce-seed0.safetensors").unlink()
    with pytest.raises(ExportRefused, match="missing its model file model-cce-seed0.safetensors"):
        write_run_zip(copy, tmp_path / "out")


# ---------------------------------------------------------------- import: the round trip


def test_round_trip_of_the_shipped_run_predicts_identically(shipped_zip, runs):
    imported = import_run(shipped_zip, runs)
    assert imported.run_id == "cifar10-lt100-standard-ce-cce" and not imported.renamed and imported.status == "done"
    assert imported.run_dir == runs / imported.run_id
    assert sorted(path.name for path in imported.run_dir.iterdir()) == [
        "events.jsonl", "model-cce-seed0.safetensors", "model-ce-seed0.safetensors", "predictions-seed0.safetensors",
        "run.json",  # the CSVs are not kept
    ]
    original, copy = read_run(SHIPPED), read_run(imported.run_dir)
    assert copy.config == original.config and copy.status == "done" and copy.final == original.final
    assert copy.class_names == original.class_names and copy.metadata["imported"]["original_run_id"] == original.run_id
    assert (imported.run_dir / "events.jsonl").read_bytes() == (SHIPPED / "events.jsonl").read_bytes()
    cache = ModelCache()
    images = sorted(EXAMPLES.glob("*.png"))
    assert len(images) == 10
    for image in images:
        _, expected = classify_upload(image, original, cache, k=10)
        _, got = classify_upload(image, copy, cache, k=10)
        assert got == expected and set(got) == {"ce", "cce"}, image.name


def test_a_taken_id_gets_a_new_one(shipped_zip, runs):
    assert import_run(shipped_zip, runs).run_id == "cifar10-lt100-standard-ce-cce"
    second = import_run(shipped_zip, runs)
    third = import_run(shipped_zip, runs)
    assert (second.run_id, second.renamed) == ("cifar10-lt100-standard-ce-cce-imported-2", True)
    assert third.run_id == "cifar10-lt100-standard-ce-cce-imported-3"
    for imported in (second, third):
        record = read_run(imported.run_dir)
        assert record.run_id == imported.run_id and record.metadata["imported"]["original_run_id"] == "cifar10-lt100-standard-ce-cce"
        assert set(load_models(record)) == {"ce", "cce"}
    assert third.to_dict() == {
        "run_id": third.run_id, "original_run_id": "cifar10-lt100-standard-ce-cce", "renamed": True, "status": "done",
    }


def test_an_id_of_the_shipped_runs_counts_as_taken(shipped_zip, runs):
    imported = import_run(shipped_zip, runs, other_roots=[SHIPPED.parent])
    assert imported.run_id == "cifar10-lt100-standard-ce-cce-imported-2" and imported.renamed


def test_renamed_ids_count_on_from_the_base_and_stay_valid():
    candidates = transfer.import_id_candidates("run-imported-2")
    assert [next(candidates) for _ in range(3)] == ["run-imported-2", "run-imported-2", "run-imported-3"]
    long_id = "a" * 128
    renamed = list(transfer.import_id_candidates(long_id))[1]
    assert renamed.endswith("-imported-2") and len(renamed) == 128


def test_everything_export_writes_import_accepts(tiny_run, tmp_path, runs):
    imported = import_run(write_run_zip(tiny_run, tmp_path / "out"), runs)
    record, original = read_run(imported.run_dir), read_run(tiny_run)
    assert record.config == original.config and record.final == original.final
    images = torch.rand(4, 3, 32, 32)
    original_models, models = load_models(original), load_models(record)
    for loss in ("ce", "cce"):
        assert torch.equal(models[loss](images), original_models[loss](images))


def test_a_run_exported_while_running_imports_as_interrupted(tiny_entries, tmp_path, runs):
    entries = with_metadata(tiny_entries, lambda metadata: metadata.update(status="running", reason=""))
    imported = import_run(write_zip(tmp_path / "run.zip", entries), runs)
    record = read_run(imported.run_dir)
    assert imported.status == record.status == "interrupted" and "still training" in record.metadata["reason"]
    assert record.metadata["owner"] is None


def test_a_torn_last_event_line_is_tolerated(tiny_entries, tmp_path, runs):
    entries = {**tiny_entries, "events.jsonl": tiny_entries["events.jsonl"] + b'{"kind": "step", "los'}
    assert import_run(write_zip(tmp_path / "run.zip", entries), runs).status == "done"


# ---------------------------------------------------------------- import: hostile uploads


@pytest.mark.parametrize("name, message", [
    ("../x", r"entry '\.\./x' leaves the run directory"),
    ("/etc/cron.d/x", r"entry '/etc/cron.d/x' is an absolute path"),
    ("..\\x", "uses a backslash"),
    ("C:/x", "is an absolute path"),
    ("folder/", "is a directory"),
    ("folder/run.json", "is inside a folder"),
    ("model-ce-seed0.pt", "is not a file of an exported run"),
    ("notes.txt", "is not a file of an exported run"),
])
def test_entries_outside_a_flat_run_are_refused(tiny_entries, tmp_path, runs, name, message):
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, name: b"x"}), runs, message)
    assert not (tmp_path / "x").exists()


def test_a_symlink_entry_is_refused(tiny_entries, tmp_path, runs):
    link = zipfile.ZipInfo("events.jsonl")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    entries = [(name, data) for name, data in tiny_entries.items() if name != "events.jsonl"] + [(link, b"/etc/passwd")]
    assert_refused(write_zip(tmp_path / "run.zip", entries), runs, "entry 'events.jsonl' is a symbolic link")


def test_a_duplicate_name_is_refused(tiny_entries, tmp_path, runs):
    entries = list(tiny_entries.items()) + [("run.json", tiny_entries["run.json"])]
    assert_refused(write_zip(tmp_path / "run.zip", entries), runs, "entry 'run.json' appears twice")


def test_too_many_entries_are_refused(tmp_path, runs):
    entries = {f"model-ce-seed{seed}.safetensors": b"" for seed in range(transfer.MAX_IMPORT_FILES + 1)}
    assert_refused(write_zip(tmp_path / "run.zip", entries), runs, "holds 65 entries; a run has at most 64")


def test_a_declared_flood_of_entries_is_refused_before_they_are_read(tmp_path, runs):
    """An end record claiming 60,000 entries: refused from the record alone, before the zip reader would
    build an object per entry."""
    path = tmp_path / "flood.zip"
    path.write_bytes(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 60_000, 60_000, 46 * 60_000, 0, 0))
    assert_refused(path, runs, "holds 60000 entries; a run has at most 64")


def test_a_killed_import_s_leftovers_are_removed_later(tiny_entries, tmp_path, runs):
    stale, fresh = runs / ".import-killed", runs / ".import-in-progress"
    for path in (stale, fresh):
        (path).mkdir()
        (path / "run.json").write_text("{}")
    old = time.time() - transfer.STALE_STAGING_SECONDS - 60
    os.utime(stale, (old, old))
    import_run(write_zip(tmp_path / "run.zip", tiny_entries), runs)
    assert not stale.exists() and fresh.exists()


@pytest.mark.parametrize("content, message", [
    (None, "the zip is empty"),
    (b"", r"the file is empty \(0 bytes\)"),
    (b"PK\x03\x04 truncated", "not a zip archive"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a zip archive"),
])
def test_empty_and_non_zip_files_are_refused(tmp_path, runs, content, message):
    path = tmp_path / "upload.zip"
    if content is None:
        zipfile.ZipFile(path, "w").close()
    else:
        path.write_bytes(content)
    assert_refused(path, runs, message)


def test_a_missing_upload_is_refused(tmp_path, runs):
    assert_refused(tmp_path / "never-uploaded.zip", runs, "no file was received")


def test_a_zip_without_run_json_is_refused(tiny_entries, tmp_path, runs):
    entries = {name: data for name, data in tiny_entries.items() if name != "run.json"}
    assert_refused(write_zip(tmp_path / "run.zip", entries), runs, "the zip has no run.json")


def test_a_one_gib_zip_bomb_is_refused_from_its_directory(tiny_entries, tmp_path, runs):
    bomb = write_raw_zip(tmp_path / "bomb.zip", [
        raw_entry("run.json", 0, zero_chunks=False, data=tiny_entries["run.json"]), raw_entry("events.jsonl", GIB),
    ])
    assert bomb.stat().st_size < 2 * 2**20
    with zipfile.ZipFile(bomb) as archive:  # a real bomb: the reader would inflate it to 1 GiB
        assert archive.getinfo("events.jsonl").file_size == GIB
        with archive.open("events.jsonl") as entry:
            assert entry.read(2**20) == bytes(2**20)
    assert_refused(bomb, runs, "would unpack to 1024 MiB, more than the 256 MiB limit")


def test_a_bomb_with_a_lying_header_is_stopped_while_streaming(tiny_entries, tmp_path, runs):
    """The header says 1000 bytes; the stream inflates to 1 GiB. Extraction stops at the declared size."""
    forged = write_raw_zip(tmp_path / "forged.zip", [
        raw_entry("run.json", 0, zero_chunks=False, data=tiny_entries["run.json"]), raw_entry("events.jsonl", GIB, declared_size=1000),
    ])
    assert_refused(forged, runs, "entry 'events.jsonl' (is damaged|holds more than)")


def test_the_byte_counter_stops_a_stream_longer_than_declared():
    """Independent of the zip reader: a source yielding more than its header declared is cut off before the
    excess is written."""
    sink = io.BytesIO()
    with pytest.raises(ImportRefused, match="holds more than the 10 bytes its header declares"):
        transfer.copy_limited(io.BytesIO(b"x" * 100), sink, "events.jsonl", declared=10, budget=10**6)
    assert sink.getvalue() == b""
    with pytest.raises(ImportRefused, match="unpacks to more than"):
        transfer.copy_limited(io.BytesIO(b"x" * 100), io.BytesIO(), "events.jsonl", declared=100, budget=50)
    assert transfer.copy_limited(io.BytesIO(b"x" * 100), sink, "events.jsonl", declared=100, budget=100) == 100


class Planted:
    """Unpickling this creates `marker`: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name, message", [
    ("model-ce-seed0.safetensors", "model-ce-seed0.safetensors is not a safetensors file"),
    ("model-ce-seed0.pt", "entry 'model-ce-seed0.pt' is not a file of an exported run"),
])
def test_a_pickle_in_place_of_the_weights_is_refused_unread(tiny_entries, tmp_path, runs, name, message):
    marker = tmp_path / "unpickled"
    state = build_model("resnet8", 10).state_dict()
    buffer = io.BytesIO()
    torch.save({**state, "planted": Planted(marker)}, buffer)
    entries = {key: value for key, value in tiny_entries.items() if key != "model-ce-seed0.safetensors"}
    assert_refused(write_zip(tmp_path / "run.zip", {**entries, name: buffer.getvalue()}), runs, message)
    assert not marker.exists()


def safetensors_bytes(tensors: dict[str, torch.Tensor], tmp_path: Path) -> bytes:
    path = tmp_path / "weights.safetensors"
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(path))
    return path.read_bytes()


@pytest.mark.parametrize("change, message", [
    (lambda state: state.update({"linear.weight": torch.zeros(11, 64), "linear.bias": torch.zeros(11)}),
     r"linear.weight is torch.float32 \(11, 64\); a resnet8 for 10 classes needs torch.float32 \(10, 64\)"),
    (lambda state: state.pop("conv1.weight"), "does not fit a resnet8 for 10 classes: missing conv1.weight"),
    (lambda state: state.update({"extra": torch.zeros(1)}), "unexpected extra"),
    (lambda state: state.update({"linear.bias": torch.zeros(10, dtype=torch.float16)}), "linear.bias is torch.float16"),
])
def test_weights_that_do_not_fit_the_model_are_refused(tiny_entries, tmp_path, runs, change, message):
    state = dict(build_model("resnet8", 10).state_dict())
    change(state)
    entries = {**tiny_entries, "model-ce-seed0.safetensors": safetensors_bytes(state, tmp_path)}
    assert_refused(write_zip(tmp_path / "run.zip", entries), runs, message)


@pytest.mark.parametrize("run_json, message", [
    (b"{not json", "run.json is not valid JSON"),
    (b'{"format_version": NaN}', "run.json is not valid JSON"),
    (b"[]", "run.json: must be a JSON object"),
])
def test_run_json_that_is_not_json_is_refused(tiny_entries, tmp_path, runs, run_json, message):
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, "run.json": run_json}), runs, message)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["config"].update(losses=["ce", "hinge"]), r"invalid config \(losses: unknown value 'hinge'"),
    (lambda m: m["config"].update(epochs_typo=3), r"invalid config \(unknown config field\(s\): epochs_typo"),
    (lambda m: m.update(format_version=3), "format_version is 3; this app reads format 1 or 2"),
    (lambda m: m.update(run_id="../escape"), "run_id '../escape' is not a valid run id"),
    (lambda m: m.update(run_id="run\n"), r"run_id 'run\\n' is not a valid run id"),
    (lambda m: m.update(status="exploded"), "status 'exploded' is not one of"),
    (lambda m: m.update(class_names=m["class_names"][:9]), "class_names must be 10 names"),
    (lambda m: m.update(class_counts=[-1] * 10), "class_counts must be 10 counts"),
    (lambda m: m.update(class_names=None), "has no class names"),
    (lambda m: m.update(created_at=5), "created_at must be text"),
    (lambda m: m["weights"]["ce"].update({"0": "../../x.safetensors"}),
     "the ce model of seed 0 must be named 'model-ce-seed0.safetensors'"),
    (lambda m: m["weights"]["ce"].update({"7": "model-ce-seed7.safetensors"}), "weights name seed '7' of ce"),
    (lambda m: m["weights"].pop("cce"), r"model-cce-seed0.safetensors is not listed in run.json's weights"),
    (lambda m: m["final"]["evaluations"]["0"]["ce"].update(per_class_recall=[0.5]), "per_class_recall must be 10 numbers"),
    (lambda m: m["final"]["comparisons"][0]["mcnemar"].update(p_value=None), "mcnemar must hold"),
])
def test_run_json_the_app_cannot_use_is_refused(tiny_entries, tmp_path, runs, change, message):
    assert_refused(write_zip(tmp_path / "run.zip", with_metadata(tiny_entries, change)), runs, message)


def test_a_listed_model_missing_from_the_zip_is_refused(tiny_entries, tmp_path, runs):
    entries = {name: data for name, data in tiny_entries.items() if name != "model-cce-seed0.safetensors"}
    message = "run.json lists model-cce-seed0.safetensors but the zip does not hold it"
    assert_refused(write_zip(tmp_path / "run.zip", entries), runs, message)


@pytest.mark.parametrize("events, message", [
    (b'{"kind": "status", "message": "x"}\nnot json\n{"kind": "status", "message": "y"}\n', "events.jsonl line 2 is not valid JSON"),
    (b"\x00" * 1000, "events.jsonl line 1 is not valid JSON"),
    (b'{"kind": "step", "seed": 0, "step": 1, "global_step": 1, "epoch": 0.1, "losses": {"ce": "high"}, "cross_entropy": {}}\n',
     "events.jsonl line 1: losses must map"),
    (b'{"kind": "epoch", "seed": 0, "epoch": 1, "global_step": 3, "evaluations": {"ce": {}}}\n',
     "events.jsonl line 1, ce: test_loss must be a number"),
    (b'{"kind": "started", "class_names": ["a"], "class_counts": [1], "total_steps": 1}\n',
     "class names and counts differ from run.json's"),
])
def test_an_event_log_the_app_cannot_replay_is_refused(tiny_entries, tmp_path, runs, events, message):
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, "events.jsonl": events}), runs, message)


# ---------------------------------------------------------------- issue 18: amplifiers, numbers, formulas


def test_unknown_event_kinds_are_refused_not_kept(tiny_entries, tmp_path, runs):
    """64 MiB of {"kind":"x"} lines in an 865 KB zip cost 1.6 GB of RAM to import, and again on first open."""
    flood = tiny_entries["events.jsonl"] + b'{"kind": "x"}\n' * 200_000
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, "events.jsonl": flood}), runs,
                   "kind is one of epoch, finished, seed_finished, started, status, step")


def test_more_events_than_the_config_can_write_are_refused(tiny_entries, tmp_path, runs):
    """Known kinds only are not enough: a run of this config writes a bounded number of each."""
    statuses = b'{"kind": "status", "message": "Loading"}\n' * (transfer.MAX_STATUS_EVENTS + 1)
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, "events.jsonl": statuses + tiny_entries["events.jsonl"]}),
                   runs, "more status events than a run of this config writes")
    steps = [line for line in tiny_entries["events.jsonl"].splitlines(keepends=True) if b'"kind": "step"' in line]
    padded = tiny_entries["events.jsonl"] + steps[0] * 50  # the tiny run trains 1 epoch of a few steps
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, "events.jsonl": padded}), runs,
                   "more step events than a run of this config writes")


def step_lines(entries):
    return [line for line in entries["events.jsonl"].splitlines(keepends=True) if b'"kind": "step"' in line]


def test_known_kinds_padded_with_unknown_fields_are_refused(tiny_entries, tmp_path, runs):
    # The audit's amplifier, second form: real step lines, each padded with a field the trainer never writes.
    first = json.loads(step_lines(tiny_entries)[0])
    padded = json.dumps({**first, "padding": "x" * 1000}).encode() + b"\n"
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, "events.jsonl": tiny_entries["events.jsonl"] + padded}),
                   runs, "a step event has no field 'padding'")


def test_nested_records_padded_with_unknown_fields_are_refused(tiny_entries, tmp_path, runs):
    lines = tiny_entries["events.jsonl"].splitlines(keepends=True)
    epoch_index = next(index for index, line in enumerate(lines) if b'"kind": "epoch"' in line)
    epoch = json.loads(lines[epoch_index])
    for evaluation in epoch["evaluations"].values():
        evaluation["padding"] = "x" * 100
    padded = [*lines[:epoch_index], json.dumps(epoch).encode() + b"\n", *lines[epoch_index + 1:]]
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, "events.jsonl": b"".join(padded)}), runs,
                   "an evaluation has no field 'padding'")


def test_a_step_line_padded_with_whitespace_is_refused(tiny_entries, tmp_path, runs):
    # Valid JSON, known fields only, but 8 KiB of spaces: still an amplifier, bounded by the line length.
    line = step_lines(tiny_entries)[-1].rstrip(b"\n") + b" " * (transfer.MAX_STEP_LINE_BYTES + 1) + b"\n"
    events = tiny_entries["events.jsonl"].replace(step_lines(tiny_entries)[-1], line)
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, "events.jsonl": events}), runs,
                   "a step event longer than 4 KiB")


def test_step_events_of_an_upload_are_capped_whatever_the_config_allows(tiny_entries, tmp_path, runs):
    # An uploader picks the config: batch 1 over 1,000 epochs would allow millions of step lines. Past the
    # cap the app passes for uploads the import is refused; the tiny run (a few steps) stands in, with a lower cap.
    steps = len(step_lines(tiny_entries))
    with pytest.raises(ImportRefused, match=f"more than {steps - 1:,} training steps, more than the app imports"):
        import_run(write_zip(tmp_path / "run.zip", tiny_entries), runs, max_step_events=steps - 1)
    assert list(runs.iterdir()) == []
    assert import_run(write_zip(tmp_path / "run.zip", tiny_entries), runs, max_step_events=steps).run_id
    assert import_run(write_zip(tmp_path / "run.zip", tiny_entries), runs).run_id  # on the command line: no cap


def test_every_preset_run_fits_the_step_cap_with_five_seeds():
    from cce_demo.config import PRESETS
    from cce_demo.data import long_tail_counts

    for name, preset_config in PRESETS.items():
        for ratio in (10, 100):  # the least imbalanced subset the grids train has the most images
            config = dataclasses.replace(preset_config, imbalance_ratio=float(ratio), seeds=(0, 1, 2, 3, 4))
            counts = long_tail_counts(5000, 10, float(ratio))
            assert transfer.max_events({"class_counts": counts}, config)["step"] <= transfer.MAX_STEP_EVENTS, name


def test_every_shipped_event_uses_only_the_trainer_s_fields():
    from conftest import ROOT

    for log in [*ROOT.glob("checkpoints/*/events.jsonl"), *ROOT.glob("results/*/runs/*/events.jsonl")]:
        for number, line in enumerate(log.read_text().splitlines(), 1):
            event = json.loads(line)
            assert set(event) <= transfer.EVENT_FIELDS[event["kind"]], f"{log} line {number}"


def test_event_log_bounds_follow_the_config():
    config = TrainConfig(dataset="synthetic", epochs=3, batch_size=64, seeds=(0, 1))
    allowed = transfer.max_events({"class_counts": [100] * 10}, config)
    assert allowed["step"] == 16 * 3 * 2 and allowed["epoch"] == 6 and allowed["seed_finished"] == 2
    assert allowed["started"] == allowed["finished"] == 1


def evaluation_of(metadata):
    return metadata["final"]["evaluations"]["0"]["ce"]


@pytest.mark.parametrize("change, message", [
    (lambda m: evaluation_of(m).update(accuracy=1.5), "accuracy must be a number in"),
    (lambda m: evaluation_of(m).update(balanced_accuracy=-0.1), "balanced_accuracy must be a number in"),
    (lambda m: evaluation_of(m).update(test_loss=-1), "test_loss must be a number >= 0"),
    (lambda m: evaluation_of(m).update(complement_entropy=50.0), "complement_entropy must be a number in"),
    (lambda m: evaluation_of(m)["per_class_recall"].__setitem__(0, 2.0), "per_class_recall must be 10 numbers in"),
    (lambda m: evaluation_of(m)["group_recall"].update(tail=7), "group_recall must map"),
    (lambda m: evaluation_of(m)["confusion_matrix"][0].__setitem__(0, 10**6), "confusion_matrix must be 10x10 counts"),
    (lambda m: m["final"]["comparisons"][0].update(balanced_accuracy_difference=3), "balanced_accuracy_difference must be"),
    (lambda m: m["final"]["comparisons"][0]["mcnemar"].update(only_a_correct=10**9), "mcnemar must hold"),
    (lambda m: m["final"]["comparisons"][0].update(per_class_mcnemar=["x"]), "per_class_mcnemar must be"),
    (lambda m: m.update(class_counts=[10**6] * 10), "class_counts must be 10 counts of at most 100"),
])
def test_imported_numbers_out_of_range_are_refused(tiny_entries, tmp_path, runs, change, message):
    assert_refused(write_zip(tmp_path / "run.zip", with_metadata(tiny_entries, change)), runs, message)


@pytest.mark.parametrize("literal, message", [
    (b"1e999", "out of range"), (b"-1e999", "out of range"), (b"1" + b"0" * 4000, "out of range"),
    (b"NaN", "not a JSON number"), (b"Infinity", "not a JSON number"),
])
def test_numbers_no_run_produces_are_refused_where_they_are_parsed(tiny_entries, tmp_path, runs, literal, message):
    """1e999 parses as infinity in Python; a 4,000-digit count once broke the page's event stream."""
    metadata = json.loads(tiny_entries["run.json"])
    text = json.dumps(metadata).replace('"test_loss": ', '"test_loss": ' + literal.decode() + ', "was": ', 1)
    assert_refused(write_zip(tmp_path / "run.zip", {**tiny_entries, "run.json": text.encode()}), runs, message)


def test_nan_weights_are_refused(tiny_entries, tmp_path, runs):
    from safetensors.torch import load as load_bytes, save as save_bytes

    tensors = load_bytes(tiny_entries["model-ce-seed0.safetensors"])
    first = next(name for name, tensor in tensors.items() if tensor.is_floating_point())
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    entries = {**tiny_entries, "model-ce-seed0.safetensors": save_bytes(tensors)}
    assert_refused(write_zip(tmp_path / "run.zip", entries), runs, "NaN or infinite weights")


def test_csv_cells_are_escaped_against_formulas():
    rows = transfer.recall_csv({0: {"ce": {"per_class_recall": [0.5, 0.25]}}}, ["=HYPERLINK(\"http://x\")", "+cmd"], [10, -3])
    cells = list(csv.reader(io.StringIO(rows)))
    assert cells[1][3] == "'=HYPERLINK(\"http://x\")" and cells[2][3] == "'+cmd"
    assert cells[2][4] == "-3" and cells[1][5] == "0.5"  # numbers stay numbers
    assert transfer.spreadsheet_cell("@SUM(A1)") == "'@SUM(A1)" and transfer.spreadsheet_cell("cat") == "cat"


def test_events_are_streamed_not_read_whole(tiny_run, tmp_path, monkeypatch):
    # Export and the replay of a run read the log through read_events, one line at a time, so a long (or
    # hostile) log is never held whole; the import check has its own line-by-line reader (check_events_file).
    lines = (tiny_run / "events.jsonl").read_text().splitlines()
    for whole_file_reader in ("read_text", "read_bytes"):
        def refuse_the_log(path, *arguments, original=getattr(Path, whole_file_reader), **keywords):
            assert path.name != "events.jsonl", "the whole event log was read"
            return original(path, *arguments, **keywords)

        monkeypatch.setattr(Path, whole_file_reader, refuse_the_log)
    events = read_events(tiny_run)
    assert iter(events) is events  # a generator: nothing is read until asked for
    assert next(events) == json.loads(lines[0])
    assert 1 + sum(1 for _ in events) == len(lines)
    assert write_run_zip(tiny_run, tmp_path).is_file()


def test_exports_are_pruned(tmp_path):
    now = time.time()
    for index in range(5):
        path = tmp_path / f"run-{index}.zip"
        path.write_bytes(b"zip")
        os.utime(path, (now - index * 100, now - index * 100))
    removed = transfer.prune_exports(tmp_path, max_age_seconds=250, keep=2, now=now)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run-0.zip", "run-1.zip"]
    assert len(removed) == 3


def test_an_import_that_does_not_fit_is_refused_and_one_that_does_runs_retention(tiny_run, tmp_path, runs):
    from cce_demo.retention import DiskRules

    path = write_run_zip(tiny_run, tmp_path)
    first = import_run(path, runs, rules=DiskRules(keep_runs=1))
    second = import_run(path, runs, rules=DiskRules(keep_runs=1))
    assert second.removed == (first.run_id,) and [p.name for p in runs.iterdir()] == [second.run_id]
    with pytest.raises(ImportRefused, match="already holds 1 runs that are training"):
        import_run(path, runs, rules=DiskRules(keep_runs=1), protected_ids={second.run_id})
    assert [p.name for p in runs.iterdir()] == [second.run_id]  # nothing was written for the refused one


def test_the_final_predictions_travel_with_a_run_and_are_checked(tiny_run, tiny_entries, tmp_path, runs):
    """The disagreement gallery's per-image answers are exported and imported like the weights: listed in
    run.json, read as safetensors only, and refused when they do not fit the run."""
    from safetensors.torch import save_file

    from cce_demo.run_directory import read_predictions

    assert "predictions-seed0.safetensors" in tiny_entries
    imported = import_run(write_run_zip(tiny_run, tmp_path / "out"), runs)
    labels, answers = read_predictions(read_run(imported.run_dir), 0)
    original_labels, original_answers = read_predictions(read_run(tiny_run), 0)
    assert torch.equal(labels, original_labels) and set(answers) == {"ce", "cce"}
    assert torch.equal(answers["cce"].predicted, original_answers["cce"].predicted)

    with safe_open_entries(tiny_entries["predictions-seed0.safetensors"], tmp_path) as (tensors, metadata):
        short = {key: value[:-1] for key, value in tensors.items()}
        save_file(short, tmp_path / "short.safetensors", metadata=metadata)
    bad = dict(tiny_entries, **{"predictions-seed0.safetensors": (tmp_path / "short.safetensors").read_bytes()})
    with pytest.raises(ImportRefused, match="holds 49 answers; the run's test split has 50 images"):
        import_run(write_zip(tmp_path / "short.zip", bad), runs)
    unlisted = dict(tiny_entries, **{"predictions-seed3.safetensors": tiny_entries["predictions-seed0.safetensors"]})
    with pytest.raises(ImportRefused, match="predictions-seed3.safetensors is not listed"):
        import_run(write_zip(tmp_path / "unlisted.zip", unlisted), runs)


import contextlib  # noqa: E402


@contextlib.contextmanager
def safe_open_entries(data: bytes, tmp_path: Path):
    from safetensors import safe_open

    path = tmp_path / "entry.safetensors"
    path.write_bytes(data)
    with safe_open(str(path), framework="pt") as file:
        yield {key: file.get_tensor(key) for key in file.keys()}, file.metadata()
