# Copyright (c) scrim-mm contributors. All rights reserved.
import json
import math
import os
import os.path as osp
import pickle
from typing import Dict, List, Optional, Sequence

import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample

from scrim_mm.evaluation import (
    PartHitRate,
    box_centres,
    object_hits,
    part_distances,
    part_hits,
    points_in_boxes,
    random_derangement,
    select_stage_regions,
)

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def make_sample(
    img_path: str,
    boxes: Sequence[Sequence[float]],
    scores: Sequence[float],
    stages: Sequence[int],
    ori_hw=(100, 100),
    img_hw: Optional[Sequence[int]] = None,
    scale_factor=(1.0, 1.0),
    label: int = 0,
) -> DataSample:
    """A SCRIM prediction for one image, as ``SCRIMClassifier.predict``."""
    sample = DataSample(
        metainfo=dict(
            img_path=img_path,
            ori_shape=tuple(ori_hw),
            img_shape=tuple(img_hw or ori_hw),
            scale_factor=tuple(scale_factor),
        )
    )
    sample.set_gt_label(label)
    sample.set_pred_score(torch.tensor([0.9, 0.1]))
    sample.set_field(
        torch.tensor(boxes, dtype=torch.float32), 'pred_boxes', dtype=None
    )
    sample.set_field(torch.tensor(scores), 'pred_box_scores', dtype=None)
    sample.set_field(torch.tensor(stages), 'pred_box_stages', dtype=None)
    return sample


def write_demo(root: str, images: List[Dict]) -> None:
    """Write a ``demo_parts.json`` as ``make_demo_dataset.py`` does."""
    parts = dict(
        classes=[dict(name='a', shape='circle', colour='red')],
        images=[dict(split='test', label=0, **im) for im in images],
    )
    with open(osp.join(root, 'demo_parts.json'), 'w') as f:
        json.dump(parts, f)


def evaluate(metric: PartHitRate, samples: Sequence[DataSample]) -> Dict:
    metric.process(None, [s.to_dict() for s in samples])
    return metric.evaluate(len(metric.results))


# Three 100x100 demo images: part centres a (15, 15), b (70, 70), c (45, 65).
DEMO_IMAGES = [
    dict(
        file='images/001.A/a.jpg',
        part_box=[10, 10, 20, 20],
        object_box=[0, 0, 50, 50],
    ),
    dict(
        file='images/001.A/b.jpg',
        part_box=[60, 60, 80, 80],
        object_box=[50, 50, 100, 100],
    ),
    dict(
        file='images/002.B/c.jpg',
        part_box=[40, 60, 50, 70],
        object_box=[30, 50, 70, 90],
    ),
]
# Per image: boxes of stages [0, 1, 0, 1] (interleaved on purpose) and
# scores; the best box of a stage is the higher-scored one.
DEMO_PREDS = {
    'a.jpg': (
        # s3 best hits part + object; s4 best misses the part, its centre
        # (35, 35) is on the object; s4's second box holds the part.
        [[5, 5, 25, 25], [30, 30, 40, 40], [60, 60, 90, 90], [12, 12, 18, 18]],
        [0.9, 0.8, 0.1, 0.7],
    ),
    'b.jpg': (
        # s3 best [0, 0, 20, 20] misses (holds a's part, not b's); s3's
        # second holds the part; s4 best hits both.
        [[0, 0, 20, 20], [60, 60, 90, 90], [65, 65, 75, 75], [0, 0, 1, 1]],
        [0.6, 0.9, 0.5, 0.2],
    ),
    'c.jpg': (
        # s3 best hits both; s4 misses everything.
        [[40, 60, 50, 70], [0, 0, 10, 10], [0, 0, 5, 5], [0, 90, 10, 100]],
        [0.9, 0.9, 0.1, 0.3],
    ),
}


@pytest.fixture
def demo_root(tmp_path) -> str:
    write_demo(str(tmp_path), DEMO_IMAGES)
    return str(tmp_path)


