"""The `tokenrouter` command: serve, generate, route, backends, policy validate and replay."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format

DEFAULT_TARGET = "localhost:50051"
PRIVACY_NAMES = ["unspecified", "public", "internal", "confidential", "restricted"]


def _request_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the user message")
    parser.add_argument("--target", default=DEFAULT_TARGET, help="router address (host:port)")
    parser.add_argument("--system", help="a system message")
    parser.add_argument("--privacy", choices=PRIVACY_NAMES, default="unspecified")
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--model", help="model name or alias")
    parser.add_argument("--profile")
    parser.add_argument("--tenant")
    parser.add_argument(
        "--slo-ms", type=int, dest="latency_slo_ms", help="time-to-first-token target"
    )
    parser.add_argument("--max-cost", type=float, dest="max_cost_usd", help="cost cap in USD")
    parser.add_argument("--timeout", type=float, help="deadline in seconds")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "system",
        "privacy",
        "max_tokens",
        "temperature",
        "model",
        "profile",
        "tenant",
        "latency_slo_ms",
        "max_cost_usd",
    )
    return {n: getattr(args, n) for n in names}


def _to_json(message: Any) -> str:
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenrouter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gRPC router service")
    serve.add_argument("--config", help="YAML config file (default: the embedded config)")
    serve.add_argument("--host", help="bind address (default: from config, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: from config, 50051)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="JSON log lines (default: when stderr is not a terminal)",
    )
    gen = sub.add_parser("generate", help="stream a completion, then print decision and usage")
    _request_args(gen)
    route = sub.add_parser("route", help="print the routing decision as JSON")
    _request_args(route)
    route.add_argument("--explain", action="store_true", help="print a readable candidate table")
    policy = sub.add_parser("policy", help="operator tools for policy files")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    validate = policy_sub.add_parser("validate", help="validate config files fully (exit 1 if not)")
    validate.add_argument("files", nargs="+", metavar="FILE")
    replay = sub.add_parser(
        "replay", help="what-if replay of a trace through configs", add_help=False
    )
    replay.add_argument("args", nargs=argparse.REMAINDER)
    backends = sub.add_parser("backends", help="list the router's backends as JSON")
    backends.add_argument("--target", default=DEFAULT_TARGET)
    backends.add_argument("--timeout", type=float)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from router import logs
    from router.config import load_config
    from router.errors import ConfigError
    from router.server import serve

    logs.configure(args.log_level, args.log_json)
    try:
        loaded = load_config(args.config)
        asyncio.run(serve(loaded, args.host, args.port))
    except ConfigError as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 2
    return 0


def _generate(args: argparse.Namespace) -> int:
    from router.client import GenerateResult, RouterClient

    with RouterClient(args.target, timeout=args.timeout) as client:
        for item in client.generate(args.prompt, **_options(args)):
            if isinstance(item, GenerateResult):
                print()
                d, u = item.decision, item.usage
                print(
                    f"--- decision: backend={d.backend} model={d.model} solver={d.solver} "
                    f"decision_us={d.decision_us}",
                    file=sys.stderr,
                )
                print(
                    f"--- usage: prompt_tokens={u.prompt_tokens} completion_tokens="
                    f"{u.completion_tokens} cost_usd={u.cost_usd:.6f} ttft_ms={u.ttft_ms:.1f} "
                    f"total_ms={u.total_ms:.1f} finish_reason={u.finish_reason}",
                    file=sys.stderr,
                )
            else:
                sys.stdout.write(item)
                sys.stdout.flush()
    return 0


def _route(args: argparse.Namespace) -> int:
    from router.client import RouterClient
    from router.explain import format_decision

    with RouterClient(args.target, timeout=args.timeout) as client:
        decision = client.route(args.prompt, **_options(args))
    print(format_decision(decision) if args.explain else _to_json(decision))
    return 0


def _backends(args: argparse.Namespace) -> int:
    from router.client import RouterClient

    with RouterClient(args.target, timeout=args.timeout) as client:
        rows = [json.loads(_to_json(b)) for b in client.backends()]
    print(json.dumps(rows, indent=2))
    return 0


def _policy(args: argparse.Namespace) -> int:
    from router.validate import validate_file

    failed = False
    for path in args.files:
        result = validate_file(path)
        for problem in result.problems:
            print(problem, file=sys.stderr)
        if result.problems:
            failed = True
        else:
            print(f"{path}: valid (version {result.version})")
            for note in result.notes:
                print(note)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    import grpc

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["replay"]:  # replay has its own parser (tokenrouter replay --help)
        from router import replay

        return replay.main(argv[1:])
    args = _parser().parse_args(argv)
    command = {
        "serve": _serve,
        "generate": _generate,
        "route": _route,
        "backends": _backends,
        "policy": _policy,
    }
    try:
        return command[args.command](args)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
