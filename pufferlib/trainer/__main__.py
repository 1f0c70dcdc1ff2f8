import sys

from pufferlib.trainer.cli import main

sys.exit(main())
