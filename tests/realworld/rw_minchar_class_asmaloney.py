"""min-char-rnn refactored into classes (`RNN.train` is Karpathy's lossFun as a method over lists), Andy Maloney's Python 3 port.

Repository: asmaloney/min-char-rnn
Path: min-char-rnn.py
Commit: 583f026737ddf35072b96c3eb74549dfc2777bbe
License: BSD-3-Clause (LICENSE file)
Vendored verbatim: the type aliases, class InputData, class RNN (RNN.train is the loss and its gradient), lines 50-291 of that file.
"""

import numpy as np
import numpy.typing as npt


# ---- VERBATIM asmaloney/min-char-rnn min-char-rnn.py@583f026737ddf35072b96c3eb74549dfc2777bbe ----
# type aliases for readability
IntList = list[int]
StringList = list[str]
FloatArray = npt.NDArray[np.float64]


class InputData:
    def __init__(
        self,
        input_file_path: str,
        training_sequence_length: int,
        training_use_words: bool,
        inference_starting_text: str,
    ):
        """
        Handles reading text data from a file and then accessing it in sequence.
        """

        # initialize sequences
        self.sequence_length = training_sequence_length
        self.current_pos: int = 0

        # read data from file
        data: str = open(input_file_path, "r").read()

        # store our token information
        self.tokens: StringList = self.tokenize(data, training_use_words)
        self.data_size: int = len(self.tokens)

        unique_tokens: StringList = list(set(self.tokens))
        self.vocab_size: int = len(unique_tokens)

        print(f"input data has {self.data_size} tokens ({self.vocab_size} unique)")

        # create token <-> index mappings
        self.token_to_index: dict[str, int] = {
            ch: i for i, ch in enumerate(unique_tokens)
        }
        self.index_to_token: dict[int, str] = {
            i: ch for i, ch in enumerate(unique_tokens)
        }

        # lookup and store our starting text indices
        self.inference_start_indices: IntList = []

        start_tokens: StringList = self.tokenize(
            inference_starting_text, training_use_words
        )

        for i in range(len(start_tokens)):
            index: int = self.token_to_index[start_tokens[i]]
            self.inference_start_indices.append(index)

    def nextInputsAndTargets(self) -> tuple[IntList, IntList]:
        """
        Prepare inputs (we're sweeping from left to right in steps seq_length long)
        """
        inputs: IntList = [
            self.token_to_index[ch]
            for ch in self.tokens[
                self.current_pos : self.current_pos + self.sequence_length
            ]
        ]

        targets: IntList = [
            self.token_to_index[ch]
            for ch in self.tokens[
                self.current_pos + 1 : self.current_pos + self.sequence_length + 1
            ]
        ]

        self.current_pos += self.sequence_length

        # if we don't have enough in our data for another chunk, wrap around to the beginning
        if self.current_pos + self.sequence_length + 1 > self.data_size:
            self.current_pos = 0

        return inputs, targets

    def atStart(self) -> bool:
        return self.current_pos == 0

    def tokenize(self, text: str, use_words: bool) -> StringList:
        if use_words:
            return text.split() + [" ", "\n"]
        return list(text)


