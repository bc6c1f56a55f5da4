"""Run under mpiexec -n N: DDP-averaged gradients of per-rank batches equal the gradient of the
union batch computed in one process; prints one JSON line on rank 0."""

import json

import torch

from hpcflow.models.flows import FlowSpec, build_flow, reverse_kl
from hpcflow.parallel import DDPStrategy
from hpcflow.parallel.teardown import leave
from hpcflow.theories.phi4 import Phi4Action

strategy = DDPStrategy()
strategy.init()
env = strategy.env
torch.manual_seed(0)
flow = build_flow(FlowSpec("affine", 2, (4,), 3)).double()
with torch.no_grad():
    for p in flow.parameters():
        p.normal_(0.0, 0.2)
reference = {k: v.clone() for k, v in flow.state_dict().items()}
action = Phi4Action(0.5, 0.5)
gen = torch.Generator().manual_seed(42)
union = torch.randn(4 * env.size, 4, 4, generator=gen, dtype=torch.float64)
local = union[4 * env.rank : 4 * (env.rank + 1)]
opt = torch.optim.SGD(flow.parameters(), lr=0.1)
model, opt = strategy.wrap(flow, opt)
# DDP averages gradients in hooks registered by the wrapped module's forward
phi, logdet = model(local)
loss = (flow.prior.log_prob(local) - logdet + action(phi)).mean()
loss.backward()
grads = torch.cat([p.grad.flatten() for p in flow.parameters()])
serial = build_flow(FlowSpec("affine", 2, (4,), 3)).double()
serial.load_state_dict(reference)
full_loss, _ = reverse_kl(serial, action, union)
full_loss.backward()
expected = torch.cat([p.grad.flatten() for p in serial.parameters()])
mean_rank = strategy.all_reduce_mean(torch.tensor(float(env.rank))).item()
ok = torch.allclose(grads, expected, rtol=1e-10, atol=1e-12)
all_ok = strategy.all_reduce_mean(torch.tensor(float(ok))).item()
if env.is_root:
    print(json.dumps({"size": env.size, "launcher": env.launcher, "mean_rank": mean_rank, "grads_equal": all_ok == 1.0}))
strategy.shutdown()
leave(0 if all_ok == 1.0 else 1)  # as the hpcflow command does at more than one rank
