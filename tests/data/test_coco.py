"""COCO keypoint JSON reader: the real coco_mini, known answers for the pixel convention, and
every bad-input error naming the file and the first bad entry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_pose.codecs.box import decode
from lightning_pose.data import DatasetError, PoseDataModule
from lightning_pose.data.coco import COCO_PERSON_KEYPOINTS, COCO_PERSON_SIGMAS, COCOKeypoints
from tests.conftest import write_image

MINI = "coco_mini/annotations/person_keypoints_train2017.json"


def mini_reader(**overrides) -> COCOKeypoints:
    return COCOKeypoints(
        train_json=MINI, val_json=MINI, image_dir="coco_mini/train2017", **overrides
    )


def test_real_coco_mini_instances_skeleton_and_flags(shared_data: Path) -> None:
    ann = mini_reader().read(shared_data)
    raw = json.loads((shared_data / MINI).read_text())
    kept = [a for a in raw["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0]
    assert len(kept) == 86  # of 172 annotations: 5 crowd, 81 without a labelled keypoint
    assert ann.is_train.sum() == ann.is_val.sum() == 86 and ann.is_test is None
    assert len(set(ann.image_ids[ann.is_train].tolist())) == 28
    skeleton = ann.skeleton
    assert skeleton.joints == COCO_PERSON_KEYPOINTS and skeleton.name == "person"
    assert skeleton.oks_sigmas == COCO_PERSON_SIGMAS
    # the torso is derived where the category has left_shoulder and right_hip; no head top
    assert skeleton.torso == (5, 12) and skeleton.head is None
    assert mini_reader(torso=[]).read(shared_data).skeleton.torso is None  # [] = none
    # left_eye/right_eye, ears, shoulders, elbows, wrists, hips, knees, ankles
    assert skeleton.flip_pairs == (
        (1, 2),
        (3, 4),
        (5, 6),
        (7, 8),
        (9, 10),
        (11, 12),
        (13, 14),
        (15, 16),
    )
    assert len(skeleton.limbs) == 19
    assert (skeleton.limbs[0].start, skeleton.limbs[0].end) == ((15,), (13,))  # [16, 14] 1-based
    assert skeleton.limbs[0].name == "left_ankle_knee"
    v = np.array([a["keypoints"][2::3] for a in kept])  # (86, 17)
    np.testing.assert_array_equal(ann.labelled[ann.is_train], v > 0)
    np.testing.assert_array_equal(ann.visible[ann.is_train], v == 2)
    assert ann.labelled[ann.is_train].sum() == 800 and ann.visible[ann.is_train].sum() == 698
    first = kept[0]
    xy = np.array(first["keypoints"], np.float32).reshape(17, 3)[:, :2] - 0.5
    labelled = v[0] > 0
    np.testing.assert_allclose(ann.keypoints_px[0][labelled], xy[labelled], rtol=0, atol=1e-4)
    assert ann.image_paths[0] == shared_data / "coco_mini/train2017" / "000000535506.jpg"
    np.testing.assert_allclose(ann.area_px2[0], first["area"], rtol=1e-6, atol=0)


def write_coco(path: Path, annotations: list[dict], categories: list[dict] | None = None) -> None:
    keypoints = ["l_hand", "r_hand", "snout"]
    content = {
        "images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": annotations,
        "categories": categories
        or [{"id": 3, "name": "critter", "keypoints": keypoints, "skeleton": [[1, 3], [2, 3]]}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def annotation(**overrides) -> dict:
    ann = {
        "id": 1,
        "image_id": 7,
        "category_id": 3,
        "iscrowd": 0,
        "bbox": [2.0, 4.0, 8.0, 6.0],
        "area": 30.0,
        "keypoints": [10.5, 20.5, 2, 3.0, 4.0, 1, 0, 0, 0],
        "num_keypoints": 2,
    }
    return ann | overrides


def critter(tmp_path: Path, anns: list[dict], **overrides) -> COCOKeypoints:
    write_coco(tmp_path / "c.json", anns)
    args = {"oks_sigmas": [0.1, 0.1, 0.2]} | overrides
    return COCOKeypoints(train_json="c.json", val_json="c.json", image_dir="img", **args)


def test_pixel_convention_flags_and_box_known_answers(tmp_path: Path) -> None:
    """COCO's corner frame -> ours: x - 0.5. Box [2, 4, 8, 6]: centre (2 + 4, 4 + 3) - 0.5,
    square side 1.25 x 8."""
    ann = critter(tmp_path, [annotation()]).read(tmp_path)
    np.testing.assert_allclose(
        ann.keypoints_px[0], [[10.0, 20.0], [2.5, 3.5], [0, 0]], atol=0, rtol=0
    )
    np.testing.assert_array_equal(ann.labelled[0], [True, True, False])
    np.testing.assert_array_equal(ann.visible[0], [True, False, False])
    np.testing.assert_allclose(ann.box_px[0], [5.5, 6.5, 10.0, 10.0], rtol=0, atol=1e-6)
    assert ann.bbox_size_px[0] == 8.0 and ann.area_px2[0] == 30.0 and ann.image_ids[0] == 7
    assert ann.image_paths[0] == tmp_path / "img" / "a.png"
    skeleton = ann.skeleton
    assert skeleton.flip_pairs == ((0, 1),)  # l_/r_ prefixes
    assert skeleton.oks_sigmas == (0.1, 0.1, 0.2)
    assert [limb.name for limb in skeleton.limbs] == ["l_hand_snout", "r_hand_snout"]


def test_explicit_flip_pairs_torso_head_and_bbox_scale(tmp_path: Path) -> None:
    reader = critter(
        tmp_path,
        [annotation()],
        flip_pairs=[["r_hand", "l_hand"]],
        torso=["l_hand", "r_hand"],
        head=["snout", "l_hand"],
        bbox_scale=2.0,
    )
    ann = reader.read(tmp_path)
    assert ann.skeleton.flip_pairs == ((1, 0),)
    assert ann.skeleton.torso == (0, 1) and ann.skeleton.head == (2, 0)
    np.testing.assert_allclose(ann.box_px[0, 2:], [16.0, 16.0], rtol=0, atol=0)


def test_crowd_and_unlabelled_annotations_are_excluded_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    anns = [
        annotation(id=1),
        annotation(id=2, iscrowd=1),
        annotation(id=3, keypoints=[0] * 9, num_keypoints=0, bbox=[0, 0, 0, 0]),
        annotation(id=4, category_id=99),  # another category: not this dataset's
    ]
    with caplog.at_level("INFO"):
        ann = critter(tmp_path, anns).read(tmp_path)
    assert len(ann) == 2  # id 1, once as train and once as val
    assert "1 instances in 1 images; excluded 1 crowd annotations and 1 without" in caplog.text


def test_a_coco_sample_decodes_to_its_labels(tmp_path: Path) -> None:
    write_image(tmp_path / "img" / "a.png", 40, 30, seed=0)
    reader = critter(tmp_path, [annotation(keypoints=[10.5, 20.5, 2, 3.0, 4.0, 2, 5.5, 6.5, 2])])
    dm = PoseDataModule(dataset=reader, root=str(tmp_path), input_size=32, num_workers=0)
    dm.setup("validate")
    sample = dm.splits["val"][0]
    torch.testing.assert_close(
        sample["box"], torch.tensor([5.5, 6.5, 10.0, 10.0]), rtol=0, atol=1e-6
    )
    decoded = decode(sample["keypoints_norm"], sample["box"])
    torch.testing.assert_close(decoded, sample["keypoints_px"], rtol=0, atol=1e-4)
    torch.testing.assert_close(
        sample["keypoints_px"][2], torch.tensor([5.0, 6.0]), rtol=0, atol=1e-6
    )
    assert float(sample["bbox_size_px"]) == 8.0 and float(sample["area_px2"]) == 30.0
    assert float(sample["torso_diameter_px"]) == 0.0  # no torso: no PDJ
    assert int(sample["image_id"]) == 7


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", r"c.json: not a JSON file"),
        (json.dumps({"images": [], "annotations": []}), r"c.json: missing the list 'categories'"),
        (
            json.dumps({"images": [], "annotations": [], "categories": [{"id": 1}]}),
            r"c.json: expected exactly one category with a 'keypoints' list, found 0",
        ),
    ],
)
def test_malformed_files_are_named(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "c.json").write_text(content)
    reader = COCOKeypoints(train_json="c.json", val_json="c.json", image_dir="img")
    with pytest.raises(DatasetError, match=match):
        reader.read(tmp_path)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (
            {"keypoints": [1, 2, 2] * 2},
            r"annotation id 5 .*'keypoints' has 6 values, expected 3 x 3",
        ),
        ({"image_id": 8}, r"annotation id 5 \(image_id 8\): its image_id is not in 'images'"),
        ({"keypoints": [1, 2, 3] * 3}, r"annotation id 5 .*visibility flag 3; expected 0, 1 or 2"),
        ({"keypoints": [float("nan"), 2, 2] + [0] * 6}, r"annotation id 5 .*non-finite"),
        ({"bbox": [1, 1, 0, 3]}, r"annotation id 5 .*width or height <= 0"),
    ],
)
def test_bad_annotations_are_named(tmp_path: Path, bad: dict, match: str) -> None:
    reader = critter(tmp_path, [annotation(), annotation(id=5) | bad])
    with pytest.raises(DatasetError, match=rf"c.json: {match}"):
        reader.read(tmp_path)


def test_skeleton_pair_outside_one_to_k_is_named(tmp_path: Path) -> None:
    category = {"id": 3, "name": "critter", "keypoints": ["a", "b"], "skeleton": [[1, 2], [2, 3]]}
    write_coco(tmp_path / "c.json", [], [category])
    reader = COCOKeypoints("c.json", "c.json", "img", oks_sigmas=[0.1, 0.1])
    with pytest.raises(
        DatasetError,
        match=r"c.json: category 'critter' has skeleton pair \[2, 3\]; expected .* 1..2",
    ):
        reader.read(tmp_path)


@pytest.mark.parametrize(("sigmas", "got"), [(None, "missing"), ([0.1, 0.1], "2 values")])
def test_oks_sigmas_missing_or_of_the_wrong_length_name_the_key(
    tmp_path: Path, sigmas: list[float] | None, got: str
) -> None:
    reader = critter(tmp_path, [annotation()], oks_sigmas=sigmas)
    with pytest.raises(
        DatasetError, match=rf"data.dataset.init_args.oks_sigmas: {got}; expected 3 .*'critter'"
    ):
        reader.read(tmp_path)


def test_unknown_joint_name_in_the_config_is_named(tmp_path: Path) -> None:
    reader = critter(tmp_path, [annotation()], torso=["l_hand", "tail"])
    with pytest.raises(
        DatasetError, match=r"data.dataset.init_args.torso: expected two joint names"
    ):
        reader.read(tmp_path)


def test_duplicate_image_ids_are_refused_naming_the_file_and_ids(tmp_path: Path) -> None:
    """Two ``images`` entries with one id: an annotation would be cropped from whichever came
    last; the reader refuses the file, naming every repeated id and its file names."""
    write_coco(tmp_path / "c.json", [annotation()])
    content = json.loads((tmp_path / "c.json").read_text())
    content["images"] += [
        {"id": 7, "file_name": "b.png", "width": 40, "height": 30},
        {"id": 8, "file_name": "c.png", "width": 40, "height": 30},
        {"id": 8, "file_name": "d.png", "width": 40, "height": 30},
    ]
    (tmp_path / "c.json").write_text(json.dumps(content))
    reader = COCOKeypoints(
        train_json="c.json", val_json="c.json", image_dir="img", oks_sigmas=[0.1, 0.1, 0.2]
    )
    with pytest.raises(
        DatasetError,
        match=r"c.json: 2 image id\(s\) used by more than one 'images' entry \(id 7: a.png, "
        r"b.png; id 8: c.png, d.png\); expected each image id once",
    ):
        reader.read(tmp_path)


def test_a_box_entirely_outside_its_image_is_warned_about_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The image is 40 x 30: a box from x = 40 (its right edge) or ending at y = 0 holds no
    pixel of it; one overlapping the image by a sliver does."""
    anns = [
        annotation(id=1),
        annotation(id=2, bbox=[40.0, 4.0, 8.0, 6.0]),  # right of the image
        annotation(id=3, bbox=[2.0, -6.0, 8.0, 6.0]),  # above it, touching y = 0
        annotation(id=4, bbox=[-7.9, -5.9, 8.0, 6.0]),  # 0.1 px inside the top-left corner
    ]
    reader = critter(tmp_path, anns)
    with caplog.at_level("INFO"), pytest.warns(UserWarning) as warned:
        ann = reader.read(tmp_path)
    assert len(ann) == 8  # kept: 4 instances as train and as val
    messages = [str(w.message) for w in warned if "outside" in str(w.message)]
    assert len(messages) == 2  # once per split
    assert (
        "c.json: 2 annotation(s) have a 'bbox' entirely outside their image (its width x "
        "height), so their crops hold no pixel of the image: annotation id 2 (image_id 7), "
        "3 (image_id 7)"
    ) in messages[0]
    assert reader.boxes_outside == {"train": 2, "val": 2}
    assert "4 instances in 1 images; excluded 0 crowd" in caplog.text
    assert "2 boxes entirely outside their image" in caplog.text


