"""The command line: `python -m purejaxppo.run` (training, `cli.run`) and `python -m purejaxppo.evaluate`
(`cli.evaluate`), and the progress display."""
