"""``python -m egotask.finetune ...``: the same as ``egotask finetune ...``, for ``accelerate launch -m`` and
``torchrun -m`` (each process runs this module)."""

import sys

from egotask.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
