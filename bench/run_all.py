#!/usr/bin/env python
"""Run every dia_pipe benchmark, collect their JSON in ``bench/results/`` and refresh ``bench/README.md``.

Order: the executor, association and forced-photometry benches (and ``bench_diffim.py`` when present), then
``speed.py`` (which reads their results instead of re-running them), then ``quality.py --preset demo`` when
present. A script that fails is reported and the others still run; the README table is rebuilt from whatever
JSON files exist, with the date, machine and the targets each number is judged against.

Usage::

    python bench/run_all.py [--quick] [--skip NAME ...] [--readme-only]

``make bench`` runs ``.venv/bin/python bench/run_all.py``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
README = BENCH / "README.md"
MACHINE = RESULTS / "machine.json"
#: Where ``--quick`` writes (git-ignored).
QUICK_RESULTS = BENCH / "cache" / "quick-results"

#: Benchmarks in run order: name -> (script, extra arguments, extra arguments with ``--quick``).
BENCHES: dict[str, tuple[str, list[str], list[str]]] = {
    "executor": ("bench_executor.py", [], ["--quanta", "8", "--repeat", "1"]),
    "association": ("bench_association.py", [], ["--visits", "10", "30"]),
    "forced": ("bench_forced.py", [], ["--n-objects", "5000", "--size", "1024", "--repeat", "2"]),
    "diffim": ("bench_diffim.py", [], []),
    "speed": ("speed.py", [], ["--quick"]),
    "quality": ("quality.py", ["--preset", "demo"], ["--preset", "demo"]),
}

#: Marker lines between which the README's numbers are regenerated.
TABLE_START, TABLE_END = "<!-- numbers:start -->", "<!-- numbers:end -->"


def output_flag(script: Path) -> str | None:
    """The option through which a bench script writes its JSON (``--json``, ``--output`` or ``--out``; `None`
    when it only prints it)."""
    text = script.read_text()
    for flag in ("--json", "--output", "--out"):
        if re.search(rf"""["']{flag}["']""", text):
            return flag
    return None


def run_bench_script(script: str, args: list[str], out: Path, timeout: float = 3600.0) -> dict:
    """Run ``bench/<script>`` with dia_pipe's Python and return the JSON it wrote to ``out``.

    Parameters
    ----------
    script : `str`
        File name under ``bench/``.
    args : `list` [`str`]
        Extra arguments.
    out : `pathlib.Path`
        Where the script is asked to write its JSON.
    timeout : `float`
        Seconds.

    Returns
    -------
    result : `dict`
        The script's JSON (taken from its standard output when it has no output option), or
        ``{"error": ...}`` when it failed or produced none.
    """
    path = BENCH / script
    flag = output_flag(path)
    env = dict(os.environ)
    python_dir = str(BENCH.parent / "python")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (python_dir, env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, str(path), *args, *((flag, str(out)) if flag else ())], env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{script} timed out after {timeout:.0f} s"}
    if flag is None and done.returncode == 0:  # a script without an output option: its stdout is the JSON
        try:
            out.write_text(json.dumps(json.loads(done.stdout), indent=1) + "\n")
        except json.JSONDecodeError:
            return {"error": f"{script} printed no JSON document"}
    if done.returncode != 0 or not out.exists():
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])[-500:]
        return {"error": f"{script} exit status {done.returncode}: {tail}"}
    result = json.loads(out.read_text())
    result.setdefault("bench_wall_s", round(time.perf_counter() - start, 1))
    return result


def machine_info() -> dict:
    """Date, host CPU model, core count and memory of this machine."""
    model = "unknown"
    with open("/proc/cpuinfo") as stream:
        for line in stream:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as stream:
        mem_kb = int(next(line for line in stream if line.startswith("MemTotal")).split()[1])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "nproc": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
    }


def load_results() -> dict[str, dict]:
    """Every ``bench/results/<name>.json`` of `BENCHES`, by name."""
    found = {}
    for name in BENCHES:
        path = RESULTS / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


