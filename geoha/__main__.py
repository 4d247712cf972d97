import sys

from geoha.cli import main

sys.exit(main())
