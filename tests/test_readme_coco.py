"""The README's "Your own keypoints" example, run as written on a private COCO file: a generated
5-keypoint animal skeleton with ``_L``/``_R`` joint names and category id 7. Its YAML file and
its three commands are taken from the README itself; the test substitutes the repository's
``conf/`` paths (it runs in a temporary folder) and appends options that make it tiny (64 px
inputs, 3 steps in fp32, no sanity check, no loader workers). pycocotools scores
``predictions_coco.json`` against the validation file as validate logs ``val/oks_ap``."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from lightning_pose.cli import main
from tests.conftest import write_image

REPO = Path(__file__).resolve().parents[1]
JOINTS = ["nose", "paw_L", "paw_R", "tail_base", "tail_tip"]
CATEGORY_ID = 7
TINY = [
    "--data.input_size=64",
    "--data.batch_size=4",
    "--data.num_workers=0",
    "--trainer.max_steps=3",
    "--trainer.num_sanity_val_steps=0",
    "--trainer.precision=32-true",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
]


def readme_example() -> tuple[str, list[list[str]]]:
    """The YAML block of "Your own keypoints" and its three commands, as argument lists."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Your own keypoints") :]
    yaml_block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    bash_block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [shlex.split(c) for c in bash_block.replace("\\\n", " ").strip().splitlines()]
    assert [c[:3] for c in commands] == [["python", "-m", "lightning_pose"]] * 3
    return yaml_block, [c[3:] for c in commands]


def write_animals(folder: Path, n_images: int, seed: int) -> dict:
    """COCO keypoint JSON of ``n_images`` 64 x 48 images, one or two animals each."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for i in range(n_images):
        image_id = 100 * seed + i
        name = f"{image_id:04d}.png"
        write_image(folder / "images" / name, 64, 48, seed=image_id)
        images.append({"id": image_id, "file_name": name, "width": 64, "height": 48})
        for _ in range(1 + i % 2):
            x, y = rng.uniform(2, 30), rng.uniform(2, 20)
            w, h = rng.uniform(16, 30), rng.uniform(14, 24)
            xy = rng.uniform([x, y], [x + w, y + h], size=(5, 2))
            v = np.where(rng.uniform(size=5) < 0.2, 1, 2)
            annotations.append(
                {
                    "id": len(annotations) + 1 + 1000 * seed,
                    "image_id": image_id,
                    "category_id": CATEGORY_ID,
                    "iscrowd": 0,
                    "bbox": [x, y, w, h],
                    "area": w * h * 0.6,
                    "keypoints": np.column_stack([xy, v]).ravel().tolist(),
                    "num_keypoints": 5,
                }
            )
    category = {
        "id": CATEGORY_ID,
        "name": "critter",
        "supercategory": "animal",
        "keypoints": JOINTS,
        "skeleton": [[1, 4], [2, 4], [3, 4], [4, 5]],
    }
    return {"images": images, "annotations": annotations, "categories": [category]}


def test_readme_coco_example_runs_as_written_and_pycocotools_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    yaml_block, commands = readme_example()
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine"
    train, val = write_animals(mine, 6, seed=1), write_animals(mine, 4, seed=2)
    (mine / "train.json").write_text(json.dumps(train))
    (mine / "val.json").write_text(json.dumps(val))
    (mine / "coco.yaml").write_text(yaml_block)

    def run(args: list[str]):
        args = [str(REPO / a) if a.startswith("conf/") else a for a in args]
        return main([*args, *TINY])

    fit = run(commands[0])
    assert fit.trainer.global_step == 3
    # paw_L / paw_R swap on a horizontal flip
    assert fit.model.skeleton.flip_pairs == ((1, 2),)
    run_dir = tmp_path / "runs" / "coco_mini" / "version_0"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    table = (run_dir / "val_metrics.md").read_text()  # every run writes it, COCO's too
    people, images = len(val["annotations"]), len(val["images"])
    assert f"Counted: {images} images ({people} instances)" in table

    validate = run(commands[1])
    logged = {k: float(v) for k, v in validate.trainer.callback_metrics.items()}
    assert logged["val/count/images"] == images and logged["val/count/instances"] == people
    assert "val/pdj@0.2" not in logged  # no torso in this skeleton: nothing to remove by hand
    assert {"val/oks_ap", "val/oks_ar", "val/pck_bbox@0.2", "val/pcp@0.5"} <= set(logged)

    run(commands[2])
    results = json.loads((tmp_path / "outputs/predict/coco_mini/predictions_coco.json").read_text())
    assert len(results) == people
    assert {r["category_id"] for r in results} == {CATEGORY_ID}
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(mine / "val.json"))
        evaluation = COCOeval(truth, truth.loadRes(results), iouType="keypoints")
        evaluation.params.kpt_oks_sigmas = np.array(fit.model.skeleton.oks_sigmas)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(logged["val/oks_ap"], abs=1e-6)
    assert evaluation.stats[5] == pytest.approx(logged["val/oks_ar"], abs=1e-6)
