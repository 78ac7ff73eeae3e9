"""Every experiment of the thesis's chapter 4 as a named strategy.

Each preset derives from another and states only what it changes, so ``tttkit strategies show
NAME`` can print the difference. Section numbers (§) point into the thesis. Where the thesis is
silent, the choice is stated in the description.
"""

from __future__ import annotations

from collections.abc import Callable

from tttkit.config import AugmentSpec, AugmentStep, Component, OptimSpec, StrategySpec
from tttkit.plugins import hookimpl


def step(name: str, p: float, **params: object) -> AugmentStep:
    """A pipeline step applying one augmentation with probability ``p``."""
    return AugmentStep(ops=(Component(name, params),), p=p)


def only(name: str, p: float, **params: object) -> AugmentSpec:
    """A pipeline of a single augmentation (the §4.3 experiments)."""
    return AugmentSpec(p=1.0, steps=(step(name, p, **params),))


# -- §4.1 baseline --------------------------------------------------------------------------------

BASELINE = StrategySpec(
    name="baseline",
    description="§4.1: free-form masks (15–25%), random-pixel filler, no augmentation, "
    "lr 1e-6 halved every 50 steps, 150 steps of 4 views, foreground losses",
    finetune_mask=Component("free-form", {"alpha": 0.15, "beta": 0.25}),
    filler=Component("random-pixels"),
    augment=AugmentSpec(p=0.0, steps=()),
    freeze=Component("none"),
    optim=OptimSpec(name="adam", lr=1e-6, betas=(0.0, 0.9), lr_milestones=(50, 100)),
    steps=150,
    batch_size=4,
    eval_every=5,
)

# -- §4.2 finetuning masks ------------------------------------------------------------------------

MASK_ABLATIONS = [
    BASELINE.derive(
        "masks-augmented",
        "§4.2.1: finetuning masks are the user's mask flipped, rotated and translated",
        {"finetune_mask": Component("augmented-user-mask")},
    ),
    BASELINE.derive(
        "masks-full-image",
        "§4.2.2: 16 roughened tiles shared out so each batch hides the whole image",
        {"finetune_mask": Component("full-image", {"grid": 4})},
    ),
    BASELINE.derive(
        "masks-larger",
        "§4.2.3: finetuning masks cover 23–30% of the image",
        {"finetune_mask.params.alpha": 0.23, "finetune_mask.params.beta": 0.30},
    ),
]

# -- §4.3 augmentations, one at a time ------------------------------------------------------------

ANGLES_90 = (0, 90, 180, 270)
ANGLES_30 = tuple(range(30, 360, 30))

AUGMENT_ABLATIONS = [
    BASELINE.derive("aug-crop", "§4.3.1: random 128² crop (p 0.6)", {"augment": only("crop", 0.6)}),
    BASELINE.derive(
        "aug-brightness",
        "§4.3.1: random brightness ×U(0.7, 1.3) (p 0.5)",
        {"augment": only("brightness", 0.5)},
    ),
    BASELINE.derive(
        "aug-blur",
        "§4.3.1: random Gaussian blur, kernel 5–8, σ 3–6 (p 0.5)",
        {"augment": only("gaussian-blur", 0.5)},
    ),
    BASELINE.derive(
        "aug-noise",
        "§4.3.1: Gaussian noise σ 0.2 (the thesis gives no probability: always applied)",
        {"augment": only("gaussian-noise", 1.0)},
    ),
    BASELINE.derive(
        "aug-lr-flip", "§4.3.2: left-right flip (p 0.5)", {"augment": only("hflip", 0.5)}
    ),
    BASELINE.derive(
        "aug-translate",
        "§4.3.2: translation ±12 px, vacated pixels keep the original (p 1)",
        {"augment": only("translate", 1.0)},
    ),
    BASELINE.derive(
        "aug-rotate-90",
        "§4.3.2: rotation by 0/90/180/270° (p 1)",
        {"augment": only("rotate", 1.0, angles=ANGLES_90)},
    ),
    BASELINE.derive(
        "aug-rotate-30",
        "§4.3.2: rotation by 30…330° (p 0.5), empty pixels 0",
        {"augment": only("rotate", 0.5, angles=ANGLES_30)},
    ),
    BASELINE.derive(
        "aug-shear",
        "§4.3.2: random shear (p 0.55), empty pixels 0",
        {"augment": only("shear", 0.55)},
    ),
]
AUGMENT_ABLATIONS += [
    parent.derive(
        f"{parent.name}-random-fill",
        f"{parent.name} with empty pixels filled with random values (§4.3.2, the worse variant)",
        {"augment.empty_fill": "random"},
    )
    for parent in AUGMENT_ABLATIONS
    if parent.name in ("aug-rotate-30", "aug-shear")
]

# -- §4.4 user-hole fillers -----------------------------------------------------------------------

FILL_ABLATIONS = [
    BASELINE.derive(
        "fill-black", "§4.4: fill user holes with black", {"filler": Component("black")}
    ),
    BASELINE.derive(
        "fill-random-image",
        "§4.4: fill user holes with a random other image (set filler.params.folder)",
        {"filler": Component("random-image")},
    ),
    BASELINE.derive(
        "fill-coarse",
        "§4.4: fill user holes with the current network's own completion",
        {"filler": Component("coarse")},
    ),
]

# -- §4.5 training parameters ---------------------------------------------------------------------

