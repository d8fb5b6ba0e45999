"""Observations of any structure as the flat float32 vector the `Env` protocol carries (`base`).

A suite's observation may be an array, or a pytree (a dict, a NamedTuple) of arrays: a grid, an inventory, a step
count, an action mask. `observation_codec` reads one example (a `jax.eval_shape` of reset) and lays the flat vector
out as

    [ image (H*W*C), the other leaves raveled in pytree order, action mask ]

The image is the largest leaf of rank 3 (`[H, W, C]`) or 2 (`[H, W]`, one channel): a CNN torso reshapes it back.
The action mask is the leaf named `action_mask` (a suite's, or a user's dict key): kept out of the features and
put last, as 0.0/1.0, where the policy reads it (`networks.split_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

MASK_KEY = "action_mask"


@dataclass(frozen=True)
class ObservationCodec:
    """How one suite's observations become flat vectors: `encode(obs) -> [size]` float32."""

    size: int
    shape: tuple[int, ...]  # the raw observation's, when it is one array; else (size,)
    image_shape: tuple[int, int, int] | None
    mask_shape: tuple[int, ...] | None  # the raw mask's shape, None without one
    encode: Callable[[Any], jax.Array]
    example: Any = None  # one observation's structure (`jax.ShapeDtypeStruct` leaves)

    def encode_batch(self, obs: Any) -> jax.Array:
        """`encode` of observations with any leading batch dimensions: `[..., size]`."""
        encode = self.encode
        batch_ndim = jnp.ndim(jax.tree.leaves(obs)[0]) - len(jax.tree.leaves(self.example)[0].shape)
        for _ in range(batch_ndim):
            encode = jax.vmap(encode)
        return encode(obs)

    @property
    def mask_size(self) -> int:
        return 0 if self.mask_shape is None else int(np.prod(self.mask_shape))


def _name(path: tuple[Any, ...]) -> str:
    last = path[-1] if path else None
    for attribute in ("key", "name"):
        if hasattr(last, attribute):
            return str(getattr(last, attribute))
    return ""


def observation_codec(example: Any, images: bool = True) -> ObservationCodec:
    """The codec for observations shaped like `example` (arrays or `jax.ShapeDtypeStruct`s). `images=False`:
    no leaf is taken as an image (every leaf is raveled in place)."""
    leaves = jax.tree_util.tree_flatten_with_path(example)[0]
    masks = [i for i, (path, _) in enumerate(leaves) if _name(path) == MASK_KEY]
    mask = masks[0] if masks else None
    features = [i for i in range(len(leaves)) if i != mask]
    candidates = [i for i in features if len(leaves[i][1].shape) in (2, 3)] if images else []
    image = max(candidates, key=lambda i: int(np.prod(leaves[i][1].shape)), default=None)
    order = ([image] if image is not None else []) + [i for i in features if i != image]
    image_shape = None
    if image is not None:
        shape = tuple(int(d) for d in leaves[image][1].shape)
        image_shape = shape if len(shape) == 3 else shape + (1,)
    mask_shape = None if mask is None else tuple(int(d) for d in leaves[mask][1].shape)
    size = sum(int(np.prod(leaves[i][1].shape)) for i in order) + (0 if mask is None else int(np.prod(mask_shape)))

    def encode(obs: Any) -> jax.Array:
        values = jax.tree.leaves(obs)
        parts = [jnp.ravel(values[i]).astype(jnp.float32) for i in order]
        if mask is not None:
            parts.append(jnp.ravel(values[mask]).astype(jnp.float32))
        return jnp.concatenate(parts) if len(parts) > 1 else parts[0]

    one_array = len(leaves) == 1 and mask is None
    shape = tuple(int(d) for d in leaves[0][1].shape) if one_array else (size,)
    return ObservationCodec(size, shape, image_shape, mask_shape, encode, example)
