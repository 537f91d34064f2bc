# Copyright (c) scrim-mm contributors. All rights reserved.
"""A browser page (Gradio) that shows what SCRIM sees in an image.

``tools/demo/app.py`` is the command; the logic sits here so that tests
import it. Gradio is imported only when the page is built (the ``demo``
extra, ``pip install -e .[demo]``).
"""

import html
import logging
import os
import os.path as osp
import threading
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmcv.transforms import LoadImageFromFile
from mmengine.config import Config
from mmengine.fileio import get as read_bytes
from mmengine.logging import print_log
from PIL import Image

from ..visualization import STAGE_COLORS, draw_regions, stage_name

__all__ = [
    'SCRIMDemo',
    'check_demo_sources',
    'config_examples',
    'read_demo_image',
]

#: Backends of ``tools/demo/app.py --backend``.
BACKENDS = ('pytorch', 'onnxruntime')
#: The page's note for a backend without part attentions.
NO_ATTENTION_NOTE = (
    'The onnxruntime backend has no part attentions (the exported graph '
    'does not hold them): the picture shows the mined regions only.'
)
_CONFIG_SUFFIXES = ('.py', '.json', '.yaml', '.yml')
# Modes whose colour channels cv2 makes from one grey channel.
_GREY_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L', 'F')


def _is_url(path: str) -> bool:
    return '://' in path


