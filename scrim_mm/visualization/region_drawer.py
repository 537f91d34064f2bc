# Copyright (c) scrim-mm contributors. All rights reserved.
"""Draw what SCRIM found in an image: FPL regions and CPL part attentions."""

import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.visualization import Visualizer
from mmpretrain.structures import DataSample
from PIL import Image

from ..structures import boxes_to_original, input_region, input_view

__all__ = ['draw_regions', 'stage_name', 'STAGE_COLORS']

#: One colour (RGB) per FPL / CPL stage, in stage order.
STAGE_COLORS = (
    (255, 140, 0),
    (0, 190, 255),
    (60, 220, 60),
    (255, 60, 200),
)

_VISUALIZER: Optional[Visualizer] = None


def _visualizer() -> Visualizer:
    """A private mmengine Visualizer.

    Built directly rather than with ``Visualizer.get_instance``, so that it
    never becomes mmengine's "current" visualizer in place of the runner's.
    """
    global _VISUALIZER
    if _VISUALIZER is None:
        _VISUALIZER = Visualizer(name='scrim_region_visualizer')
    return _VISUALIZER


def _resize(image: np.ndarray, size: int) -> Tuple[np.ndarray, float]:
    """Rescale an RGB image so that its shorter side is ``size``."""
    scale = size / min(image.shape[:2])
    if scale == 1:
        return image, scale
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    shape = (round(image.shape[0] * scale), round(image.shape[1] * scale))
    out = F.interpolate(
        t[None].float(), size=shape, mode='bilinear', antialias=scale < 1
    )[0]
    out = out.round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    return out, scale


def stage_name(names: Sequence[str], index: int) -> str:
    """The name of stage ``index``, or ``'stage <index>'`` if unnamed.

    Args:
        names (Sequence[str]): The stage names.
        index (int): A stage index (e.g. of ``pred_box_stages``).

    Returns:
        str: The name.
    """
    return names[index] if 0 <= index < len(names) else f'stage {index}'


def _rgb01(color: Sequence[int]) -> tuple:
    return tuple(c / 255.0 for c in color)


def _label_positions(corners: torch.Tensor, font: int) -> torch.Tensor:
    """Move score labels down until they do not cover earlier ones."""
    placed: List[Tuple[float, float]] = []
    for x, y in corners.tolist():
        while any(
            abs(x - px) < 2.6 * font and abs(y - py) < 1.4 * font
            for px, py in placed
        ):
            y += 1.4 * font
        placed.append((x, y))
    return torch.tensor(placed)


def _inside(boxes: torch.Tensor, vis: Visualizer) -> torch.Tensor:
    """Keep box corners off the image's outer edge (mmengine warns)."""
    boxes = boxes.clone()
    boxes[..., 0::2] = boxes[..., 0::2].clamp(0, vis.width - 1)
    boxes[..., 1::2] = boxes[..., 1::2].clamp(0, vis.height - 1)
    return boxes


def _regions_panel(
    image: np.ndarray, data_sample: DataSample, meta: Mapping, size: int
) -> tuple:
    """Draw the boxes on the (rescaled) original image."""
    vis = _visualizer()
    shown_image, scale = _resize(image, size)
    vis.set_image(shown_image)
    font = max(8, round(min(vis.width, vis.height) / 28))
    region = input_region(meta)
    ori_h, ori_w = image.shape[:2]
    if (region[2] - region[0] < ori_w - 1) or (
        region[3] - region[1] < ori_h - 1
    ):
        vis.draw_bboxes(
            _inside(region * scale, vis),
            edge_colors=(255, 255, 255),
            line_styles='--',
            line_widths=1,
        )
    boxes = torch.zeros(0, 4)
    scores = torch.zeros(0)
    stages = torch.zeros(0, dtype=torch.long)
    if 'pred_boxes' in data_sample:
        boxes = boxes_to_original(data_sample.pred_boxes.cpu(), meta)
        scores = data_sample.pred_box_scores.detach().float().cpu()
        stages = data_sample.pred_box_stages.cpu().long()
    if len(boxes):
        colors = [
            STAGE_COLORS[int(s) % len(STAGE_COLORS)] for s in stages.tolist()
        ]
        shown = _inside(boxes * scale, vis)
        vis.draw_bboxes(shown, edge_colors=colors, line_widths=2)
        vis.draw_texts(
            [f'{float(s):.2f}' for s in scores],
            positions=_label_positions(shown[:, :2], font),
            colors=(0, 0, 0),
            font_sizes=font,
            bboxes=[
                dict(facecolor=_rgb01(c), alpha=0.8, pad=1, edgecolor='none')
                for c in colors
            ],
        )
    return vis.get_image(), boxes, scores, stages.tolist()


