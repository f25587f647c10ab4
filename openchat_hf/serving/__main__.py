"""``python -m openchat_hf.serving MODEL [options]`` = ``openchat-hf serve MODEL [options]``."""

import sys

from openchat_hf.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