# --- README table --------------------------------------------------------------------------------------------
def _get(results: dict, *keys):
    value = results
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and abs(value) >= 1000):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _verdict(value, low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "no target"
    if value is None:
        return "not measured"
    value = round(value, 2)  # targets are stated to two decimals at most
    ok = (low is None or value >= low) and (high is None or value <= high)
    return "**met**" if ok else "**NOT met**"


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low:g}–{high:g}"
    if high is not None:
        return f"≤ {high:g}"
    if low is not None:
        return f"≥ {low:g}"
    return ""


class Row(NamedTuple):
    """One line of the README table."""

    label: str
    source: str  # result file name (``speed`` -> results/speed.json)
    keys: tuple[str, ...]  # path to the value inside it
    low: float | None = None  # target bounds (None: unbounded)
    high: float | None = None
    note: str = ""
    error_key: str = "error"  # where the source says why the value is missing


#: The README table.
ROWS: list[Row] = [
    Row("FFT pair: 4096² float32 rfft2+irfft2, 2 workers [s]", "speed", ("fft_pair_s",), note="the unit"),
    Row("AL subtraction, 4k CCD, warped template [s]", "speed", ("al_ccd4k_s",)),
    Row("AL / FFT pair", "speed", ("al_fft_ratio",), None, 25.0, "issue target ≤ 25×"),
    Row("ZOGY subtraction, 4k CCD [s]", "speed", ("zogy_ccd4k_s",)),
    Row("ZOGY / FFT pair", "speed", ("zogy_fft_ratio",), None, 30.0, "issue target ≤ 30×"),
    Row("fastest FFT pair of the run (both cores free) [s]", "speed", ("fft_pair_min_s",),
        note="median is slower when another process holds a core"),
    Row("AL / fastest FFT pair", "speed", ("al_fft_ratio_min",), None, 25.0, "target vs an idle machine"),
    Row("ZOGY / fastest FFT pair", "speed", ("zogy_fft_ratio_min",), None, 30.0, "target vs an idle machine"),
    Row("AL CPU time / wall time", "speed", ("al_cpu_per_wall",), note="2 = both cores busy"),
    Row("AL residual noise ratio, 4k", "speed", ("al_residual_noise_ratio",), 1.0, 1.10, "science-notes"),
    Row("ZOGY residual noise ratio, 4k", "speed", ("zogy_residual_noise_ratio",), 1.0, 1.10, "science-notes"),
    Row("AL / FFT pair, synthetic Gaussian star field", "diffim", ("al_fft_ratio",), None, 25.0,
        "bench_diffim.py, best of 2 after a warm-up"),
    Row("ZOGY / FFT pair, synthetic Gaussian star field", "diffim", ("zogy_fft_ratio",), None, 30.0,
        "bench_diffim.py, best of 2 after a warm-up"),
    Row("template warp + assembly, 6 patches → 4k CCD [s]", "speed", ("stages_s", "template")),
    Row("detection, 4k AL difference [s]", "speed", ("stages_s", "detection")),
    Row("DIASource measurement, 4k [s]", "speed", ("stages_s", "measurement")),
    Row("calexp butler put + get, 4k [s]", "speed", ("stages_s", "io"), note="local SQLite repo, ≈ 190 MB"),
    Row("AL time ∝ pixels^k: k (1k–4k)", "speed", ("scaling", "al_exponent"), note="1 = linear"),
    Row("ZOGY time ∝ pixels^k: k (1k–4k)", "speed", ("scaling", "zogy_exponent"), note="1 = linear"),
    Row("peer SFFT, 2k crop [s]", "speed", ("sfft_ccd2k_s",), note="numpy backend, 2 threads",
        error_key="sfft_error"),
    Row("dia_pipe AL, same 2k crop [s]", "speed", ("al_ccd2k_s",)),
    Row("SFFT time / dia_pipe AL time, 2k", "speed", ("sfft_al_ratio_2k",), note="> 1: dia_pipe faster",
        error_key="sfft_error"),
    Row("SFFT residual noise ratio, 2k", "speed", ("sfft_residual_noise_ratio",), error_key="sfft_error"),
    Row("SFFT peak memory, 2k [GB]", "speed", ("sfft_max_rss_gb",), error_key="sfft_error"),
    Row("peer properimage (ZOGY) [s]", "speed", ("properimage_s",), note="crop size: properimage_size",
        error_key="properimage_error"),
    Row("properimage time / dia_pipe ZOGY time", "speed", ("properimage_zogy_ratio",),
        note="> 1: dia_pipe faster", error_key="properimage_error"),
    Row("properimage: robust std of its ZOGY D (should be 1)", "speed", ("properimage_d_robust_std",),
        note="D not unit-normalised: no comparable noise ratio", error_key="properimage_error"),
    Row("properimage peak memory [GB]", "speed", ("properimage_max_rss_gb",), error_key="properimage_error"),
    Row("peer HOTPANTS, 4k [s]", "speed", ("hotpants_ccd4k_s",), error_key="hotpants_error"),
    Row("quantum overhead [s]", "executor", ("quantum_overhead_s",), None, 0.1, "issue target ≤ 0.1 s per quantum"),
    Row("parallel efficiency, 2 cores", "executor", ("parallel_efficiency",), 0.9, None, "issue target ≥ 90%, 1-s quanta"),
    Row("association of 10⁶ DIASources [s]", "association", ("assoc_1e6_s",), None, 20.0,
        "issue target ≤ 20 s, running list, 1 core"),
    Row("association CPU time ∝ N^k: k", "association", ("exponent",), note="10⁴–10⁶ DIASources"),
    Row("association purity", "association", ("purity",), note="synthetic truth, 10⁶ sources"),
    Row("association completeness", "association", ("completeness",), note="synthetic truth, 10⁶ sources"),
    Row("forced photometry [objects / s / core]", "forced", ("forced_per_s_core",), 50000.0, None,
        "issue target ≥ 50 000, 4k image, 50k objects"),
    Row("forced pulls: mean", "forced", ("pull_mean_unflagged",), -0.05, 0.05, "≈ 0"),
    Row("forced pulls: std", "forced", ("pull_std_unflagged",), 0.95, 1.05, "≈ 1"),
    Row("forced time ∝ N_objects^k: k", "speed", ("scaling", "forced_exponent")),
    Row("snr50, AL (demo survey)", "quality", ("snr50_al",), None, 5.5, "issue target ≤ 5.5 (DC2 LSST stack: 5.8)"),
    Row("snr50, ZOGY (demo survey)", "quality", ("snr50_zogy",), None, 5.5, "issue target ≤ 5.5"),
    Row("artifacts per 4k CCD, AL (demo survey)", "quality", ("artifacts_per_ccd4k_al",), None, 5.0,
        "issue target ≤ 5 (DC2 real stack: 16–52)"),
    Row("Gaussian-noise floor of 5σ detections, same PSFs, per 4k CCD (demo)", "quality",
        ("artifact_noise_floor_per_ccd4k",), None, None, "what exactly Gaussian noise alone would give"),
    Row("artifacts per 4k CCD, ZOGY (demo survey)", "quality", ("artifacts_per_ccd4k_zogy",), None, 5.0,
        "issue target ≤ 5"),
    Row("residual noise ratio, AL (demo survey)", "quality", ("residual_noise_ratio_al",), 1.0, 1.10,
        "issue target 1.00–1.10"),
    Row("residual noise ratio, ZOGY (demo survey)", "quality", ("residual_noise_ratio_zogy",), 1.0, 1.10,
        "issue target 1.00–1.10"),
    Row("DIASource flux bias, true S/N > 20 (demo survey)", "quality", ("diasrc_flux_bias_highsnr",), -0.01, 0.01,
        "issue target < 1 %"),
    Row("DIASource flux pulls, true S/N > 20: std (demo)", "quality", ("diasrc_pull_std",), 0.9, 1.1,
        "issue target 0.9–1.1"),
    Row("DIASource flux bias, true S/N > 20, ZOGY (demo)", "quality", ("diasrc_flux_bias_highsnr_zogy",), -0.01,
        0.01, "issue target < 1 %"),
    Row("DIASource flux pulls, true S/N > 20: std, ZOGY (demo)", "quality", ("diasrc_pull_std_zogy",), 0.9, 1.1,
        "issue target 0.9–1.1"),
    Row("forced pulls on the difference: mean (demo)", "quality", ("forced_pull_mean_diff",), -0.1, 0.1,
        "issue target |mean| ≤ 0.1"),
    Row("forced pulls on the difference: std (demo)", "quality", ("forced_pull_std_diff",), 0.9, 1.1,
        "issue target 0.9–1.1"),
    Row("forced pulls on the science image: mean (demo)", "quality", ("forced_pull_mean_sci",), -0.1, 0.1,
        "issue target |mean| ≤ 0.1"),
    Row("forced pulls on the science image: std (demo)", "quality", ("forced_pull_std_sci",), 0.9, 1.1,
        "issue target 0.9–1.1"),
    Row("forced pulls on the science image: std, ZOGY (demo)", "quality", ("forced_pull_std_sci_zogy",), 0.9, 1.1,
        "issue target 0.9–1.1"),
    Row("forced pulls before explosion (true flux 0): mean (demo)", "quality", ("forced_pull_mean_null",), -0.1,
        0.1, "issue: non-detections consistent with zero"),
    Row("forced pulls before explosion (true flux 0): std (demo)", "quality", ("forced_pull_std_null",), 0.9, 1.1,
        "issue: non-detections consistent with zero"),
    Row("association purity (demo survey)", "quality", ("assoc_purity",), 0.99, None, "issue target ≥ 99 %"),
    Row("association completeness (demo survey)", "quality", ("assoc_completeness",), 0.99, None,
        "issue target ≥ 99 %"),
]