def _attention_panels(
    image: np.ndarray,
    meta: Mapping,
    attention_maps: Sequence[torch.Tensor],
    size: int,
) -> List[List[np.ndarray]]:
    """One heat map over the network-input view per stage and part."""
    view = _resize(input_view(image, meta), size)[0]
    rows = []
    for maps in attention_maps:
        maps = maps.detach().float().cpu()
        if maps.dim() != 3:
            raise ValueError(
                'attention_maps must hold one (P, H, W) map per stage, got '
                f'shape {tuple(maps.shape)}.'
            )
        maps = F.interpolate(maps[None], view.shape[:2], mode='bilinear')
        maps = maps[0]
        rows.append(
            [
                Visualizer.draw_featmap(
                    m[None], overlaid_image=view, alpha=0.5
                )
                for m in maps
            ]
        )
    return rows


def _title(data_sample: DataSample, classes: Optional[Sequence[str]]) -> tuple:
    """The predicted (and, if known, true) class for the figure title."""

    def name(label: int) -> str:
        if classes is not None and 0 <= label < len(classes):
            return str(classes[label])
        return f'class {label}'

    label, score = None, None
    parts = []
    if 'pred_score' in data_sample:
        pred_score = data_sample.pred_score.detach()
        score = float(pred_score.max())
        label = int(pred_score.argmax())
        parts.append(f'prediction: {name(label)} ({score:.2f})')
    if 'gt_label' in data_sample and data_sample.gt_label.numel():
        parts.append(f'truth: {name(int(data_sample.gt_label[0]))}')
    return '   '.join(parts), label, score


