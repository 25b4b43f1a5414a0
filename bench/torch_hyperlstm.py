#!/usr/bin/python3
"""torch_hyperlstm.py: the PyTorch side of `make bench`.

The same one-layer LN-HyperLSTM character model as hyperd's (engine/model.h; paper §3.2,
eqs. 10-13), written in eager PyTorch as one plainly would: an nn.Module cell stepped in a
Python loop, autograd for the backward, torch.optim.Adam.  It measures

  generation  batch 1 under torch.no_grad: per character one cell step, the output layer,
              softmax and torch.multinomial (temperature 1), after a warm-up;
  training    B = 32 streams of T = 100 random characters: forward, cross-entropy,
              backward, gradient clipping to norm 1 and an Adam step, after a warm-up step;

at each thread count asked for (torch.set_num_threads and OpenBLAS's own pool, which
torch.set_num_threads does not reach), and prints lines in bench_engine's format:

  info impl=torch torch=1.13.0a0 python=3.11.2 blas_core=SkylakeX
  gen impl=torch N=512 H=128 Z=4 V=96 threads=1 chars=... seconds=... chars_per_s=... us_per_char=...
  train impl=torch N=512 H=128 Z=4 V=96 threads=1 B=32 T=100 steps=... seconds=... chars_per_s=... loss=...

Run it with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import ctypes
import platform
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

H, Z = 128, 4          # hyper units, embedding size
B, T = 32, 100         # training batch and sequence length
LN_EPS = 1e-3          # supercell's layer-norm epsilon
LR, CLIP = 2e-3, 1.0   # what hyperd's trainer uses by default
GEN_WARMUP_CHARS = 200
TRAIN_CAP = 3          # a slow step stops the timed loop at 3x the time asked


class GateNorm(nn.Module):
    """Layer norm over n units, separately for each of `gates` blocks, with gain and bias."""

    def __init__(self, n, gates):
        super().__init__()
        self.n, self.gates = n, gates
        self.weight = nn.Parameter(torch.ones(gates, n))
        self.bias = nn.Parameter(torch.zeros(gates, n))

    def forward(self, x):                       # x (B, gates * n)
        y = F.layer_norm(x.view(-1, self.gates, self.n), (self.n,), eps=LN_EPS)
        return (y * self.weight + self.bias).view(x.shape)


def lstm_core(a, c, ln_c):
    """Gates i, g, f, o from normalised pre-activations a (B, 4n); forget bias +1."""
    i, g, f, o = a.chunk(4, dim=1)
    c = torch.sigmoid(f + 1.0) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(ln_c(c))
    return h, c


def orthogonal_blocks(rows, n):
    """A (rows, 4n) matrix made of 4 orthogonal (rows, n) blocks."""
    w = torch.empty(rows, 4 * n)
    for k in range(4):
        nn.init.orthogonal_(w[:, k * n:(k + 1) * n])
    return w


class LNHyperLSTMCell(nn.Module):
    """One step of the LN-HyperLSTM.  The input x enters as its rows of W_x and hW_x
    (an embedding lookup of a one-hot input), looked up by the caller."""

    def __init__(self, V, N):
        super().__init__()
        self.N = N
        # main cell
        self.W_x = nn.Parameter(nn.init.xavier_uniform_(torch.empty(V, 4 * N)))
        self.W_h = nn.Parameter(orthogonal_blocks(N, N))
        self.b = nn.Parameter(torch.zeros(4 * N))
        self.ln = GateNorm(N, 4)
        self.ln_c = GateNorm(N, 1)
        # hyper cell: an LSTM of H units reading [x ; h_{t-1}] (eq. 10)
        self.hW_x = nn.Parameter(nn.init.xavier_uniform_(torch.empty(V, 4 * H)))
        self.hW_m = nn.Parameter(nn.init.xavier_uniform_(torch.empty(N, 4 * H)))
        self.hW_h = nn.Parameter(orthogonal_blocks(H, H))
        self.hb = nn.Parameter(torch.zeros(4 * H))
        self.hln = GateNorm(H, 4)
        self.hln_c = GateNorm(H, 1)
        # embeddings z_x, z_h (with bias) and z_b (without), Z per gate
        self.Wz_x = nn.Parameter(torch.zeros(H, 4 * Z))
        self.bz_x = nn.Parameter(torch.ones(4 * Z))
        self.Wz_h = nn.Parameter(torch.zeros(H, 4 * Z))
        self.bz_h = nn.Parameter(torch.ones(4 * Z))
        self.Wz_b = nn.Parameter(torch.randn(H, 4 * Z) * 0.01)
        # per gate d = W z: weight scaling vectors d_x, d_h and the bias (eqs. 11-12)
        self.Wd_x = nn.Parameter(torch.full((4, Z, N), 0.1 / Z))
        self.Wd_h = nn.Parameter(torch.full((4, Z, N), 0.1 / Z))
        self.Wd_b = nn.Parameter(torch.zeros(4, Z, N))

    def per_gate(self, z, W):                   # z (B, 4Z), W (4, Z, N) -> (B, 4N)
        return torch.einsum("bgz,gzn->bgn", z.view(-1, 4, Z), W).reshape(-1, 4 * self.N)

    def forward(self, ux, hx, state):
        """ux (B, 4N) = x·W_x, hx (B, 4H) = x·hW_x; state (h, c, ĥ, ĉ)."""
        h, c, hh, hc = state
        ha = hx + h @ self.hW_m + hh @ self.hW_h + self.hb
        hh, hc = lstm_core(self.hln(ha), hc, self.hln_c)
        zx = hh @ self.Wz_x + self.bz_x
        zh = hh @ self.Wz_h + self.bz_h
        zb = hh @ self.Wz_b
        d_x = self.per_gate(zx, self.Wd_x)
        d_h = self.per_gate(zh, self.Wd_h)
        b_y = self.per_gate(zb, self.Wd_b) + self.b
        a = d_x * ux + d_h * (h @ self.W_h) + b_y
        h, c = lstm_core(self.ln(a), c, self.ln_c)
        return h, (h, c, hh, hc)


class CharModel(nn.Module):
    def __init__(self, V, N):
        super().__init__()
        self.cell = LNHyperLSTMCell(V, N)
        self.out = nn.Linear(N, V)

    def zero_state(self, batch):
        N = self.cell.N
        return (torch.zeros(batch, N), torch.zeros(batch, N),
                torch.zeros(batch, H), torch.zeros(batch, H))

    def forward(self, ids, state):
        """ids (T, B) -> logits (T, B, V) and the final state."""
        ux = F.embedding(ids, self.cell.W_x)    # (T, B, 4N)
        hx = F.embedding(ids, self.cell.hW_x)   # (T, B, 4H)
        hs = []
        for t in range(ids.shape[0]):
            h, state = self.cell(ux[t], hx[t], state)
            hs.append(h)
        return self.out(torch.stack(hs)), state


def set_threads(n, blas):
    torch.set_num_threads(n)
    if blas is not None:
        blas.openblas_set_num_threads(n)


def bench_generation(model, V, N, threads, seconds):
    with torch.no_grad():
        state = model.zero_state(1)
        x = torch.zeros(1, dtype=torch.long)

        def one_char(x, state):
            ux = F.embedding(x, model.cell.W_x)
            hx = F.embedding(x, model.cell.hW_x)
            h, state = model.cell(ux, hx, state)
            probs = F.softmax(model.out(h), dim=-1)
            return torch.multinomial(probs, 1).view(1), state

        for _ in range(GEN_WARMUP_CHARS):
            x, state = one_char(x, state)
        chars, start = 0, time.perf_counter()
        while True:
            for _ in range(32):
                x, state = one_char(x, state)
            chars += 32
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    print(f"gen impl=torch N={N} H={H} Z={Z} V={V} threads={threads} chars={chars} "
          f"seconds={elapsed:.3f} chars_per_s={chars / elapsed:.1f} "
          f"us_per_char={elapsed * 1e6 / chars:.2f}", flush=True)


class Trainer:
    """Truncated BPTT over B contiguous slices of a random text, as hyperd's trainer."""

    def __init__(self, model, V, text_chars=200000):
        self.model = model
        self.opt = torch.optim.Adam(model.parameters(), lr=LR)
        self.text = torch.randint(0, V, (text_chars,), generator=torch.Generator().manual_seed(11))
        self.slice = text_chars // B
        self.pos = 0
        self.state = model.zero_state(B)
        self.V = V

    def step(self):
        starts = torch.arange(B) * self.slice + self.pos
        idx = starts.unsqueeze(0) + torch.arange(T + 1).unsqueeze(1)   # (T+1, B)
        seg = self.text[idx]
        logits, state = self.model(seg[:-1], self.state)
        loss = F.cross_entropy(logits.reshape(-1, self.V), seg[1:].reshape(-1))
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.opt.step()
        self.state = tuple(s.detach() for s in state)
        self.pos += T
        if self.pos + T + 1 >= self.slice:
            self.pos = 0
            self.state = self.model.zero_state(B)
        return loss.item()


