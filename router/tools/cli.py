"""The `tokenrouter` command: serve, generate, route, backends, keys, policy validate, replay.

Client commands take the connection options --tls, --ca-file, --cert-file, --key-file and read a
tenant API key from the environment variable --api-key-env names (TOKENROUTER_API_KEY), never
from the command line, where other users could see it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format

from router.tools import cli_agent

DEFAULT_TARGET = "localhost:50051"
DEFAULT_KEYS_FILE = "tokenrouter-keys.yaml"
PRIVACY_NAMES = ["unspecified", "public", "internal", "confidential", "restricted"]


def _connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=DEFAULT_TARGET, help="router address (host:port)")
    parser.add_argument("--timeout", type=float, help="deadline in seconds")
    parser.add_argument("--tls", action="store_true", help="TLS, verified with the system CAs")
    parser.add_argument("--ca-file", help="PEM CA to verify the server with (implies TLS)")
    parser.add_argument("--cert-file", help="PEM client certificate, for mTLS (with --key-file)")
    parser.add_argument("--key-file", help="PEM key of --cert-file")
    parser.add_argument(
        "--api-key-env",
        default="TOKENROUTER_API_KEY",
        help="environment variable holding the tenant API key (default: TOKENROUTER_API_KEY)",
    )


def _client(args: argparse.Namespace) -> Any:
    import os

    from router.client import RouterClient

    return RouterClient(
        args.target,
        timeout=args.timeout,
        api_key=os.environ.get(args.api_key_env) or None,
        tls=args.tls,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
    )


def _request_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the user message")
    _connection_args(parser)
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
    cli_agent.add_arguments(parser)


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
    return {n: getattr(args, n) for n in names} | cli_agent.options(args)


def _to_json(message: Any) -> str:
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenrouter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the router service (gRPC, and HTTP when on)")
    serve.add_argument("--config", help="YAML config file (default: the embedded config)")
    serve.add_argument("--host", help="bind address (default: from config, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: from config, 50051)")
    serve.add_argument(
        "--http-port",
        type=int,
        help="the HTTP faces' port (default: server.http_port; 8080 in the embedded config)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="serve on a non-loopback address without TLS or tenant keys",
    )
    serve.add_argument(
        "--workers",
        default="1",
        help="router processes sharing the ports: a count or auto (one per core); default 1",
    )
    serve.add_argument("--worker-link", type=int, help=argparse.SUPPRESS)  # set by --workers
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
    train = sub.add_parser("train", help="fit latency and length predictors from request logs")
    train.add_argument("args", nargs=argparse.REMAINDER)
    backends = sub.add_parser("backends", help="list the router's backends as JSON")
    _connection_args(backends)
    keys = sub.add_parser("keys", help="tenant API keys (stored hashed in a keys file)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    for name, help_text in (
        ("create", "create a key for a tenant; prints it once"),
        ("list", "list key ids and tenants"),
        ("revoke", "remove a key by its id"),
    ):
        cmd = keys_sub.add_parser(name, help=help_text)
        cmd.add_argument("--file", default=DEFAULT_KEYS_FILE, help="the keys file")
        if name == "create":
            cmd.add_argument("--tenant", required=True)
        if name == "revoke":
            cmd.add_argument("id", help="the key's id (the 12 hex digits after trk_)")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from router.api.server import UnsafeExposure, serve
    from router.config import load_config
    from router.core.errors import ConfigError
    from router.tools import logs, workers
    from router.tools.worker_link import WorkerLink

    try:
        count = 1 if args.worker_link is not None else workers.parse_workers(args.workers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure(args.log_level, args.log_json, pid=count > 1 or args.worker_link is not None)
    try:
        loaded = load_config(args.config)
        if count > 1:
            plan = workers.plan(
                loaded,
                count,
                config=args.config,
                host=args.host,
                port=args.port,
                http_port=args.http_port,
                insecure=args.insecure,
                log_level=args.log_level,
                log_json=args.log_json,
            )
            return asyncio.run(workers.supervise(plan))
        try:
            link = WorkerLink(args.worker_link) if args.worker_link is not None else None
        except OSError as exc:
            print(f"error: --worker-link: {exc.strerror or exc}", file=sys.stderr)
            return 2
        asyncio.run(
            serve(
                loaded,
                args.host,
                args.port,
                insecure=args.insecure,
                http_port=args.http_port,
                worker=link is not None,
                on_ready=link.ready if link is not None else None,
            )
        )
    except ConfigError as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 2
    except UnsafeExposure as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0


def _generate(args: argparse.Namespace) -> int:
    from router.client import GenerateResult

    with _client(args) as client:
        for item in client.generate(args.prompt, **_options(args)):
            if isinstance(item, GenerateResult):
                print()
                for call in item.tool_calls:
                    print("tool_call: " + json.dumps(call.__dict__))
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
            elif isinstance(item, str):
                sys.stdout.write(item)
                sys.stdout.flush()
    return 0


def _route(args: argparse.Namespace) -> int:
    from router.tools.explain import format_decision

    with _client(args) as client:
        decision = client.route(args.prompt, **_options(args))
    print(format_decision(decision) if args.explain else _to_json(decision))
    return 0


def _backends(args: argparse.Namespace) -> int:
    with _client(args) as client:
        rows = [json.loads(_to_json(b)) for b in client.backends()]
    print(json.dumps(rows, indent=2))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from router.api import keys
    from router.core.errors import ConfigError

    try:
        if args.keys_command == "create":
            entry, key = keys.create_key(args.file, args.tenant)
            print(key)
            print(
                f"created key {entry.id} for tenant {entry.tenant} in {args.file}; "
                "it is shown only now",
                file=sys.stderr,
            )
        elif args.keys_command == "list":
            for entry in keys.load_keys(args.file).values():
                print(f"{entry.id}  {entry.tenant}  {entry.created}")
        elif keys.revoke_key(args.file, args.id) is None:
            print(f"no key {args.id} in {args.file}", file=sys.stderr)
            return 1
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _policy(args: argparse.Namespace) -> int:
    from router.config.validate import validate_file

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
        from router.tools import replay

        return replay.main(argv[1:])
    if argv[:1] == ["train"]:  # so does train (tokenrouter train --help)
        from router.tools import train

        return train.main(argv[1:])
    args = _parser().parse_args(argv)
    command = {
        "serve": _serve,
        "generate": _generate,
        "route": _route,
        "backends": _backends,
        "keys": _keys,
        "policy": _policy,
    }
    try:
        return command[args.command](args)
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except cli_agent.FileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
