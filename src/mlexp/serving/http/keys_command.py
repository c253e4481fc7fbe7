"""`mlexp keys create|list|revoke`: manage the API keys and usage plans of the local services."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from mlexp.errors import MlexpError
from mlexp.paths import project_root, resolve
from mlexp.serving.http.api_keys import DEFAULT_LIMIT, DEFAULT_PERIOD, ApiKeys
from mlexp.serving.http.settings import DEFAULT_KEYS_DB
from mlexp.serving.http.usage_period import PERIODS


def configured_keys_db() -> Path:
    """deploy.keys_db from conf/deploy/local.yaml (paths.root = the project root)."""
    root = project_root()
    deploy = OmegaConf.load(root / "conf" / "deploy" / "local.yaml")
    config = OmegaConf.create({"paths": {"root": str(root)}, "deploy": deploy})
    keys_db = config.deploy.get("keys_db")
    return resolve(keys_db, root) if keys_db else root / DEFAULT_KEYS_DB


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlexp keys", description="API keys of the local services (deploy=local), stored hashed."
    )
    parser.add_argument("--db", type=Path, help="key store (default: deploy.keys_db of conf/deploy/local.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("name")
    create.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"requests per period ({DEFAULT_LIMIT})")
    create.add_argument(
        "--period", choices=PERIODS, default=DEFAULT_PERIOD, help=f"usage-plan period ({DEFAULT_PERIOD})"
    )
    commands.add_parser("list", help="keys with their plans and this period's usage")
    revoke = commands.add_parser("revoke", help="revoke a key: its requests get 401")
    revoke.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `mlexp keys ...`; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        db = args.db or configured_keys_db()
        if args.command != "create" and not db.exists():
            # listing or revoking must not create an empty store (or its folder) where none was
            if args.command == "revoke":
                raise MlexpError(f"no active key named {args.name!r}: there is no key store at {db}")
            print(f"no keys in {db} (no key store there yet); create one: mlexp keys create <name>")
            return 0
        keys = ApiKeys(db)
        if args.command == "create":
            token = keys.create(args.name, args.limit, args.period)
            print(f"key {args.name!r} ({args.limit} requests per {args.period}); shown once, store it now:")
            print(token)
        elif args.command == "revoke":
            keys.revoke(args.name)
            print(f"key {args.name!r} revoked")
        else:
            records = keys.list()
            if not records:
                print(f"no keys in {db}; create one: mlexp keys create <name>")
            for record in records:
                status = f"revoked {record.revoked_at}" if record.revoked_at else f"used {keys.usage(record.name)}"
                print(f"{record.name:<24} {record.plan:<28} created {record.created_at}  {status}")
        keys.close()
    except MlexpError as error:
        print(f"mlexp keys: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
