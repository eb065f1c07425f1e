"""``python -m privinfer.cli ...`` runs the command line (servers and the testbed start servers this way)."""

import sys

from privinfer.cli.main import main

sys.exit(main())
