# Copyright (c) scrim-mm contributors. All rights reserved.
"""Draw the SCRIM architecture diagram (docs/figures/architecture.png).

Usage::

    python tools/misc/draw_architecture.py
        [--out docs/figures/architecture.png]

The diagram follows ``docs/design.md``: the backbone's stage maps feed one
CPL (``CPLNeck``) and one FPL (``FPLHead``) per stage; the FPL regions are
cropped from the input and re-encoded by the same backbone; ``SCRIMHead``
fuses the global feature, the CPL part vectors and the FPL part features.
Shapes are those of ResNet-50 at 448 px.
"""

import argparse
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

__all__ = ['draw_architecture']

# name -> (x, y, width, height, label, face colour, losses); axes units.
_BOXES: Dict[str, Tuple[float, float, float, float, str, str, str]] = {
    'input': (
        0.2,
        4.1,
        1.5,
        1.0,
        'input image\nB x 3 x 448 x 448',
        '#eeeeee',
        '',
    ),
    'backbone': (
        2.3,
        3.2,
        1.9,
        2.8,
        'backbone\n(ResNet-50, ...)\n\nstage 3\nF3: B x 1024 x 28 x 28'
        '\n\nstage 4\nF4: B x 2048 x 14 x 14',
        '#dde8f5',
        '',
    ),
    'cpl3': (
        5.0,
        5.5,
        2.3,
        1.7,
        'CPL s3 (CPLNeck)\nOSME: P part excitations\npart vectors, '
        'embeddings',
        '#fde9c9',
        'loss_cpl_s3, loss_contrast_s3',
    ),
    'cpl4': (
        5.0,
        2.0,
        2.3,
        1.7,
        'CPL s4 (CPLNeck)\nOSME: P part excitations\npart vectors, '
        'embeddings',
        '#fde9c9',
        'loss_cpl_s4, loss_contrast_s4',
    ),
    'fpl3': (
        8.1,
        5.5,
        2.5,
        1.7,
        'FPL s3 (FPLHead)\nnavigator scores anchors\nhard NMS: best M / K',
        '#d9f2d9',
        'loss_teacher_s3, loss_rank_s3',
    ),
    'fpl4': (
        8.1,
        2.0,
        2.5,
        1.7,
        'FPL s4 (FPLHead)\nnavigator scores anchors\nhard NMS: best M / K',
        '#d9f2d9',
        'loss_teacher_s4, loss_rank_s4',
    ),
    'crop': (
        8.1,
        3.95,
        2.5,
        1.3,
        'crop the regions from the input\n(roi_align, 224 x 224), '
        're-encode\nwith the shared backbone',
        '#e6e0f5',
        '',
    ),
    'head': (
        11.5,
        3.45,
        2.3,
        2.3,
        'fusion (SCRIMHead)\nconcat(global feature,\nCPL part vectors,\n'
        'K FPL part features\nper stage) -> logits',
        '#f5d5d5',
        'loss_fused, loss_raw',
    ),
    'pred': (
        14.5,
        4.1,
        1.4,
        1.0,
        'class scores\n+ regions',
        '#eeeeee',
        '',
    ),
}

# Straight arrows between box centres: (start, end, label, label offset
# (dx, dy) from the middle of the arrow, so the label leaves it visible).
_ARROWS: Sequence[Tuple[str, str, str, Tuple[float, float]]] = (
    ('input', 'backbone', '', (0, 0)),
    ('backbone', 'cpl3', 'F3', (-0.15, 0.2)),
    ('backbone', 'cpl4', 'F4', (-0.15, -0.2)),
    ('cpl3', 'fpl3', 'enhanced\nF3\n(detached)', (0, 0.45)),
    ('cpl4', 'fpl4', 'enhanced\nF4\n(detached)', (0, 0.45)),
    ('fpl3', 'crop', 'boxes', (0.35, 0)),
    ('fpl4', 'crop', 'boxes', (0.35, 0)),
    ('crop', 'head', 'part\nfeatures', (0, 0.35)),
    ('head', 'pred', '', (0, 0)),
)

# Routed arrows around the boxes: (points, label).
_LANES: Sequence[Tuple[Sequence[Tuple[float, float]], str]] = (
    (
        ((6.15, 7.2), (6.15, 7.65), (12.3, 7.65), (12.3, 5.75)),
        'part vectors s3',
    ),
    (
        ((6.15, 2.0), (6.15, 1.55), (12.3, 1.55), (12.3, 3.45)),
        'part vectors s4',
    ),
    (
        ((3.25, 3.2), (3.25, 1.05), (13.1, 1.05), (13.1, 3.45)),
        'global feature GAP(F4)',
    ),
)


