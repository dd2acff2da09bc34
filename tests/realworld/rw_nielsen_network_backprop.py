"""Michael Nielsen's network.py: sigmoid MLP, Network.backprop for the quadratic cost (book chapter 2).

Repository: mnielsen/neural-networks-and-deep-learning
Path: src/network.py
Commit: 72db53d750f571bef8804de4a52224e44dcab3a1
License: MIT
Vendored verbatim: class Network header, __init__ and feedforward (lines 19-42), and
backprop, evaluate, cost_derivative, sigmoid, sigmoid_prime (lines 85-141) of that file.

Not vendored: SGD and update_mini_batch (lines 44-83; Python 2 print statements, not valid
Python 3).  The file is Python 2: backprop's loop uses xrange, bound to range above the block.
The harness builds a Network without calling __init__ (which draws random weights) and sets
biases/weights from the parameter blocks; the loss is the quadratic cost
C = sum_x 0.5 * ||feedforward(x) - y||^2 over a mini-batch, whose gradient is the sum of
backprop(x, y) (as update_mini_batch accumulates it).

The repository's file has CRLF line endings; the vendored lines keep them byte for byte (the
rest of this file is LF).  cost_derivative's docstring has the invalid escape sequence "\\p"
(not a raw string): compiling this file with warnings turned into errors (pytest's
filterwarnings = "error") raises SyntaxError, so it must be loaded without that filter.
"""

import numpy as np

xrange = range  # Python 2 builtin used by backprop

# ---- VERBATIM mnielsen/neural-networks-and-deep-learning src/network.py@72db53d750f571bef8804de4a52224e44dcab3a1 ----
class Network(object):

    def __init__(self, sizes):
        """The list ``sizes`` contains the number of neurons in the
        respective layers of the network.  For example, if the list
        was [2, 3, 1] then it would be a three-layer network, with the
        first layer containing 2 neurons, the second layer 3 neurons,
        and the third layer 1 neuron.  The biases and weights for the
        network are initialized randomly, using a Gaussian
        distribution with mean 0, and variance 1.  Note that the first
        layer is assumed to be an input layer, and by convention we
        won't set any biases for those neurons, since biases are only
        ever used in computing the outputs from later layers."""
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [np.random.randn(y, 1) for y in sizes[1:]]
        self.weights = [np.random.randn(y, x)
                        for x, y in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        """Return the output of the network if ``a`` is input."""
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a)+b)
        return a
# ---- END VERBATIM ----

# ---- VERBATIM mnielsen/neural-networks-and-deep-learning src/network.py@72db53d750f571bef8804de4a52224e44dcab3a1 ----
    def backprop(self, x, y):
        """Return a tuple ``(nabla_b, nabla_w)`` representing the
        gradient for the cost function C_x.  ``nabla_b`` and
        ``nabla_w`` are layer-by-layer lists of numpy arrays, similar
        to ``self.biases`` and ``self.weights``."""
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        # feedforward
        activation = x
        activations = [x] # list to store all the activations, layer by layer
        zs = [] # list to store all the z vectors, layer by layer
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation)+b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        # backward pass
        delta = self.cost_derivative(activations[-1], y) * \
            sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        # Note that the variable l in the loop below is used a little
        # differently to the notation in Chapter 2 of the book.  Here,
        # l = 1 means the last layer of neurons, l = 2 is the
        # second-last layer, and so on.  It's a renumbering of the
        # scheme in the book, used here to take advantage of the fact
        # that Python can use negative indices in lists.
        for l in xrange(2, self.num_layers):
            z = zs[-l]
            sp = sigmoid_prime(z)
            delta = np.dot(self.weights[-l+1].transpose(), delta) * sp
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l-1].transpose())
        return (nabla_b, nabla_w)

    def evaluate(self, test_data):
        """Return the number of test inputs for which the neural
        network outputs the correct result. Note that the neural
        network's output is assumed to be the index of whichever
        neuron in the final layer has the highest activation."""
        test_results = [(np.argmax(self.feedforward(x)), y)
                        for (x, y) in test_data]
        return sum(int(x == y) for (x, y) in test_results)

    def cost_derivative(self, output_activations, y):
        """Return the vector of partial derivatives \partial C_x /
        \partial a for the output activations."""
        return (output_activations-y)

#### Miscellaneous functions
def sigmoid(z):
    """The sigmoid function."""
    return 1.0/(1.0+np.exp(-z))

def sigmoid_prime(z):
    """Derivative of the sigmoid function."""
    return sigmoid(z)*(1-sigmoid(z))
# ---- END VERBATIM ----


KIND = "check"
EXPECTED_WRONG = []

SIZES = [4, 5, 3]


def _network(params):
    net = Network.__new__(Network)
    net.num_layers = len(SIZES)
    net.sizes = SIZES
    net.biases = [params["b0"], params["b1"]]
    net.weights = [params["w0"], params["w1"]]
    return net


def _loss(params, xs, ys):
    net = _network(params)
    cost = 0.0
    for x, y in zip(xs, ys):
        cost = cost + 0.5 * np.sum((net.feedforward(x) - y) ** 2)
    return cost


def _grad(params, xs, ys):
    net = _network(params)
    nabla_b = [np.zeros(b.shape) for b in net.biases]
    nabla_w = [np.zeros(w.shape) for w in net.weights]
    for x, y in zip(xs, ys):
        delta_nabla_b, delta_nabla_w = net.backprop(x, y)
        nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
        nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
    return {"b0": nabla_b[0], "b1": nabla_b[1], "w0": nabla_w[0], "w1": nabla_w[1]}


def make():
    rng = np.random.RandomState(5)
    m = 4
    params = {
        "b0": rng.randn(SIZES[1], 1),
        "b1": rng.randn(SIZES[2], 1),
        "w0": rng.randn(SIZES[1], SIZES[0]),
        "w1": rng.randn(SIZES[2], SIZES[1]),
    }
    xs = rng.uniform(0.0, 1.0, size=(m, SIZES[0], 1))       # column vectors, as in mnist_loader
    ys = np.zeros((m, SIZES[2], 1))
    ys[np.arange(m), rng.randint(0, SIZES[2], size=m), 0] = 1.0   # one-hot targets
    return dict(loss=_loss, grad=_grad, params=params, args=(xs, ys))


def truth(made):
    import torch

    xs, ys = made["args"]
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in made["params"].items()}
    X = torch.tensor(xs[:, :, 0].T, dtype=torch.float64)     # (n_in, m)
    Y = torch.tensor(ys[:, :, 0].T, dtype=torch.float64)
    a1 = torch.sigmoid(p["w0"] @ X + p["b0"])
    a2 = torch.sigmoid(p["w1"] @ a1 + p["b1"])
    cost = 0.5 * torch.sum((a2 - Y) ** 2)
    names = list(p)
    grads = torch.autograd.grad(cost, [p[k] for k in names])
    return {k: g.detach().numpy() for k, g in zip(names, grads)}