def numbers_table(results: dict[str, dict], machine: dict) -> str:
    """The README's numbers section (markdown) from the collected results."""
    lines = [
        TABLE_START,
        f"Latest run: {machine.get('date', '?')} on {machine.get('nproc', '?')} × {machine.get('cpu', '?')}, "
        f"{machine.get('memory_gb', '?')} GB RAM, Python {machine.get('python', '?')} "
        "(a machine shared with other work: times are indicative).",
        "",
        "| metric | value | target | verdict | note |",
        "|---|---|---|---|---|",
    ]
    for row in ROWS:
        source = results.get(row.source, {})
        value = _get(source, *row.keys)
        error = _get(source, row.error_key)
        shown = _fmt(value) if value is not None else (f"— ({error})" if error else "—")
        lines.append(f"| {row.label} | {shown} | {_bounds(row.low, row.high)} | "
                     f"{_verdict(value, row.low, row.high)} | {row.note} |")
    missing = [name for name in BENCHES if name not in results]
    if missing:
        lines += ["", f"No results yet from: {', '.join(missing)}."]
    lines.append(TABLE_END)
    return "\n".join(lines)


def update_readme(results: dict[str, dict], machine: dict) -> None:
    """Replace the numbers section of ``bench/README.md`` (between the marker lines)."""
    text = README.read_text()
    start, end = text.index(TABLE_START), text.index(TABLE_END) + len(TABLE_END)
    README.write_text(text[:start] + numbers_table(results, machine) + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small, fast variants (a smoke test): results in bench/cache/quick-results/, README kept")
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(BENCHES), help="benches not to run")
    parser.add_argument("--readme-only", action="store_true", help="only rebuild the README from results/")
    args = parser.parse_args()
    results = QUICK_RESULTS if args.quick else RESULTS
    results.mkdir(parents=True, exist_ok=True)
    if not args.readme_only:
        (results / MACHINE.name).write_text(json.dumps(machine_info(), indent=1) + "\n")
        for name, (script, extra, quick) in BENCHES.items():
            if name in args.skip:
                continue
            if not (BENCH / script).exists():
                print(f"{name}: {script} not present, skipped", flush=True)
                continue
            arguments = quick if args.quick else extra
            if name == "speed":
                arguments = [*arguments, "--others", str(results)]
            print(f"{name}: running {script} {' '.join(arguments)} ...", flush=True)
            result = run_bench_script(script, arguments, results / f"{name}.json")
            if "error" in result and len(result) == 1:
                print(f"{name}: FAILED: {result['error']}", flush=True)
            else:
                print(f"{name}: done in {result.get('bench_wall_s', '?')} s", flush=True)
    if args.quick:
        print(f"quick results in {results} (README not changed)")
        return
    machine = json.loads(MACHINE.read_text()) if MACHINE.exists() else machine_info()
    update_readme(load_results(), machine)
    print(f"README numbers refreshed: {README}")


if __name__ == "__main__":
    main()
