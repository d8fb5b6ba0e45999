"""What the CNN torso costs on a CPU against the MLP, per env step of training, and what each way of writing it
costs: the convolution as XLA's own (`nn.Conv`, NHWC) or as 3x3 patches and one matrix product (patches from
`lax.conv_general_dilated_patches` or from 9 shifted slices), with fewer channels, with 2x2 max pooling (XLA's
reduce_window or a reshape), with stride 2, with 2x2 patches.

    python benchmarks/bench_cnn.py [--env Breakout-MinAtar] [--updates 8] [--rounds 3] [--seeds 1] [--only I ...]

Each variant trains the env's defaults with `torso="cnn"`, its layer swapped for the variant's; the CNN torso
row is the library's own layer (3x3, 8 channels, stride 2, "SAME" padding); the MLP is the defaults as they are.
The programs are compiled first, then run in turn, round after round, so every round times all of them on the
same machine state; a variant's cost is its time over the MLP's in the same round (the median over rounds, and
the range). Figures and what they decided: benchmarks/README.md, "The CNN torso on a CPU".
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from purejaxppo.scale.compilation import compiler_options, use_cpu_cores

use_cpu_cores()  # before gymnax's import computes
from purejaxppo import PPOConfig, make_train  # noqa: E402
from purejaxppo.core import networks  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # machine, beside this file
from machine import header  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Layer:
    """One way of writing the torso's convolution: 3x3, `channels` out, then a `pool` x `pool` max pool."""

    label: str
    channels: int = 16
    pool: int = 1  # negative: the pool as a reshape and a max, not `nn.max_pool`'s reduce_window
    stride: int = 1
    xla_conv: bool = False  # nn.Conv (XLA's convolution) instead of patches and a Dense layer
    slices: bool = False  # the patches as 9 shifted slices of the image, not `conv_general_dilated_patches`
    pad: int = 0  # zero rows and columns around the image (1 with stride 2: every pixel in some patch)
    kernel: int = 3  # 2 with stride 2: non-overlapping 2x2 patches, a reshape of the image


VARIANTS = [
    Layer("patches, 16 channels (the torso until 2026-12-06)"),
    Layer("nn.Conv NHWC, 16 channels", xla_conv=True),
    Layer("patches, 8 channels", channels=8),
    Layer("patches, 16 channels, 2x2 max pool", pool=2),
    Layer("patches, 16 channels, stride 2", stride=2),
    Layer("patches, 8 channels, 2x2 max pool", channels=8, pool=2),
    Layer("patches as 9 shifted slices, 16 channels", slices=True),
    Layer("patches as 9 shifted slices, 16 channels, stride 2", slices=True, stride=2),
    Layer("patches as 9 shifted slices, 16 channels, 2x2 max pool by reshape", slices=True, pool=-2),
    Layer("patches as 9 shifted slices, 8 channels, 2x2 max pool by reshape", slices=True, channels=8, pool=-2),
    Layer("patches as 9 shifted slices, 16 channels, stride 2, padding 1", slices=True, stride=2, pad=1),
    Layer("2x2 patches by reshape, 16 channels, stride 2", kernel=2, stride=2),
    Layer("2x2 patches by reshape, 32 channels, stride 2", kernel=2, stride=2, channels=32),
    Layer("patches as 9 shifted slices, 8 channels, stride 2, padding 1", slices=True, stride=2, pad=1, channels=8),
    Layer("2x2 patches by reshape, 8 channels, stride 2", kernel=2, stride=2, channels=8),
]


def shifted_patches(image, stride: int):
    """`[N, H, W, C]` -> `[N, H', W', 9C]`: each position's 3x3 neighbourhood (VALID), read by slicing."""
    n, h, w, _ = image.shape
    rows, cols = (h - 3) // stride + 1, (w - 3) // stride + 1
    shifts = [image[:, i:i + stride * (rows - 1) + 1:stride, j:j + stride * (cols - 1) + 1:stride, :]
              for i in range(3) for j in range(3)]
    return jnp.concatenate(shifts, axis=-1)


def blocks(image):
    """`[N, H, W, C]` -> `[N, H / 2, W / 2, 4C]`: non-overlapping 2x2 patches (H, W even), by reshaping."""
    n, h, w, c = image.shape
    return image.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, h // 2, w // 2, 4 * c)


