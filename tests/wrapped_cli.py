"""The CLI run as `python -c <script> <noted file> <mlexp args…>`, with one function wrapped to note its calls."""

from __future__ import annotations


def wrapped_cli(module: str, function: str, noted: str, imports: str = "") -> str:
    """A script running mlexp's CLI on argv[2:] in its own process, in which each call of `module.function`
    first appends a line to the file argv[1]: the value of the Python expression `noted` at that moment
    (`imports` are the script's extra import lines the expression needs)."""
    return f"""
import runpy
import sys
{imports}
import {module} as wrapped_module

original = wrapped_module.{function}
noted = sys.argv[1]


def noting(*args, **kwargs):
    with open(noted, "a") as seen:
        seen.write(str({noted}) + "\\n")
    return original(*args, **kwargs)


wrapped_module.{function} = noting
sys.argv = ["mlexp", *sys.argv[2:]]
runpy.run_module("mlexp.cli", run_name="__main__")
"""
