"""The `mlexp` command's entry point: Ctrl-C while the CLI's libraries load is one line, not an import traceback.

mlexp.cli imports Hydra, OmegaConf and every task's declarations at its top (about half a second); its own Ctrl-C
handling starts only once they are loaded.
"""

from __future__ import annotations

import sys

INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C stopped


def main() -> None:
    try:
        from mlexp.cli import main as run_command
    except KeyboardInterrupt:
        print("mlexp: interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
    run_command()


if __name__ == "__main__":
    main()
