"""The corpus presets against PyTorch twins of the same size: training speed and quality, side by side.

Usage::

    pip install torch==2.13.0                                    # benchmark only; nabiya never imports it
    python benchmarks/bench_corpus_torch.py --steps 150          # both presets (~20 min on 2 loaded cores)
    python benchmarks/bench_corpus_torch.py --preset folk-lstm --steps 100
    python benchmarks/bench_corpus_torch.py --steps 1000         # a longer quality comparison
    python benchmarks/bench_corpus_torch.py --steps 80 --no-compile --torch-threads 1
    python benchmarks/bench_corpus_torch.py --breakdown          # where one step's time goes, wall and CPU

For each preset (``folk-lstm``, ``folk-transformer``), at its own size, batch ``B × T``,
optimizer and schedule, on the default corpus (``--corpus`` for another):

1. **The twin.** A PyTorch model with nabiya's *initial weights copied in*: for the LSTM,
   ``torch.nn.LSTM(E, H, num_layers=L, dropout=p, batch_first=True)`` (one bias per gate: the
   ``bias_hh`` are zero and frozen) between factored input vectors ``E[t] + P[pitch] + P[duration]``
   and a factored head; for the transformer, ``torch.nn.TransformerEncoder`` of pre-LN layers
   (``norm_first=True``, tanh-GELU, 4·D feed-forward, a final LayerNorm), learned positions counted
   from each tune's start, a head tied to the factored embedding, and a boolean mask that is causal
   and keeps attention within each tune. Dropout sits where nabiya's does (the layer's dropout
   inside the feed-forward and on attention weights is switched off, as nabiya has none there).
   The script checks the trained parameter counts are equal, and that both give the same loss on
   the first batch without dropout (a wrong gate order or mask would show here).
2. **Training, interleaved.** Both train ``--steps`` steps on the *same* batches (nabiya's own
   :class:`~nabiya.batches.TuneStreams` / :class:`~nabiya.batches.PackedWindows`, made before
   timing), block by block (``steps_per_block`` steps): a nabiya block (one compiled
   ``train_block``), then a PyTorch block, alternately eager and ``torch.compile`` (of the loss,
   so its backward is compiled too; around ``nn.LSTM`` for the LSTM, see :func:`make_loss`; the
   optimizer runs eager), so load drift on a shared
   machine hits all of them alike. The first block of each is warm-up (compilation) and is left
   out; the rest give the median notes per second (a note: a trained position, padding out).
   PyTorch trains with AdamW (weight decay on matrices only), global-norm clipping and nabiya's
   warm-up + cosine schedule (``LambdaLR``), the LSTM's state carried from chunk to chunk
   (``detach``) and zeroed where a tune starts: a chunk is cut where any row starts a tune and
   ``nn.LSTM`` runs on each piece, the starting rows zeroed in between.
3. **Quality.** After the same steps, validation and test NLL per note (nats, the scored positions,
   state carried through the tunes as ``nabiya evaluate`` does) of each.

The PyTorch model's dropout draws other random numbers, so the two runs are two samples of
the same training, not the same trajectory. PyTorch runs on a GPU when it sees one (JAX too, by
its own default), and sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is set: on shared cores PyTorch's
spinning OpenMP threads were up to 20x slower.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_corpus_train import _value  # noqa: E402  (NAME=VALUE settings read alike)
from machine import describe  # noqa: E402


# --- the PyTorch twins ---------------------------------------------------------------------------


def torch_twin(model, config):
    """A ``torch.nn.Module`` of the same architecture as the nabiya ``model``, with its weights copied in."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn

    def tensor(array):
        return torch.from_numpy(np.array(array, dtype=np.float32))

    parts = torch.from_numpy(np.array(model.parts, dtype=np.int64))  # (V, 2): pitch id, duration id (offset)

    class Factored(nn.Module):
        """The factored input vectors and head of both models (see nabiya.corpus_models)."""

        def input_vectors(self, inputs):
            return self.embedding[inputs] + self.part_embedding[self.parts[inputs]].sum(-2)

        def head(self):
            weight = self.embedding if self.head_weight is None else self.head_weight
            return weight + self.part_head[self.parts].sum(-2)

    class TorchFolkLSTM(Factored):
        def __init__(self):
            super().__init__()
            cells = model.cells
            self.register_buffer("parts", parts)
            self.embedding = nn.Parameter(tensor(model.embedding))
            self.part_embedding = nn.Parameter(tensor(model.part_embedding))
            self.lstm = nn.LSTM(config.embedding_size, config.size, num_layers=config.layers, dropout=config.dropout,
                                batch_first=True)  # fmt: skip
            for layer, cell in enumerate(cells):
                getattr(self.lstm, f"weight_ih_l{layer}").data.copy_(tensor(cell.weight_ih))
                getattr(self.lstm, f"weight_hh_l{layer}").data.copy_(tensor(cell.weight_hh))
                getattr(self.lstm, f"bias_ih_l{layer}").data.copy_(tensor(cell.bias))
                bias_hh = getattr(self.lstm, f"bias_hh_l{layer}")
                bias_hh.data.zero_()
                bias_hh.requires_grad_(False)  # one bias per gate, as nabiya's
            self.head_weight = nn.Parameter(tensor(model.head_weight))
            self.head_bias = nn.Parameter(tensor(model.head_bias))
            self.part_head = nn.Parameter(tensor(model.part_head))
            self.dropout = nn.Dropout(config.dropout)

        def initial_state(self, rows):
            zeros = torch.zeros(config.layers, rows, config.size, device=self.embedding.device)
            return zeros, zeros.clone()

        def recurrent(self, x, state, resets, cuts):
            """``x (B, T, E)``, ``resets (B, T)``; ``cuts``: 0, each position where a row starts a tune, T."""
            h, c = state
            pieces = []
            for begin, end in itertools.pairwise(cuts):
                keep = (~resets[:, begin]).to(x.dtype)[None, :, None]
                y, (h, c) = self.lstm(x[:, begin:end], (h * keep, c * keep))
                pieces.append(y)
            return torch.cat(pieces, dim=1), (h.detach(), c.detach())

    class TorchFolkTransformer(Factored):
        def __init__(self):
            super().__init__()
            width, heads = config.size, config.heads
            self.heads = heads
            self.register_buffer("parts", parts)
            self.embedding = nn.Parameter(tensor(model.embedding))
            self.part_embedding = nn.Parameter(tensor(model.part_embedding))
            self.positions = nn.Parameter(tensor(model.positions))
            layer = nn.TransformerEncoderLayer(width, heads, config.mlp_ratio * width, dropout=config.dropout,
                                               activation=lambda x: F.gelu(x, approximate="tanh"),
                                               batch_first=True, norm_first=True)  # fmt: skip
            self.encoder = nn.TransformerEncoder(layer, config.layers, norm=nn.LayerNorm(width),
                                                 enable_nested_tensor=False)  # fmt: skip
            for torch_layer, block in zip(self.encoder.layers, model.blocks):
                torch_layer.self_attn.dropout = 0.0  # nabiya drops no attention weights
                torch_layer.dropout = nn.Identity()  # nor the feed-forward's hidden layer
                copies = {
                    "norm1.weight": block.norm1.weight, "norm1.bias": block.norm1.bias,
                    "self_attn.in_proj_weight": block.qkv.weight, "self_attn.in_proj_bias": block.qkv.bias,
                    "self_attn.out_proj.weight": block.proj.weight, "self_attn.out_proj.bias": block.proj.bias,
                    "norm2.weight": block.norm2.weight, "norm2.bias": block.norm2.bias,
                    "linear1.weight": block.fc.weight, "linear1.bias": block.fc.bias,
                    "linear2.weight": block.out.weight, "linear2.bias": block.out.bias,
                }  # fmt: skip
                named = dict(torch_layer.named_parameters())
                for name, array in copies.items():
                    named[name].data.copy_(tensor(array))
            self.encoder.norm.weight.data.copy_(tensor(model.norm.weight))
            self.encoder.norm.bias.data.copy_(tensor(model.norm.bias))
            self.head_weight = None  # tied to the embedding
            self.head_bias = nn.Parameter(tensor(model.head_bias))
            self.part_head = nn.Parameter(tensor(model.part_head))
            self.dropout = nn.Dropout(config.dropout)

        def initial_state(self, rows):
            return ()

        def forward(self, inputs, resets):
            """``inputs``, ``resets`` ``(B, T)`` -> logits ``(B, T, V)``."""
            length = inputs.shape[1]
            resets = resets.clone()
            resets[:, 0] = True
            index = torch.arange(length, device=inputs.device)
            segment = torch.cumsum(resets.to(torch.int32), dim=1)  # (B, T)
            start = torch.cummax(torch.where(resets, index, 0), dim=1).values
            allowed = (index[None, None, :] <= index[None, :, None]) & (segment[:, None, :] == segment[:, :, None])
            blocked = (~allowed).repeat_interleave(self.heads, dim=0)  # (B·heads, T, T), True: not attended
            x = self.dropout(self.input_vectors(inputs) + self.positions[index[None] - start])
            x = self.encoder(x, mask=blocked)
            return x @ self.head().T + self.head_bias

    return TorchFolkLSTM() if config.kind == "lstm" else TorchFolkTransformer()


