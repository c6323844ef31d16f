"""``python -m qnnflow.bench``: see :mod:`qnnflow.bench`."""

import sys

from qnnflow.bench import main

sys.exit(main())