class RNN:
    def __init__(self, vocab_size: int, hidden_size: int, learning_rate: float):
        self.vocab_size = vocab_size
        self.learning_rate = learning_rate

        # model parameters
        # W = weight
        # b = bias
        # x = input
        # h = hidden
        # y = output

        # input to hidden
        self.Wxh: FloatArray = np.random.randn(hidden_size, self.vocab_size) * 0.01
        # hidden to hidden
        self.Whh: FloatArray = np.random.randn(hidden_size, hidden_size) * 0.01
        # hidden to output
        self.Why: FloatArray = np.random.randn(self.vocab_size, hidden_size) * 0.01
        # hidden bias
        self.bh: FloatArray = np.zeros((hidden_size, 1))
        # output bias
        self.by: FloatArray = np.zeros((self.vocab_size, 1))

        # memory variables for Adaptive Gradient Algorithm (AdaGrad)
        self.mWxh: FloatArray = np.zeros_like(self.Wxh)
        self.mWhh: FloatArray = np.zeros_like(self.Whh)
        self.mWhy: FloatArray = np.zeros_like(self.Why)
        self.mbh: FloatArray = np.zeros_like(self.bh)
        self.mby: FloatArray = np.zeros_like(self.by)

    def train(
        self,
        inputs: IntList,
        targets: IntList,
        vocab_size: int,
        hidden_initial: FloatArray,
    ) -> tuple[
        float, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray
    ]:
        """
        hidden_initial is Hx1 array of initial hidden state
        returns the loss, gradients on model parameters, and last hidden state
        """

        num_inputs: int = len(inputs)

        # encode in 1-of-k representation
        xs: list[FloatArray] = [np.zeros((vocab_size, 1)) for _ in range(num_inputs)]

        ps: list[FloatArray] = [np.empty([]) for _ in range(num_inputs)]
        ys: list[FloatArray] = [np.empty([]) for _ in range(num_inputs)]
        hs: list[FloatArray] = [np.empty([]) for _ in range(num_inputs)]
        hs[-1] = np.copy(hidden_initial)

        loss: float = 0.0

        # forward pass
        for t in range(num_inputs):
            xs[t][inputs[t]] = 1.0

            # hidden state
            hs[t] = np.tanh(
                np.dot(self.Wxh, xs[t]) + np.dot(self.Whh, hs[t - 1]) + self.bh
            )

            # unnormalized log probabilities for next chars
            ys[t] = np.dot(self.Why, hs[t]) + self.by

            # probabilities for next chars
            exp_yst: FloatArray = np.exp(ys[t])
            ps[t] = exp_yst / np.sum(exp_yst)

            # softmax (cross-entropy loss)
            loss += -np.log(ps[t][targets[t], 0])

        # backward pass: compute gradients going backwards
        dWxh = np.zeros_like(self.Wxh)
        dWhh = np.zeros_like(self.Whh)
        dWhy = np.zeros_like(self.Why)
        dbh = np.zeros_like(self.bh)
        dby = np.zeros_like(self.by)
        dhnext = np.zeros_like(hs[0])

        for t in reversed(range(num_inputs)):
            dy = np.copy(ps[t])

            # backprop into y
            # see http://cs231n.github.io/neural-networks-case-study/#grad if confused here
            dy[targets[t]] -= 1

            dWhy += np.dot(dy, hs[t].T)
            dby += dy
            dh = np.dot(self.Why.T, dy) + dhnext  # backprop into h
            dhraw = (1 - hs[t] * hs[t]) * dh  # backprop through tanh nonlinearity
            dbh += dhraw

            dWxh += np.dot(dhraw, xs[t].T)
            dWhh += np.dot(dhraw, hs[t - 1].T)
            dhnext = np.dot(self.Whh.T, dhraw)

        for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
            np.clip(dparam, -5, 5, out=dparam)  # clip to mitigate exploding gradients

        return loss, dWxh, dWhh, dWhy, dbh, dby, hs[num_inputs - 1]

    def update(
        self,
        dWxh: FloatArray,
        dWhh: FloatArray,
        dWhy: FloatArray,
        dbh: FloatArray,
        dby: FloatArray,
    ):
        """
        Update parameters using Adaptive Gradient Algorithm (AdaGrad)
        """
        for param, dparam, mem in zip(
            [self.Wxh, self.Whh, self.Why, self.bh, self.by],
            [dWxh, dWhh, dWhy, dbh, dby],
            [self.mWxh, self.mWhh, self.mWhy, self.mbh, self.mby],
        ):
            mem += dparam * dparam
            param += -self.learning_rate * dparam / np.sqrt(mem + 1e-8)

    def infer(
        self,
        memory: FloatArray,
        vocab_size: int,
        inference_start_text_indices: IntList,
        inference_sample_size: int,
    ) -> IntList:
        """
        sample a sequence of integers from the model
        memory is memory state, inference_start_text_indices is list of token indices for the starting text
        """

        x: FloatArray = np.zeros((self.vocab_size, 1))

        # initialize with our starting text's indices
        indices: IntList = inference_start_text_indices.copy()
        for i in indices:
            x[i] = 1.0

        for _ in range(inference_sample_size):
            memory = np.tanh(np.dot(self.Wxh, x) + np.dot(self.Whh, memory) + self.bh)
            y: FloatArray = np.dot(self.Why, memory) + self.by
            expy: FloatArray = np.exp(y)
            p: FloatArray = expy / np.sum(expy)
            ix = np.random.choice(range(self.vocab_size), p=p.ravel())
            x = np.zeros((vocab_size, 1))
            x[ix] = 1.0
            indices.append(ix)

        return indices
