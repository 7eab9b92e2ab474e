"""A steady-state LeNet training epoch: gdjax against PyTorch eager, same run.

Run by hand (not a test); needs PyTorch (``pip install torch==2.13.0``, or
``./setup.sh bench``):

    python benchmarks/lenet_epoch.py                  # one model, CPU, full epoch
    python benchmarks/lenet_epoch.py --population 5   # also 5 models vmapped vs one by one
    python benchmarks/lenet_epoch.py --device cuda --torch-compile default reduce-overhead \
        --population 8                                # a GPU: PyTorch's best against gdjax's

Both sides train the chapter's LeNet (ReLU, max pooling, Xavier) on the real
Fashion-MNIST, batch 256, SGD at lr 0.3, over the same number of minibatches
(235: the last one partial), with the training set already in memory, and
then evaluate the 10,000 test images. gdjax runs its own training loop
(``gdjax.train.train``), both ways: a Python loop over a jitted step, and
each epoch as one ``lax.scan`` program (``scan_epochs``). PyTorch runs the
textbook's loop written well (indexing tensors in memory, no DataLoader
workers), with ``torch.set_num_threads`` equal to the cores XLA uses. The
first epoch of each is a warm-up (gdjax's compile time is reported
separately); the median of the next ``--epochs`` epochs is compared.
``--torch-compile MODE ...`` also times PyTorch with ``torch.compile(net,
mode=MODE)`` (``default``, ``reduce-overhead``: CUDA graphs, ``max-autotune``),
the real peer on a GPU. Prints seconds per epoch (train steps, then eval),
and the ratio of gdjax's best to PyTorch's best: below 1 means gdjax is
faster; with ``--population K``, seconds per model of K models trained
together against PyTorch's best single model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def torch_epochs(
    ds, epochs: int, threads: int, device: str, batch: int = 256, mode: str | None = None
) -> list[dict]:
    """PyTorch's epochs; ``mode``: train through ``torch.compile(mode=mode)``."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )
    for m in net:
        if isinstance(m, nn.Linear | nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
    net = net.to(device)
    assert sum(p.numel() for p in net.parameters()) == 61_706
    model = net if mode is None else torch.compile(net, mode=mode)
    x = torch.from_numpy(ds.train_images).to(device).float().div_(255).unsqueeze(1)
    y = torch.from_numpy(ds.train_labels.astype(np.int64)).to(device)
    xt = torch.from_numpy(ds.test_images).to(device).float().div_(255).unsqueeze(1)
    yt = torch.from_numpy(ds.test_labels.astype(np.int64)).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.3)
    loss_fn = nn.CrossEntropyLoss()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    out = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        net.train()
        perm = torch.randperm(len(x), device=device)
        loss_sum = torch.zeros((), device=device)
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss * len(idx)
        train_loss = float(loss_sum) / len(x)
        sync()
        t1 = time.perf_counter()
        net.eval()
        with torch.no_grad():
            correct = sum(
                int((model(xt[i : i + 1000]).argmax(1) == yt[i : i + 1000]).sum())
                for i in range(0, len(xt), 1000)
            )
        sync()
        t2 = time.perf_counter()
        out.append(
            {"train": t1 - t0, "eval": t2 - t1, "loss": train_loss, "test_acc": correct / len(xt)}
        )
    return out


def gdjax_epochs(
    ds, epochs: int, schedules: list[str], scan: bool = False
) -> tuple[list[dict], float]:
    from gdjax import train
    from gdjax.lessons.chapter import chapter_schedule

    configs = [
        train.TrainConfig(schedule=chapter_schedule(s), epochs=epochs, seed=k)
        for k, s in enumerate(schedules)
    ]
    result = train.train(
        configs if len(configs) > 1 else configs[0], ds, progress=False, scan_epochs=scan
    )
    rows = [
        {"seconds": e["seconds"], "loss": e["train_loss"], "test_acc": e["test_acc"]}
        for e in result.epochs[0]
    ]
    return rows, result.compile_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after the warm-up")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch threads")
    parser.add_argument("--population", type=int, default=0, help="also K models vmapped")
    parser.add_argument("--device", default="cpu", help="PyTorch device: cpu or cuda")
    parser.add_argument(
        "--torch-compile",
        nargs="*",
        default=[],
        metavar="MODE",
        help="also PyTorch under torch.compile with these modes (default, reduce-overhead, "
        "max-autotune)",
    )
    args = parser.parse_args()

    import jax

    from gdjax.data import fashion_mnist

    ds = fashion_mnist()
    n = args.epochs + 1
    print(f"jax {jax.__version__} on {jax.default_backend()} ({jax.device_count()} devices)")

    ours = {}
    for scan in (False, True):
        g_rows, compile_s = gdjax_epochs(ds, n, ["constant"], scan=scan)
        g = statistics.median(r["seconds"] for r in g_rows[1:])  # train steps + eval
        name = "gdjax, epoch under lax.scan" if scan else "gdjax, loop over the step"
        ours[name] = g
        print(
            f"{name:32s}: {g:7.2f} s/epoch (train + eval of 10k, compile {compile_s:.1f} s "
            f"apart); final loss {g_rows[-1]['loss']:.3f}, test acc {g_rows[-1]['test_acc']:.3f}"
        )
    theirs = {}
    for mode in [None, *args.torch_compile]:
        name = "PyTorch eager" if mode is None else f"PyTorch torch.compile({mode})"
        try:
            t_rows = torch_epochs(ds, n, args.threads, args.device, mode=mode)
        except Exception as err:  # a mode this machine cannot compile: say so, go on
            print(f"{name:32s}: failed ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
            continue
        t_train = statistics.median(r["train"] for r in t_rows[1:])
        t_eval = statistics.median(r["eval"] for r in t_rows[1:])
        theirs[name] = t_train + t_eval
        print(
            f"{name:32s}: {t_train + t_eval:7.2f} s/epoch (train {t_train:.2f} + eval "
            f"{t_eval:.2f}; {args.threads} threads, {args.device}); final loss "
            f"{t_rows[-1]['loss']:.3f}, test acc {t_rows[-1]['test_acc']:.3f}"
        )
    g_name, g = min(ours.items(), key=lambda kv: kv[1])
    t_name, t = min(theirs.items(), key=lambda kv: kv[1])
    print(f"ratio {g_name} / {t_name} = {g / t:.2f} (below 1: gdjax faster)")

    if args.population:
        k = args.population
        names = ["constant", "square_root", "multi_factor", "cosine", "cosine:warmup_steps=5"]
        scheds = (names * k)[:k]
        p_rows, p_compile = gdjax_epochs(ds, n, scheds, scan=g_name.endswith("scan"))
        p = statistics.median(r["seconds"] for r in p_rows[1:])
        print(
            f"population of {k} ({g_name}): {p:7.2f} s/epoch for all, {p / k:.2f} s per model "
            f"(compile {p_compile:.1f} s); {k} single models one after another: {k * g:7.2f} s; "
            f"ratio population / sequential = {p / (k * g):.2f}; per model against "
            f"{t_name}: {p / k / t:.2f}"
        )


if __name__ == "__main__":
    main()
