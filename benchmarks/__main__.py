"""``python -m benchmarks [--quick] [--workers N]``: the whole suite, one process."""

from .suite import main

main()