def demo_samples(root: str, order=('a', 'b', 'c')) -> List[DataSample]:
    files = {osp.basename(im['file']): im['file'] for im in DEMO_IMAGES}
    samples = []
    for name in order:
        boxes, scores = DEMO_PREDS[f'{name}.jpg']
        samples.append(
            make_sample(
                osp.join(root, files[f'{name}.jpg']),
                boxes,
                scores,
                [0, 1, 0, 1],
            )
        )
    return samples


# --------------------------------------------------------------------------
# Functional helpers
# --------------------------------------------------------------------------


def test_points_in_boxes_and_centres():
    points = torch.tensor([[[0.0, 0.0], [5.0, 5.0], [10.0, 2.0], [11, 2]]])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    inside = points_in_boxes(points, boxes)
    assert inside.dtype == torch.bool and inside.shape == (1, 4)
    # Edges count as inside.
    assert inside.tolist() == [[True, True, True, False]]
    # Broadcasting: points (N, 1, P, 2) against boxes (N, S, 4).
    two = torch.tensor([[[0.0, 0.0, 10, 10], [10, 0, 20, 10]]])
    assert points_in_boxes(points[:, None], two).shape == (1, 2, 4)
    assert box_centres(two).tolist() == [[[5.0, 5.0], [15.0, 5.0]]]
    assert object_hits(two[0], boxes.expand(2, 4)).tolist() == [True, False]
    visible = torch.tensor([[False, False, True, True]])
    assert part_hits(boxes, points, visible).tolist() == [True]
    assert part_hits(boxes, points, ~visible).tolist() == [True]
    visible = torch.tensor([[False, False, False, True]])
    assert part_hits(boxes, points, visible).tolist() == [False]


def test_part_distances():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [10.0, 20.0, 30.0, 40.0]])
    points = torch.tensor(
        [[[5.0, 8.0], [50.0, 5.0]], [[20.0, 30.0], [23.0, 34.0]]]
    )
    # Nearest keypoint: 3 px (box 0); box 1's centre is on keypoint 0.
    assert part_distances(boxes, points).tolist() == pytest.approx([3, 0])
    # Hiding box 1's nearest keypoint leaves the (3, 4) one: 5 px.
    visible = torch.tensor([[True, True], [False, True]])
    assert part_distances(boxes, points, visible).tolist() == pytest.approx(
        [3, 5]
    )
    none = torch.zeros(2, 2, dtype=torch.bool)
    assert torch.isinf(part_distances(boxes, points, none)).all()
    assert torch.isinf(part_distances(boxes, points[:, :0])).all()


def test_select_stage_regions():
    boxes = torch.arange(20, dtype=torch.float32).view(5, 4)
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.3])
    stages = torch.tensor([0, 1, 0, 1, 0])
    top, valid = select_stage_regions(boxes, scores, stages, 3, k=-1)
    assert top.shape == (3, 3, 4) and valid.shape == (3, 3)
    assert valid.tolist() == [
        [True, True, True],
        [True, True, False],
        [False, False, False],
    ]
    # Best first: stage 0 -> rows 2, 4, 0; stage 1 -> rows 1, 3.
    assert torch.equal(top[0], boxes[[2, 4, 0]])
    assert torch.equal(top[1, :2], boxes[[1, 3]])
    assert (top[1, 2] == 0).all() and (top[2] == 0).all()
    best, valid = select_stage_regions(boxes, scores, stages, 2)
    assert torch.equal(best[:, 0], boxes[[2, 1]]) and valid.all()
    with pytest.raises(ValueError, match='out of range'):
        select_stage_regions(boxes, scores, stages, 1)


def test_random_derangement():
    for num in (2, 3, 7, 50):
        perm = random_derangement(num, seed=3)
        assert sorted(perm.tolist()) == list(range(num))
        assert (perm != torch.arange(num)).all()
        assert torch.equal(perm, random_derangement(num, seed=3))
    assert random_derangement(2).tolist() == [1, 0]
    assert random_derangement(1).tolist() == [0]
    seeds = {tuple(random_derangement(6, s).tolist()) for s in range(5)}
    assert len(seeds) > 1


