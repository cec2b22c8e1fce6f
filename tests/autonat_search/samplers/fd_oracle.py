"""SPEC 7's finite-difference search written out in plain numpy, and test objectives."""

import numpy as np

# Wide enough that no ceiling of the study's ranges is ever reached: the reference has none.
WIDE = {
    "mask_ratio": (0.0, 1.0),
    "remask_temp": (0.0, 50.0),
    "sample_temp": (0.0, 50.0),
    "cfg": (0.0, 50.0),
}


def spec_search(f, steps, updates, grad_clip=None):
    """SPEC 7 step by step: every evaluated point in order, and the iterates x_0..x_updates."""
    n_ratios = steps - 1
    x = np.concatenate(
        [
            np.cos(np.linspace(0, np.pi / 2, steps + 1))[1:-1],
            (1 - np.linspace(0, 1, steps + 1))[:-2],
            np.ones(steps),
            np.linspace(0, 1, steps + 1)[1:],
        ]
    )
    is_ratio = np.arange(len(x)) < n_ratios
    lr = np.where(is_ratio, 1e-3, 0.1)
    points, iterates, buf = [], [x.copy()], None
    for _ in range(updates):
        f0 = f(x)
        points.append(x.copy())
        grad = np.zeros_like(x)
        for i in range(len(x)):
            p = x.copy()
            p[i] = np.clip(x[i] + 0.01, 0.0, 1.0) if is_ratio[i] else max(x[i] + 0.1, 1e-4)
            points.append(p)
            grad[i] = (f(p) - f0) / (p[i] - x[i])
        if grad_clip is not None:
            grad = np.clip(grad, -grad_clip, grad_clip)
        buf = grad if buf is None else 0.5 * buf + grad
        x = x - lr * buf
        x = np.where(is_ratio, np.clip(x, 0.0, 0.99), np.maximum(x, 1e-4))
        iterates.append(x.copy())
    return points, iterates


def quadratic(steps, seed=0):
    rng = np.random.default_rng(seed)
    size = 4 * steps - 2
    target = rng.uniform(0.2, 2.0, size)
    target[: steps - 1] = rng.uniform(0.3, 1.2, steps - 1)  # some ratios pulled above 0.99
    weight = rng.uniform(0.5, 4.0, size)  # stable for lr 0.1 ...
    weight[: steps - 1] = rng.uniform(50.0, 400.0, steps - 1)  # ... and lr 1e-3

    def f(x):
        return float(np.sum(weight * (np.asarray(x) - target) ** 2))

    return f
