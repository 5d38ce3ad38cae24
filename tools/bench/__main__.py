"""``python -m tools.bench``: see tools/bench/README.md."""

import sys

from tools.bench.runner import main

sys.exit(main())
