"""Solutions to the exercises of notebook 05 (training).

Each function is one possible answer; ``vit_tutorial.exercises.check_<name>`` accepts it.
"""
import math

import torch
import torch.nn.functional as F


def my_warmup_cosine_lr(step, total_steps, warmup_steps, base_lr, min_lr):
    """Exercise 1: linear warm-up to base_lr over warmup_steps, then half a cosine down to min_lr."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def my_accuracy(logits, labels):
    """Exercise 2: the fraction of examples whose largest logit is at the true label."""
    return (logits.argmax(dim=-1) == labels).float().mean().item()


def my_train_step(model, optimizer, images, labels):
    """Exercise 3: one step: clear the old gradients, forward, loss on the raw logits, backward, update."""
    optimizer.zero_grad()
    loss = F.cross_entropy(model(images), labels)  # cross_entropy applies the log-softmax itself
    loss.backward()
    optimizer.step()
    return loss.item()


def my_evaluate(model, images, labels):
    """Exercise 4: accuracy with dropout off and no gradients, the model given back in the mode it came in."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(images)
    model.train(was_training)
    return my_accuracy(logits, labels)
