"""The `handrail` command line (typer + rich); the entry point is `handrail.cli.main:main`.

Commands stay thin: `commands.py` holds what each one does as library calls, `targets.py` finds
the pipeline a TARGET names, `output.py` and `progress.py` print results.
"""