def test_oks_sigmas_from_the_category_and_config_first(tmp_path: Path) -> None:
    """A category's own ``oks_sigmas`` (as the converter writes them) serve where the config
    gives none; the config's win; a malformed list is named."""
    category = {"id": 3, "name": "critter", "keypoints": ["l_hand", "r_hand", "snout"]}
    write_coco(tmp_path / "c.json", [annotation()], [category | {"oks_sigmas": [0.3, 0.3, 0.4]}])
    reader = COCOKeypoints(train_json="c.json", val_json="c.json", image_dir="img")
    assert reader.read(tmp_path).skeleton.oks_sigmas == (0.3, 0.3, 0.4)
    reader = COCOKeypoints(
        train_json="c.json", val_json="c.json", image_dir="img", oks_sigmas=[0.1, 0.1, 0.2]
    )
    assert reader.read(tmp_path).skeleton.oks_sigmas == (0.1, 0.1, 0.2)
    write_coco(tmp_path / "c.json", [annotation()], [category | {"oks_sigmas": [0.3, -1, 0.4]}])
    reader = COCOKeypoints(train_json="c.json", val_json="c.json", image_dir="img")
    with pytest.raises(
        DatasetError, match=r"c.json: the category's 'oks_sigmas' is \[0.3, -1, 0.4\]; expected"
    ):
        reader.read(tmp_path)


def test_torso_and_head_are_derived_only_where_the_skeleton_has_their_joints(
    tmp_path: Path,
) -> None:
    """A skeleton without left_shoulder/right_hip (or neck/head_top) has no torso (no head)
    unless the config names one: no option to remove for another skeleton."""
    skeleton = critter(tmp_path, [annotation()]).read(tmp_path).skeleton
    assert skeleton.torso is None and skeleton.head is None
    category = {
        "id": 3,
        "name": "lsp",
        "keypoints": ["right_hip", "left_shoulder", "neck", "head_top"],
    }
    keypoints = [1.5, 2.5, 2] * 4
    write_coco(tmp_path / "c.json", [annotation(keypoints=keypoints)], [category])
    reader = COCOKeypoints(
        train_json="c.json", val_json="c.json", image_dir="img", oks_sigmas=[0.1] * 4
    )
    skeleton = reader.read(tmp_path).skeleton
    assert skeleton.torso == (1, 0) and skeleton.head == (2, 3)
