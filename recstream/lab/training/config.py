"""Hyper-parameters of training, without torch: ``recstream train --help`` reads its defaults here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from encoders.policy import UserStatePolicy


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Hyper-parameters of :func:`train_fusion` (defaults: the values tuned on validation).

    Attributes:
        until_frac: Fraction of ratings (time order) before the cut; only those are used.
        epochs: Passes over the training clicks.
        seed: Seed of torch and numpy.
        batch_size: Training clicks per step.
        lr: AdamW learning rate (cosine-decayed to 5 % over the run).
        weight_decay: AdamW weight decay.
        window: Most recent events replayed into the user state per example.
        out_dim: Item-embedding width.
        hidden_dim: Width of the modality projections.
        dropout: Dropout inside the projections.
        id_dropout: Probability of hiding an item's id embedding in a step, so the content
            path learns to stand in for it (cold items).
        init_temperature: Initial softmax temperature (learned).
        image_dim: Width of the image input (the stream's image encoder; the built-in
            descriptor gives 256). MovieLens has no images, so this only sizes the model.
        policy: Decay and event weights of the user state.
        softmax_over: ``"catalogue"``: every item of the dataset's catalogue is a candidate
            in the loss (items nobody touched before the cut are negatives, so the model learns
            that unknown items are rarely clicked); ``"warm"``: only items with interactions
            before the cut.
        threads: ``torch.set_num_threads`` value; ``None`` leaves it alone.
    """

    until_frac: float = 0.8
    epochs: int = 8
    seed: int = 0
    batch_size: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-4
    window: int = 64
    out_dim: int = 64
    hidden_dim: int = 128
    dropout: float = 0.1
    id_dropout: float = 0.2
    init_temperature: float = 0.05
    image_dim: int = 256
    policy: UserStatePolicy = field(default_factory=UserStatePolicy)
    softmax_over: Literal["catalogue", "warm"] = "catalogue"
    threads: int | None = 2
