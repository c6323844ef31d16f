import sys

from qnnflow.cli import main

sys.exit(main())
