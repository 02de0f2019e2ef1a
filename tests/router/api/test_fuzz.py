"""Property-based fuzzing of every RPC on a real server: well-formed but arbitrary requests.

Whatever a client sends (any strings incl. control characters and huge ones, any numbers incl.
NaN, infinities and negatives, unknown enum values, metadata, features, batch sizes, config
texts), the server answers with a clear status: never INTERNAL or UNKNOWN, an INVALID_ARGUMENT
names the field, and afterwards every slot and budget hold is back to zero and health SERVING.
Derandomized with no example database, so CI runs the same cases every time (well under a
minute on two cores).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from router.api import router_pb2 as pb
from router.api import router_pb2_grpc as pb_grpc
from router.api.convert import FEATURES
from router.core.types import ROLES
from tests.router.api import agent_strategies as agent

POLICIES = ("capability", "privacy", "cost", "latency", "capacity", "headroom", "budget")
CONFIG: dict[str, Any] = {
    "server": {"watch_config": False, "admin_loopback": True},
    "limits": {"max_tokens": 512, "max_batch_requests": 16, "max_metadata_entries": 8},
    "backends": {
        "edge": {
            "type": "scripted",
            "model": "small",
            "tier": "edge",
            "context_window": 2048,
            "max_concurrency": 2,
            "text": "one two three four five",
        },
        "gpu": {
            "type": "scripted",
            "model": "big",
            "aliases": ["llama"],
            "tier": "cloud_gpu",
            "context_window": 8192,
            "max_concurrency": 4,
            "features": ["streaming", "tools"],
            "price": {"input_per_mtok": 0.2, "output_per_mtok": 0.6},
        },
        "api": {
            "type": "scripted",
            "model": "gpt",
            "tier": "remote_api",
            "context_window": 32768,
            "features": ["streaming", "tools", "json_mode"],
            "price": {"input_per_mtok": 2.5, "output_per_mtok": 10.0, "per_request": 0.001},
        },
    },
    "policies": {
        **{p: {"type": p} for p in POLICIES if p != "budget"},
        "budget": {
            "type": "budget",
            "parameters": {
                "budgets": [
                    {"tenant": "*", "limit_usd": 1000, "window": "1h"},
                    {"tenant": "acme", "limit_usd": 0.002, "window": "1h"},
                ]
            },
        },
    },
    "profiles": {
        "default": {"policies": [{"policy": p} for p in POLICIES]},
        "cheap": {"policies": [{"policy": "cost", "weight": 3}, {"policy": "budget"}]},
    },
}
CONFIG_TEXT = yaml.safe_dump(CONFIG)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Statuses a request may end with; INTERNAL and UNKNOWN never.
CLEAR = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
FIELD = re.compile(
    r"(requests\[\d+\]\.)?(request_id|tenant|model|profile|privacy|max_tokens|temperature"
    r"|latency_slo_ms|max_cost_usd|metadata(\[.+?\])?|features(\[\d+\])?|top_p|stop(\[\d+\])?"
    r"|messages(\[\d+\]\.(role|tool_call_id|tool_calls(\[\d+\]\.\w+)?|parts(\[\d+\](\.\w+)?)?))?"
    r"|tools(\[\d+\]\.(name|parameters))?|tool_choice\.(mode|name)"
    r"|response_format\.(type|name|schema)): \S"
)
REFUSAL = re.compile(r"no feasible backend: \S|backend \S+: |budget \S")  # the router's own

# Every field is drawn valid most of the time, so requests get deep into routing, and hostile
# now and then: any unicode (control characters included), sizes around the limits and large
# ones, any int32, floats with NaN, infinities and negatives, unknown enum values.
any_text = st.text(max_size=40)
printable = st.text(st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S"]), max_size=30)
sized = st.integers(0, 300).map(lambda n: "a" * n) | st.integers(1_000, 50_000).map(
    lambda n: "x" * n
)
hostile_text = any_text | sized
int32 = st.integers(-(2**31), 2**31 - 1)
PLAIN_ROLES = sorted(ROLES - {"tool"})  # a tool message must answer a call: see agent
content = st.one_of(
    st.text(max_size=200),
    st.sampled_from(["card 4111 1111 1111 1111", "key sk-ant-abcdefghijklmnopqrstuvwxyz012345"]),
    st.integers(0, 20_000).map(lambda n: "word " * n),
    st.text(max_size=3_000),
)
VALID: dict[str, st.SearchStrategy[Any]] = {
    "request_id": st.just("") | printable,
    "tenant": st.sampled_from(["", "acme", "team-a", "default"]) | printable,
    "model": st.sampled_from(["", "small", "big", "llama", "gpt"]),
    "profile": st.sampled_from(["", "default", "cheap"]),
    "messages": st.lists(
        st.builds(pb.Message, role=st.sampled_from(PLAIN_ROLES), content=content),
        min_size=1,
        max_size=4,
    )
    | agent.conversations(content),
    "max_tokens": st.integers(0, 600),
    "privacy": st.integers(0, 4),
    "latency_slo_ms": st.integers(0, 5_000),
    "metadata": st.dictionaries(printable, printable, max_size=4),
    "features": st.lists(st.sampled_from(FEATURES), max_size=3),
    "temperature": st.none() | st.floats(0, 2),
    "max_cost_usd": st.none() | st.floats(0, 1),
    **agent.VALID_FIELDS,
}
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "request_id": hostile_text,
    "tenant": hostile_text,
    "model": hostile_text,
    "profile": hostile_text,
    "messages": st.lists(
        st.builds(pb.Message, role=st.sampled_from(sorted(ROLES)) | hostile_text, content=content)
        | agent.hostile_messages(hostile_text),
        max_size=6,
    ),
    "max_tokens": int32,
    "privacy": st.integers(-3, 8) | int32,
    "latency_slo_ms": int32,
    "metadata": st.dictionaries(hostile_text, hostile_text, max_size=10),
    "features": st.lists(st.sampled_from(FEATURES) | any_text, max_size=20),
    "temperature": st.floats(width=32),
    "max_cost_usd": st.floats(),
    **agent.hostile_fields(hostile_text),
}


@st.composite
def requests(draw: st.DrawFn, hostile_percent: int = 4) -> pb.GenerateRequest:
    """A GenerateRequest whose every field is hostile with `hostile_percent` % probability."""
    fields = {}
    for name, valid in VALID.items():
        bad = draw(st.integers(0, 99)) < hostile_percent
        value = draw(HOSTILE[name] if bad else valid)
        if value is not None:
            fields[name] = value
    return pb.GenerateRequest(**fields)


@st.composite
def batches(draw: st.DrawFn) -> list[pb.GenerateRequest]:
    """Up to 20 requests (over the fuzz config's limit of 16), now and then one hostile."""
    batch = draw(st.lists(requests(hostile_percent=0), max_size=20))
    if batch and draw(st.booleans()):
        batch[draw(st.integers(0, len(batch) - 1))] = draw(requests(hostile_percent=30))
    return batch


def check_status(err: grpc.aio.AioRpcError) -> None:
    """A failed call has a clear status; an INVALID_ARGUMENT names the field."""
    details = err.details() or ""
    event(f"{err.code().name} {details.split(':')[0][:30]}")
    assert err.code() in CLEAR, f"{err.code()}: {details[:500]}"
    assert details and len(details) < 4_000, details[:500]
    if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
        assert FIELD.match(details) or details.startswith("requests: "), details[:500]
    else:
        assert REFUSAL.match(details), details[:500]


async def assert_settled(srv: Any) -> None:
    """Every backend's admitted count and every budget hold is back to zero (within 2 s, for
    work the server finishes after the client has gone), and health is SERVING."""
    router = srv.server.router
    store = router.handle.budget_store
    for _ in range(200):
        admitted = {n: b.admitted for n, b in router.backends.items()}
        if not any(admitted.values()) and store.held_count() == 0:
            break
        await asyncio.sleep(0.01)
    assert not any(admitted.values()), admitted
    assert store.held_count() == 0
    health = health_pb2_grpc.HealthStub(srv.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def check_decision(d: pb.RouteDecision) -> None:
    """A decision names a configured backend, a solver tier and a known privacy class."""
    event("OK")
    assert d.backend in CONFIG["backends"] and d.solver
    assert d.privacy in pb.Privacy.values()


@pytest.fixture
async def srv(start_server):
    """A real server on the fuzz config (scripted backends, budgets, every built-in policy)."""
    return await start_server(CONFIG)


@FUZZ
@given(msg=requests())
async def test_route_any_request(srv, msg):
    """Route answers any request with a decision or a clear status naming the field."""
    try:
        check_decision(await srv.stub.Route(msg))
    except grpc.aio.AioRpcError as err:
        check_status(err)
    await assert_settled(srv)


@FUZZ
@given(msg=requests())
async def test_generate_any_request(srv, msg):
    """Generate streams decision, text and usage, or ends with a clear status; nothing leaks."""
    events = []
    try:
        async for reply in srv.stub.Generate(msg):
            events.append(reply.WhichOneof("event"))
    except grpc.aio.AioRpcError as err:
        check_status(err)
    else:
        assert events[0] == "decision" and events[-1] == "usage", events
        event("OK")
    await assert_settled(srv)


@FUZZ
@given(msgs=batches())
async def test_route_batch_any_requests(srv, msgs):
    """RouteBatch of any size answers one decision or per-request error each, or a clear status."""
    try:
        reply = await srv.stub.RouteBatch(pb.RouteBatchRequest(requests=msgs))
    except grpc.aio.AioRpcError as err:
        check_status(err)
    else:
        assert len(reply.decisions) == len(msgs)
        for d in reply.decisions:
            if d.error_code:
                assert d.error_code in {"FAILED_PRECONDITION", "RESOURCE_EXHAUSTED"}, d
                assert d.error
            else:
                check_decision(d)
    await assert_settled(srv)


@FUZZ
@given(msg=requests())
async def test_explain_any_request(srv, msg):
    """RouterAdmin.Explain (loopback, no token) answers like Route."""
    admin = pb_grpc.RouterAdminStub(srv.channel)
    try:
        check_decision(await admin.Explain(msg))
    except grpc.aio.AioRpcError as err:
        check_status(err)
    await assert_settled(srv)


def mutated(draw: st.DrawFn) -> str:
    """The fuzz config with one value somewhere replaced by an arbitrary scalar or list."""
    data = yaml.safe_load(CONFIG_TEXT)
    node: Any = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, dict | list) or draw(st.integers(0, 3)) == 0:
            value = st.one_of(
                st.none(), st.booleans(), int32, st.floats(), any_text, st.lists(any_text)
            )
            node[key] = draw(value)
            break
        node = child
    return yaml.safe_dump(data, allow_unicode=True)


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    """Arbitrary text, the fuzz config itself, or the fuzz config with one value mutated."""
    return draw(st.one_of(st.text(max_size=200), st.just(CONFIG_TEXT), st.composite(mutated)()))


@settings(FUZZ, max_examples=100)
@given(text=config_texts())
async def test_admin_config_rpcs_any_text(srv, text):
    """ValidateConfig always answers; ReloadConfig swaps a valid config in or refuses with
    INVALID_ARGUMENT; GetConfig and ListBackends then describe the config in force."""
    admin = pb_grpc.RouterAdminStub(srv.channel)
    result = await admin.ValidateConfig(pb.ValidateConfigRequest(text=text))
    assert result.valid or result.problems
    event("valid" if result.valid else f"invalid {result.problems[0].path.split('.')[0]}")
    try:
        info = await admin.ReloadConfig(pb.ReloadConfigRequest(text=text))
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{err.code()}: {err.details()}"
        assert not result.valid, err.details()
    else:
        assert result.valid and info.version == result.version
    current = await admin.GetConfig(pb.GetConfigRequest())
    listed = await srv.stub.ListBackends(pb.ListBackendsRequest())
    assert listed.config_version == current.version
    assert [b.name for b in listed.backends] == list(srv.server.router.backends)
    await assert_settled(srv)
    if current.text != CONFIG_TEXT:  # put the fuzz config back for the next example
        await admin.ReloadConfig(pb.ReloadConfigRequest(text=CONFIG_TEXT))


@settings(FUZZ, max_examples=200)
@given(msg=requests(), timeout=st.floats(0.001, 0.05), after=st.integers(0, 3))
async def test_generate_cut_short_releases_everything(srv, msg, timeout, after):
    """A Generate cut by a deadline or a client cancel after `after` events leaves no slot or
    hold behind."""
    call = srv.stub.Generate(msg, timeout=timeout)
    try:
        seen = 0
        async for _ in call:
            seen += 1
            if seen > after:
                call.cancel()
                break
    except grpc.aio.AioRpcError as err:
        if err.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
            check_status(err)
    await assert_settled(srv)
