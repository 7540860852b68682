"""A place in a server's binlog."""

from __future__ import annotations

from typing import NamedTuple

FIRST_EVENT = 4  # every binlog file starts with a 4-byte magic number


class Position(NamedTuple):
    """The end of an event: replication resumes from here (file, offset, GTID for humans)."""

    log_file: str
    log_pos: int
    gtid: str = ""

    def __str__(self) -> str:
        return f"{self.log_file}:{self.log_pos}"


def bytes_behind(position: Position, logs: list[tuple[str, int]]) -> int | None:
    """Return how many binlog bytes lie after ``position``, given ``SHOW BINARY LOGS``.

    None when its file is not among ``logs`` any more.
    """
    names = [name for name, _ in logs]
    if position.log_file not in names:
        return None
    index = names.index(position.log_file)
    behind = logs[index][1] - position.log_pos
    return max(0, behind + sum(size for _, size in logs[index + 1 :]))
