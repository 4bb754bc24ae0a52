"""`python -m arxiv_bot`: the same as the `arxiv-bot` console script."""
import sys

from .cli import main

sys.exit(main())
