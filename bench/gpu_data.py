"""A smaller copy of LSPet for the lent GPU, in parts that each fit one device call.

The device call sends the working tree and what it carries, 64 MiB in all (the wheels of
``bench/gpu_wheels.sh`` take 28 MB of it), and ``../shared/data`` does not travel; LSPet is
165 MB. This script writes each image downscaled to at most ``--max-side`` pixels on its longer
side (``cv2.INTER_AREA``; none is upscaled) and re-encoded as WebP (``--quality``), under the
file names of the official layout (``images/im%05d.jpg``: the reader decodes by content), and
``joints.mat`` with each image's joints scaled by the same factors, in the pixel-centre frame
(x' = (x - 0.5) * s + 0.5 for MATLAB's 1-based x). PCK, PDJ, PCKh and PCP are normalised by
torso or head size, so a scale changes them only through the lost detail; pixel errors are in
the copy's pixels.

    python bench/gpu_data.py --out .gpudata [--max-side 320] [--quality 80] [--part-mib 30 ...]

``--part-mib A B ...``: the images go to ``OUT/part_1.tar``, ``OUT/part_2.tar``, ... in order
(members ``lspet/images/im%05d.jpg``), each tar at most that many MiB (the last takes the rest),
and ``OUT/joints.tar`` (``lspet/joints.mat``, 1 MB: with the first part alone, a run limited to
the first images, ``--data.max_samples``, can start). On the device, ``tar xf`` of every part
into ``DIR`` makes ``DIR/lspet``. Writes ``OUT/manifest.json``: parts, sizes, how many images
were downscaled.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import scipy.io

REPO = Path(__file__).resolve().parents[1]


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def scaled_copy(source: Path, out: Path, max_side: int, quality: int, part_mib: list[float]):
    """Write the parts; returns the manifest (dict)."""
    mat = scipy.io.loadmat(source / "joints.mat")
    joints = np.array(mat["joints"], dtype=np.float64)  # (14, 3, N)
    n = joints.shape[2]
    limits = [m * 2**20 for m in part_mib]
    out.mkdir(parents=True, exist_ok=True)
    part, used, downscaled, tar = 0, 0, 0, None
    sizes: list[int] = []
    for i in range(n):
        name = f"im{i + 1:05d}.jpg"
        image = cv2.imread(str(source / "images" / name), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{source / 'images' / name}: missing or not an image")
        h, w = image.shape[:2]
        s = min(1.0, max_side / max(h, w))
        if s < 1.0:
            new_w, new_h = max(1, round(w * s)), max(1, round(h * s))
            image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
            sx, sy = new_w / w, new_h / h
            joints[:, 0, i] = (joints[:, 0, i] - 0.5) * sx + 0.5
            joints[:, 1, i] = (joints[:, 1, i] - 0.5) * sy + 0.5
            downscaled += 1
        ok, data = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:
            raise RuntimeError(f"{name}: WebP encoding failed")
        size = len(data) + 1024  # the member's header and padding, at most
        if tar is None or (part < len(limits) and used + size > limits[part]):
            if tar is not None:
                tar.close()
                part += 1
            tar, used = tarfile.open(out / f"part_{part + 1}.tar", "w"), 0
            sizes.append(0)
        add(tar, f"lspet/images/{name}", data.tobytes())
        used += size
        sizes[-1] += size
    tar.close()
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"joints": joints}, do_compression=True)
    with tarfile.open(out / "joints.tar", "w") as joints_tar:
        add(joints_tar, "lspet/joints.mat", buffer.getvalue())
    manifest = {
        "source": str(source),
        "images": n,
        "downscaled": downscaled,
        "max_side": max_side,
        "webp_quality": quality,
        "parts_mib": [round(x / 2**20, 1) for x in sizes],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared/data/lspet")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-side", type=int, default=320)
    parser.add_argument("--quality", type=int, default=80)
    parser.add_argument("--part-mib", type=float, nargs="*", default=[])
    opts = parser.parse_args(argv)
    if opts.out.exists() and any(opts.out.iterdir()):
        print(f"error: {opts.out} is not empty; nothing was written", file=sys.stderr)
        return 2
    manifest = scaled_copy(opts.source, opts.out, opts.max_side, opts.quality, opts.part_mib)
    print(json.dumps(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
