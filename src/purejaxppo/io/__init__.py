"""What runs leave on disk and read back: checkpoints, trained policies and their evaluation, reports and plots,
experiment loggers, a tuner's folder and outputs, numbers and tables as text. Imports only `core` and `scale`."""
