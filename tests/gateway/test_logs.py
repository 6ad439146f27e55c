from __future__ import annotations

from gateway.logs import LogQuery, filter_logs

LINES = [{"timestamp": f"2026-01-01T00:00:0{n}.000000Z", "message": str(n)} for n in range(5)]
SECOND = 1767225600000  # 2026-01-01T00:00:00Z in epoch milliseconds


def test_no_query_keeps_everything() -> None:
    assert filter_logs(LINES, LogQuery()) == LINES


def test_from_and_to_are_inclusive_milliseconds() -> None:
    query = LogQuery.model_validate({"from": SECOND + 1000, "to": SECOND + 3000})
    assert [line["message"] for line in filter_logs(LINES, query)] == ["1", "2", "3"]


def test_limit_keeps_the_latest_lines() -> None:
    assert [line["message"] for line in filter_logs(LINES, LogQuery(limit=2))] == ["3", "4"]
    assert filter_logs(LINES, LogQuery(limit=0)) == []
