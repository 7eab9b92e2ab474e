"""Lesson E's study: the chapter's learning-rate policies on LeNet / Fashion-MNIST.

Run: python experiments/lr_scheduling.py --out runs/lr_scheduling (--help for options)
"""

from gdjax.lessons import _common, lr_scheduling

if __name__ == "__main__":
    _common.script_main(lr_scheduling, "runs/lr_scheduling")
