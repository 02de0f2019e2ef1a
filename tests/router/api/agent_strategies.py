"""Hypothesis strategies for the agent fields of a request, for the API fuzz tests.

Valid draws are coherent conversations (calls with unique ids, results answering them, parts
of one kind each) so they reach routing; hostile draws break every rule the door checks.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from router.api import router_pb2 as pb

SCHEMAS = [
    "",
    '{"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}',
    '{"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}}',
]
BAD_SCHEMAS = [
    "{",
    "[]",
    '{"type": "nonsense"}',
    '{"type": "string"}',
    '{"pattern": "(a+)+\\\\1"}',
    '{"$ref": "http://169.254.169.254/"}',
    '{"items": ' * 40 + "{}" + "}" * 40,
]
NAMES = ["search", "get_time", "calc"]
int32 = st.integers(-(2**31), 2**31 - 1)

tools = st.lists(
    st.builds(pb.Tool, name=st.sampled_from(NAMES), parameters=st.sampled_from(SCHEMAS)),
    max_size=3,
    unique_by=lambda t: t.name,
)
parts = st.lists(
    st.builds(pb.ContentPart, type=st.just("text"), text=st.text(max_size=50))
    | st.builds(
        pb.ContentPart,
        type=st.just("image"),
        image_url=st.sampled_from(["https://example.com/a.png", "data:image/png;base64,AA"]),
    ),
    min_size=1,
    max_size=3,
)
formats = st.sampled_from(
    [
        pb.ResponseFormat(type="text"),
        pb.ResponseFormat(type="json_object"),
        pb.ResponseFormat(type="json_schema", name="out", schema=SCHEMAS[1], strict=True),
    ]
)
VALID_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "tools": st.just([]) | tools,
    "tool_choice": st.none() | st.builds(pb.ToolChoice, mode=st.sampled_from(["auto", "none"])),
    "response_format": st.none() | formats,
    "stop": st.lists(st.sampled_from(["\n\n", "END"]), max_size=2),
    "top_p": st.none() | st.floats(0.05, 1),
    "seed": st.none() | int32,
}


@st.composite
def _turns(draw: st.DrawFn, content: st.SearchStrategy[str]) -> list[pb.Message]:
    """A user turn (text or parts), then rounds of assistant calls and the tools' results."""
    first = draw(st.booleans())
    out = [
        pb.Message(role="user", content=draw(content))
        if first
        else pb.Message(role="user", parts=draw(parts))
    ]
    for r in range(draw(st.integers(0, 2))):
        n = draw(st.integers(1, 2))
        calls = [
            pb.ToolCall(id=f"c{r}_{i}", name=draw(st.sampled_from(NAMES)), arguments='{"q": "x"}')
            for i in range(n)
        ]
        out.append(pb.Message(role="assistant", tool_calls=calls))
        out += [pb.Message(role="tool", tool_call_id=c.id, content=draw(content)) for c in calls]
    return out


def conversations(content: st.SearchStrategy[str]) -> st.SearchStrategy[list[pb.Message]]:
    return _turns(content)


def hostile_messages(text: st.SearchStrategy[str]) -> st.SearchStrategy[pb.Message]:
    """Messages with hostile roles, parts, call ids, names and arguments."""
    part = st.builds(
        pb.ContentPart,
        type=text,
        text=text,
        image_url=text,
        image_data=st.binary(max_size=64),
        media_type=text,
    )
    call = st.builds(pb.ToolCall, id=text, name=text, arguments=text)
    return st.builds(
        pb.Message,
        role=text | st.sampled_from(["tool", "assistant", "user"]),
        parts=st.lists(part, max_size=70),
        tool_call_id=text,
        tool_calls=st.lists(call, max_size=3),
    )


def hostile_fields(text: st.SearchStrategy[str]) -> dict[str, st.SearchStrategy[Any]]:
    schemas = st.sampled_from(BAD_SCHEMAS) | text
    return {
        "tools": st.lists(
            st.builds(pb.Tool, name=text, description=text, parameters=schemas), max_size=6
        ),
        "tool_choice": st.builds(pb.ToolChoice, mode=text, name=text),
        "response_format": st.builds(pb.ResponseFormat, type=text, name=text, schema=schemas),
        "stop": st.lists(text, max_size=8),
        "top_p": st.floats(),
        "seed": int32,
    }
