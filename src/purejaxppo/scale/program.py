"""A sweep's program: every run's training as one pure function over the `[runs]` rows, where those rows live on
the devices, and its compilation (traced, or loaded from the cache of traced programs).

    sweep_init(values, keys) -> (state, metrics buffer)
    sweep_program(values, keys, state, metrics, start, stop) -> (state, metrics)

`sweep_program` runs updates `start` to `stop` (traced, so one compilation serves every chunk), initializing
first when `start` is 0, in the same program as the updates (which compiles faster than two programs).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import export
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from purejaxppo.core.config import PPOConfig
from purejaxppo.core.envs import is_user_env, run_env
from purejaxppo.core.train import TrainState, make_trainer
from purejaxppo.scale import program_cache
from purejaxppo.scale.compilation import compiler_options
from purejaxppo.scale.parallel import env_sharding, runs_sharding
from purejaxppo.scale.plan import SweepPlan
from purejaxppo.scale.program_cache import program_key
from purejaxppo.scale.schedule import one_percent


@struct.dataclass
class SweepState:
    """Where a sweep stands: every run's training state and the metrics so far, all with leading `[runs]`."""

    state: TrainState  # its key as raw key data (uint32), so that it can be saved
    metrics: dict[str, jax.Array]  # [runs, num_updates]; entries past `done` are zeros
    done: int = struct.field(pytree_node=False)  # updates done


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a sweep's `[runs]` rows live: split over a mesh's devices (padded to a multiple of their number), or
    for data parallelism replicated, one run whose envs the sharding constraint `shard_envs` splits instead."""

    mesh: Mesh
    rows: NamedSharding
    multiple: int  # the rows are padded to a multiple of this
    shard_envs: Callable[[Any], Any] | None = None


def place_runs(num_runs: int, devices: Sequence[jax.Device] | None = None) -> Placement:
    """Runs split over `devices` (default: every device of every process; in one process, no more of them than
    there are runs).

    A rule of the command and the device count alone, never of a timing: a run's numbers depend on how many runs
    share its device (a batch of runs compiles to other kernels than one run, which moves the last bits, and
    training amplifies them), so a placement chosen by a measurement gave one command two results
    (docs/scale-out.md, "What reproduces a run")."""
    rows = runs_sharding(devices, num_runs)
    return Placement(rows.mesh, rows, rows.mesh.size)


def place_envs(config: PPOConfig, devices: Sequence[jax.Device] | None = None) -> Placement:
    """One run, replicated, its envs split over `devices` (default: every local device)."""
    mesh, shard_envs = env_sharding(config, devices)
    return Placement(mesh, NamedSharding(mesh, PartitionSpec()), 1, shard_envs)


class SweepFunctions(NamedTuple):
    """A sweep's pure functions over the `[runs]` rows (see the module docstring)."""

    init_state: Callable[..., Any]  # (values, keys) -> every run's first training state, its key as raw data
    init: Callable[..., Any]  # (values, keys) -> (that state, a zero metrics buffer [runs, num_updates])
    program: Callable[..., Any]  # (values, keys, state, metrics, start, stop) -> (state, metrics)


