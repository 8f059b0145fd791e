"""Where a result came from: the machine and library settings it was trained under, and which copy of the data.

A run replays bit for bit only with the same CPU type, torch thread count, library versions, deterministic
settings and data files (going from 1 to 2 threads changes CE's weights; two 2-core hosts with different CPUs
gave different accuracies for the same seed), so every run.json and results.json records all of them.

The data copy is named from the files' hashes: this project's CIFAR-10 npz files are a JPEG (quality 75)
re-encoding of CIFAR-10, on which accuracies run lower than on the original pickled batches, so a result
must say which copy it came from. A copy whose hash is not known here can be declared with CCE_DATA_COPY.
"""
from __future__ import annotations

import hashlib
import os
import platform
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

DATA_COPY_ENV = "CCE_DATA_COPY"  # declares the copy's name when its files' hashes are not known here
HASH_CHUNK_BYTES = 1 << 22

JPEG_COPY = "CIFAR-10 (JPEG q75 copy)"
ORIGINAL_NAMES = {"cifar10": "CIFAR-10 (original)", "cifar100": "CIFAR-100 (original)"}
# sha256 of the npz files (train.npz, test.npz) of known copies.
KNOWN_NPZ_COPIES = {
    (
        "128c847b67290a8c69cd5d0c1b5dafeb5a8dd79fd248a088f8ec587a12edeb63",
        "331d25c1c88e45f74c9fc96d061645662d6fb1478151b854ba91f15068357eb9",
    ): JPEG_COPY,
}
# The copy every results file of format 1 was trained on: this project's machines held only the JPEG copy
# (issue 19). Used only to label files that predate the data record, and always labelled "declared".
FORMAT_1_DATA_COPY = JPEG_COPY

_HASHES: dict[tuple[str, str, int, int], str] = {}


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The file's hex digest, cached per (path, size, modification time): the CIFAR-10 npz files are 170 MB
    and a process loads them for every job."""
    path = Path(path)
    status = path.stat()
    key = (algorithm, str(path.resolve()), status.st_size, status.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.new(algorithm)
        with open(path, "rb") as file:
            while chunk := file.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def name_copy(detected: str | None, declared: str | None) -> tuple[str, str]:
    """The copy's name and how it is known: detected from the hashes (a contradicting declaration is
    overruled and said so), else declared, else unrecognised."""
    declared = (declared or "").strip() or None
    if detected:
        if declared and declared != detected:
            return detected, f"detected from the files' hashes (the declared {declared!r} was overruled)"
        return detected, "detected from the files' hashes"
    if declared:
        return declared, f"declared ({DATA_COPY_ENV})"
    return "unrecognised copy", f"the files' hashes are not known here; declare the copy with {DATA_COPY_ENV}"


def npz_provenance(dataset: str, train_file: Path, test_file: Path, declared: str | None = None) -> dict[str, Any]:
    hashes = (file_digest(train_file), file_digest(test_file))
    copy, how = name_copy(KNOWN_NPZ_COPIES.get(hashes), declared if declared is not None else os.environ.get(DATA_COPY_ENV))
    if copy == "unrecognised copy":
        copy = f"{ORIGINAL_NAMES.get(dataset, dataset).split(' (')[0]} ({copy})"
    return {"copy": copy, "how": how, "format": "npz", "sha256": {train_file.name: hashes[0], test_file.name: hashes[1]}}


def torchvision_provenance(dataset: str, folder: Path, files: Iterable[tuple[str, str]], declared: str | None = None) -> dict[str, Any]:
    """torchvision's pickled batches: the original when every file matches torchvision's published md5."""
    files = list(files)
    matches = all((folder / name).is_file() and file_digest(folder / name, "md5") == md5 for name, md5 in files)
    copy, how = name_copy(ORIGINAL_NAMES.get(dataset) if matches else None,
                          declared if declared is not None else os.environ.get(DATA_COPY_ENV))
    if matches:
        how = "detected: every batch file matches torchvision's published md5"
    return {"copy": copy, "how": how, "format": "torchvision",
            "sha256": {name: file_digest(folder / name) for name, _ in files if (folder / name).is_file()}}


def synthetic_provenance() -> dict[str, Any]:
    return {"copy": "synthetic (generated)", "how": "generated from a fixed seed", "format": "synthetic", "sha256": {}}


def deterministic_settings() -> dict[str, Any]:
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_allow_tf32_in_evaluation": False,  # engine.fp32_evaluation
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The instruction-set extensions that decide which kernels torch and oneDNN pick on an x86 CPU, and so the
# floating-point order of a convolution: two CPUs that differ here need not train bit-identical models.
INSTRUCTION_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                     "avx512_bf16", "avx_vnni", "amx_tile", "amx_bf16", "neon", "asimd", "sve")
CPUINFO_FIELDS = {"vendor_id": "vendor", "cpu family": "family", "model": "model", "stepping": "stepping",
                  "microcode": "microcode", "CPU implementer": "implementer", "CPU part": "part"}


def _first_processor(text: str) -> dict[str, str]:
    """The fields of the first processor block of /proc/cpuinfo (every core of one host reads alike)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _library_versions(configuration: str) -> dict[str, str]:
    """oneDNN, MKL and OpenMP as torch's build configuration names them ("" when absent)."""
    patterns = {"onednn": r"MKL-DNN (v[\w.]+)", "mkl": r"Math Kernel Library Version ([\w.]+)",
                "openmp": r"OpenMP (\d+)"}
    return {name: (match.group(1) if (match := re.search(pattern, configuration)) else "")
            for name, pattern in patterns.items()}


