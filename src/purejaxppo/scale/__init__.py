"""Scaling out the core: sweeps (plan, program, driver) over seeds and hyperparameters, the tuner (search space,
successive halving, the resumable `Tuner`), device meshes and shardings, several hosts, CPU devices and compiler
options, the cache of traced programs, and what a sweep returns (`SweepResult` and its statistics). Imports only
`core`."""
