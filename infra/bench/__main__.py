import sys

from infra.bench.cli import main

sys.exit(main())