def trained_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def torch_batch(batch: dict, index: int | None = None, device: str = "cpu"):
    """One step's tensors on ``device`` (``index``: which of a stacked block), and the LSTM's cut points."""
    import numpy as np
    import torch

    arrays = {name: (value if index is None else value[index]) for name, value in batch.items()}
    resets = np.asarray(arrays["resets"])
    cuts = [0, *[int(t) for t in np.flatnonzero(resets.any(axis=0)) if t > 0], resets.shape[1]]
    out = {name: torch.from_numpy(np.asarray(arrays[name])) for name in ("inputs", "targets", "mask", "score_mask",
                                                                         "resets")}  # fmt: skip
    out["inputs"], out["targets"] = out["inputs"].long(), out["targets"].long()
    out = {name: value.to(device) for name, value in out.items()}
    out["cuts"] = cuts
    return out


def _masked_nll(logits, targets, mask, score_mask):
    """The mean cross-entropy over ``mask`` (as nabiya's ``batch_loss``) and the NLL summed over ``score_mask``."""
    import torch
    import torch.nn.functional as F

    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                          reduction="none").reshape(targets.shape)  # fmt: skip
    mask = mask.to(nll.dtype)
    return (nll * mask).sum() / mask.sum().clamp(min=1), torch.where(score_mask, nll, 0.0).sum().detach()


