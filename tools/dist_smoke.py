"""One forward and backward pass of SATNet and SymSATNet on CPU, from an installed package
(run by tools/dist_check.sh outside the source tree, so the installed copy is the one imported)."""

import torch

import symsatnet
from puzzles.sudoku.solver import count_solutions

assert "site-packages" in symsatnet.__file__, f"imported the source tree, not the installed package: {symsatnet.__file__}"
torch.manual_seed(0)
for layer in (symsatnet.SATNet(9, 12, aux=3), symsatnet.SymSATNet(64, symsatnet.sudoku_group(2))):
    n = layer.n
    z = torch.rand(2, n, requires_grad=True)
    given = torch.rand(2, n) < 0.5
    layer(z, given).sum().backward()
    gradients = [parameter.grad for parameter in layer.parameters() if parameter.numel()]
    assert z.grad is not None and all(grad is not None and torch.isfinite(grad).all() for grad in gradients)
    print(f"{type(layer).__name__}: forward and backward on CPU ok")
assert count_solutions(torch.zeros(4, 4, dtype=torch.int8).numpy(), 2) == 2  # the Cython solver is built
print(f"symsatnet {symsatnet.__file__}: installed package works")