def machine(cpuinfo: str | None = None, configuration: str | None = None) -> dict[str, Any]:
    """The machine exactly enough to say whether a replay can be bit-identical: the CPU's vendor, family,
    model, stepping and microcode, its vector extensions, whether it runs under a hypervisor, the kernels
    torch dispatches to (its CPU capability), and the oneDNN / MKL / OpenMP versions torch was built with.
    Arguments are for tests; by default the running host's."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields = _first_processor(cpuinfo)
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    if configuration is None:
        configuration = torch.__config__.show()
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):  # pragma: no cover - older torch
        capability = ""
    return {
        **{name: fields.get(key, "") for key, name in CPUINFO_FIELDS.items() if key in fields},
        "instruction_flags": [flag for flag in INSTRUCTION_FLAGS if flag in flags],
        "virtualised": "hypervisor" in flags,
        "architecture": platform.machine(),
        "torch_cpu_capability": capability,
        **_library_versions(configuration),
    }


def environment(device: str = "auto") -> dict[str, Any]:
    """The machine and library settings a run trains under."""
    try:
        import torchvision

        torchvision_version = torchvision.__version__
    except ImportError:  # pragma: no cover - a requirement, but the record should not fail over it
        torchvision_version = None
    info = {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "torchvision": torchvision_version, "python": platform.python_version(),
        "deterministic": deterministic_settings(),
        "machine": machine(),
        # The code that trained it ("+changes": tracked files differed from that commit; "": not a checkout).
        "source_commit": source_commit(Path(__file__).resolve().parent.parent),
    }
    if torch.cuda.is_available() and device != "cpu":
        info["gpu"] = torch.cuda.get_device_name()
        info["gpu_count"] = torch.cuda.device_count()
    return info


def data_copy_text(data: Mapping[str, Any] | None) -> str:
    """"CIFAR-10 (JPEG q75 copy), detected from the files' hashes" for a run's or a grid's data record."""
    if not isinstance(data, Mapping) or not isinstance(data.get("copy"), str) or not data["copy"]:
        return "data copy not recorded"
    how = data.get("how")
    return f"{data['copy']}, {how if isinstance(how, str) else 'how it is known was not recorded'}"


def predating_record(what: str) -> dict[str, Any]:
    """The data record of results written before runs recorded their data (format-1 grids, the early bench
    files): declared, never detected, because this project's machines held only one copy."""
    return {"copy": FORMAT_1_DATA_COPY,
            "how": f"declared: {what} predate the data record, and this project's machines held only this copy"}


def recorded_data_text(records: Iterable[Mapping[str, Any] | None], what: str) -> str:
    """The data copy of several results (bench points, search candidates) as one phrase: from the records
    where they exist, with a count of those that predate the record; declared when none has one."""
    records = list(records)
    recorded = [record for record in records if record]
    if not recorded:
        return data_copy_text(predating_record(what))
    missing = len(records) - len(recorded)
    return data_copy_text(combined_data(recorded)) + (f"; {missing} of {what} predate the data record" if missing else "")


def combined_data(records: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """One data record for several cells: theirs when they agree; else every copy seen, so a table never
    shows one cell's data as if it held for all."""
    kept = [dict(record) for record in records if record]
    if not kept:
        return {}
    copies = sorted({record.get("copy", "") for record in kept})
    hashes = sorted({tuple(sorted((record.get("sha256") or {}).items())) for record in kept})
    if len(copies) == 1 and len(hashes) == 1:
        return kept[0]
    return {"copy": " and ".join(copies), "how": "the cells disagree: they were trained on different data files",
            "sha256": [dict(entry) for entry in hashes]}


def source_commit(repository: Path) -> str:
    """The short commit of the code a measurement ran, with "+changes" when tracked files differed from it;
    "" outside a git checkout (an installed copy, a container)."""
    import subprocess  # only benchmarks ask, and rarely

    def git(*arguments: str) -> str:
        return subprocess.run(["git", "-C", str(repository), *arguments], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return ""
