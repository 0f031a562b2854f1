"""Pipeline vs plain loop: `python benchmarks/pipeline.py [--tokenizer URI] [--images N] [beam flags]`.

The same as `lvm-data bench pipeline`; the logic lives in pipelines/bench.py.
"""

from lvm_data.cli import main

if __name__ == "__main__":
    main(["bench", "pipeline", *__import__("sys").argv[1:]])
