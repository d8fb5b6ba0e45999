"""The command line: `python -m purejaxppo.run` (training, `cli.run`), `python -m purejaxppo.evaluate`
(`cli.evaluate`) and `python -m purejaxppo.tune` (`cli.tune`), and the progress display."""
