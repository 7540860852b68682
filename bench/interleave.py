"""Interleaved timing shared by the benchmarks: warm up, then rounds that take
turns between contenders so that drift in the machine hits each alike."""

import statistics
import time


def per_call_us(call, ops: int) -> float:
    start = time.perf_counter()
    for _ in range(ops):
        call()
    return (time.perf_counter() - start) / ops * 1e6


def compare(contenders: dict, baseline: str, rounds: int, ops: int, warmup: int = 0) -> dict:
    """Print and return the median microseconds per call of each contender."""
    for call in contenders.values():
        for _ in range(warmup):
            call()
    samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, call in contenders.items():
            samples[name].append(per_call_us(call, ops))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    width = max(len(name) for name in contenders) + 2
    print(f"{'contender':{width}} {'median us':>10} {'vs ' + baseline:>{len(baseline) + 5}}")
    for name, value in medians.items():
        print(f"{name:{width}} {value:10.1f} {value / medians[baseline]:{len(baseline) + 4}.2f}x")
    return medians
