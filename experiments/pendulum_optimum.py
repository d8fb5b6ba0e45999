"""How well any policy can do on Pendulum-v1: finite-horizon dynamic programming on a grid of (angle, velocity)
with bilinear interpolation, then its greedy policy run in the env's exact dynamics from 20,000 starts drawn as
gymnax draws them (angle uniform in [-pi, pi], velocity uniform in [-1, 1]), 200 steps each.

    python experiments/pendulum_optimum.py [--grid 361 241 41]

Prints the grid's value at the starts (an estimate of the optimum) and the mean return the greedy policy
actually gets (a policy's return: no policy's mean can be lower than the optimum's). Both bound what a PPO
return on Pendulum can reach; docs/results.md has the figures. The dynamics and the reward are gymnax's
Pendulum-v1 (the gym equations), restated here in numpy.
"""

from __future__ import annotations

import argparse

import numpy as np

G, MASS, LENGTH, DT, MAX_SPEED, MAX_TORQUE, HORIZON = 10.0, 1.0, 1.0, 0.05, 8.0, 2.0, 200


def wrap(angle: np.ndarray) -> np.ndarray:
    return ((angle + np.pi) % (2 * np.pi)) - np.pi


def step(theta: np.ndarray, velocity: np.ndarray, torque: float) -> tuple[np.ndarray, np.ndarray]:
    velocity = np.clip(velocity + (3 * G / (2 * LENGTH) * np.sin(theta) + 3.0 / (MASS * LENGTH**2) * torque) * DT,
                       -MAX_SPEED, MAX_SPEED)
    return theta + velocity * DT, velocity


def reward(theta: np.ndarray, velocity: np.ndarray, torque: float) -> np.ndarray:
    return -(wrap(theta) ** 2 + 0.1 * velocity**2 + 0.001 * torque**2)


class Grid:
    """Values on `n_angle` x `n_velocity` points, read between them by bilinear interpolation."""

    def __init__(self, n_angle: int, n_velocity: int):
        self.n_angle, self.n_velocity = n_angle, n_velocity
        angles = np.linspace(-np.pi, np.pi, n_angle, endpoint=False)
        velocities = np.linspace(-MAX_SPEED, MAX_SPEED, n_velocity)
        self.theta, self.velocity = np.meshgrid(angles, velocities, indexing="ij")

    def read(self, values: np.ndarray, theta: np.ndarray, velocity: np.ndarray) -> np.ndarray:
        x = (wrap(theta) + np.pi) / (2 * np.pi) * self.n_angle
        i0 = np.floor(x).astype(int)
        fx = x - i0
        i0 %= self.n_angle
        i1 = (i0 + 1) % self.n_angle  # the angle wraps around
        y = (velocity + MAX_SPEED) / (2 * MAX_SPEED) * (self.n_velocity - 1)
        j0 = np.clip(np.floor(y).astype(int), 0, self.n_velocity - 2)
        fy = np.clip(y - j0, 0.0, 1.0)
        return (values[i0, j0] * (1 - fx) * (1 - fy) + values[i1, j0] * fx * (1 - fy)
                + values[i0, j0 + 1] * (1 - fx) * fy + values[i1, j0 + 1] * fx * fy)

    def q(self, values: np.ndarray, theta: np.ndarray, velocity: np.ndarray, torques: np.ndarray) -> np.ndarray:
        """[torques, ...]: each torque's reward now plus `values` where it leads."""
        return np.stack([reward(theta, velocity, u) + self.read(values, *step(theta, velocity, u)) for u in torques])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", nargs=3, type=int, default=[361, 241, 41], metavar=("ANGLES", "VELOCITIES",
                                                                                      "TORQUES"))
    parser.add_argument("--starts", type=int, default=20_000)
    args = parser.parse_args()
    grid, torques = Grid(*args.grid[:2]), np.linspace(-MAX_TORQUE, MAX_TORQUE, args.grid[2])
    to_go = [np.zeros_like(grid.theta)]  # to_go[k]: the value with k steps left
    for _ in range(HORIZON):
        to_go.append(grid.q(to_go[-1], grid.theta, grid.velocity, torques).max(axis=0))

    rng = np.random.default_rng(0)
    theta, velocity = rng.uniform(-np.pi, np.pi, args.starts), rng.uniform(-1.0, 1.0, args.starts)
    estimate = grid.read(to_go[HORIZON], theta, velocity).mean()
    returns = np.zeros(args.starts)
    for left in range(HORIZON, 0, -1):
        torque = torques[grid.q(to_go[left - 1], theta, velocity, torques).argmax(axis=0)]
        returns += reward(theta, velocity, torque)
        theta, velocity = step(theta, velocity, torque)
    print(f"grid {args.grid}: optimum estimate {estimate:.1f}; greedy policy {returns.mean():.1f} "
          f"(5th, 50th, 95th percentile {np.percentile(returns, 5):.1f}, {np.median(returns):.1f}, "
          f"{np.percentile(returns, 95):.1f}) over {args.starts:,} starts")


if __name__ == "__main__":
    main()
