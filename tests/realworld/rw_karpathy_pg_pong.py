"""Karpathy's "Pong from Pixels" policy gradient: policy_forward / policy_backward (2-layer ReLU net, sigmoid).

Repository: tmannen/karprl
Path: pg-pong.py
Commit: 79eca8c068bf52d9c3d4a1bf7bcf299d7c14303e
License: none stated
Vendored verbatim: sigmoid, prepro, discount_rewards, policy_forward and policy_backward,
lines 27-62 of that file.

This repository's pg-pong.py is a copy of Andrej Karpathy's gist
(gist.github.com/karpathy/a4166c7fe253700972fcbc77e4ea32c5, no license stated) with the
print calls made Python 3; the vendored lines are the gist's.  prepro and discount_rewards
are not called here.  The functions read the module globals `model` (dict W1, W2) and `epx`
(stacked inputs), as in the script; the harness sets them.  policy_backward returns the
gradient of the policy-gradient objective J = sum_t A_t * log pi(a_t | x_t) (the script
*adds* it to the weights), with pi(UP | x) = sigmoid(W2 . relu(W1 x)), y_t = 1 for UP, and
epdlogp = (y_t - p_t) * A_t, exactly as the script builds it; J is the checked scalar.
"""

import numpy as np

model = {}
epx = None

# ---- VERBATIM tmannen/karprl pg-pong.py@79eca8c068bf52d9c3d4a1bf7bcf299d7c14303e ----
def sigmoid(x): 
  return 1.0 / (1.0 + np.exp(-x)) # sigmoid "squashing" function to interval [0,1]

def prepro(I):
  """ prepro 210x160x3 uint8 frame into 6400 (80x80) 1D float vector """
  I = I[35:195] # crop
  I = I[::2,::2,0] # downsample by factor of 2
  I[I == 144] = 0 # erase background (background type 1)
  I[I == 109] = 0 # erase background (background type 2)
  I[I != 0] = 1 # everything else (paddles, ball) just set to 1
  return I.astype(np.float).ravel()

def discount_rewards(r):
  """ take 1D float array of rewards and compute discounted reward """
  discounted_r = np.zeros_like(r)
  running_add = 0
  for t in reversed(range(0, r.size)):
    if r[t] != 0: running_add = 0 # reset the sum, since this was a game boundary (pong specific!)
    running_add = running_add * gamma + r[t]
    discounted_r[t] = running_add
  return discounted_r

def policy_forward(x):
  h = np.dot(model['W1'], x)
  h[h<0] = 0 # ReLU nonlinearity
  logp = np.dot(model['W2'], h)
  p = sigmoid(logp)
  return p, h # return probability of taking action 2, and hidden state

def policy_backward(eph, epdlogp):
  """ backward pass. (eph is array of intermediate hidden states) """
  dW2 = np.dot(eph.T, epdlogp).ravel()
  dh = np.outer(epdlogp, model['W2'])
  dh[eph <= 0] = 0 # backpro prelu
  dW1 = np.dot(dh.T, epx)
  return {'W1':dW1, 'W2':dW2}
# ---- END VERBATIM ----


KIND = "check"
EXPECTED_WRONG = []


def _loss(params, xs, ys, advantages):
    global model
    model = params
    J = 0.0
    for x, y, A in zip(xs, ys, advantages):
        aprob, h = policy_forward(x)
        J = J + A * (y * np.log(aprob) + (1 - y) * np.log(1 - aprob))
    return J


def _grad(params, xs, ys, advantages):
    global model, epx
    model = params
    hs, dlogps = [], []
    for x, y in zip(xs, ys):
        aprob, h = policy_forward(x)
        hs.append(h)                 # hidden state
        dlogps.append(y - aprob)     # grad that encourages the action that was taken
    epx = np.vstack(xs)
    eph = np.vstack(hs)
    epdlogp = np.vstack(dlogps)
    epdlogp *= advantages[:, None]   # modulate the gradient with advantage
    return policy_backward(eph, epdlogp)


def make():
    rng = np.random.RandomState(37)   # every pre-activation |W1 x| >= 0.11: no ReLU kink near the point
    T, D, H = 8, 6, 5
    params = {"W1": rng.randn(H, D) / np.sqrt(D), "W2": rng.randn(H) / np.sqrt(H)}
    xs = rng.randn(T, D)                                   # "difference frames"
    ys = (rng.uniform(size=T) < 0.5).astype(np.float64)    # 1 = UP was sampled
    r = rng.randn(T)
    advantages = (r - r.mean()) / r.std()                  # standardized returns
    return dict(loss=_loss, grad=_grad, params=params, args=(xs, ys, advantages))


def truth(made):
    import torch

    xs, ys, adv = made["args"]
    W1 = torch.tensor(made["params"]["W1"], dtype=torch.float64, requires_grad=True)
    W2 = torch.tensor(made["params"]["W2"], dtype=torch.float64, requires_grad=True)
    X = torch.tensor(xs, dtype=torch.float64)
    y = torch.tensor(ys, dtype=torch.float64)
    A = torch.tensor(adv, dtype=torch.float64)
    h = torch.relu(X @ W1.T)              # (T, H)
    logit = h @ W2                        # (T,)
    # log pi(a|x) for a Bernoulli(sigmoid(logit)) action
    logpi = y * torch.nn.functional.logsigmoid(logit) + (1 - y) * torch.nn.functional.logsigmoid(-logit)
    J = torch.sum(A * logpi)
    gW1, gW2 = torch.autograd.grad(J, [W1, W2])
    return {"W1": gW1.detach().numpy(), "W2": gW2.detach().numpy()}
