"""``python -m deepmad_nni.tuner.check CONFIG.yml ...``: check DeepMAD classArgs before ``nnictl create``.

NNI 3.0's ``nnictl create`` does not call registered classArgs validators for v2 configs; this does,
and exits with status 1 and a message naming the bad argument.
"""
import sys

from .validator import check_config


def main(paths) -> int:
    for path in paths:
        try:
            checked = check_config(path)
        except ValueError as err:
            print(f"{path}: {err}", file=sys.stderr)
            return 1
        print(f"{path}: {'no DeepMAD tuner' if checked is None else 'DeepMAD classArgs OK'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
