"""The evaluation's fixed settings, in a module that imports nothing heavy: the command line
reads them to build its options (``tttkit --help`` must not load torch)."""

from __future__ import annotations

#: Mean fraction of an image the simulated user masks hide: the thesis's 28.86 % (§4.1), rounded.
DEFAULT_COVERAGE = 0.29
#: Per-image coverage targets are uniform in ``coverage ± spread``.
DEFAULT_SPREAD = 0.10
#: Environment variable naming an Inception-v3 weights file for FID.
ENV_INCEPTION = "TTTKIT_INCEPTION_WEIGHTS"
#: ``--fid`` choices.
FID_MODES = ("auto", "inception", "vgg", "off")
#: Images per grid when none are chosen: this many best and this many worst.
DEFAULT_GRID_COUNT = 2
#: Environment variable naming the VGG16 trunk file of LPIPS.
ENV_LPIPS = "TTTKIT_LPIPS_WEIGHTS"
#: ``--lpips`` choices.
LPIPS_MODES = ("auto", "standard", "off")
