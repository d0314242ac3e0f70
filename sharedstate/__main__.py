"""``python -m sharedstate`` runs the command line."""

import sys

from sharedstate.cli import main

sys.exit(main())