def sweep_functions(config: PPOConfig, placement: Placement, callback: Callable | None = None,
                    env: Any = None, network: Any = None) -> SweepFunctions:
    """The functions of a sweep of `config` on `placement`. `callback`, if given, gets the metrics of every
    hundredth update and of the last, each `[runs]` (padding rows included). `env`: the sweep's env, made once
    (`purejaxppo.core.envs.run_env`) for every run and every trace; made here if not given. `network`: a user's
    (`purejaxppo.core.user_network`)."""
    env = run_env(config.env, config.env_kwargs, env)
    report_every = one_percent(config.num_updates)
    replicated = NamedSharding(placement.mesh, PartitionSpec())

    def trainer(row_values):
        return make_trainer(dataclasses.replace(config, **row_values), placement.shard_envs, env, network)

    # Jitted, so that their traces are cached: every driver's init and the program's init share one of each
    # (tracing an update is the slow part of a warm start; the program's loop, traced under the runs' mesh, traces
    # its own).
    init = jax.jit(jax.vmap(lambda v, k: trainer(v).init(jax.random.wrap_key_data(k))))
    step = jax.jit(jax.vmap(lambda v, s: trainer(v).update_step(s)))

    def init_state(row_values, row_keys):
        state = init(row_values, row_keys)
        return state.replace(key=jax.random.key_data(state.key))

    def sweep_init(row_values, row_keys):
        state = init(row_values, row_keys)
        _, metrics = jax.eval_shape(step, row_values, state)
        buffer = {k: jnp.zeros((m.shape[0], config.num_updates), m.dtype) for k, m in metrics.items()}
        return state.replace(key=jax.random.key_data(state.key)), buffer

    def sweep_program(row_values, row_keys, state, metrics, start, stop):
        state, metrics = jax.lax.cond(start == 0, lambda: sweep_init(row_values, row_keys), lambda: (state, metrics))

        def report(m):  # one all-gather of the few metrics, rather than XLA's fallback per value
            jax.debug.callback(callback, jax.lax.with_sharding_constraint(m, replicated))

        def body(i, carry):
            state, buffer = carry
            state, m = step(row_values, state)
            if callback is not None:  # a host round-trip per report: at most 100 a run, and the last update
                due = ((i + 1) % report_every == 0) | (i + 1 == config.num_updates)
                jax.lax.cond(due, report, lambda m: None, m)
            buffer = {k: buffer[k].at[:, i].set(m[k]) for k in buffer}
            return state, buffer

        state = state.replace(key=jax.random.wrap_key_data(state.key))
        state, metrics = jax.lax.fori_loop(start, stop, body, (state, metrics))
        return state.replace(key=jax.random.key_data(state.key)), metrics

    return SweepFunctions(init_state, sweep_init, sweep_program)


def state_template(plan: SweepPlan, env: Any = None, network: Any = None) -> SweepState:
    """The shapes and dtypes of a sweep's state on the host (`Sweep.to_host`), `[runs]` leading, as
    `jax.ShapeDtypeStruct`s: what a checkpoint of it is restored into. Traces; computes and compiles nothing.
    `env`, `network`: as `sweep_functions` takes them."""
    functions = sweep_functions(plan.config, place_runs(1, jax.devices()[:1]), env=env, network=network)
    state, metrics = jax.eval_shape(functions.init, *plan.rows())
    return SweepState(state, metrics, 0)


class ProgramArgs(NamedTuple):
    """What `sweep_program` is called with, by name."""

    rows: tuple[Any, ...]  # (values, keys): each run's swept hyperparameters and key, `[runs]` leading
    state: Any  # every run's training state
    metrics: dict[str, Any]  # the metrics buffer, [runs, num_updates] each
    start: Any  # the first update to run, int32
    stop: Any  # the update to stop before, int32

    def flat(self) -> tuple[Any, ...]:
        """The positional arguments of `sweep_program`."""
        return (*self.rows, self.state, self.metrics, self.start, self.stop)


class Compiled(NamedTuple):
    """A compiled sweep program: `advance(*rows, state, metrics, start, stop) -> (state, metrics)`."""

    advance: Callable[..., Any]
    seconds: float  # how long compiling (or loading and compiling) took
    cached: bool  # whether the traced program came from the cache of traced programs
    state_shapes: Any  # (state, metrics) as a loaded program takes them; None when traced here


