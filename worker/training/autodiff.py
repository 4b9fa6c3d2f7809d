"""A scalar reverse-mode autodiff engine, small enough to read in one sitting.

It exists to check the vectorized engine's hand-written gradients with arithmetic that shares nothing
with PyTorch: every number is a Var, every operation records its parents and the local derivative with
respect to each, and backward() walks the graph in reverse topological order applying the chain rule.
"""

import math
from collections.abc import Iterable, Sequence


class Var:
    __slots__ = ("value", "grad", "parents")

    def __init__(self, value: float, parents: Sequence[tuple["Var", float]] = ()) -> None:
        self.value = float(value)
        self.grad = 0.0
        self.parents = tuple(parents)  # (parent, d self / d parent)

    def __add__(self, other: "Var | float") -> "Var":
        other = as_var(other)
        return Var(self.value + other.value, [(self, 1.0), (other, 1.0)])

    __radd__ = __add__

    def __mul__(self, other: "Var | float") -> "Var":
        other = as_var(other)
        return Var(self.value * other.value, [(self, other.value), (other, self.value)])

    __rmul__ = __mul__

    def __neg__(self) -> "Var":
        return self * -1.0

    def __sub__(self, other: "Var | float") -> "Var":
        return self + (-as_var(other))

    def __rsub__(self, other: float) -> "Var":
        return as_var(other) - self

    def __truediv__(self, other: "Var | float") -> "Var":
        other = as_var(other)
        return Var(self.value / other.value, [(self, 1 / other.value), (other, -self.value / other.value**2)])

    def tanh(self) -> "Var":
        t = math.tanh(self.value)
        return Var(t, [(self, 1 - t * t)])

    def sigmoid(self) -> "Var":
        s = 1 / (1 + math.exp(-self.value))
        return Var(s, [(self, s * (1 - s))])

    def relu(self) -> "Var":
        return Var(max(self.value, 0.0), [(self, 1.0 if self.value > 0 else 0.0)])

    def exp(self) -> "Var":
        e = math.exp(self.value)
        return Var(e, [(self, e)])

    def log(self) -> "Var":
        return Var(math.log(self.value), [(self, 1 / self.value)])

    def backward(self) -> None:
        """Fill .grad of every Var this one depends on with d self / d that Var."""
        order: list[Var] = []
        seen: set[int] = set()

        def visit(node: Var) -> None:
            if id(node) not in seen:
                seen.add(id(node))
                for parent, _ in node.parents:
                    visit(parent)
                order.append(node)

        visit(self)
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in node.parents:
                parent.grad += local * node.grad


def as_var(value: "Var | float") -> Var:
    return value if isinstance(value, Var) else Var(value)


def total(values: Iterable[Var]) -> Var:
    result = Var(0.0)
    for value in values:
        result = result + value
    return result


def mlp(x: Sequence[float], layers: Sequence[tuple[list[list[Var]], list[Var]]], activation: str) -> Var:
    """A feed-forward net on one input; layers[l] = (weights [fan_in][fan_out], biases [fan_out])."""
    h: list[Var] = [Var(v) for v in x]
    for index, (weights, biases) in enumerate(layers):
        z = [total(h[i] * weights[i][j] for i in range(len(h))) + biases[j] for j in range(len(biases))]
        h = z if index == len(layers) - 1 else [getattr(unit, activation)() for unit in z]
    return h[0]


def bce_with_logits(logit: Var, target: float) -> Var:
    """log(1 + e^z) - y z, the loss the engines use for classification."""
    return (1.0 + logit.exp()).log() - logit * target


def squared_error(output: Var, target: float) -> Var:
    return (output - target) * (output - target)
