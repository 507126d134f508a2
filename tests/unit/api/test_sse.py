"""Tests for onm.api.sse: decoding server-sent events, line by line, with no I/O.

Rules from https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

from onm.api.sse import HEARTBEAT_LINE, Comment, ServerSentEvent, SseDecoder, encode


def decode_all(lines: list[str]) -> list[ServerSentEvent | Comment]:
    decoder = SseDecoder()
    return [item for line in lines if (item := decoder.feed(line)) is not None]


def decode(lines: list[str]) -> list[ServerSentEvent]:
    return [item for item in decode_all(lines) if isinstance(item, ServerSentEvent)]


def test_an_event_is_dispatched_by_the_blank_line_after_it() -> None:
    lines = ["id: 7", "event: tenant.created", 'data: {"seq": 7}', ""]
    assert decode(lines) == [ServerSentEvent("tenant.created", '{"seq": 7}', "7")]
    assert decode(lines[:-1]) == []


def test_comments_and_heartbeats_dispatch_no_event() -> None:
    assert decode([": keep-alive", "", ": heartbeat", ""]) == []


def test_heartbeats_come_out_as_comments_as_they_arrive() -> None:
    # The manager's heartbeat (onm.api.sse.HEARTBEAT_LINE) is `: heartbeat` + a
    # blank line; a comment does not disturb an event being gathered around it.
    lines = [": heartbeat", "", "data: a", ":x", "data: b", ""]
    assert decode_all(lines) == [
        Comment("heartbeat"),
        Comment("x"),
        ServerSentEvent("message", "a\nb", None),
    ]


def test_the_manager_s_heartbeat_line_decodes_to_one_heartbeat_comment() -> None:
    text = HEARTBEAT_LINE.decode()
    assert decode_all(text.splitlines()) == [Comment("heartbeat")]


def test_the_manager_s_events_decode_to_what_it_encoded() -> None:
    text = (encode("snapshot", '{"revision": 3}', id=3) + encode("x", "y")).decode()
    assert decode_all(text.splitlines()) == [
        ServerSentEvent("snapshot", '{"revision": 3}', "3"),
        ServerSentEvent("x", "y", "3"),
    ]


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
