# Copyright (c) scrim-mm contributors. All rights reserved.
"""Plot the loss terms and the accuracy of a training run from its log.

Usage::

    python tools/analysis/plot_log.py WORK_DIR_OR_JSON_LOG --out plot.png
        [--log-y]

mmengine writes one JSON object per logged step to
``WORK_DIR/<timestamp>/vis_data/scalars.json`` (and the same lines to
``<timestamp>.json`` beside it). Given a work dir, the newest run in it with
training lines is plotted. Left: every ``loss_*`` key (and the total
``loss``) over the training iterations; right: every ``accuracy/*`` key of
the validations, over epochs (or iterations for iteration-based training).
"""

import argparse
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ['find_log', 'read_log', 'plot_log']


def read_log(path: str) -> Tuple[List[dict], List[dict]]:
    """Read an mmengine scalars JSON log.

    Args:
        path (str): ``scalars.json`` or ``<timestamp>.json``.

    Returns:
        tuple[list[dict], list[dict]]: The training lines (with a ``loss``
        key) and the validation lines (with an ``accuracy/...`` key).

    Raises:
        ValueError: A line is not a JSON object.
    """
    train, val = [], []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(
                    f'{path}, line {number}: not a JSON object ({err}); '
                    'expected an mmengine scalars log.'
                ) from err
            if not isinstance(entry, dict):
                raise ValueError(
                    f'{path}, line {number}: expected a JSON object, got '
                    f'{type(entry).__name__}.'
                )
            if any(k == 'loss' or k.startswith('loss_') for k in entry):
                train.append(entry)
            elif any(k.startswith('accuracy/') for k in entry):
                val.append(entry)
    return train, val


def find_log(path: str) -> str:
    """The JSON log of a work dir's newest run with training lines.

    Args:
        path (str): A JSON log file, or a work dir (or one of its
            ``<timestamp>`` folders).

    Returns:
        str: The JSON log file.

    Raises:
        FileNotFoundError: ``path`` does not exist, or holds no log with
            training lines.
    """
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path}: no such work dir or JSON log.')
    candidates = glob.glob(osp.join(path, 'vis_data', 'scalars.json'))
    candidates += glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json'))
    # Timestamps (YYYYmmdd_HHMMSS) sort in time order: newest first.
    for candidate in sorted(candidates, reverse=True):
        if read_log(candidate)[0]:
            return candidate
    raise FileNotFoundError(
        f'{path} holds no training log: expected '
        '<work_dir>/<timestamp>/vis_data/scalars.json with loss lines '
        '(written by mmengine during tools/train.py).'
    )


def _series(lines: List[dict], key: str, x_key: str) -> Tuple[list, list]:
    points = [(e[x_key], e[key]) for e in lines if key in e and x_key in e]
    return [p[0] for p in points], [p[1] for p in points]


def plot_log(
    path: str, out_file: str, log_y: bool = False, title: Optional[str] = None
) -> Dict:
    """Plot a training log to a PNG.

    Args:
        path (str): A JSON log or a work dir (see :func:`find_log`).
        out_file (str): The picture to write (folders are created).
        log_y (bool): Logarithmic loss axis. Defaults to False.
        title (str, optional): Figure title. Defaults to the log's path.

    Returns:
        dict: ``log`` the file read, ``loss_keys`` plotted, ``acc_keys``
        plotted, ``num_train`` / ``num_val`` lines read.

    Raises:
        ValueError: The log has no loss key.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    log = find_log(path)
    train, val = read_log(log)
    loss_keys = sorted({k for e in train for k in e if k.startswith('loss_')})
    if 'loss' in {k for e in train for k in e}:
        loss_keys.append('loss')
    if not loss_keys:
        raise ValueError(
            f'{log}: no loss_* key in any line; expected the scalars log '
            'of a training run.'
        )
    acc_keys = sorted({k for e in val for k in e if k.startswith('accuracy/')})
    by_epoch = any('epoch' in e for e in train)

    fig = Figure(figsize=(13, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(
        1, 2, gridspec_kw=dict(width_ratios=[1.6, 1])
    )
    for key in loss_keys:
        xs, ys = _series(train, key, 'step')
        if key == 'loss':
            ax_loss.plot(xs, ys, color='black', lw=2, label='loss (total)')
        else:
            ax_loss.plot(xs, ys, lw=1.2, label=key)
    ax_loss.set_xlabel('iteration')
    ax_loss.set_ylabel('loss')
    if log_y:
        ax_loss.set_yscale('log')
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize=8, ncol=2, loc='upper right')
    ax_loss.set_title('training losses')
    for key in acc_keys:
        xs, ys = _series(val, key, 'step')
        ax_acc.plot(xs, ys, marker='o', label=key)
    ax_acc.set_xlabel('epoch' if by_epoch else 'iteration')
    ax_acc.set_ylabel('accuracy (%)')
    ax_acc.grid(alpha=0.3)
    ax_acc.set_title('validation accuracy')
    if acc_keys:
        ax_acc.legend(fontsize=8)
    else:
        ax_acc.text(
            0.5,
            0.5,
            'no validation in this log',
            ha='center',
            transform=ax_acc.transAxes,
        )
    fig.suptitle(title or log, fontsize=10)
    fig.tight_layout()
    folder = osp.dirname(out_file)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(out_file)
    return dict(
        log=log,
        loss_keys=loss_keys,
        acc_keys=acc_keys,
        num_train=len(train),
        num_val=len(val),
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): The arguments; None reads
            ``sys.argv``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Plot the losses and accuracy of a training log'
    )
    parser.add_argument('log', help='work dir or JSON log (scalars.json)')
    parser.add_argument('--out', default='plot.png', help='picture to write')
    parser.add_argument(
        '--log-y', action='store_true', help='logarithmic loss axis'
    )
    parser.add_argument('--title', help='figure title')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Entry point; returns what :func:`plot_log` returns.

    Args:
        argv (Sequence[str], optional): The arguments; None reads
            ``sys.argv``.

    Returns:
        dict: See :func:`plot_log`.
    """
    args = parse_args(argv)
    info = plot_log(args.log, args.out, log_y=args.log_y, title=args.title)
    print(
        f'{args.out}: {len(info["loss_keys"])} loss curves and '
        f'{len(info["acc_keys"])} accuracy curves from {info["log"]}'
    )
    return info


if __name__ == '__main__':
    main()