# ---- END VERBATIM ----


KIND = "check"
# The refactor keeps Karpathy's `hs[-1] = np.copy(hprev)` but hs is now a list of length
# T, so hs[-1] is the slot of the last step: the forward reads hprev correctly at t=0
# (before that slot is overwritten), but the backward's `hs[t - 1]` at t=0 is then the
# final hidden state instead of hprev, so dWhh is wrong.
EXPECTED_WRONG = ["Whh"]


def _model(params):
    model = RNN.__new__(RNN)          # no random init: the parameters are the check's
    model.Wxh, model.Whh, model.Why = params["Wxh"], params["Whh"], params["Why"]
    model.bh, model.by = params["bh"], params["by"]
    return model


def _loss(params, inputs, targets, vocab_size, hidden_initial):
    return _model(params).train(inputs, targets, vocab_size, hidden_initial)[0]


def _grad(params, inputs, targets, vocab_size, hidden_initial):
    loss, dWxh, dWhh, dWhy, dbh, dby, h = _model(params).train(inputs, targets, vocab_size,
                                                                hidden_initial)
    return {"Wxh": dWxh, "Whh": dWhh, "Why": dWhy, "bh": dbh, "by": dby}


def make():
    # Weights at 0.5 scale (not the script's 0.01) so that every block has a sizeable
    # gradient; all gradient entries stay well inside the clip range [-5, 5].
    rng = np.random.default_rng(9)
    V, H, T = 5, 4, 4
    params = {"Wxh": 0.5 * rng.standard_normal((H, V)),
              "Whh": 0.5 * rng.standard_normal((H, H)),
              "Why": 0.5 * rng.standard_normal((V, H)),
              "bh": 0.5 * rng.standard_normal((H, 1)),
              "by": 0.5 * rng.standard_normal((V, 1))}
    tokens = [int(i) for i in rng.integers(0, V, size=T + 1)]
    inputs, targets = tokens[:-1], tokens[1:]
    hidden_initial = 0.5 * rng.standard_normal((H, 1))
    return dict(loss=_loss, grad=_grad, params=params, args=(inputs, targets, V, hidden_initial))


def truth(made):
    import torch
    inputs, targets, V, hprev = made["args"]
    names = ["Wxh", "Whh", "Why", "bh", "by"]
    p = {k: torch.tensor(made["params"][k], dtype=torch.float64, requires_grad=True) for k in names}
    h = torch.tensor(hprev, dtype=torch.float64)
    loss = torch.zeros((), dtype=torch.float64)
    for i, tgt in zip(inputs, targets):
        onehot = torch.zeros((V, 1), dtype=torch.float64)
        onehot[i, 0] = 1.0
        h = torch.tanh(p["Wxh"] @ onehot + p["Whh"] @ h + p["bh"])
        logits = (p["Why"] @ h + p["by"])[:, 0]
        loss = loss - torch.log_softmax(logits, dim=0)[tgt]
    grads = torch.autograd.grad(loss, [p[k] for k in names])
    return {k: g.numpy() for k, g in zip(names, grads)}
