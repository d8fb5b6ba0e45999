"""What runs leave on disk and read back: checkpoints, trained policies and their evaluation, reports and plots,
experiment loggers. Imports only `core` and `scale`."""
