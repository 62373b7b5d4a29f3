"""Benchmark the model scanner against modelscan alone on a big torch checkpoint and joblib model.

Builds (under /tmp, deleted afterwards) a torch.save-style zip of float32 tensors and a
joblib-dumped scikit-learn pipeline holding a large training matrix (also dumped as a plain
protocol-4 pickle, which modelscan parses to the end), then times on each:
modelscan alone, our content scanner alone, the full ``model_scan`` gate (ours + modelscan)
and the gate with the SHA-256 subject digest, then modelscan and ours each in a fresh
process (imports included, as in an Airflow task). Target where modelscan really scans (the
pickle, the torch zip): ours no slower than 1.5x modelscan. (modelscan stops at the first
joblib array, so the joblib row compares a full scan with a partial one.)

    python bench/bench_model_scan.py                 # ~2 GiB checkpoint, ~500 MB joblib
    python bench/bench_model_scan.py --torch-mb 64 --joblib-mb 32   # quick run
"""

from __future__ import annotations

import argparse
import logging
import shutil
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

TENSOR_MB = 64


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _text(value: str) -> bytes:
    return b"X" + struct.pack("<I", len(value)) + value.encode()


def _state_dict_pickle(numels: list[int]) -> bytes:
    """``data.pkl`` as torch.save writes it for float32 tensors ``t0, t1, ...``."""
    body = b""
    for key, numel in enumerate(numels):
        count = b"J" + struct.pack("<i", numel)
        storage = b"((" + _text("storage") + _global("torch", "FloatStorage") + _text(str(key))
        storage += _text("cpu") + count + b"tQ"
        args = storage + b"K\x00(" + count + b"t(K\x01t\x89" + _global("collections", "OrderedDict")
        body += _text(f"t{key}") + _global("torch._utils", "_rebuild_tensor_v2") + args + b")RtR"
    ordered = _global("collections", "OrderedDict") + b")R"
    return b"\x80\x02" + ordered + b"(" + body + b"u."


def build_torch_zip(path: Path, total_mb: int) -> None:
    """A torch.save-style zip: ``archive/data.pkl`` plus one stored member per tensor."""
    import numpy as np

    count = max(1, total_mb // TENSOR_MB)
    size = min(total_mb, TENSOR_MB) << 20
    block = np.random.default_rng(0).standard_normal(size // 4).astype("<f4").tobytes()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr("archive/data.pkl", _state_dict_pickle([size // 4] * count))
        for name, text in (("byteorder", b"little"), ("version", b"3\n")):
            archive.writestr(f"archive/{name}", text)
        for key in range(count):
            with archive.open(f"archive/data/{key}", "w", force_zip64=True) as member:
                member.write(block)


def build_sklearn(folder: Path, total_mb: int) -> list[Path]:
    """One scikit-learn model dumped twice: joblib (arrays inline) and pickle protocol 4."""
    import pickle

    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = (total_mb << 20) // (64 * 8)
    rng = np.random.default_rng(0)
    features, labels = rng.standard_normal((rows, 64)), rng.integers(0, 2, rows)
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(algorithm="brute"))
    forest = RandomForestClassifier(20, max_depth=8).fit(features[:5000], labels[:5000])
    model = {"knn": knn.fit(features, labels), "forest": forest}
    joblib.dump(model, folder / "model.joblib")
    with (folder / "model.pkl").open("wb") as handle:
        pickle.dump(model, handle, protocol=4)
    return [folder / "model.joblib", folder / "model.pkl"]


def _best(func: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = func()
        best = min(best, time.perf_counter() - start)
    return best, value


def bench_file(path: Path, repeats: int) -> list[tuple[str, float, str]]:
    from mlsecops_provider.core.scan.content import ContentScanner, scan_content
    from mlsecops_provider.core.scan.gate import ModelScanConfig, run_modelscan, scan_model

    rows = []
    modelscan_s, (report, _, failure) = _best(lambda: run_modelscan(path), repeats)
    ms_note = failure or f"issues={len(report['issues'])} errors={len(report['errors'])}"
    rows.append(("modelscan alone", modelscan_s, ms_note))
    ours_s, outcome = _best(lambda: scan_content(path, ContentScanner(), False), repeats)
    rows.append(("ours alone", ours_s, f"findings={len(outcome.findings)}"))
    gate_s, result = _best(lambda: scan_model(path, ModelScanConfig(), digest=False), repeats)
    rows.append(("gate (ours + modelscan)", gate_s, f"verdict={result.verdict.value}"))
    digest_s, result = _best(lambda: scan_model(path, ModelScanConfig()), repeats)
    rows.append(("gate + sha256 digest", digest_s, f"verdict={result.verdict.value}"))
    for label, code in COLD.items():  # a fresh process, as every Airflow task is
        cold_s, _ = _best(lambda code=code: _subprocess(code, path), 1)
        rows.append((label, cold_s, "imports included"))
    return rows


COLD = {
    "cold: modelscan": "from modelscan.modelscan import ModelScan; ModelScan().scan(PATH)",
    "cold: ours alone": "from pathlib import Path\n"
    "from mlsecops_provider.core.scan.content import ContentScanner, scan_content\n"
    "scan_content(Path(PATH), ContentScanner(), False)",
}


def _subprocess(code: str, path: Path) -> None:
    import subprocess
    import sys

    script = f"import logging; logging.disable(logging.CRITICAL); PATH = {str(path)!r}\n{code}"
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-mb", type=int, default=2048, help="checkpoint size (MiB)")
    parser.add_argument("--joblib-mb", type=int, default=500, help="joblib model size (MiB)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per timing (best kept)")
    parser.add_argument("--tmp", default="/tmp", help="folder for the generated models")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # modelscan logs every skipped member
    folder = Path(tempfile.mkdtemp(prefix="bench-model-scan-", dir=args.tmp))
    try:
        started = time.perf_counter()
        build_torch_zip(folder / "checkpoint.pt", args.torch_mb)
        paths = [folder / "checkpoint.pt", *build_sklearn(folder, args.joblib_mb)]
        print(f"models built in {time.perf_counter() - started:.1f}s")
        for path in paths:
            megabytes = path.stat().st_size / (1 << 20)
            print(f"\n{path.name}: {megabytes:,.0f} MiB")
            _report(bench_file(path, args.repeats), megabytes)
            path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _report(rows: list[tuple[str, float, str]], megabytes: float) -> None:
    baseline = rows[0][1]
    for label, seconds, note in rows:
        rate = megabytes / seconds if seconds else float("inf")
        ratio = seconds / baseline if baseline else float("inf")
        print(f"  {label:<24} {seconds:8.3f}s {rate:12,.0f} MiB/s  x{ratio:5.2f}  {note}")
    ours = rows[1][1] / baseline if baseline else float("inf")
    cold = rows[5][1] / rows[4][1] if rows[4][1] else float("inf")
    verdict = "OK" if ours <= 1.5 and cold <= 1.5 else "SLOWER"
    if "errors=0" not in rows[0][2]:
        verdict += " (modelscan stopped at an error, it did not scan the whole file)"
    print(f"  ours / modelscan = {ours:.2f} warm, {cold:.2f} cold (target <= 1.5): {verdict}")


if __name__ == "__main__":
    main()
