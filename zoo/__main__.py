"""``python -m zoo ...`` == the ``zoo`` command (for machines where the package is on PYTHONPATH, not installed)."""
import sys

from zoo.cli.main import main

sys.exit(main())
