"""Training-step time of supernet(x, arch) over the extracted static model's, side by side.

For each space (by default hybrid-small and the small published-design presets, which between them
use every registered block family): the largest, the smallest and random archs. Each step is forward,
cross-entropy, backward and an SGD update. The two models' steps are interleaved in one run so the
machine's drift affects both alike; the median over steps is compared. Target: median ratio <= 1.10.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import time

import torch
import torch.nn.functional as F

from search_spaces import HybridSupernet, get_space


def step_time(forward, x, y, opt) -> float:
    t0 = time.perf_counter()
    loss = F.cross_entropy(forward(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


SPACES = ["hybrid-small", "maxvit-small", "mambaout-small", "vcmamba-small", "mobile-small"]
# families whose supernet and extracted layers run different algorithms (longconv: FFT vs a direct
# convolution), so their ratio is not the supernet's overhead; the second median leaves them out
DIFFERENT_ALGORITHMS = {"longconv"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spaces", nargs="+", default=SPACES)
    parser.add_argument("--random", type=int, default=3, help="random archs per space")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"batch {args.batch}, {args.threads} threads, {args.steps} interleaved steps each")
    print(f"{'space':<15} {'arch':<9} {'types':<30} {'supernet ms':>12} {'static ms':>10} {'ratio':>7}")
    ratios, same_algorithm, families = [], [], set()
    for space_name in args.spaces:
        space = get_space(space_name)
        supernet = HybridSupernet.from_spec(space).train()
        rng = random.Random(0)
        archs = {"largest": space.largest(), "smallest": space.smallest()}
        archs |= {f"random{i}": space.sample(rng) for i in range(args.random)}
        x = torch.randn(args.batch, *space.input_shape)
        y = torch.randint(0, space.num_classes, (args.batch,))
        for name, arch in archs.items():
            ms_super, ms_static = compare(supernet, arch, x, y, args.steps)
            ratios.append(ms_super / ms_static)
            families |= set(arch.layer_types())
            if not DIFFERENT_ALGORITHMS & set(arch.layer_types()):
                same_algorithm.append(ratios[-1])
            types = ",".join(sorted(set(arch.layer_types())))
            print(f"{space_name:<15} {name:<9} {types:<30} {ms_super:>12.2f} {ms_static:>10.2f} {ratios[-1]:>7.3f}",
                  flush=True)
    print(f"block families covered: {', '.join(sorted(families))}")
    print(f"median ratio supernet/static: {statistics.median(ratios):.3f} (target <= 1.10)")
    if same_algorithm and len(same_algorithm) < len(ratios):
        print(f"median without {', '.join(sorted(DIFFERENT_ALGORITHMS))} archs ({len(same_algorithm)} of "
              f"{len(ratios)}): {statistics.median(same_algorithm):.3f}")


def compare(supernet: HybridSupernet, arch, x: torch.Tensor, y: torch.Tensor, steps: int) -> tuple[float, float]:
    """Median training-step milliseconds of the supernet running `arch` and of its extracted network."""
    static = supernet.extract(arch).train()
    opt_super = torch.optim.SGD(supernet.parameters(), lr=1e-4)
    opt_static = torch.optim.SGD(static.parameters(), lr=1e-4)
    subnet = functools.partial(supernet, arch=arch)
    for _ in range(3):  # warm-up
        step_time(subnet, x, y, opt_super)
        step_time(static, x, y, opt_static)
    t_super, t_static = [], []
    for _ in range(steps):
        t_super.append(step_time(subnet, x, y, opt_super))
        t_static.append(step_time(static, x, y, opt_static))
    return statistics.median(t_super) * 1e3, statistics.median(t_static) * 1e3


if __name__ == "__main__":
    main()