class SweepProgram:
    """The program of `plan` on `placement`, ready to compile."""

    def __init__(self, plan: SweepPlan, placement: Placement, callback: Callable | None = None, env: Any = None,
                 network: Any = None):
        self.plan = plan
        self.functions = sweep_functions(plan.config, placement, callback, env, network)
        self.init_fn, self.fn = self.functions.init, self.functions.program
        # A host callback cannot be exported; on one device, no sharding needs to be part of the cache key.
        # A user's env is code purejaxppo cannot fingerprint: a program cached for it could outlive an edit.
        self.cacheable = (callback is None and placement.mesh.size == 1 and not is_user_env(plan.config.env)
                          and network is None)  # a user's network, too, is code no key fingerprints

    def compile(self, rows: Any, make_args: Callable[[], ProgramArgs], cache: Path | None = None) -> Compiled:
        """Compiles for the arguments `make_args()` returns (`rows`, an initial state and metrics, start, stop).

        With `cache`, a directory, the traced program is kept there (`purejaxppo.scale.program_cache`) and a
        later sweep of the same program loads it rather than tracing it again: with JAX's compilation cache on
        too, a warm start neither traces an update nor compiles. Cacheable programs only; others trace as usual.
        """
        start = time.perf_counter()
        if cache is not None and self.cacheable:
            advance, cached, shapes = self._compile_cached(Path(cache), rows, make_args)
        else:
            args = make_args()
            # The state and metrics come back laid out as they went in, so that the next chunk takes them as is
            # (one run's envs split over devices would otherwise come back split, where the program takes them
            # replicated).
            layout = jax.tree.map(lambda x: x.sharding, (args.state, args.metrics))
            donated = (len(args.rows), len(args.rows) + 1)  # the state and the metrics, replaced by the outputs
            jitted = jax.jit(self.fn, donate_argnums=donated, out_shardings=layout, compiler_options=compiler_options())
            advance, cached, shapes = jitted.lower(*args.flat()).compile(), False, None
        return Compiled(advance, time.perf_counter() - start, cached, shapes)

    def _cached_args(self, rows: Any, data: dict[str, Any]) -> ProgramArgs | None:
        """The arguments' shapes as a cached program takes them: the state from tracing only the runs' first
        state (not an update), the metrics buffer from the entry's data. None when the data is not as stored."""
        names = data.get("metrics")
        if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
            return None
        shape = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype)
        num_rows = jax.tree.leaves(rows)[0].shape[0]
        try:
            metrics = {k: jax.ShapeDtypeStruct((num_rows, self.plan.config.num_updates), np.dtype(v))
                       for k, v in names.items()}
        except TypeError:
            return None
        state = jax.eval_shape(self.functions.init_state, *rows)
        counter = jax.ShapeDtypeStruct((), np.int32)
        return ProgramArgs(tuple(jax.tree.map(shape, rows)), state, metrics, counter, counter)

    def _compile_cached(self, directory: Path, rows: Any, make_args: Callable[[], tuple[Any, ...]]):
        plan = self.plan
        key = program_key({"kind": "sweep", "config": plan.config.to_dict(), "swept": list(plan.grid),
                           "runs": plan.num_runs})
        entry, args = program_cache.load(directory, key), None
        if entry is not None:
            exported, data = entry
            args = self._cached_args(rows, data)
            leaves = jax.tree.leaves(args.flat()) if args is not None else []
            if [(a.shape, a.dtype) for a in exported.in_avals] != [(x.shape, x.dtype) for x in leaves]:
                entry = None  # another program under this key: traced again, and replaced
        if entry is None:
            args = make_args()
            in_tree = jax.tree.structure(args.flat())
            flat = lambda *leaves: jax.tree.leaves(self.fn(*jax.tree.unflatten(in_tree, leaves)))
            exported = export.export(jax.jit(flat))(
                *[jax.ShapeDtypeStruct(x.shape, x.dtype) for x in jax.tree.leaves(args.flat())])
            program_cache.store(directory, key, exported,
                                {"metrics": {k: str(v.dtype) for k, v in args.metrics.items()}})
        state, metrics = args.state, args.metrics
        out_tree = jax.tree.structure((state, metrics))
        num_rows = len(jax.tree.leaves(rows))
        compiled = jax.jit(exported.call, donate_argnums=tuple(range(num_rows, len(exported.in_avals) - 2)),
                           compiler_options=compiler_options()).lower(
            *[jax.ShapeDtypeStruct(a.shape, a.dtype) for a in exported.in_avals]).compile()

        def advance(*args):
            *arrays, start, stop = args
            flat = jax.tree.leaves((*arrays, np.int32(start), np.int32(stop)))
            return jax.tree.unflatten(out_tree, compiled(*flat))

        shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), (state, metrics))
        return advance, entry is not None, shapes