def _lstm_inputs(module, inputs):
    return module.dropout(module.input_vectors(inputs))


def _lstm_head_loss(module, outputs, targets, mask, score_mask):
    logits = module.dropout(outputs) @ module.head().T + module.head_bias
    return _masked_nll(logits, targets, mask, score_mask)


def _transformer_loss(module, inputs, resets, targets, mask, score_mask):
    return _masked_nll(module(inputs, resets), targets, mask, score_mask)


def make_loss(module, kind: str, compiled: bool):
    """``loss(batch, state) -> (loss, state after, NLL summed over score_mask)``, eager or with ``torch.compile``.

    The transformer's whole loss is compiled (its backward too, by AOTAutograd). The LSTM's is
    compiled around ``nn.LSTM``: the input vectors and the head with the loss; the recurrence runs
    eager, since TorchDynamo does not trace RNN modules (``allow_rnn`` is off by default) and the
    cut points, where tunes start, change from batch to batch.
    """
    import torch

    wrap = torch.compile if compiled else (lambda function: function)
    if kind == "lstm":
        inputs_of, head_loss = wrap(_lstm_inputs), wrap(_lstm_head_loss)

        def loss(batch, state):
            outputs, state = module.recurrent(inputs_of(module, batch["inputs"]), state, batch["resets"], batch["cuts"])
            value, scored = head_loss(module, outputs, batch["targets"], batch["mask"], batch["score_mask"])
            return value, state, scored

        return loss
    whole = wrap(_transformer_loss)

    def loss(batch, state):
        value, scored = whole(module, batch["inputs"], batch["resets"], batch["targets"], batch["mask"],
                              batch["score_mask"])  # fmt: skip
        return value, state, scored

    return loss


def torch_optimizer(module, train, total_steps):
    """AdamW (decay on matrices only), nabiya's warm-up + cosine schedule as a LambdaLR."""
    import math

    import torch

    params = [p for p in module.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": train.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, lr=train.learning_rate, betas=(0.9, train.beta2), eps=1e-8)
    warm = min(train.warmup_steps, max(total_steps - 1, 0))

    def factor(step):  # nabiya.corpus_train.learning_rate_schedule, over the peak
        if step < warm:
            return step / max(warm, 1)
        progress = min(max((step - warm) / max(total_steps - warm, 1), 0.0), 1.0)
        floor = train.final_learning_rate
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor), params


# --- the benchmark -------------------------------------------------------------------------------


