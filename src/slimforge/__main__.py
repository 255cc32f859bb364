import sys

from slimforge.cli import main

sys.exit(main())