def bench_training(trainer, V, N, threads, seconds, min_steps):
    trainer.step()
    steps, start = 0, time.perf_counter()
    while True:
        loss = trainer.step()
        steps += 1
        elapsed = time.perf_counter() - start
        if (elapsed >= seconds and steps >= min_steps) or elapsed >= TRAIN_CAP * seconds:
            break
    print(f"train impl=torch N={N} H={H} Z={Z} V={V} threads={threads} B={B} T={T} "
          f"steps={steps} seconds={elapsed:.3f} chars_per_s={steps * B * T / elapsed:.1f} "
          f"loss={loss:.4f}", flush=True)


def parse_configs(s):
    configs = []
    for item in s.split(","):
        n, v = item.split(":")
        configs.append((int(n), int(v)))
    return configs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gen-seconds", type=float, default=5)
    ap.add_argument("--train-seconds", type=float, default=15, help="0 skips training")
    ap.add_argument("--min-train-steps", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--configs", default="512:96,1000:50", help="N:V,N:V")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]

    # the OpenBLAS torch multiplies with (Debian's libblas.so.3 is OpenBLAS): its kernel
    # family, and its thread pool, which torch.set_num_threads leaves alone
    try:
        blas = ctypes.CDLL("libopenblas.so.0")
        blas.openblas_get_corename.restype = ctypes.c_char_p
        core = blas.openblas_get_corename().decode()
    except (OSError, AttributeError):
        blas, core = None, "unknown"
    print(f"info impl=torch torch={torch.__version__} python={platform.python_version()} "
          f"blas_core={core}", flush=True)

    torch.manual_seed(1)
    for N, V in parse_configs(args.configs):
        model = CharModel(V, N)
        for n in threads:
            set_threads(n, blas)
            bench_generation(model, V, N, n, args.gen_seconds)
        if args.train_seconds > 0:
            trainer = Trainer(model, V)
            for n in threads:
                set_threads(n, blas)
                bench_training(trainer, V, N, n, args.train_seconds, args.min_train_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