TRAINING_ABLATIONS = [
    BASELINE.derive("lr-2e-6", "§4.5.1: initial lr 2e-6", {"optim.lr": 2e-6}),
    BASELINE.derive("lr-3e-6", "§4.5.1: initial lr 3e-6", {"optim.lr": 3e-6}),
    BASELINE.derive("lr-1e-7", "§4.5.1: initial lr 1e-7", {"optim.lr": 1e-7}),
    BASELINE.derive(
        "generator-only",
        "§4.5.2: the discriminator is not updated",
        {"freeze": Component("generator-only")},
    ),
    BASELINE.derive(
        "freeze-early",
        "§4.5.3: train only the decoder and discriminator convs 3–5 (7,574,817 parameters)",
        {"freeze": Component("freeze-early")},
    ),
    BASELINE.derive(
        "background-loss", "§4.5.4: losses on the background too", {"losses.background": True}
    ),
]

# -- §4.6 combinations ----------------------------------------------------------------------------

# The thesis does not say which rotation set combination A uses; we take §4.3.2's first one.
AUGMENT_A = AugmentSpec(
    p=0.6,
    steps=(
        step("gaussian-blur", 0.3, kernel_size=5, sigma=2.0),
        step("crop", 0.4),
        AugmentStep(ops=(Component("hflip"), Component("vflip")), p=0.5, then_other_p=0.4),
        AugmentStep(
            ops=(Component("shear"), Component("rotate", {"angles": ANGLES_90})),
            p=0.4,
        ),
    ),
)

AUGMENT_D = AugmentSpec(
    p=0.65,
    steps=(
        step("brightness", 0.5),
        step("gaussian-blur", 0.4),
        step("crop", 0.4),
        step("hflip", 0.5),
        step("shear", 0.4),
    ),
)

# F: translation (p 0.8) whenever crop was not applied.
AUGMENT_F = AugmentSpec(
    p=0.65,
    steps=(
        *AUGMENT_D.steps[:3],
        AugmentStep(ops=(Component("translate"),), p=0.8, unless=("crop",)),
        *AUGMENT_D.steps[3:],
    ),
)

COMBO_A = BASELINE.derive(
    "combo-a",
    "§4.6.1 A: random-image filler; augment p 0.6: blur k5 σ2 0.3, crop 0.4, one flip 0.5 "
    "(then the other 0.4), shear or rotation 0.4",
    {"filler": Component("random-image"), "augment": AUGMENT_A},
)
COMBO_B = COMBO_A.derive("combo-b", "§4.6.1 B: A with a constant lr", {"optim.lr_milestones": ()})
COMBO_C = COMBO_B.derive(
    "combo-c",
    "§4.6.1 C: B freezing encoder, residual blocks 1–4 and discriminator convs 1–3",
    {"freeze": Component("freeze-partial")},
)
COMBO_D = COMBO_A.derive(
    "combo-d",
    "§4.6.2 D: 300 steps, lr halved at 150; augment p 0.65: brightness 0.5, blur 0.4, "
    "crop 0.4, lr-flip 0.5, shear 0.4",
    {"steps": 300, "optim.lr_milestones": (150,), "augment": AUGMENT_D},
)
COMBO_E = COMBO_D.derive("combo-e", "§4.6.2 E: D with A's augmentations", {"augment": AUGMENT_A})
COMBO_F = COMBO_D.derive(
    "combo-f",
    "§4.6.2 F: D with translation (p 0.8) when crop is not applied",
    {"augment": AUGMENT_F},
)
COMBO_G = COMBO_F.derive(
    "combo-g",
    "§4.6.2 G: F, but the finetuning mask is drawn after augmentation, away from empty pixels",
    {"augment.mask_follows_geometry": False},
)
COMBO_H = COMBO_G.derive(
    "combo-h", "§4.6.3 H: G without translation", {"augment.steps": AUGMENT_D.steps}
)
COMBO_I = COMBO_H.derive(
    "combo-i",
    "§4.6.3 I: H with a constant lr of 2e-6 for 150 steps",
    {"optim.lr": 2e-6, "optim.lr_milestones": (), "steps": 150},
)
COMBO_J = COMBO_I.derive("combo-j", "§4.6.3 J: I with lr 3e-6", {"optim.lr": 3e-6})

OPTIMAL = COMBO_I.derive("optimal", "§4.6.4: the thesis's optimal settings (combination I)")
ZERO_SHOT = OPTIMAL.derive(
    "zero-shot",
    "§4.6.5: optimal settings from random initialisation with lr 5e-6",
    {"reinitialize": True, "optim.lr": 5e-6},
)

ZERO_SHOT_SMALL = ZERO_SHOT.derive(
    "zero-shot-small",
    "§4.6.5: zero-shot with the small architecture (2 residual blocks, one downsampling less)",
    {"backbone": "attention-net-small"},
)

COMBINATIONS = [
    COMBO_A, COMBO_B, COMBO_C, COMBO_D, COMBO_E, COMBO_F, COMBO_G, COMBO_H, COMBO_I, COMBO_J,
    OPTIMAL, ZERO_SHOT, ZERO_SHOT_SMALL,
]  # fmt: skip

ALL_PRESETS: list[StrategySpec] = [
    BASELINE,
    *MASK_ABLATIONS,
    *AUGMENT_ABLATIONS,
    *FILL_ABLATIONS,
    *TRAINING_ABLATIONS,
    *COMBINATIONS,
]


@hookimpl
def tttkit_register_strategies(register: Callable[[StrategySpec], None]) -> None:
    """Register the thesis's experiments."""
    for spec in ALL_PRESETS:
        register(spec)