# --------------------------------------------------------------------------
# Metric
# --------------------------------------------------------------------------


def test_demo_hand_computed(demo_root):
    metric = PartHitRate(data_root=demo_root, ann_format='demo')
    out = evaluate(metric, demo_samples(demo_root))
    third = 100 / 3
    assert out['part_hit/s3'] == pytest.approx(2 * third)
    assert out['part_hit/s4'] == pytest.approx(third)
    assert out['object_hit/s3'] == pytest.approx(2 * third)
    assert out['object_hit/s4'] == pytest.approx(2 * third)
    assert out['part_hit_any/s3'] == pytest.approx(100)
    assert out['part_hit_any/s4'] == pytest.approx(2 * third)
    assert not any('loss' in k for k in out)

    # Chance: hit[i][j] = best box of image i on image j's annotation.
    part = {
        's3': [[1, 0, 0], [1, 0, 0], [0, 0, 1]],
        's4': [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    }
    # Best-box centres: s3 (15, 15), (10, 10), (45, 65); s4 (35, 35),
    # (75, 75), (5, 5) against objects a, b, c.
    obj = {
        's3': [[1, 0, 0], [1, 0, 0], [0, 0, 1]],
        's4': [[1, 0, 0], [0, 1, 0], [1, 0, 0]],
    }
    perm = random_derangement(3, seed=0).tolist()
    assert all(p != i for i, p in enumerate(perm))
    for stage in ('s3', 's4'):
        for name, table in (('part_hit', part), ('object_hit', obj)):
            expect = sum(table[stage][i][perm[i]] for i in range(3)) * third
            assert out[f'{name}_chance/{stage}'] == pytest.approx(expect)

    # A seed giving the other 3-cycle; the data order does not matter.
    seed = next(
        s for s in range(1, 100) if random_derangement(3, s).tolist() != perm
    )
    perm1 = random_derangement(3, seed).tolist()
    other = PartHitRate(data_root=demo_root, ann_format='demo', seed=seed)
    out1 = evaluate(other, demo_samples(demo_root, order=('c', 'a', 'b')))
    for stage in ('s3', 's4'):
        for name, table in (('part_hit', part), ('object_hit', obj)):
            expect = sum(table[stage][i][perm1[i]] for i in range(3)) * third
            assert out1[f'{name}_chance/{stage}'] == pytest.approx(expect)
    # This cycle pairs b's s3 box with a's part.
    assert out1['part_hit_chance/s3'] == pytest.approx(third)
    assert out1['part_hit/s3'] == out['part_hit/s3']


def test_part_distance_and_box_area_hand_computed(demo_root):
    """Centre-to-part distance (% of the diagonal) and best-box area."""
    metric = PartHitRate(data_root=demo_root, ann_format='demo')
    out = evaluate(metric, demo_samples(demo_root))
    parts = [(15, 15), (70, 70), (45, 65)]
    # Best-box centres per stage, images a, b, c (as in the test above).
    centres = {
        's3': [(15, 15), (10, 10), (45, 65)],
        's4': [(35, 35), (75, 75), (5, 5)],
    }
    diag = math.hypot(100, 100)

    def dist(c, p):
        return math.hypot(c[0] - p[0], c[1] - p[1]) / diag * 100

    # s3: 0, 60 sqrt(2) and 0 px: 20 % of the diagonal on average.
    assert out['part_dist/s3'] == pytest.approx(20)
    assert out['part_dist/s4'] == pytest.approx(
        (20 + 5 + math.hypot(40, 60) / diag * 100) / 3
    )
    perm = random_derangement(3, seed=0).tolist()
    for stage in ('s3', 's4'):
        expect = sum(dist(centres[stage][i], parts[perm[i]]) for i in range(3))
        assert out[f'part_dist_chance/{stage}'] == pytest.approx(expect / 3)
    # Best boxes: s3 20x20, 20x20, 10x10; s4 10x10, 30x30, 10x10 of 100x100.
    assert out['box_area/s3'] == pytest.approx((4 + 4 + 1) / 3)
    assert out['box_area/s4'] == pytest.approx((1 + 9 + 1) / 3)


def test_box_area_is_clipped_to_the_image(tmp_path):
    """A box reaching past the image counts only its part inside."""
    root = str(tmp_path)
    write_demo(root, DEMO_IMAGES[:2])
    metric = PartHitRate(data_root=root, ann_format='demo', topk=None)
    samples = [
        # 40 x 40 inside of the 60 x 60 box [-20, -20, 40, 40].
        make_sample('images/001.A/a.jpg', [[-20, -20, 40, 40]], [1.0], [0]),
        # [50, 50, 100, 100] of [50, 50, 130, 100].
        make_sample('images/001.A/b.jpg', [[50, 50, 130, 100]], [1.0], [0]),
    ]
    out = evaluate(metric, samples)
    assert out['box_area/s3'] == pytest.approx((16 + 25) / 2)
    assert math.isnan(out['box_area/s4'])
    assert math.isnan(out['part_dist/s4'])


def test_topk_options(demo_root):
    out = evaluate(
        PartHitRate(data_root=demo_root, ann_format='demo', topk=None),
        demo_samples(demo_root),
    )
    assert sorted(out) == sorted(
        f'{n}/{s}'
        for n in (
            'part_hit',
            'part_hit_chance',
            'object_hit',
            'object_hit_chance',
            'part_dist',
            'part_dist_chance',
            'box_area',
        )
        for s in ('s3', 's4')
    )
    out = evaluate(
        PartHitRate(data_root=demo_root, ann_format='demo', topk=1),
        demo_samples(demo_root),
    )
    assert out['part_hit_any/s4'] == out['part_hit/s4']
    assert out['part_hit_any_chance/s4'] == out['part_hit_chance/s4']
    with pytest.raises(ValueError, match='topk'):
        PartHitRate(data_root=demo_root, ann_format='demo', topk=0)


def test_chance_uses_relative_coordinates(tmp_path):
    """Two images: the derangement is the swap; sizes differ."""
    root = str(tmp_path)
    write_demo(
        root,
        [
            dict(
                file='car_ims/a.jpg',
                part_box=[5, 5, 15, 15],
                object_box=[0, 0, 100, 100],
            ),
            dict(
                file='car_ims/b.jpg',
                part_box=[90, 40, 110, 60],
                object_box=[0, 0, 200, 100],
            ),
        ],
    )
    metric = PartHitRate(data_root=root, ann_format='demo', topk=None)
    samples = [
        # a (100 x 100): central box, misses a's part (10, 10). Moved to b
        # (200 x 100) it is [80, 40, 120, 60] and holds b's part (100, 50)
        # (in pixels, [40, 40, 60, 60] would not).
        make_sample('car_ims/a.jpg', [[40, 40, 60, 60]], [1.0], [0]),
        # b: [150, 40, 190, 60] misses (100, 50); moved to a it is
        # [75, 40, 95, 60] and misses (10, 10).
        make_sample(
            'car_ims/b.jpg', [[150, 40, 190, 60]], [1.0], [0], (100, 200)
        ),
    ]
    out = evaluate(metric, samples)
    assert out['part_hit/s3'] == 0
    assert out['part_hit_chance/s3'] == pytest.approx(50)
    # No s4 regions at all: nothing to average.
    assert math.isnan(out['part_hit/s4'])
    assert math.isnan(out['object_hit_chance/s4'])


def test_box_mapping_from_resized_input(demo_root):
    """The input is the original (400 x 200) resized by half."""
    write_demo(
        demo_root,
        [
            dict(
                file='images/x/big.jpg',
                part_box=[45, 45, 55, 55],
                object_box=[0, 0, 400, 200],
            )
        ],
    )
    metric = PartHitRate(data_root=demo_root, ann_format='demo')
    # [10, 10, 30, 30] in the input is [20, 20, 60, 60] in the original:
    # it holds the part centre (50, 50) only once mapped back.
    sample = make_sample(
        'images/x/big.jpg',
        [[10, 10, 30, 30], [0, 0, 5, 5]],
        [0.9, 0.9],
        [0, 1],
        ori_hw=(200, 400),
        img_hw=(100, 200),
        scale_factor=(0.5, 0.5),
    )
    out = evaluate(metric, [sample])
    assert out['part_hit/s3'] == 100 and out['part_hit/s4'] == 0
    # A single image has no partner for the chance figure.
    assert math.isnan(out['part_hit_chance/s3'])


CUB_IMAGES = [
    '001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg',
    '002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg',
    '003.Sooty_Albatross/Sooty_Albatross_0003_1078.jpg',
]


def write_cub(root: str) -> None:
    with open(osp.join(root, 'images.txt'), 'w') as f:
        f.write(''.join(f'{i + 1} {p}\n' for i, p in enumerate(CUB_IMAGES)))
    # Image 3 (not evaluated) has parts listed in another order.
    locs = [
        '1 1 10.0 10.0 1',
        '1 2 80.0 80.0 1',
        '1 3 0.0 0.0 0',
        '2 1 50.0 50.0 0',
        '2 2 0.0 0.0 0',
        '2 3 30.0 30.0 1',
        '3 3 1.0 1.0 1',
        '3 1 1.0 1.0 1',
        '3 2 1.0 1.0 1',
        # An image images.txt does not list is ignored.
        '9 1 1.0 1.0 1',
    ]
    os.makedirs(osp.join(root, 'parts'), exist_ok=True)
    with open(osp.join(root, 'parts', 'part_locs.txt'), 'w') as f:
        f.write('\n'.join(locs) + '\n')
    with open(osp.join(root, 'bounding_boxes.txt'), 'w') as f:
        f.write('1 0.0 0.0 50.0 50.0\n2 20.0 20.0 40.0 40.0\n3 0 0 9 9\n')


def cub_samples(root: str) -> List[DataSample]:
    return [
        # Image 1 (absolute path): s3 [70, 70, 90, 90] holds part 2, its
        # centre is off the object [0, 0, 50, 50]; s4 [0, 0, 5, 5] holds
        # only the invisible part 3, its centre is on the object.
        make_sample(
            osp.join(root, 'images', CUB_IMAGES[0]),
            [[70, 70, 90, 90], [0, 0, 5, 5]],
            [0.5, 0.5],
            [0, 1],
        ),
        # Image 2 (Windows path of a moved data root): s3 holds only the
        # invisible part 1, centre on the object [20, 20, 60, 60]; s4
        # holds the visible part 3 and its centre is on the object.
        make_sample(
            'D:\\data\\CUB_200_2011\\images\\'
            + CUB_IMAGES[1].replace('/', '\\'),
            [[45, 45, 55, 55], [25, 25, 35, 35]],
            [0.5, 0.5],
            [0, 1],
        ),
    ]


def test_cub_files(tmp_path):
    root = str(tmp_path)
    write_cub(root)
    out = evaluate(PartHitRate(data_root=root), cub_samples(root))
    assert out['part_hit/s3'] == pytest.approx(50)
    assert out['part_hit/s4'] == pytest.approx(50)
    assert out['object_hit/s3'] == pytest.approx(50)
    assert out['object_hit/s4'] == pytest.approx(100)
    # The swap: image 1's s3 box on image 2's part 3 (30, 30): miss;
    # image 2's s3 box on image 1's parts (10, 10), (80, 80): miss.
    assert out['part_hit_chance/s3'] == 0
    # s4: [0, 0, 5, 5] on image 2: miss; [25, 25, 35, 35] on image 1: miss.
    assert out['part_hit_chance/s4'] == 0
    # s4 centres (2.5, 2.5) on object 2: miss; (30, 30) on object 1: hit.
    assert out['object_hit_chance/s4'] == pytest.approx(50)

    # Only part 2 counts: image 2 has none visible and is left out.
    out = evaluate(
        PartHitRate(data_root=root, part_ids=(2,)), cub_samples(root)
    )
    assert out['part_hit/s3'] == 100 and out['part_hit/s4'] == 0
    assert out['object_hit/s4'] == pytest.approx(100)
    with pytest.raises(ValueError, match='part_ids'):
        PartHitRate(data_root=root, part_ids=(4,))

    # Paths relative to the images folder, and explicit file names.
    os.rename(osp.join(root, 'images.txt'), osp.join(root, 'ids.txt'))
    metric = PartHitRate(data_root=root, ann_files=dict(images='ids.txt'))
    sample = cub_samples(root)[1]
    sample.set_metainfo(dict(img_path=CUB_IMAGES[1]))
    assert evaluate(metric, [sample])['part_hit/s4'] == 100


def test_missing_annotation_file(tmp_path):
    root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match='demo_parts.json'):
        PartHitRate(data_root=root, ann_format='demo')
    write_cub(root)
    os.remove(osp.join(root, 'bounding_boxes.txt'))
    with pytest.raises(FileNotFoundError, match='bounding_boxes.txt') as err:
        PartHitRate(data_root=root)
    assert '<width> <height>' in str(err.value)
    with pytest.raises(ValueError, match='ann_format'):
        PartHitRate(data_root=root, ann_format='coco')
    with pytest.raises(ValueError, match='ann_files'):
        PartHitRate(data_root=root, ann_files=dict(part='x.txt'))