def _centre(box: Tuple) -> Tuple[float, float]:
    x, y, w, h = box[:4]
    return x + w / 2, y + h / 2


def draw_architecture(out_file: str, dpi: int = 110) -> Dict:
    """Draw the diagram and write it as a PNG.

    Args:
        out_file (str): The PNG to write (folders are created).
        dpi (int): Resolution. Defaults to 110.

    Returns:
        dict: ``boxes`` and ``arrows`` drawn (their counts) and
        ``size`` (width, height) in pixels.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig = Figure(figsize=(14, 7.0), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 16.1)
    ax.set_ylim(0.3, 8.8)
    ax.set_axis_off()
    patches = {}
    label_box = dict(facecolor='white', edgecolor='none', pad=0.5)
    for name, (x, y, w, h, label, face, losses) in _BOXES.items():
        patch = FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle='round,pad=0.04,rounding_size=0.12',
            facecolor=face,
            edgecolor='#444444',
            lw=1.2,
        )
        ax.add_patch(patch)
        patches[name] = patch
        shift = 0.15 if losses else 0.0
        ax.text(
            x + w / 2,
            y + h / 2 + shift,
            label,
            ha='center',
            va='center',
            fontsize=8.5,
        )
        if losses:
            ax.text(
                x + w / 2,
                y + 0.2,
                losses,
                ha='center',
                va='center',
                fontsize=7.5,
                style='italic',
                color='#8b1a1a',
            )
    arrow_style = dict(
        arrowstyle='-|>', mutation_scale=13, lw=1.2, color='#333333'
    )
    for start, end, label, (dx, dy) in _ARROWS:
        (xa, ya), (xb, yb) = _centre(_BOXES[start]), _centre(_BOXES[end])
        ax.add_patch(
            FancyArrowPatch(
                posA=(xa, ya),
                posB=(xb, yb),
                patchA=patches[start],
                patchB=patches[end],
                shrinkA=2,
                shrinkB=2,
                **arrow_style,
            )
        )
        if label:
            ax.text(
                (xa + xb) / 2 + dx,
                (ya + yb) / 2 + dy,
                label,
                ha='center',
                va='center',
                fontsize=7.5,
                color='#333333',
            )
    for points, label in _LANES:
        xs, ys = zip(*points)
        ax.plot(xs[:-1], ys[:-1], color='#333333', lw=1.2)
        ax.add_patch(
            FancyArrowPatch(
                posA=points[-2],
                posB=points[-1],
                shrinkA=0,
                shrinkB=3,
                **arrow_style,
            )
        )
        (x1, y1), (x2, _) = points[1], points[2]
        ax.text(
            (x1 + x2) / 2,
            y1,
            label,
            ha='center',
            va='center',
            fontsize=7.5,
            color='#333333',
            bbox=label_box,
        )
    ax.text(
        8.05,
        8.45,
        'SCRIM: dual coarse-part (CPL) and fine-part (FPL) localisation '
        'on backbone stages 3 and 4',
        ha='center',
        va='center',
        fontsize=11,
        weight='bold',
    )
    ax.text(
        8.05,
        0.55,
        'Shapes of ResNet-50 at 448 px. M regions per FPL in training '
        '(6), K at test (4). The navigators see detached maps and learn '
        'only from the ranking loss; loss names in italics.',
        ha='center',
        va='center',
        fontsize=8,
        color='#555555',
    )
    folder = osp.dirname(out_file)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(out_file, dpi=dpi)
    w, h = fig.get_size_inches() * dpi
    return dict(
        boxes=len(_BOXES),
        arrows=len(_ARROWS) + len(_LANES),
        size=(round(w), round(h)),
    )


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Entry point.

    Args:
        argv (Sequence[str], optional): The arguments; None reads
            ``sys.argv``.

    Returns:
        dict: What :func:`draw_architecture` returns.
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        default=osp.join('docs', 'figures', 'architecture.png'),
        help='PNG to write',
    )
    parser.add_argument('--dpi', type=int, default=110)
    args = parser.parse_args(argv)
    info = draw_architecture(args.out, dpi=args.dpi)
    print(f'{args.out}: {info["size"][0]} x {info["size"][1]} px')
    return info


if __name__ == '__main__':
    main()
