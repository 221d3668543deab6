"""What the sweep store's integrity costs: examples/sweeps/phase_cpu.toml with and without the
CRC-32C checksum on every chunk.

Each repeat runs the whole sweep into a fresh store and opens it back with verification (every
done chunk decoded and its checksum checked), once with the store as shipped (zstd + CRC-32C)
and once with zstd alone, in alternating order; the figure of merit is the ratio of the median
times (goal: at most 1.05).  A warm-up run first compiles the kernels, so the timed runs measure
the sweep, its writes and the verification, not compilation.

    python benchmarks/bench_store.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from hambias.cli import available_cores, request_cpu_devices

# As `hambias sweep` does: one XLA CPU device per core, asked for before JAX starts.
request_cpu_devices(available_cores(), explicit=False)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import hambias as hb  # noqa: E402
from hambias.sweep import store  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "phase_cpu.toml"


@contextmanager
def without_checksums():
    """The baseline: the store's codecs without the CRC-32C stage (this benchmark only)."""
    shipped = store._codecs

    def zstd_only():
        from zarr.codecs import ZstdCodec

        return [ZstdCodec()]

    store._codecs = zstd_only
    try:
        yield
    finally:
        store._codecs = shipped


def one_run(cfg, root: Path, tag: str) -> float:
    out = root / tag
    t0 = time.perf_counter()
    hb.run_sweep(cfg, out, quiet=True)
    hb.open_sweep(out, verify=True)
    return time.perf_counter() - t0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    cfg = hb.load_config(CONFIG)
    print(f"{CONFIG.name}: {cfg.n_points} points x {cfg.steps} steps; "
          f"{len(jax.devices())} device(s), {jax.devices()[0].platform}")
    times = {"crc32c": [], "none": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        one_run(cfg, root, "warmup")
        for r in range(args.repeats):
            order = ("crc32c", "none") if r % 2 == 0 else ("none", "crc32c")
            for kind in order:
                if kind == "none":
                    with without_checksums():
                        t = one_run(cfg, root, f"{kind}{r}")
                else:
                    t = one_run(cfg, root, f"{kind}{r}")
                times[kind].append(t)
                print(f"  repeat {r}: {kind:7s} {t:7.2f} s")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median: with checksums {med['crc32c']:.2f} s, without {med['none']:.2f} s; "
          f"ratio {med['crc32c'] / med['none']:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
