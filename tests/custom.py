"""Layers and losses a user writes, following ``docs/layers.md`` and nothing else.

They live here, not in the package: the tests that use them check that what the docs
promise for a layer of one's own (gradient checks, a Net, threads, the strict backend,
checkpoints) holds for these too.
"""

from nnfs.backend import backend_of, get_array_module, host_ones, host_zeros
from nnfs.layers import Layer
from nnfs.losses import Loss, log_softmax
from nnfs.parallel import batch_sum


class LayerNorm(Layer):
    """Normalise each sample over its features, then scale and shift them.

    Shape:
        - Input: ``(N, D)``
        - Output: ``(N, D)``
    """

    def __init__(self, n_features, epsilon=1e-5, dtype=None):
        super().__init__()
        self.n_features, self.epsilon = n_features, epsilon
        self.init_params(dtype, weight=host_ones(n_features), bias=host_zeros(n_features))

    def forward(self, X):
        xp = get_array_module(X)
        inverse = 1 / xp.sqrt(X.var(axis=1, keepdims=True) + self.epsilon)
        normal = (X - X.mean(axis=1, keepdims=True)) * inverse
        self.cache["normal"], self.cache["inverse"] = normal, inverse
        return normal * self.params["weight"] + self.params["bias"]

    def backward(self, dY):
        normal, inverse = self.from_cache("normal", "inverse")
        self.grads["weight"] = (dY * normal).sum(axis=0)
        self.grads["bias"] = dY.sum(axis=0)
        g = dY * self.params["weight"]
        return inverse * (g - g.mean(axis=1, keepdims=True) - normal * (g * normal).mean(axis=1, keepdims=True))

    def get_config(self):
        return {"n_features": self.n_features, "epsilon": self.epsilon}


class Swish(Layer):
    """``Y = X * sigmoid(beta * X)`` with a learned ``beta`` (one number)."""

    def __init__(self, beta=1.0, dtype=None):
        super().__init__()
        self.init_params(dtype, beta=host_ones(1) * beta)

    def forward(self, X):
        gate = 1 / (1 + get_array_module(X).exp(-self.params["beta"] * X))
        self.cache["X"], self.cache["gate"] = X, gate
        return X * gate

    def backward(self, dY):
        X, gate = self.from_cache("X", "gate")
        slope = gate * (1 - gate)
        self.grads["beta"] = (dY * X * X * slope).sum().reshape(1)
        return dY * (gate + X * self.params["beta"] * slope)

    def get_config(self):
        # The file holds the learned beta; the constructor's only decides the shape (one number).
        return {}


class InPlaceScale(Layer):
    """``Y = X * weight``, whose backward writes into the gradient array it already has
    (as one may, having seen ``init_params`` make it) instead of binding a new one."""

    def __init__(self, n_features, dtype=None):
        super().__init__()
        self.n_features = n_features
        self.init_params(dtype, weight=host_ones(n_features))

    def forward(self, X):
        self.cache["X"] = X
        return X * self.params["weight"]

    def backward(self, dY):
        X = self.from_cache("X")
        self.grads["weight"][...] = (dY * X).sum(axis=0)
        return dY * self.params["weight"]

    def get_config(self):
        return {"n_features": self.n_features}


class RunningMean(Layer):
    """The identity, keeping the running mean of its training inputs in a buffer: a
    statistic of the whole batch, summed over the thread shards with ``batch_sum``."""

    def __init__(self, n_features, momentum=0.1, dtype=None):
        super().__init__()
        self.n_features, self.momentum = n_features, momentum
        self.init_params(dtype, weight=host_ones(n_features))  # a parameter, so it has a dtype
        self.buffers["mean"] = self.params["weight"] * 0

    def forward(self, X):
        if self.training:
            total, count = batch_sum(X.sum(axis=0), X.shape[0])
            self.buffers["mean"] = (1 - self.momentum) * self.buffers["mean"] + self.momentum * total / count
        self.cache["X"] = X
        return X * self.params["weight"]

    def backward(self, dY):
        self.grads["weight"] = (dY * self.from_cache("X")).sum(axis=0)
        return dY * self.params["weight"]

    def get_config(self):
        return {"n_features": self.n_features, "momentum": self.momentum}


class FocalLoss(Loss):
    """Focal loss on raw logits and integer labels, ``-(1 - p) ** gamma * log(p)`` averaged."""

    def __init__(self, gamma=2.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, prediction, target):
        xp = get_array_module(prediction)
        target = backend_of(prediction).asarray(target)  # the targets come as they were given
        log_p = log_softmax(prediction)
        chosen = xp.take_along_axis(log_p, target[:, None], axis=1)[:, 0]
        self.cache.update(log_p=log_p, target=target, chosen=chosen)
        return (-(1 - xp.exp(chosen)) ** self.gamma * chosen).mean()

    def backward(self):
        log_p, target, chosen = self.from_cache("log_p", "target", "chosen")
        xp = get_array_module(log_p)
        N, gamma, p = log_p.shape[0], self.gamma, xp.exp(chosen)
        d_chosen = (gamma * (1 - p) ** (gamma - 1) * p * chosen - (1 - p) ** gamma) / N
        d_log_p = xp.zeros_like(log_p)
        xp.put_along_axis(d_log_p, target[:, None], d_chosen[:, None], axis=1)
        # Through the log-softmax: d/dx = d_log_p - softmax(x) * sum(d_log_p).
        return d_log_p - xp.exp(log_p) * d_log_p.sum(axis=1, keepdims=True)

    def get_config(self):
        return {"gamma": self.gamma}


#: Every class above, as ``custom_layers`` takes them.
CUSTOM = [LayerNorm, Swish, InPlaceScale, RunningMean, FocalLoss]