def draw_regions(
    image: np.ndarray,
    data_sample: DataSample,
    classes: Optional[Sequence[str]] = None,
    stage_names: Sequence[str] = ('s3', 's4'),
    attention_maps: Optional[Sequence[torch.Tensor]] = None,
    attention_stage_names: Optional[Sequence[str]] = None,
    out_file: Optional[str] = None,
    display_size: int = 320,
    metainfo: Optional[Mapping] = None,
    palette: bool = False,
) -> Dict:
    """Picture of one prediction of SCRIM on its original image.

    Left, the original image with the selected FPL regions of every stage
    (one colour per stage, :data:`STAGE_COLORS`), the navigator score in the
    top-left corner of each box and, dashed, the part of the image the
    network input shows (when the test pipeline cropped). Right, one row
    per CPL stage: the part-attention maps (``CPLNeck.attention_maps``) as
    heat maps over the network-input view. The title holds the predicted
    class with its score (and the true class when the sample has one).

    Boxes are mapped from network-input pixels to the original image with
    the sample's metainfo (see :mod:`scrim_mm.structures.box_mapping`).
    The boxes, scores and heat maps are drawn with mmengine's
    :class:`~mmengine.visualization.Visualizer`; matplotlib lays them out.

    Args:
        image (np.ndarray): The original image, RGB, uint8, (H, W, 3), of
            the sample's ``ori_shape``.
        data_sample (DataSample): A prediction of SCRIM: ``pred_score`` and,
            with an FPL head, ``pred_boxes`` (network-input pixels),
            ``pred_box_scores`` and ``pred_box_stages``; its metainfo with
            ``ori_shape``, ``img_shape`` and (after a resize)
            ``scale_factor``.
        classes (Sequence[str], optional): Class names for the title.
            Defaults to None (class indices).
        stage_names (Sequence[str]): Names of the FPL stages, indexed by
            ``pred_box_stages``. Defaults to ``('s3', 's4')``.
        attention_maps (Sequence[torch.Tensor], optional): One (P, H_s, W_s)
            map per CPL stage for this sample; by default the sample's
            ``part_attentions`` field if any, else no heat maps.
        attention_stage_names (Sequence[str], optional): Names of the CPL
            stages. Defaults to ``stage_names``.
        out_file (str, optional): Write the picture to this PNG file
            (folders are created). Defaults to None.
        display_size (int): The image and the network-input view are drawn
            rescaled to this shorter side, so that boxes and text look the
            same on small and large images. Defaults to 320.
        metainfo (Mapping, optional): Use this instead of the sample's
            metainfo to map boxes and attentions. Defaults to None.
        palette (bool): Write a 256-colour PNG, several times smaller
            (e.g. for a whole test set), with some colour banding.
            Defaults to False.

    Returns:
        dict: ``boxes`` (N, 4) drawn, in original-image pixels;
        ``scores`` (N,) their navigator scores; ``stages`` (N,) their stage
        names; ``pred_label`` and ``pred_score`` (None without a
        prediction); ``num_heatmaps``; ``image`` the picture (RGB uint8).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            'draw_regions expects an RGB uint8 image of shape (H, W, 3), '
            f'got {image.dtype} {image.shape}.'
        )
    if attention_maps is None:
        attention_maps = data_sample.get('part_attentions', None) or ()
    if attention_stage_names is None:
        attention_stage_names = stage_names
    if display_size < 16:
        raise ValueError(
            f'display_size={display_size}: expected at least 16 pixels.'
        )

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if metainfo is None:
        metainfo = data_sample.metainfo
    main, boxes, scores, stages = _regions_panel(
        image, data_sample, metainfo, display_size
    )
    heat_rows = _attention_panels(
        image, metainfo, attention_maps, display_size
    )
    title, label, score = _title(data_sample, classes)

    num_cols = max([len(row) for row in heat_rows], default=0)
    num_rows = max(1, len(heat_rows))
    # Layout in inches; at 100 dpi the panels show the images 1:1.
    panel, pad, gap = display_size / 100, 0.15, 0.15
    title_h, label_h, legend_h = 0.55, 0.3, 0.4
    main_h = num_rows * panel + (num_rows - 1) * label_h
    main_w = main_h * main.shape[1] / main.shape[0]
    width = 2 * pad + main_w + num_cols * (gap + panel)
    height = legend_h + main_h + label_h + title_h
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)

    def axes(left: float, bottom: float, w: float, h: float):
        ax = fig.add_axes(
            (left / width, bottom / height, w / width, h / height)
        )
        ax.set_axis_off()
        return ax

    ax = axes(pad, legend_h, main_w, main_h)
    ax.imshow(main)
    ax.set_title('FPL regions (navigator score)', fontsize=10)
    drawn = sorted(set(stages))
    if drawn:
        ax.legend(
            handles=[
                Patch(
                    edgecolor=_rgb01(STAGE_COLORS[s % len(STAGE_COLORS)]),
                    facecolor='none',
                    label=f'FPL {stage_name(stage_names, s)}',
                )
                for s in drawn
            ],
            loc='upper center',
            bbox_to_anchor=(0.5, 0.0),
            ncol=len(drawn),
            fontsize=9,
            frameon=False,
        )
    for r, row in enumerate(heat_rows):
        bottom = legend_h + (num_rows - 1 - r) * (panel + label_h)
        for c, heat in enumerate(row):
            hax = axes(
                pad + main_w + gap + c * (gap + panel), bottom, panel, panel
            )
            hax.imshow(heat)
            hax.set_title(
                f'CPL {stage_name(attention_stage_names, r)} part {c + 1}',
                fontsize=10,
            )
    fig.suptitle(title, fontsize=12)
    # Render once; the PNG is written from the same pixels.
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    if out_file is not None:
        folder = osp.dirname(out_file)
        if folder:
            os.makedirs(folder, exist_ok=True)
        png = Image.fromarray(picture)
        if palette:
            png = png.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        png.save(out_file, format='PNG', optimize=palette)
    return dict(
        boxes=boxes,
        scores=scores,
        stages=[stage_name(stage_names, s) for s in stages],
        pred_label=label,
        pred_score=score,
        num_heatmaps=sum(len(row) for row in heat_rows),
        image=picture,
    )
