"""The attack table (for benchmarks/README.md), checked against torchattacks on the same
images: archlab's FGSM and PGD must give the very same adversarial images.

Needs trained runs (`archlab train dnn cnn`) and torchattacks (a test-only dependency).
Prints, per run, accuracy under FGSM and PGD with and without PGD's random start, then
for each ε whether archlab's images equal torchattacks' (FGSM; PGD without random start,
which draws no random numbers) and both accuracies.

    OMP_NUM_THREADS=2 python benchmarks/attack_table.py --runs runs --models dnn,cnn
"""

from __future__ import annotations

import argparse
import datetime
import platform

import torch
from torch import nn

import archlab
from archlab.analysis import robustness as R
from archlab.analysis.faithfulness import stratified_indices
from archlab.training.run import as_run


class _OnPixels(nn.Module):
    """The run's model behind its normalisation: torchattacks attacks pixels in [0, 1]."""

    def __init__(self, model: nn.Module, normalize) -> None:
        super().__init__()
        self.model, self.normalize = model, normalize

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(R._model_input(pixels, self.normalize))


def main() -> None:
    import torchattacks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="trained runs (default: runs)")
    parser.add_argument("--models", default="dnn,cnn", help="(default: dnn,cnn)")
    parser.add_argument("--images", type=int, default=500, help="test images (default: 500)")
    parser.add_argument("--eps", default="0.05,0.1,0.2", help="(default: 0.05,0.1,0.2)")
    parser.add_argument("--steps", type=int, default=10, help="PGD's steps (default: 10)")
    args = parser.parse_args()
    print(
        f"{datetime.date.today()}, {platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, torchattacks {torchattacks.__version__}\n"
    )
    eps = [float(e) for e in args.eps.split(",")]
    data = archlab.load_fashion_mnist()
    chosen = stratified_indices(data.test_labels, args.images, 0)
    images, labels = data.test_images[chosen], data.test_labels[chosen].long()
    pixels = images.unsqueeze(1).float() / 255
    for name in args.models.split(","):
        run = as_run(name, args.runs)
        model = run.model.eval()
        print(f"{run.name}: normalisation {run.normalize}")
        for random_start in (True, False):
            res = R.robustness_of_model(
                model,
                images,
                labels,
                normalize=run.normalize,
                eps=[0, *eps],
                pgd_steps=args.steps,
                random_start=random_start,
                flips=0,
            )
            fgsm = "/".join(f"{100 * a:.1f}" for a in res.fgsm)
            pgd = "/".join(f"{100 * a:.1f}" for a in res.pgd)
            print(f"  random start {random_start}: FGSM {fgsm}  PGD-{args.steps} {pgd}")
        wrapped = _OnPixels(model, run.normalize).eval()

        def accuracy(adv, wrapped=wrapped):
            with torch.no_grad():
                return 100 * float((wrapped(adv).argmax(1) == labels).float().mean())

        for e in eps:
            ours = R.fgsm(model, pixels, labels, e, run.normalize)
            theirs = torchattacks.FGSM(wrapped, e)(pixels, labels)
            ours_pgd = R.pgd(
                model, pixels, labels, e, args.steps, random_start=False, normalize=run.normalize
            )
            attack = torchattacks.PGD(
                wrapped, eps=e, alpha=2.5 * e / args.steps, steps=args.steps, random_start=False
            )
            theirs_pgd = attack(pixels, labels)
            print(
                f"  ε={e:g}: FGSM equal {torch.equal(ours, theirs)} ({accuracy(ours):.1f} vs "
                f"{accuracy(theirs):.1f}), PGD equal {torch.equal(ours_pgd, theirs_pgd)} "
                f"({accuracy(ours_pgd):.1f} vs {accuracy(theirs_pgd):.1f})"
            )


if __name__ == "__main__":
    main()
