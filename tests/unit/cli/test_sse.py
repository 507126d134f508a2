"""Tests for onm.cli.sse: decoding server-sent events, line by line, with no I/O.

Rules from https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

from onm.cli.sse import ServerSentEvent, SseDecoder


def decode(lines: list[str]) -> list[ServerSentEvent]:
    decoder = SseDecoder()
    return [event for line in lines if (event := decoder.feed(line)) is not None]


def test_an_event_is_dispatched_by_the_blank_line_after_it() -> None:
    lines = ["id: 7", "event: tenant.created", 'data: {"seq": 7}', ""]
    assert decode(lines) == [ServerSentEvent("tenant.created", '{"seq": 7}', "7")]
    assert decode(lines[:-1]) == []


def test_comments_and_keep_alives_dispatch_nothing() -> None:
    assert decode([": keep-alive", "", ": keep-alive", ""]) == []


def test_data_lines_join_with_newlines_and_one_leading_space_is_dropped() -> None:
    assert decode(["data: a", "data:b", "data:  c", ""]) == [
        ServerSentEvent("message", "a\nb\n c", None)
    ]


def test_the_event_type_resets_and_the_last_id_carries_over() -> None:
    events = decode(["id: 1", "event: x", "data: one", "", "data: two", ""])
    assert events == [ServerSentEvent("x", "one", "1"), ServerSentEvent("message", "two", "1")]


def test_fields_without_data_are_forgotten_and_unknown_fields_ignored() -> None:
    assert decode(["event: lost", "", "retry: 10", "data", "", "id: a\0b", "data: x", ""]) == [
        ServerSentEvent("message", "", None),
        ServerSentEvent("message", "x", None),
    ]
