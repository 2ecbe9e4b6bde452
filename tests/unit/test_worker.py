from __future__ import annotations

import os
import subprocess
import sys

from tests.utils.services import ROOT


def test_worker_preloads_scrapy_without_installing_a_reactor() -> None:
    probe = (
        "import sys, worker; "
        "assert 'scrapy.core.engine' in sys.modules; "
        "assert 'scrapy.downloadermiddlewares.retry' in sys.modules; "
        "assert 'twisted.internet.reactor' not in sys.modules; "
        "print(worker.preload())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(out.stdout.strip()) > 30


def test_worker_parent_heap_is_frozen_before_any_fork() -> None:
    # Objects in the permanent generation are never traversed by a horse's collections,
    # so their pages stay shared with the parent.
    probe = "import gc, worker; print(gc.get_freeze_count())"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert int(out.stdout.strip()) > 50_000


def test_worker_listens_on_callbacks_then_every_priority_queue_high_first() -> None:
    probe = "import worker; print(' '.join(q.name for q in worker.build_worker('probe').queues))"
    env = {**os.environ, "QUEUE_NAME": "books"}  # the worker names itself in Redis
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["books-callbacks", "books-high", "books", "books-low"]