def check_demo_sources(
    config: Optional[str], checkpoint: str, backend: str = 'pytorch'
) -> None:
    """Check that the config and the checkpoint exist before loading.

    Args:
        config (str, optional): A config file or a model name of
            ``mmpretrain.list_models('scrim*')``; None only with
            ``backend='onnxruntime'`` (the file's metadata then applies).
        checkpoint (str): A checkpoint file or URL (an ``.onnx`` file for
            onnxruntime).
        backend (str): ``'pytorch'`` or ``'onnxruntime'``. Defaults to
            ``'pytorch'``.

    Raises:
        ValueError: An unknown backend, or no config for PyTorch.
        FileNotFoundError: The config or the checkpoint does not exist;
            the message names it.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f'backend={backend}: unknown backend; use one of '
            f'{", ".join(BACKENDS)}.'
        )
    if config is None:
        if backend == 'pytorch':
            raise ValueError(
                'config=None: the pytorch backend needs a config; give a '
                'config file or a model name.'
            )
    elif not osp.isfile(config):
        looks_like_file = (
            config.endswith(_CONFIG_SUFFIXES) or os.sep in config
        ) or backend == 'onnxruntime'
        known = False
        if not looks_like_file:
            from mmpretrain import list_models

            known = config in list_models(config)
        if not known:
            raise FileNotFoundError(
                f'config={config}: no such config file or model name; give '
                'a config file or a name of mmpretrain.list_models('
                "'scrim*')."
            )
    if not _is_url(checkpoint) and not osp.isfile(checkpoint):
        kind = 'ONNX file' if backend == 'onnxruntime' else 'checkpoint file'
        raise FileNotFoundError(
            f'checkpoint={checkpoint}: no such {kind}; give the path of '
            'one (e.g. work_dirs/demo/epoch_16.pth after `make demo`).'
        )


def config_examples(config: Config, max_examples: int = 4) -> List[str]:
    """A few images of the config's test set, one per class first.

    Args:
        config (Config): A config with a ``test_dataloader``.
        max_examples (int): At most this many. Defaults to 4.

    Returns:
        list[str]: Image paths; empty when the config has no test set or
        its files are not there (e.g. a model name without its data).
    """
    from mmpretrain.registry import DATASETS

    loader = config.get('test_dataloader') or {}
    dataset = loader.get('dataset') or {}
    # RepeatDataset / ClassBalancedDataset keep the real one in `dataset`.
    while isinstance(dataset.get('dataset'), dict):
        dataset = dataset['dataset']
    if not dataset.get('type') or max_examples < 1:
        return []
    cfg = dict(dataset, pipeline=[], lazy_init=False)
    try:
        test_set = DATASETS.build(cfg)
    except Exception as err:  # any missing or unreadable part of the set
        print_log(
            f'No examples from the test set ({type(err).__name__}: {err}).',
            logger='current',
            level=logging.INFO,
        )
        return []
    first, rest, labels = [], [], set()
    for i in range(len(test_set)):
        info = test_set.get_data_info(i)
        path = info.get('img_path')
        if not path or not osp.isfile(path):
            continue
        label = int(np.asarray(info.get('gt_label', -1)).reshape(-1)[0])
        if label in labels:
            rest.append(path)
            continue
        labels.add(label)
        first.append(path)
        if len(first) == max_examples:
            break
    return (first + rest)[:max_examples]


def read_demo_image(
    path: Optional[str],
    max_side: int = 4096,
    max_pixels: int = 150_000_000,
) -> Tuple[np.ndarray, List[str]]:
    """Read an uploaded file as ``tools/infer.py`` reads an image.

    ``mmcv.imread`` in colour mode, as the inferencer does: a grey image
    gets three equal channels, an alpha channel is dropped. An image whose
    longer side is over ``max_side`` is shrunk to it (the test pipeline
    resizes far below it anyway), which keeps the server's memory bounded;
    one over ``max_pixels`` is refused from its header, before decoding.

    Args:
        path (str, optional): The uploaded file.
        max_side (int): Longest side kept, in pixels. Defaults to 4096.
        max_pixels (int): Largest image read, in pixels. Defaults to
            150,000,000.

    Returns:
        tuple[np.ndarray, list[str]]: The image (BGR, uint8, (H, W, 3)) and
        notes for the page about what was converted.

    Raises:
        ValueError: No file, an empty file, a file no decoder reads, or an
            image over ``max_pixels`` (or over what PIL reads safely); the
            message is for the page.
    """
    if not path:
        raise ValueError(
            'upload=None: no image was given; upload an image or pick an '
            'example.'
        )
    name = osp.basename(path)
    if not osp.isfile(path):
        raise ValueError(
            f'upload={name}: the file is not there any more; upload it '
            'again.'
        )
    if osp.getsize(path) == 0:
        raise ValueError(
            f'upload={name}: the file is empty (0 bytes); upload an image '
            'file (JPEG, PNG, BMP, TIFF or WebP).'
        )
    notes = []
    mode, size = None, None
    try:
        with Image.open(path) as header:
            mode, size = header.mode, header.size
    except Image.DecompressionBombError as err:
        raise ValueError(
            f'upload={name}: the image is too large (more pixels than '
            'PIL decodes safely, Image.MAX_IMAGE_PIXELS x 2); shrink it '
            'first.'
        ) from err
    except (OSError, ValueError):
        pass  # PIL does not know it; cv2 may
    if size is not None and size[0] * size[1] > max_pixels:
        raise ValueError(
            f'upload={name}: the image is too large ({size[0]} x {size[1]}'
            f' px, more than {max_pixels:,} pixels); shrink it first.'
        )
    img = mmcv.imfrombytes(read_bytes(path), flag='color')
    if img is None:
        raise ValueError(
            f'upload={name}: not an image that can be read; upload an '
            'image file (JPEG, PNG, BMP, TIFF or WebP).'
        )
    if mode in _GREY_MODES:
        notes.append(
            f'The image is grey (mode {mode}): read with three equal '
            'channels, as tools/infer.py reads it.'
        )
    elif mode is not None and ('A' in mode or mode == 'P'):
        notes.append(
            f'The image has mode {mode}: its alpha channel (transparency) '
            'is dropped, as tools/infer.py drops it.'
        )
    height, width = img.shape[:2]
    if max(height, width) > max_side:
        img = mmcv.imrescale(img, (max_side, max_side))
        notes.append(
            f'The image is {width} x {height} px: shrunk to '
            f'{img.shape[1]} x {img.shape[0]} px (longer side at most '
            f'{max_side} px).'
        )
    return img, notes


def _drop_loading(inferencer) -> None:
    """Take every image-loading step out of the inferencer's pipeline.

    The page hands the inferencer decoded images. mmpretrain removes only
    ``LoadImageFromFile`` from the test pipeline; the config a training
    run dumps into its work dir loads with ``SCRIMLoadImageFromFile``
    (``tools/train.py`` puts it in every loader), which would need a path.
    """
    pipeline = getattr(inferencer, 'pipeline', None)
    steps = getattr(pipeline, 'transforms', None)
    if isinstance(steps, list):
        pipeline.transforms = [
            t for t in steps if not isinstance(t, LoadImageFromFile)
        ]


def _regions_table(info: Dict, stage_ids: Sequence[int]) -> str:
    """HTML table of the regions, per stage, best navigator score first."""
    rows = sorted(
        zip(info['stages'], stage_ids, info['scores'].tolist(), info['boxes']),
        key=lambda r: (r[1], -r[2]),
    )
    if not rows:
        return '<p>No regions (the model has no FPL head).</p>'
    lines = [
        '<table class="scrim-regions"><thead><tr><th>Stage</th>'
        '<th>Rank</th><th>Navigator score</th>'
        '<th>Box (x1, y1, x2, y2), image pixels</th></tr></thead><tbody>'
    ]
    rank, last = 0, None
    for name, sid, score, box in rows:
        rank = rank + 1 if sid == last else 1
        last = sid
        color = STAGE_COLORS[sid % len(STAGE_COLORS)]
        swatch = (
            '<span style="display:inline-block;width:0.9em;height:0.9em;'
            f'border:3px solid rgb{tuple(color)};margin-right:0.4em">'
            '</span>'
        )
        coords = ', '.join(f'{float(v):.0f}' for v in box)
        lines.append(
            f'<tr><td>{swatch}{html.escape(str(name))}</td><td>{rank}</td>'
            f'<td>{score:.3f}</td><td>({coords})</td></tr>'
        )
    lines.append('</tbody></table>')
    return ''.join(lines)


class SCRIMDemo:
    """What the demo page does, without the page: load once, predict.

    The model is loaded once, at construction. :meth:`predict` reads an
    uploaded file as ``tools/infer.py`` does (:func:`read_demo_image`),
    runs the model and draws the region picture of
    :func:`~scrim_mm.visualization.draw_regions` (the FPL regions in the
    stage colours with their navigator scores, and the CPL part attentions
    of each stage over the image). A lock makes requests take turns: the
    model never runs twice at the same time, even outside Gradio's queue.
    Bad input comes back as a message, never as an exception.

    :meth:`build` makes the Gradio page; :meth:`launch` serves it.

    Args:
        config (str, optional): A config file or a model name of
            ``mmpretrain.list_models('scrim*')``; with onnxruntime it may
            be None (the file's metadata then applies).
        checkpoint (str): The checkpoint (an ``.onnx`` file for
            onnxruntime).
        device (str, optional): E.g. ``'cpu'``. Defaults to None (CUDA
            when available, else the CPU).
        backend (str): ``'pytorch'`` or ``'onnxruntime'``. Defaults to
            ``'pytorch'``.
        examples (Sequence[str], optional): Example images; None takes a
            few from the config's test set when its files are there.
            Defaults to None.
        max_examples (int): At most this many examples from the test set.
            Defaults to 4.
        topk (int): Classes shown. Defaults to 5.
        max_side (int): See :func:`read_demo_image`. Defaults to 4096.
        display_size (int): Shorter side of the images in the picture (see
            :func:`draw_regions`). Defaults to 320.

    Example:
        >>> demo = SCRIMDemo('configs/scrim/scrim_r18_demo.py',
        ...                  'work_dirs/demo/epoch_16.pth', device='cpu')
        >>> answer = demo.predict('bird.jpg')
        >>> answer['topk'], answer['regions'], answer['message']
        >>> demo.launch(port=7860)  # the page, until Ctrl+C
    """

    def __init__(
        self,
        config: Optional[str],
        checkpoint: str,
        device: Optional[str] = None,
        backend: str = 'pytorch',
        examples: Optional[Sequence[str]] = None,
        max_examples: int = 4,
        topk: int = 5,
        max_side: int = 4096,
        display_size: int = 320,
    ) -> None:
        check_demo_sources(config, checkpoint, backend)
        if topk < 1:
            raise ValueError(f'topk={topk}: expected a positive integer.')
        self.backend = backend
        self.topk = topk
        self.max_side = max_side
        self.display_size = display_size
        self.checkpoint = checkpoint
        self._lock = threading.Lock()
        if backend == 'onnxruntime':
            from ..deployment import SCRIMONNXInferencer

            providers = ['CPUExecutionProvider']
            if str(device or 'cpu').startswith('cuda'):
                providers.insert(0, 'CUDAExecutionProvider')
            self.inferencer = SCRIMONNXInferencer(
                checkpoint, config=config, providers=providers
            )
            full_config = Config.fromfile(config) if config else None
        else:
            from .scrim_inferencer import SCRIMInferencer

            self.inferencer = SCRIMInferencer(
                config, pretrained=checkpoint, device=device
            )
            full_config = self.inferencer.model._config
        _drop_loading(self.inferencer)
        #: Whether the page can show part attentions.
        self.has_attention = backend == 'pytorch' and hasattr(
            getattr(self.inferencer.model, 'neck', None), 'attention_maps'
        )
        if examples is None:
            examples = (
                config_examples(full_config, max_examples)
                if full_config is not None
                else []
            )
        #: Paths of the example images.
        self.examples = [osp.abspath(p) for p in examples]

    def _class_name(self, label: int) -> str:
        classes = self.inferencer.classes
        if classes is not None and 0 <= label < len(classes):
            return str(classes[label])
        return f'class {label}'

    @staticmethod
    def _failure(message: str) -> Dict:
        return dict(
            ok=False,
            topk=None,
            picture=None,
            regions=[],
            regions_html='',
            message=message,
        )

    @torch.no_grad()
    def predict(self, path: Optional[str]) -> Dict:
        """Classify one uploaded file and draw what the model found.

        Args:
            path (str, optional): The file (None when the upload is empty).

        Returns:
            dict: ``ok`` (False for bad input: then only ``message``
            counts); ``topk`` ``{class name: score}`` of the best classes,
            best first; ``picture`` the region picture (RGB uint8);
            ``regions`` ``[{'stage', 'rank', 'score', 'box'}, ...]`` in
            original-image pixels, per stage by rank; ``regions_html``
            the same as a table; ``message`` the summary (Markdown), with
            what was converted and, for onnxruntime, that there are no
            part attentions.
        """
        try:
            img, notes = read_demo_image(path, max_side=self.max_side)
        except ValueError as err:
            return self._failure(str(err))
        name = osp.basename(path)
        with self._lock:
            try:
                # preprocess + forward: the inferencer's __call__ without
                # its progress bar, which would print at every request.
                (batch,) = self.inferencer.preprocess([img], batch_size=1)
                (pred,) = self.inferencer.forward(batch)
                rgb = np.ascontiguousarray(img[..., ::-1])
                info = draw_regions(
                    rgb,
                    pred,
                    classes=self.inferencer.classes,
                    stage_names=self.inferencer.stage_names,
                    attention_stage_names=(
                        self.inferencer.attention_stage_names
                    ),
                    display_size=self.display_size,
                )
            except Exception as err:  # the server must go on serving
                print_log(
                    f'upload={name}: the model failed\n'
                    + traceback.format_exc(),
                    logger='current',
                    level=logging.ERROR,
                )
                return self._failure(
                    f'upload={name}: the model failed on this image '
                    f'({type(err).__name__}: {err}); try another image, '
                    'and see the server log.'
                )
        scores = pred.pred_score.float()
        top_scores, top_labels = scores.topk(min(self.topk, scores.numel()))
        topk = {
            self._class_name(int(j)): float(s)
            for s, j in zip(top_scores, top_labels)
        }
        stage_ids = (
            pred.pred_box_stages.tolist() if 'pred_box_stages' in pred else []
        )
        regions_html = _regions_table(info, stage_ids)
        regions, counts = [], {}
        for sid, score, box in sorted(
            zip(stage_ids, info['scores'].tolist(), info['boxes'].tolist()),
            key=lambda r: (r[0], -r[1]),
        ):
            counts[sid] = counts.get(sid, 0) + 1
            regions.append(
                dict(
                    stage=stage_name(self.inferencer.stage_names, sid),
                    rank=counts[sid],
                    score=score,
                    box=[round(v, 1) for v in box],
                )
            )
        best = next(iter(topk))
        lines = [
            f'**Top-1: {best}** ({topk[best]:.3f}) for {name}: '
            f'{len(regions)} regions, {info["num_heatmaps"]} part '
            'attention maps.'
        ]
        if not self.has_attention and self.backend == 'onnxruntime':
            lines.append(NO_ATTENTION_NOTE)
        lines += notes
        return dict(
            ok=True,
            topk=topk,
            picture=info['image'],
            regions=regions,
            regions_html=regions_html,
            message='\n\n'.join(lines),
        )

    def _page_outputs(self, path: Optional[str]) -> tuple:
        """:meth:`predict` as the values of the page's output components."""
        answer = self.predict(path)
        if answer['ok']:
            return (
                answer['topk'],
                answer['picture'],
                answer['regions_html'],
                answer['message'],
            )
        # A cleared upload is no error: the message only says what to do.
        prefix = '**Error:** ' if path else ''
        return None, None, '', prefix + answer['message']

    def build(self):
        """The Gradio page (queued, one request at a time).

        Returns:
            gradio.Blocks: The page; serve it with :meth:`launch` or its own
            ``launch``.

        Raises:
            ImportError: Gradio is not installed.
        """
        try:
            import gradio as gr
        except ImportError as err:
            raise ImportError(
                'package=gradio: not installed; install the demo extra '
                '(pip install -e .[demo]).'
            ) from err
        intro = (
            '# SCRIM: what the model sees\n\n'
            'Upload an image (or pick an example). The page shows the '
            f'top-{self.topk} classes, the regions each FPL stage mined '
            '(ranked by their navigator score, in the colours of the '
            'picture) and the part attentions of each CPL stage over the '
            f'image. Checkpoint: `{osp.basename(self.checkpoint)}` '
            f'({self.backend}).'
        )
        if self.backend == 'onnxruntime':
            intro += f'\n\n{NO_ATTENTION_NOTE}'
        with gr.Blocks(title='SCRIM demo', analytics_enabled=False) as page:
            gr.Markdown(intro, elem_id='scrim-demo-intro')
            with gr.Row():
                with gr.Column(scale=1):
                    upload = gr.File(
                        label='Image',
                        type='filepath',
                        elem_id='scrim-demo-upload',
                    )
                    if self.examples:
                        gr.Examples(
                            examples=[[p] for p in self.examples],
                            inputs=[upload],
                            label='Examples (test set)',
                        )
                    message = gr.Markdown(
                        'No image yet.', elem_id='scrim-demo-message'
                    )
                    top = gr.Label(
                        num_top_classes=self.topk,
                        label=f'Top-{self.topk} classes',
                        elem_id='scrim-demo-topk',
                    )
                with gr.Column(scale=2):
                    picture = gr.Image(
                        label='Regions (FPL) and part attentions (CPL)',
                        type='numpy',
                        format='png',
                        interactive=False,
                        elem_id='scrim-demo-picture',
                    )
                    regions = gr.HTML(elem_id='scrim-demo-regions')
            upload.change(
                self._page_outputs,
                inputs=upload,
                outputs=[top, picture, regions, message],
                concurrency_limit=1,
                api_name='predict',
            )
        return page.queue(default_concurrency_limit=1)

    def launch(
        self, host: str = '127.0.0.1', port: Optional[int] = None, **kwargs
    ):
        """Build the page and serve it.

        Args:
            host (str): Address to listen on. Defaults to ``'127.0.0.1'``
                (this machine only).
            port (int, optional): Defaults to None (Gradio's 7860, or the
                next free one).
            **kwargs: More arguments of ``gradio.Blocks.launch`` (e.g.
                ``prevent_thread_lock=True`` to return at once).

        Returns:
            gradio.Blocks: The page being served (``close()`` stops it).
        """
        page = self.build()
        folders = sorted({osp.dirname(p) for p in self.examples})
        kwargs.setdefault('ssr_mode', False)
        page.launch(
            server_name=host,
            server_port=port,
            allowed_paths=folders,
            **kwargs,
        )
        return page
