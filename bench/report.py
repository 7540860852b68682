"""Turn the suite's results (bench/suite.py) into the Markdown tables of the README."""

from __future__ import annotations

COLUMNS = ["raw cache.get", "cachelayer", "ORM", "cacheops", "cacheops lock=True", "cachalot"]
TITLES = {
    "memcached": "memcached (1 server, pymemcache)",
    "pylibmc": "memcached (1 server, pylibmc)",
    "redis": "Redis",
    "pool": "memcached, 3-server pool",
}
LATENCY_ROWS = [  # (result key, label)
    ("pk_hit", "pk hit"),
    ("unique_hit", "unique-column hit"),
    ("post_comments", "the 20 comments of a post (`cached.filter(post=pk)`)"),
    ("get_many", "`get_many` of 100 keys"),
    ("random_many", "`get_many` of a fresh random 100 keys each call"),
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
    backends = results["backends"]
    lines += ["#### Targets of issue 16, every backend (worst peer in brackets)", "", summary(results), ""]
    for name, backend in backends.items():
        lines += [f"#### {TITLES[name]}", "", *_table(backend), ""]
        if name == "pylibmc":
            lines += ["(Round trips through pylibmc show as 0: libmemcached's sockets are C-level, not counted.)", ""]
        lines += [*_targets(name, backend, backends), ""]
    if "near_cache" in results:
        lines += ["#### Near-cache (L1, Redis; bench/near_cache.py)", "", *_near_cache(results["near_cache"]), ""]
    if "cluster" in results:
        lines += ["#### Redis Cluster, 3 masters (bench/cluster_hit.py)", "", *_cluster(results["cluster"]), ""]
    if "cluster_mix" in results:
        single = backends.get("redis", {}).get("mix")
        lines += ["#### 95/5 Zipf mix, Redis Cluster beside one Redis", "", *_mixes(results["cluster_mix"], single), ""]
    return "\n".join(lines)


def _mixes(cluster: dict, single: dict | None) -> list[str]:
    """The suite's mix on the cluster, and on the single Redis of the same run."""
    lines = [
        "| cache | ORM ops/s | cachelayer ops/s | x ORM | reads with no SQL |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, mix in (("Redis Cluster, 3 masters", cluster), ("Redis, 1 server", single)):
        if mix:
            orm, ours = mix["ORM"]["ops_per_s"], mix["cachelayer"]
            ratio = f"{ours['ops_per_s'] / orm:.2f}x" if orm else "-"  # (a --quick run may measure nothing)
            lines.append(f"| {label} | {orm:,.0f} | {ours['ops_per_s']:,.0f} | {ratio} | {ours['hit_ratio']:.1%} |")
    return lines


def _cluster(rows: dict) -> list[str]:
    """cachelayer's reads on a Redis Cluster against a raw RedisCluster client's beside them."""
    lines = ["| read | raw client | cachelayer | wall | CPU |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['raw_wall_us']:.1f} us | {row['wall_us']:.1f} us "
            f"| {row['wall_ratio']:.2f}x | {row['cpu_ratio']:.2f}x |"
        )
    return lines


def _near_cache(figures: dict) -> list[str]:
    """The L1 hit against a raw cache.get, and the invalidation delay across processes."""
    lines = ["| read (p50 of single calls) | p50 | p99 | vs raw cache.get |", "| --- | ---: | ---: | ---: |"]
    for name, hit in figures["hits"].items():
        lines.append(f"| {name} | {hit['p50_us']:.2f} us | {hit['p99_us']:.1f} us | {hit['ratio_to_raw']:.3f}x |")
    lines += ["", "| invalidation delay across processes | p50 | p99 | max |", "| --- | ---: | ---: | ---: |"]
    for name, delay in figures.items():
        if name.startswith("invalidation_delay"):
            label = name.removeprefix("invalidation_delay_").replace("_", " ")
            lines.append(
                f"| {label} | {delay['p50_us']:.0f} us | {delay['p99_us']:.0f} us | {delay['max_us']:.0f} us |"
            )
    return lines


def _table(backend: dict) -> list[str]:
    present = [c for c in COLUMNS if any(c in row for row in backend.values() if isinstance(row, dict))]
    present += [c for c in backend.get("counts", {}).get("pk_hit", {}) if c not in present]
    lines = ["| workload | " + " | ".join(present) + " |", "| --- |" + " ---: |" * len(present)]
    for key, label in LATENCY_ROWS:
        if key in backend:
            lines.append(_row(label, present, backend[key], _latency(backend[key])))
    for workload, label in (
        ("pk_hit", "pk hit"),
        ("unique_hit", "unique-column hit"),
        ("get_many", "`get_many(100)`"),
        ("post_comments", "20 comments of a post"),
    ):
        counts = backend["counts"].get(workload)
        if counts:
            lines.append(_row(f"{label}: cache round trips / SQL queries", present, counts, _counts))
    if "stampede" in backend:
        lines.append(
            _row("stampede: SQL queries for concurrent misses of one key", present, backend["stampede"], _stampede)
        )
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
    waits = value.get("waits", 0)
    shown = f"{value['round_trips']} / {value['queries']}"
    return shown + (f" (sent at once: {waits} wait)" if value["round_trips"] > 1 and waits == 1 else "")


def _stampede(value: dict) -> str:
    text = f"{value['queries']:g} (max {value['max_queries']})"
    return text + (f", {value['errors']} errors" if value["errors"] else "")


SUMMARY_TITLES = {
    "memcached": "memcached (pymemcache)",
    "pylibmc": "memcached (pylibmc)",
    "redis": "Redis",
    "pool": "3-server pool",
}


def checks(name: str, backend: dict, backends: dict) -> list[tuple]:
    """The issue's targets (#16) as measured: ``(label, value, op, limit, group)``.

    ``group`` is ``(target, peer)`` in the summary (None: the label); a target
    over every peer has one check per peer, and the summary shows the worst.
    """
    hit = backend["pk_hit"]
    ours = hit["cachelayer"]
    peers = [p for p in ("cacheops", "cachalot") if p in hit]
    found = [("pk hit <= 1.3x raw `cache.get`", ours / hit["raw cache.get"], "<=", 1.3, None)]
    if name != "pool":
        found.append(("pk hit >= 4x faster than ORM", hit["ORM"] / ours, ">=", 4.0, None))
        found += [
            (f"pk hit >= 4x faster than {p}", hit[p] / ours, ">=", 4.0, ("pk hit >= 4x faster than every peer", p))
            for p in peers
        ]
    for key, label in (("get_many", "`get_many(100)`"), ("random_many", "`get_many(100)`, fresh random keys")):
        many = backend.get(key, {})
        if "ORM" in many and name != "pool":
            found.append(
                (f"{label} >= 1.5x faster than ORM `in_bulk`", many["ORM"] / many["cachelayer"], ">=", 1.5, None)
            )
            found += [
                (
                    f"{label} faster than {p}",
                    many[p] / many["cachelayer"],
                    ">",
                    1.0,
                    (f"{label} faster than every peer", p),
                )
                for p in peers
                if p in many
            ]
    if name == "pool" and "memcached" in backends:
        single = backends["memcached"]["get_many"]["cachelayer"]
        found.append(
            (
                "`get_many(100)` on 3 servers <= 1.2x on 1 server (pymemcache, same run)",
                backend["get_many"]["cachelayer"] / single,
                "<=",
                1.2,
                ("pool `get_many(100)` <= 1.2x one server's", ""),
            )
        )
    if "save" in backend:
        found.append(
            (
                "`save()` with invalidation <= 1.2x plain `save()`",
                backend["save"]["cachelayer"] / backend["save"]["ORM"],
                "<=",
                1.2,
                None,
            )
        )
    if "mix" in backend:
        mix = {peer: value["ops_per_s"] for peer, value in backend["mix"].items()}
        found.append(("95/5 mix >= 2x the ORM's throughput", mix["cachelayer"] / mix["ORM"], ">=", 2.0, None))
        found += [
            (
                f"95/5 mix >= 1.5x {p}'s throughput",
                mix["cachelayer"] / mix[p],
                ">=",
                1.5,
                ("95/5 mix >= 1.5x every peer's throughput", p),
            )
            for p in mix
            if p not in ("cachelayer", "ORM")
        ]
    return found


def _met(value, op, limit) -> bool:
    return {"<=": value <= limit, ">=": value >= limit, ">": value > limit}[op]


def _targets(name: str, backend: dict, backends: dict) -> list[str]:
    lines = ["| target | measured | met |", "| --- | ---: | :---: |"]
    for label, value, op, limit, _ in checks(name, backend, backends):
        shown = f"{value:.2f}x" if isinstance(value, float) else str(value)
        lines.append(f"| {label} | {shown} | {'yes' if _met(value, op, limit) else '**no**'} |")
    return lines


def summary(results: dict) -> str:
    """One table: every target (rows) on every backend (columns), worst peer shown."""
    backends = results["backends"]
    cells: dict[str, dict[str, str]] = {}
    for name, backend in backends.items():
        worst: dict[str, tuple] = {}
        for label, value, op, limit, group in checks(name, backend, backends):
            key, peer = group or (label, "")
            kept = worst.get(key)
            if kept is None or (value < kept[0] if op != "<=" else value > kept[0]):
                worst[key] = (value, op, limit, peer)
        for key, (value, op, limit, peer) in worst.items():
            text = f"{value:.2f}x" + (f" ({peer})" if peer else "")
            cells.setdefault(key, {})[name] = text + (" yes" if _met(value, op, limit) else " **no**")
    columns = list(backends)
    lines = [
        "| target | " + " | ".join(SUMMARY_TITLES.get(c, c) for c in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for key, row in cells.items():
        lines.append(f"| {key} | " + " | ".join(row.get(c, "") for c in columns) + " |")
    return "\n".join(lines)