def test_missing_image(demo_root):
    samples = demo_samples(demo_root)
    samples.append(
        make_sample('images/003.C/unknown.jpg', [[0, 0, 1, 1]], [1.0], [0])
    )
    metric = PartHitRate(data_root=demo_root, ann_format='demo')
    with pytest.raises(KeyError, match='unknown.jpg') as err:
        metric.process(None, [s.to_dict() for s in samples])
    assert 'demo_parts.json' in str(err.value)
    metric = PartHitRate(
        data_root=demo_root, ann_format='demo', skip_missing=True
    )
    out = evaluate(metric, samples)
    assert out['part_hit/s3'] == pytest.approx(200 / 3)


def test_bad_predictions(demo_root):
    metric = PartHitRate(
        data_root=demo_root, ann_format='demo', stage_names=('s4',)
    )
    with pytest.raises(ValueError, match='stage_names'):
        metric.process(None, [demo_samples(demo_root)[0].to_dict()])
    sample = DataSample(metainfo=dict(img_path='images/001.A/a.jpg'))
    with pytest.raises(KeyError, match='pred_boxes'):
        metric.process(None, [sample.to_dict()])


def test_results_are_small_and_picklable(demo_root):
    metric = PartHitRate(data_root=demo_root, ann_format='demo')
    metric.process(None, [s.to_dict() for s in demo_samples(demo_root)])
    for result in metric.results:
        assert set(result) == {'row', 'regions', 'valid', 'size'}
        assert result['regions'].device.type == 'cpu'
        assert result['regions'].numel() <= 2 * 2 * 4
    restored = pickle.loads(pickle.dumps(metric.results))
    assert metric.compute_metrics(restored) == metric.compute_metrics(
        metric.results
    )


def test_evaluator_with_accuracy(demo_root):
    metric = METRICS.build(
        dict(type='PartHitRate', data_root=demo_root, ann_format='demo')
    )
    assert isinstance(metric, PartHitRate)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for metrics in (
            [dict(type='Accuracy', topk=(1,)), metric],
            [
                dict(type='Accuracy', topk=(1,)),
                dict(
                    type='PartHitRate', data_root=demo_root, ann_format='demo'
                ),
            ],
        ):
            evaluator = Evaluator(metrics)
            evaluator.process(demo_samples(demo_root))
            out = evaluator.evaluate(3)
            assert out['accuracy/top1'] == 100
            assert out['part_hit/s3'] == pytest.approx(200 / 3)
            assert not any('loss' in k for k in out)
