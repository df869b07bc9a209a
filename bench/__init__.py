"""werkbrug's benchmark (`make bench`, `python -m bench`): throughput and latency per stage, each as a
ratio to its floor measured in the same run. See docs/benchmarks.md."""
