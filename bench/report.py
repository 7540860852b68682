"""Turn the suite's results (bench/suite.py) into the Markdown tables of the README."""

from __future__ import annotations

COLUMNS = ["raw cache.get", "cachelayer", "ORM", "cacheops", "cacheops lock=True", "cachalot"]
TITLES = {
    "memcached": "memcached (1 server)",
    "redis": "Redis",
    "pool": "memcached, 3-server pool",
}
LATENCY_ROWS = [  # (result key, label)
    ("pk_hit", "pk hit"),
    ("unique_hit", "unique-column hit"),
    ("post_comments", "the 20 comments of a post (`cached.filter(post=pk)`)"),
    ("get_many", "`get_many` of 100 keys"),
    ("singles", "100 single pk hits"),
    ("per_request", "pk hit, request signals around each"),
    ("save", "`save()` (ORM: plain, others: with invalidation)"),
]


def render(results: dict) -> str:
    machine = results["machine"]
    lines = [
        f"Measured {machine['date']} on {machine['cpu']} ({machine['cores']} cores), Python {machine['python']}, "
        f"Django {machine['django']}, MariaDB {machine['mariadb']}, {machine['memcached']}, {machine['redis-server']}.",
        "Latencies are medians of interleaved rounds in microseconds per call; "
        "(x) = that time / cachelayer's time, so above 1.00x cachelayer is faster.",
        "",
    ]
    for name, backend in results["backends"].items():
        lines += [f"#### {TITLES[name]}", "", *_table(backend), "", *_targets(name, backend), ""]
    return "\n".join(lines)


def _table(backend: dict) -> list[str]:
    present = [c for c in COLUMNS if any(c in row for row in backend.values() if isinstance(row, dict))]
    present += [c for c in backend.get("counts", {}).get("pk_hit", {}) if c not in present]
    lines = ["| workload | " + " | ".join(present) + " |", "| --- |" + " ---: |" * len(present)]
    for key, label in LATENCY_ROWS:
        if key in backend:
            lines.append(_row(label, present, backend[key], _latency(backend[key])))
    for workload, label in (("pk_hit", "pk hit"), ("unique_hit", "unique-column hit"), ("get_many", "`get_many(100)`"),
                            ("post_comments", "20 comments of a post")):
        counts = backend["counts"].get(workload)
        if counts:
            lines.append(_row(f"{label}: cache round trips / SQL queries", present, counts, _counts))
    if "stampede" in backend:
        lines.append(_row("stampede: SQL queries for concurrent misses of one key", present, backend["stampede"], _stampede))
    if "mix" in backend:
        mix = backend["mix"]
        lines.append(_row("95/5 Zipf mix, several processes: ops/s", present, mix, lambda v: f"{v['ops_per_s']:,.0f}"))
        lines.append(_row("mix: reads served with no SQL", present, mix, lambda v: f"{v['hit_ratio']:.1%}"))
    return lines


def _row(label: str, columns: list[str], values: dict, show) -> str:
    return f"| {label} | " + " | ".join(show(values[c]) if c in values else "" for c in columns) + " |"


def _latency(values: dict):
    base = values.get("cachelayer")

    def show(value):
        return f"{value:.1f} us" + (f" ({value / base:.2f}x)" if base else "")

    return show


def _counts(value: dict) -> str:
    return f"{value['round_trips']} / {value['queries']}"


def _stampede(value: dict) -> str:
    text = f"{value['queries']:g} (max {value['max_queries']})"
    return text + (f", {value['errors']} errors" if value["errors"] else "")


def _targets(name: str, backend: dict) -> list[str]:
    """The issue's targets, each as measured in this run."""
    hit = backend["pk_hit"]
    ours = hit["cachelayer"]
    checks = [("pk hit <= 1.5x raw `cache.get`", ours / hit["raw cache.get"], "<=", 1.5)]
    if name != "pool":
        for peer in ("ORM", "cacheops", "cachalot"):
            if peer in hit:
                checks.append((f"pk hit >= 3x faster than {peer}", hit[peer] / ours, ">=", 3.0))
    many = backend["counts"]["get_many"]["cachelayer"]
    checks.append(("`get_many(100)`: cache round trips", many["round_trips"], "<=", 1))
    checks.append(("`get_many(100)`: SQL queries (warm)", many["queries"], "<=", 1))
    if "singles" in backend:
        checks.append((
            "`get_many(100)` >= 10x faster than 100 single hits",
            backend["singles"]["cachelayer"] / backend["get_many"]["cachelayer"], ">=", 10.0,
        ))
    if "save" in backend:
        checks.append(("`save()` with invalidation <= 1.3x plain `save()`", backend["save"]["cachelayer"] / backend["save"]["ORM"], "<=", 1.3))
    lines = ["| target | measured | met |", "| --- | ---: | :---: |"]
    for label, value, op, limit in checks:
        met = value <= limit if op == "<=" else value >= limit
        shown = f"{value:.2f}x" if isinstance(value, float) else str(value)
        lines.append(f"| {label} | {shown} | {'yes' if met else '**no**'} |")
    return lines
