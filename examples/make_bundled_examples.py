"""Rebuild the example photographs bundled in ``src/tttkit/data/examples``.

They are center-cropped, 256×256 copies of OpenCV sample images (Apache-2.0 AND BSD-3-Clause)
from the shared development photos: ``examples/`` is the default pool of the ``random-image``
filler; ``demo/`` holds the README's quick-start photo and a simulated user mask. The demo photo
(vtest frame 0) is one of the photos held out from pretraining, and it is not in the filler pool,
so the filler can never paste the photo's own content into its holes.

    python examples/make_bundled_examples.py ../shared/photos/dev
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from tttkit.io import read_image, write_image
from tttkit_strategies.fillers import center_crop_resize
from tttkit_strategies.finetune_masks import FreeFormMasks

PHOTOS = ["building", "fruits", "home", "leuvenA", "aero1", "orange"]
DEMO = "opencv_vtest_000.jpg"
OUT = Path(__file__).resolve().parents[1] / "src" / "tttkit" / "data" / "examples"


def main(source: Path) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        image = center_crop_resize(read_image(source / f"opencv_{name}.jpg"), 256, 256)
        write_image(OUT / f"{name}.jpg", image)
    demo = OUT.parent / "demo"
    demo.mkdir(exist_ok=True)
    write_image(demo / "street.jpg", center_crop_resize(read_image(source / DEMO), 256, 256))
    # A user mask of about 20% free-form strokes for the quick start, reproducible from seed 0.
    empty = torch.zeros(1, 1, 256, 256)
    mask = FreeFormMasks(alpha=0.18, beta=0.22)(empty, empty, torch.Generator().manual_seed(0))
    write_image(demo / "street_mask.png", mask[0])


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/photos/dev"))
