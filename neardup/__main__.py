from __future__ import annotations

import sys

from neardup.cli import main

sys.exit(main())
