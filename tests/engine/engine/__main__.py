"""`python3 -m engine [serve]` runs the Engine; `python3 -m engine seed` fills a brain."""

import argparse
import sys

from .config import Config, ConfigError
from .jsonlog import JsonLogger


def main(argv=None):
    parser = argparse.ArgumentParser(prog="engine")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the Engine (default)")
    seed_cmd = sub.add_parser("seed", help="generate a realistic brain, then exit")
    seed_cmd.add_argument("--episodes", type=int, default=200)
    seed_cmd.add_argument("--days", type=float, default=30)
    seed_cmd.add_argument("--chunk-bytes", type=int, default=1024)
    seed_cmd.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    log = JsonLogger("engine")
    try:
        config = Config.from_env()
    except ConfigError as exc:
        log.critical("invalid configuration: %s" % exc, error_code="CONFIG_INVALID")
        return 2
    if args.command == "seed":
        from .seed import seed  # pylint: disable=import-outside-toplevel
        seed(config, args.episodes, args.days, args.chunk_bytes, args.seed, log)
        return 0
    from .server import Engine  # pylint: disable=import-outside-toplevel
    return Engine(config, log).run()


if __name__ == "__main__":
    sys.exit(main())
