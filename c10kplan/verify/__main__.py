"""`python -m c10kplan.verify OPTIONS_JSON`: the inside of `verify --netns` (see netns.py)."""

import sys

from c10kplan.verify.netns import inner_main

if __name__ == "__main__":
    sys.exit(inner_main(sys.argv[1:]))
