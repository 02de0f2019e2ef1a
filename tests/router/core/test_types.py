"""Request: the texts a backend receives and the features a request implies."""

from __future__ import annotations

from router.core.types import (
    ChatMessage,
    ContentPart,
    Request,
    ResponseFormat,
    ToolCall,
    ToolSpec,
)


def make(*messages: ChatMessage, **fields) -> Request:
    return Request("r", "t", messages or (ChatMessage("user", "hi"),), 16, 0.0, **fields)


def test_plain_request_texts_are_the_contents_and_need_nothing():
    """A plain chat is just its contents and implies no feature."""
    r = make(ChatMessage("system", "be brief"), ChatMessage("user", "hi"))
    assert r.texts() == ["be brief", "hi"] and r.features == () and r.chars() == 10


def test_texts_include_parts_calls_results_tools_and_schema():
    """Text parts, image URLs, call arguments, tool results, tool definitions and the schema."""
    r = make(
        ChatMessage(
            "user",
            "",
            parts=(ContentPart("text", text="see"), ContentPart("image", url="https://x/i.png")),
        ),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c1", "lookup", '{"id": 7}'),)),
        ChatMessage("tool", "card 4111", tool_call_id="c1"),
        tools=(ToolSpec("lookup", "find a record", '{"type": "object"}'),),
        response_format=ResponseFormat("json_schema", "out", '{"type": "object", "title": "T"}'),
    )
    texts = r.texts()
    for expected in [
        "see",
        "https://x/i.png",
        "lookup",
        '{"id": 7}',
        "card 4111",
        "find a record",
        '{"type": "object", "title": "T"}',
    ]:
        assert expected in texts, expected
    assert r.images == 1


def test_features_are_implied_by_what_the_request_uses():
    """Tools (offered or in history), JSON formats and images imply their features, unlisted."""
    assert make(tools=(ToolSpec("t"),)).features == ("tools",)
    assert make(
        ChatMessage("user", "x"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("c", "t", "{}"),)),
    ).features == ("tools",)
    assert make(response_format=ResponseFormat("json_object")).features == ("json_mode",)
    assert make(response_format=ResponseFormat("json_schema", "s", "{}")).features == (
        "json_schema",
    )
    image = ChatMessage(
        "user", "", parts=(ContentPart("image", data=b"x", media_type="image/png"),)
    )
    assert make(image, features=("streaming",)).features == ("streaming", "vision")