def reshape_max_pool(x, k: int):
    """`[N, H, W, C]` -> `[N, H // k, W // k, C]`: the max of each k x k block (the rest of H, W dropped)."""
    n, h, w, c = x.shape
    x = x[:, :h - h % k, :w - w % k, :].reshape(n, h // k, k, w // k, k, c)
    return x.max(axis=(2, 4))


def variant_cnn(layer: Layer):
    """A module in place of `networks.CNN`, with `networks.CNN`'s interface."""

    class VariantCNN(nn.Module):
        image_shape: tuple[int, int, int]
        activation: str

        @nn.compact
        def __call__(self, x):
            size = int(np.prod(self.image_shape))
            batch = x.shape[:-1]
            image = x[..., :size].reshape((-1,) + tuple(self.image_shape))
            init = nn.initializers.orthogonal(np.sqrt(2))
            if layer.pad:
                image = jnp.pad(image, ((0, 0), (layer.pad, layer.pad), (layer.pad, layer.pad), (0, 0)))
            if layer.kernel == 2:
                out = nn.Dense(layer.channels, kernel_init=init)(blocks(image))
            elif layer.xla_conv:
                out = nn.Conv(layer.channels, (3, 3), (layer.stride,) * 2, "VALID", kernel_init=init)(image)
            elif layer.slices:
                out = nn.Dense(layer.channels, kernel_init=init)(shifted_patches(image, layer.stride))
            else:
                patches = jax.lax.conv_general_dilated_patches(image, (3, 3), (layer.stride,) * 2, "VALID",
                                                               dimension_numbers=("NHWC", "HWIO", "NHWC"))
                out = nn.Dense(layer.channels, kernel_init=init)(patches)
            out = networks._ACTIVATIONS[self.activation](out)
            if layer.pool > 1:
                out = nn.max_pool(out, (layer.pool,) * 2, (layer.pool,) * 2)
            elif layer.pool < -1:
                out = reshape_max_pool(out, -layer.pool)
            return jnp.concatenate([out.reshape(batch + (-1,)), x[..., size:]], axis=-1)

    return VariantCNN


def compiled_train(config: PPOConfig, keys, layer: Layer | None):
    """The program of `config` (its CNN written as `layer`; None: as it is), compiled."""
    original = networks.CNN
    if layer is not None:
        networks.CNN = variant_cnn(layer)  # read when make_train traces the network
    try:
        return jax.jit(make_train(config), compiler_options=compiler_options()).lower(keys).compile()
    finally:
        networks.CNN = original


def timed(program, keys) -> float:
    start = time.perf_counter()
    jax.block_until_ready(program(keys))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Breakout-MinAtar")
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--only", nargs="+", type=int, metavar="I",
                        help="time only these variants (their indices in VARIANTS, from 0) beside the MLP")
    args = parser.parse_args()
    variants = VARIANTS if args.only is None else [VARIANTS[i] for i in args.only]
    mlp = PPOConfig.for_env(args.env)
    mlp = dataclasses.replace(mlp, total_timesteps=args.updates * mlp.batch_size)
    cnn = dataclasses.replace(mlp, torso="cnn")
    keys = jax.vmap(jax.random.key)(jnp.arange(args.seeds))
    print(f"{args.env}: {mlp.num_envs} envs x {mlp.num_steps} steps, {args.updates} updates "
          f"({mlp.num_updates * mlp.batch_size:,} env steps) x {args.seeds} seed(s), MLP {mlp.hidden_sizes}")
    print(header(), flush=True)
    programs = {"MLP (the defaults)": compiled_train(mlp, keys, None),
                "the CNN torso (`core.networks.CNN`)": compiled_train(cnn, keys, None)}
    programs.update({v.label: compiled_train(cnn, keys, v) for v in variants})
    for program in programs.values():
        timed(program, keys)  # a first call of each, untimed
    seconds = {label: [] for label in programs}
    for _ in range(args.rounds):
        for label, program in programs.items():
            seconds[label].append(timed(program, keys))
    steps = args.updates * mlp.batch_size * args.seeds
    base = seconds["MLP (the defaults)"]
    print(f"| torso | env steps/s (median of {args.rounds}) | cost per env step / MLP's (median, range) |")
    print("|---|---:|---:|")
    for label, times in seconds.items():
        ratios = [t / b for t, b in zip(times, base)]
        print(f"| {label} | {steps / statistics.median(times):,.0f} | {statistics.median(ratios):.2f}x "
              f"({min(ratios):.2f}-{max(ratios):.2f}) |", flush=True)


if __name__ == "__main__":
    main()
