"""Adam through torch's public functional API, without ``torch._dynamo``.

``torch.optim.Adam`` (like every ``torch.optim`` optimiser in torch 2.x) imports
``torch._dynamo`` on construction: ``Optimizer.add_param_group`` is decorated with
``torch._disable_dynamo``, which imports it on first call. That import pulls in sympy,
triton, torch._inductor... and costs 1.5-2 s, longer than a short training run's
compute. The functional ``torch.optim.adam.adam`` (in that module's ``__all__``) runs the
same update, and outside ``torch.compile`` calls its implementation directly.

:class:`Adam` keeps the state ``torch.optim.Adam`` keeps (``step``, ``exp_avg``,
``exp_avg_sq`` per parameter, the step a float32 tensor on the parameter's device when
fused) and calls ``adam`` with the arguments ``torch.optim.Adam.step`` passes, so the
parameters after any number of steps are bit-identical (``tests/test_adam.py``). Its
``state_dict()`` has ``torch.optim.Adam``'s layout (plain tensors, numbers and tuples:
``torch.load(weights_only=True)`` reads it), so a checkpoint written by either loads into
either.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch.optim.adam import adam

_STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")


class Adam:
    """Adam (no amsgrad, no weight decay) over one group of parameters.

    ``param_groups`` is a one-element list of dicts, as in ``torch.optim``, so code that
    sets ``group["lr"]`` (a schedule) works unchanged.

    Args:
        params: the parameters to update.
        lr: the learning rate. Default: 1e-3.
        betas: the moving averages' coefficients. Default: (0.9, 0.999).
        eps: added to the denominator. Default: 1e-8.
        fused: use the fused kernel (cpu, cuda); None leaves it to torch (foreach or a loop),
            as ``torch.optim.Adam`` does. Default: None.
        capturable: keep the learning rate in a float32 tensor on the parameters' device
            (the fused CUDA kernel reads it from there), so that a step captured in a CUDA
            graph follows a schedule: :meth:`set_lr` fills that tensor, outside the graph.
            Needs ``fused=True``. Default: False.

    Example::

        >>> opt = Adam(model.parameters(), lr=1e-3, fused=True)  # doctest: +SKIP
        >>> loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)  # doctest: +SKIP
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        fused: bool | None = None,
        capturable: bool = False,
    ) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("Adam got an empty parameter list")
        if capturable and not fused:
            raise ValueError("capturable=True needs fused=True")
        if fused:
            for p in self.params:
                if p.device.type not in ("cpu", "cuda") or not torch.is_floating_point(p):
                    raise RuntimeError(
                        "fused=True needs floating-point parameters on cpu or cuda, "
                        f"not {p.dtype} on {p.device.type}"
                    )
        # the keys and defaults of torch.optim.Adam's group: its state_dict has this layout
        self.param_groups: list[dict[str, Any]] = [
            {
                "lr": lr,
                "betas": tuple(betas),
                "eps": eps,
                "weight_decay": 0,
                "amsgrad": False,
                "maximize": False,
                "foreach": None,
                "capturable": False,  # torch's flag; its fused kernel is graph-safe as is
                "differentiable": False,
                "fused": fused,
                "decoupled_weight_decay": False,
            }
        ]
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]
        # the learning rate the fused CUDA kernel reads on the device (float32: the kernel's
        # type), so a graph's replay sees each new value; None: a Python float, as torch's
        self.lr_tensor: torch.Tensor | None = None
        if capturable:
            self.lr_tensor = torch.tensor(lr, dtype=torch.float32, device=self.params[0].device)

    def set_lr(self, lr: float) -> None:
        """Set the learning rate for the next steps (a schedule); with ``capturable`` also
        in its device tensor, which a CUDA graph reads at each replay."""
        self.param_groups[0]["lr"] = lr
        if self.lr_tensor is not None:
            self.lr_tensor.fill_(lr)

    def _new_state(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.param_groups[0]["fused"]:  # on the parameter's device, as the kernel wants
            step = torch.zeros((), dtype=torch.float32, device=p.device)
        else:  # on the CPU, as torch.optim.Adam keeps it when neither fused nor capturable
            step = torch.tensor(0.0, dtype=_scalar_dtype(), device="cpu")
        return {
            "step": step,
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
        }

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_().requires_grad_(False).zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        group = self.param_groups[0]
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        has_complex = False
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("Adam does not support sparse gradients")
            if not state:
                state.update(self._new_state(p))
            has_complex |= torch.is_complex(p)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if not params:
            return
        beta1, beta2 = group["betas"]
        adam(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            foreach=group["foreach"],
            capturable=False,
            differentiable=False,
            fused=group["fused"],
            grad_scale=None,
            found_inf=None,
            has_complex=has_complex,
            decoupled_weight_decay=False,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"] if self.lr_tensor is None else self.lr_tensor,
            weight_decay=0,
            eps=group["eps"],
            maximize=False,
        )

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.Adam``'s layout: ``{"state": {index: {...}}, "param_groups": [...]}``."""
        group = {**self.param_groups[0], "params": list(range(len(self.params)))}
        state = {i: dict(s) for i, s in enumerate(self.state) if s}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state written by :meth:`state_dict` or by ``torch.optim.Adam``.

        Raises ``ValueError`` if it does not fit these parameters (another model)."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("the optimizer state is for a different set of parameters")
        ids = list(groups[0]["params"])
        fused = self.param_groups[0]["fused"]
        new_state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]
        for i, (pid, p) in enumerate(zip(ids, self.params, strict=True)):
            saved = state_dict["state"].get(pid)
            if not saved:
                continue
            if set(saved) != set(_STATE_KEYS):
                raise ValueError(f"optimizer state {sorted(saved)} is not Adam's")
            for key in ("exp_avg", "exp_avg_sq"):
                if saved[key].shape != p.shape:
                    raise ValueError(
                        f"optimizer state of shape {tuple(saved[key].shape)} for a parameter "
                        f"of shape {tuple(p.shape)}"
                    )
            # as torch.optim.Optimizer.load_state_dict casts them
            step = saved["step"]
            if fused:
                step = step.to(dtype=torch.float32, device=p.device)
            dtype = p.dtype if p.is_floating_point() else None
            new_state[i] = {
                "step": step,
                "exp_avg": saved["exp_avg"].to(dtype=dtype, device=p.device),
                "exp_avg_sq": saved["exp_avg_sq"].to(dtype=dtype, device=p.device),
            }
        saved_group = {k: v for k, v in groups[0].items() if k != "params"}
        for key in ("lr", "betas", "eps"):
            if key in saved_group:
                self.param_groups[0][key] = saved_group[key]
        self.state = new_state
        self.set_lr(float(self.param_groups[0]["lr"]))


def _scalar_dtype() -> torch.dtype:
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32
