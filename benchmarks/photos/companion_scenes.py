"""Real multi-shot scenes for the companion benchmark (``benchmarks/companions.py``), taken
from Debian's ``opencv-doc`` package with ``apt-get download`` and never shipped.

    python benchmarks/photos/companion_scenes.py OUT_DIR

OpenCV's sample data holds pairs of real shots of one scene, made for stereo, optical flow and
feature matching, and a fixed-camera street video. Each scene below is a target and 1–2 other
shots in which the target's hidden content may be visible. Targets are shots the shipped
default was not pretrained on; some companions (and the video's background, through six of its
frames) were in its pretraining photos, which ``SCENES`` marks: the network may have seen the
scene, which helps the fills without companions as much as those with them.

Writes ``OUT_DIR/NAME.png`` for every shot, ``OUT_DIR/scenes.csv`` (``scene,target,
companions`` with companions ``;``-separated) and ``OUT_DIR/manifest.csv`` (file, package,
version, original, copyright, licence from the package's DEP-5 ``copyright`` file).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from debian_photos import download, licence_of  # noqa: E402

PACKAGE = "opencv-doc"
DATA = "usr/share/doc/opencv-doc/examples/data"
#: scene: (target, companions, what the shots are). ``vtest.avi@N`` is frame N of the video.
SCENES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "aero": ("aero3.jpg", ("aero1.jpg",), "aerial views from two positions (aero1 pretrained)"),
    "aloe": ("aloeR.jpg", ("aloeL.jpg",), "a stereo pair (aloeL pretrained)"),
    "basketball": (
        "basketball2.png",
        ("basketball1.png",),
        "two frames, people moving (basketball1 pretrained)",
    ),
    "graf": ("graf3.png", ("graf1.png",), "a wall seen from two angles (graf1 pretrained)"),
    "leuven": ("leuvenB.jpg", ("leuvenA.jpg",), "a street from two positions (leuvenA pretrained)"),
    "rubberwhale": ("rubberwhale2.png", ("rubberwhale1.png",), "two frames of toys moving"),
    "street-198": (
        "vtest.avi@198",
        ("vtest.avi@170", "vtest.avi@230"),
        "a fixed camera, passers-by moving (six other frames pretrained)",
    ),
    "street-462": ("vtest.avi@462", ("vtest.avi@430", "vtest.avi@500"), "as street-198"),
    "street-726": ("vtest.avi@726", ("vtest.avi@690", "vtest.avi@760"), "as street-198"),
}


def shot_name(source: str) -> str:
    """The file name a shot is written under: ``aero3.png``, ``vtest-0198.png``."""
    if "@" in source:
        video, frame = source.split("@")
        return f"{Path(video).stem}-{int(frame):04d}.png"
    return f"{Path(source).stem}.png"


def read_shot(root: Path, source: str):  # type: ignore[no-untyped-def]
    """The BGR pixels of a file or a video frame in the extracted package."""
    import cv2

    if "@" not in source:
        image = cv2.imread(str(root / DATA / source), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"{PACKAGE}: cannot read {source}")
        return image
    video, frame = source.split("@")
    capture = cv2.VideoCapture(str(root / DATA / video))
    capture.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
    found, image = capture.read()
    capture.release()
    if not found:
        raise SystemExit(f"{PACKAGE}: {video} has no frame {frame}")
    return image


def main() -> None:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        deb = download([PACKAGE], folder)[PACKAGE]
        root = folder / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        version = deb.stem.split("_")[1]
        copyright_file = root / "usr/share/doc" / PACKAGE / "copyright"
        manifest, scenes = [], []
        for scene, (target, companions, what) in SCENES.items():
            for source in (target, *companions):
                name = shot_name(source)
                cv2.imwrite(str(args.out / name), read_shot(root, source))
                original = f"samples/data/{source.split('@')[0]}"
                owner, licence = licence_of(copyright_file, original)
                manifest.append(
                    {"file": name, "package": PACKAGE, "version": version, "original": source,
                     "copyright": owner, "licence": licence}
                )  # fmt: skip
            scenes.append({"scene": scene, "target": shot_name(target),
                           "companions": ";".join(shot_name(c) for c in companions),
                           "what": what})  # fmt: skip
    for file, rows in (("manifest.csv", manifest), ("scenes.csv", scenes)):
        with (args.out / file).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print(f"{len(scenes)} scenes, {len(manifest)} shots in {args.out}")


if __name__ == "__main__":
    main()
