"""Where a CIFAR-10 training step spends its time on a GPU: milliseconds per step, then a profile.

    python benchmarks/gpu_step_profile.py     # needs a CUDA GPU; prints, writes nothing

One eager step of the ``cifar10`` preset at batch 500 in bf16, the data already on the GPU, timed
(after 5 warm-up steps) as: ``train_step`` alone (kind 0), with the crop-and-flip augmentation on the
GPU (1), and with TrivialAugment too (2); then ``torch.profiler`` over 10 steps of kind 1, sorted by
the CPU's time and by the GPU's. If the CPU total is well above the GPU total, the GPU is waiting
for Python and kernel launches, not for arithmetic. Its output on an H200 is
``benchmarks/results/cifar10-step-profile-h200.txt``.
"""
import time, torch, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vit_tutorial.vit import ViT, preset_kwargs
from vit_tutorial.optim import adamw, param_groups
from vit_tutorial.step import train_step
from vit_tutorial.data import augment_batch, model_input
from vit_tutorial.augment import trivial_augment
dev = torch.device('cuda')
m = ViT(**preset_kwargs('cifar10')).to(dev)
opt = adamw(param_groups(m, 0.05), 1e-3, dev)
x = torch.randint(0, 256, (500, 3, 32, 32), dtype=torch.uint8, device=dev); y = torch.randint(0, 10, (500,), device=dev)
g = torch.Generator().manual_seed(0)
def run(kind, n=30):
    for i in range(n + 5):
        if i == 5: torch.cuda.synchronize(); t = time.perf_counter()
        xb = x
        if kind >= 1: xb = augment_batch(xb, 'crop_flip', g)
        if kind >= 2: xb = trivial_augment(xb, g)
        train_step(m, opt, model_input(xb, (0.5,)*3, (0.25,)*3), y, amp_dtype=torch.bfloat16, grad_clip=1.0, label_smoothing=0.1)
    torch.cuda.synchronize(); return (time.perf_counter() - t) / n * 1000
for k in (0, 1, 2, 0): print('kind', k, f'{run(k):.2f} ms/step', flush=True)
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
    run(1, 10)
print(p.key_averages().table(sort_by='self_cpu_time_total', row_limit=18))
print(p.key_averages().table(sort_by='self_cuda_time_total', row_limit=10))
