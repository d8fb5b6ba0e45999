"""The traced core: everything inside the one compiled training program (envs, networks, policy kinds, rollout,
GAE, losses, normalization, shuffles, update, train) and the config it is built from. No files, no terminals, no
devices: nothing here imports from `scale`, `io` or `cli`."""
