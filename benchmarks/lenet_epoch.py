"""A steady-state LeNet training epoch: gdjax against PyTorch eager, same run.

Run by hand (not a test); needs PyTorch (``pip install torch==2.13.0``, or
``./setup.sh bench``):

    python benchmarks/lenet_epoch.py                  # one model, CPU, full epoch
    python benchmarks/lenet_epoch.py --population 5   # also 5 models vmapped vs one by one

Both sides train the chapter's LeNet (ReLU, max pooling, Xavier) on the real
Fashion-MNIST, batch 256, SGD at lr 0.3, over the same number of minibatches
(235: the last one partial), with the training set already in memory, and
then evaluate the 10,000 test images. gdjax runs its own training loop
(``gdjax.train.train``: a Python loop over a jitted step); PyTorch runs the
textbook's loop written well (indexing tensors in memory, no DataLoader
workers), with ``torch.set_num_threads`` equal to the cores XLA uses. The
first epoch of each is a warm-up (gdjax's compile time is reported
separately); the median of the next ``--epochs`` epochs is compared.
Prints seconds per epoch (train steps, then eval), and the ratio
gdjax / PyTorch: below 1 means gdjax is faster.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def torch_epochs(ds, epochs: int, threads: int, device: str, batch: int = 256) -> list[dict]:
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
            loss = loss_fn(net(xb), yb)
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
                int((net(xt[i : i + 1000]).argmax(1) == yt[i : i + 1000]).sum())
                for i in range(0, len(xt), 1000)
            )
        sync()
        t2 = time.perf_counter()
        out.append(
            {"train": t1 - t0, "eval": t2 - t1, "loss": train_loss, "test_acc": correct / len(xt)}
        )
    return out


def gdjax_epochs(ds, epochs: int, schedules: list[str]) -> tuple[list[dict], float]:
    from gdjax import train
    from gdjax.lessons.chapter import chapter_schedule

    configs = [
        train.TrainConfig(schedule=chapter_schedule(s), epochs=epochs, seed=k)
        for k, s in enumerate(schedules)
    ]
    result = train.train(configs if len(configs) > 1 else configs[0], ds, progress=False)
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
    args = parser.parse_args()

    import jax

    from gdjax.data import fashion_mnist

    ds = fashion_mnist()
    n = args.epochs + 1
    print(f"jax {jax.__version__} on {jax.default_backend()} ({jax.device_count()} devices)")

    g_rows, compile_s = gdjax_epochs(ds, n, ["constant"])
    t_rows = torch_epochs(ds, n, args.threads, args.device)
    g = statistics.median(r["seconds"] for r in g_rows[1:])  # train steps + eval
    t_train = statistics.median(r["train"] for r in t_rows[1:])
    t_eval = statistics.median(r["eval"] for r in t_rows[1:])
    t = t_train + t_eval
    print(
        f"gdjax   : {g:7.2f} s/epoch (train + eval of 10k, compile {compile_s:.1f} s apart); "
        f"final loss {g_rows[-1]['loss']:.3f}, test acc {g_rows[-1]['test_acc']:.3f}"
    )
    print(
        f"PyTorch : {t:7.2f} s/epoch (train {t_train:.2f} + eval {t_eval:.2f}; "
        f"{args.threads} threads, {args.device}); final loss {t_rows[-1]['loss']:.3f}, "
        f"test acc {t_rows[-1]['test_acc']:.3f}"
    )
    print(f"ratio gdjax / PyTorch = {g / t:.2f} (below 1: gdjax faster)")

    if args.population:
        k = args.population
        names = ["constant", "square_root", "multi_factor", "cosine", "cosine:warmup_steps=5"]
        scheds = (names * k)[:k]
        p_rows, p_compile = gdjax_epochs(ds, n, scheds)
        p = statistics.median(r["seconds"] for r in p_rows[1:])
        print(
            f"population of {k}: {p:7.2f} s/epoch for all (compile {p_compile:.1f} s); "
            f"{k} single models one after another: {k * g:7.2f} s; "
            f"ratio population / sequential = {p / (k * g):.2f}"
        )


if __name__ == "__main__":
    main()