def bench_preset(name, corpus, args, settings):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    from nabiya.corpus_checkpoint import token_parts
    from nabiya.corpus_config import corpus_preset
    from nabiya.corpus_models import make_corpus_model, parameter_count
    from nabiya.corpus_train import (
        _blocks,
        _score_chunks,
        _stack,
        batch_loss,
        initial_carry,
        make_batches,
        make_optimizer,
        prepare_data,
        train_block,
    )

    config = corpus_preset(name).replace(**settings)
    if args.steps is not None:
        config = config.replace(steps=args.steps)
    train = config.train
    data = prepare_data(config, corpus=corpus).tokens
    init_key, dropout_root = jax.random.split(jax.random.key(train.seed))  # as nabiya.train
    model = make_corpus_model(config.model, vocab_size=len(data.vocab), key=init_key,
                              token_parts=token_parts(data.vocab))  # fmt: skip
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = make_optimizer(train).init(params)
    carry = initial_carry(model, train.batch_size)
    device = args.torch_device
    twin = torch_twin(model, config.model).to(device)
    optimizer, scheduler, torch_params = torch_optimizer(twin, train, train.steps)
    torch_state = twin.initial_state(train.batch_size)
    ours, theirs = parameter_count(model), trained_parameters(twin)
    print(f"\n## {name}: {ours:,} parameters (nabiya) / {theirs:,} (PyTorch){'' if ours == theirs else '  MISMATCH'}; "
          f"batch {train.batch_size} × {train.length}; {train.steps} steps in blocks of {train.steps_per_block}",
          flush=True)  # fmt: skip

    batches = make_batches(config, data.train, data.vocab.is_scored)
    stacks = list(_blocks(batches, 0, train.steps, train.steps_per_block))

    kind = config.model.kind
    eager_loss = make_loss(twin, kind, compiled=False)
    compiled_loss = None if args.no_compile else make_loss(twin, kind, compiled=True)
    compile_error = None

    # The same loss at the same weights, without dropout: the twin is the same network.
    first = {key: value[0] for key, value in stacks[0].items()}
    jax_loss = float(batch_loss(params, static, {k: jnp.asarray(v) for k, v in first.items()}, carry, None)[0])
    twin.eval()
    with torch.no_grad():
        torch_loss = float(eager_loss(torch_batch(first, device=device), twin.initial_state(train.batch_size))[0])
    twin.train()
    print(f"first batch, no dropout, initial weights: loss {jax_loss:.6f} (nabiya) / {torch_loss:.6f} (PyTorch), "
          f"difference {abs(jax_loss - torch_loss):.1e}", flush=True)  # fmt: skip

    def torch_step(loss_function, batch, state):
        loss, state, _ = loss_function(batch, state)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(torch_params, train.clip_norm)
        optimizer.step()
        scheduler.step()
        return state

    times = {"nabiya": [], "eager": [], "compile": []}
    notes = {"nabiya": [], "eager": [], "compile": []}
    started_all = time.perf_counter()
    for index, stack in enumerate(stacks):
        done = min(train.steps_per_block, train.steps - index * train.steps_per_block)
        positions = int(np.asarray(stack["mask"][:done]).sum())
        started = time.perf_counter()
        params, opt_state, carry, metrics = train_block(params, opt_state, carry, stack,
                                                        index * train.steps_per_block, train.steps, dropout_root,
                                                        static, train)  # fmt: skip
        jax.block_until_ready(metrics)
        times["nabiya"].append(time.perf_counter() - started)
        notes["nabiya"].append(positions)

        # PyTorch: eager on even blocks, compiled on odd ones (eager only if compiling is off or failed).
        mode = "compile" if index % 2 == 1 and compiled_loss is not None and compile_error is None else "eager"
        steps = [torch_batch(stack, k, device) for k in range(done)]
        started = time.perf_counter()
        try:
            for batch in steps:
                torch_state = torch_step(compiled_loss if mode == "compile" else eager_loss, batch, torch_state)
            if device != "cpu":
                torch.cuda.synchronize()
        except Exception as error:  # noqa: BLE001 - report why torch.compile fails, carry on eager
            compile_error = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
            print(f"torch.compile failed at block {index}: {compile_error}", flush=True)
            continue
        times[mode].append(time.perf_counter() - started)
        notes[mode].append(positions)
        if args.verbose or index < 3 or index % 5 == 4:
            print(f"block {index + 1}/{len(stacks)}: nabiya {times['nabiya'][-1]:.2f} s, PyTorch {mode} "
                  f"{times[mode][-1]:.2f} s, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip

    def rate(mode):  # median notes/s, the first block (compilation, warm-up) left out
        pairs = list(zip(notes[mode], times[mode]))[1:]
        return statistics.median(n / t for n, t in pairs) if pairs else None, len(pairs), times[mode][:1]

    rates = {mode: rate(mode) for mode in times}
    print(f"training: {time.perf_counter() - started_all:.0f} s in all", flush=True)

    # Quality: validation and test NLL per scored note, state carried through the tunes.
    def nabiya_nll(sequences):
        stack = {k: jnp.asarray(v) for k, v in
                 _stack(list(make_batches(config, sequences, data.vocab.is_scored, shuffle=False).epoch(0))).items()}  # fmt: skip
        total, count = _score_chunks(eqx.combine(params, static), stack, initial_carry(model, train.batch_size))
        return float(total) / max(float(count), 1.0)

    def torch_nll(sequences):
        twin.eval()
        total, count, state = 0.0, 0, twin.initial_state(train.batch_size)
        with torch.no_grad():
            for batch in make_batches(config, sequences, data.vocab.is_scored, shuffle=False).epoch(0):
                arrays = torch_batch({k: getattr(batch, k) for k in ("inputs", "targets", "mask", "score_mask",
                                                                     "resets")}, device=device)  # fmt: skip
                _, state, nll_sum = eager_loss(arrays, state)
                total += float(nll_sum)
                count += int(arrays["score_mask"].sum())
        twin.train()
        return total / max(count, 1)

    quality = {"nabiya": (nabiya_nll(data.valid), nabiya_nll(data.test)),
               "PyTorch": (torch_nll(data.valid), torch_nll(data.test))}  # fmt: skip
    return {"name": name, "config": config, "parameters": (ours, theirs), "rates": rates, "quality": quality,
            "first_loss": (jax_loss, torch_loss), "compile_error": compile_error}  # fmt: skip


def breakdown(name, corpus, args, settings) -> None:
    """Where a step's time goes: the loss alone, with its gradient, and the whole step, wall and CPU seconds."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import torch

    from nabiya.corpus_checkpoint import token_parts
    from nabiya.corpus_config import corpus_preset
    from nabiya.corpus_models import make_corpus_model
    from nabiya.corpus_train import (
        _blocks,
        batch_loss,
        initial_carry,
        make_batches,
        make_optimizer,
        prepare_data,
        train_block,
    )

    config = corpus_preset(name).replace(**settings)
    train = config.train
    data = prepare_data(config, corpus=corpus).tokens
    model = make_corpus_model(config.model, vocab_size=len(data.vocab), key=jax.random.key(0),
                              token_parts=token_parts(data.vocab))  # fmt: skip
    params, static = eqx.partition(model, eqx.is_inexact_array)
    carry, key = initial_carry(model, train.batch_size), jax.random.key(1)
    stack = next(iter(_blocks(make_batches(config, data.train, data.vocab.is_scored), 0, train.steps_per_block,
                              train.steps_per_block)))  # fmt: skip
    batch = {k: jnp.asarray(v[0]) for k, v in stack.items()}
    loss = eqx.filter_jit(lambda p, b, c: batch_loss(p, static, b, c, key)[0])
    grad = eqx.filter_jit(lambda p, b, c: jax.value_and_grad(batch_loss, has_aux=True)(p, static, b, c, key))
    opt_state = make_optimizer(train).init(params)
    twin = torch_twin(model, config.model)
    optimizer, scheduler, torch_params = torch_optimizer(twin, train, 1000)
    torch_loss = make_loss(twin, config.model.kind, compiled=False)
    tb = torch_batch({k: v[0] for k, v in stack.items()})

    def torch_forward():
        torch_loss(tb, twin.initial_state(train.batch_size))[0]

    def torch_backward():
        torch_loss(tb, twin.initial_state(train.batch_size))[0].backward()

    def torch_whole():
        value = torch_loss(tb, twin.initial_state(train.batch_size))[0]
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(torch_params, train.clip_norm)
        optimizer.step()
        scheduler.step()

    def nabiya_block():
        jax.block_until_ready(train_block(params, opt_state, carry, stack, 0, 1000, key, static, train))

    cases = [("nabiya: loss", lambda: jax.block_until_ready(loss(params, batch, carry)), 1),
             ("nabiya: loss + gradient", lambda: jax.block_until_ready(grad(params, batch, carry)), 1),
             (f"nabiya: whole step (a block of {train.steps_per_block})", nabiya_block, train.steps_per_block),
             ("PyTorch eager: loss", torch_forward, 1), ("PyTorch eager: loss + gradient", torch_backward, 1),
             ("PyTorch eager: whole step", torch_whole, 1)]  # fmt: skip
    print(f"\n{name}, one batch of {train.batch_size} × {train.length}, seconds per step (median of "
          f"{args.repeats}; the CPU time counts every thread):\n\n| what | wall | CPU |\n|---|---:|---:|")  # fmt: skip
    for label, run, steps in cases:
        run()  # compile, warm up
        walls, cpus = [], []
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            walls.append((time.perf_counter() - wall) / steps)
            cpus.append((time.process_time() - cpu) / steps)
        print(f"| {label} | {statistics.median(walls):.3f} | {statistics.median(cpus):.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", action="append", help="folk-lstm and/or folk-transformer (default: both)")
    parser.add_argument("--corpus", nargs="*", default=None, help="corpus spec (default: the default corpus)")
    parser.add_argument("--steps", type=int, default=200, help="training steps of each (default %(default)s)")
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count(),
                        help="torch.set_num_threads (default: the cores, %(default)s)")  # fmt: skip
    parser.add_argument("--torch-device", default=None, help="cpu or cuda (default: cuda when PyTorch sees a GPU)")
    parser.add_argument("--no-compile", action="store_true", help="PyTorch eager only")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="config settings, e.g. size=128")
    parser.add_argument("--verbose", action="store_true", help="a line per block")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead: where one step's time goes (loss, gradient, whole step), nabiya and PyTorch eager")
    parser.add_argument("--repeats", type=int, default=5, help="timings per case of --breakdown")
    args = parser.parse_args()

    warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
    # OpenMP threads that sleep while they wait: with the default (spinning), 2 PyTorch threads on 2 cores
    # shared with other work took 10-38 s a folk-lstm step instead of 1.5 s (measured at load average 10).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import jax
    import torch

    import nabiya

    torch.set_num_threads(args.torch_threads)
    args.torch_device = args.torch_device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    line = describe()
    print(f"machine: {line}, load average {os.getloadavg()[0]:.1f}; jax {jax.__version__}, torch {torch.__version__} "
          f"with {torch.get_num_threads()} threads (OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}); JAX on "
          f"{jax.devices()[0].device_kind}, PyTorch on {args.torch_device}", flush=True)  # fmt: skip
    corpus = nabiya.load_corpus(args.corpus)
    settings = {name: _value(value) for name, value in (item.split("=", 1) for item in args.set)}
    if args.breakdown:
        for name in args.preset or ["folk-lstm", "folk-transformer"]:
            breakdown(name, corpus, args, settings)
        return
    results = [bench_preset(name, corpus, args, settings) for name in args.preset or ["folk-lstm", "folk-transformer"]]

    def show(value):
        return "—" if value is None else f"{value:,.0f}"

    print(f"\n{line}; jax {jax.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"load average at the end {os.getloadavg()[0]:.1f}")  # fmt: skip
    print("\n| preset | parameters | B × T | nabiya notes/s | PyTorch eager | torch.compile | nabiya / eager | "
          "nabiya / compile |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for result in results:
        rates, train = result["rates"], result["config"].train
        ours = rates["nabiya"][0]
        eager, compiled = rates["eager"][0], rates["compile"][0]
        compiled_text = show(compiled) if result["compile_error"] is None else f"failed ({result['compile_error'][:60]})"
        print(f"| {result['name']} | {result['parameters'][0]:,} | {train.batch_size} × {train.length} | "
              f"{show(ours)} | {show(eager)} | {compiled_text} | "
              f"{ours / eager:.2f}× | {'—' if not compiled else f'{ours / compiled:.2f}×'} |")  # fmt: skip
    print("\nblocks timed (after one of warm-up each), and the warm-up block's seconds (compilation in):")
    for result in results:
        print(f"- {result['name']}: " + ", ".join(f"{kind} {n} (first {first[0]:.1f} s)" if first else f"{kind} 0"
                                                  for kind, (_, n, first) in result["rates"].items()))  # fmt: skip
    print("\n| preset | steps | validation NLL, nabiya | PyTorch | test NLL, nabiya | PyTorch |")
    print("|---|---:|---:|---:|---:|---:|")
    for result in results:
        (ours_valid, ours_test), (their_valid, their_test) = result["quality"]["nabiya"], result["quality"]["PyTorch"]
        print(f"| {result['name']} | {result['config'].train.steps} | {ours_valid:.3f} | {their_valid:.3f} | "
              f"{ours_test:.3f} | {their_test:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
