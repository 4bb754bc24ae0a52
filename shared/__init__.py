"""Code shared by every arxiv-bot service: config, models, DB sessions, the Celery app factory.

Nothing in this package performs I/O at import time.
"""
