# Copyright (c) scrim-mm contributors. All rights reserved.
"""See what SCRIM sees: a browser page of its predictions.

Usage::

    python tools/demo/app.py CONFIG CHECKPOINT [--device cpu] [--port N]
        [--host 127.0.0.1] [--examples IMAGE_OR_FOLDER]
    python tools/demo/app.py --backend onnxruntime [CONFIG] MODEL.onnx
        [--port N] [--host 127.0.0.1] [--examples IMAGE_OR_FOLDER]

``CONFIG`` is a config file or a model name, as ``tools/infer.py`` takes;
with ``--backend onnxruntime`` the model is a file of
``tools/deployment/pytorch2onnx.py`` (its metadata stands in for a missing
config; the page then has no part attentions, which are not in the
graph). Open the printed address in a browser, upload an image or pick an
example (a few images of the config's test set, or ``--examples``): the
page shows the top-5 classes, the regions each FPL stage mined, ranked
with their navigator scores, and the part attentions of each CPL stage.
The model is loaded once and requests take turns. Needs the demo extra
(``pip install -e .[demo]``); ``scrim_mm.apis.SCRIMDemo`` does the work.
"""

import argparse
import os
import sys
from typing import Optional, Sequence

import _bootstrap  # noqa: F401  (the repository root on sys.path)

from scrim_mm.apis import SCRIMDemo, check_demo_sources, list_images


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (Sequence[str], optional): The arguments; None reads
            ``sys.argv``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Serve a browser page of SCRIM predictions'
    )
    parser.add_argument(
        'config',
        help='config file or model name (onnxruntime: optional, before '
        'the .onnx file)',
    )
    parser.add_argument(
        'checkpoint',
        nargs='?',
        help='checkpoint file or URL (onnxruntime: .onnx file)',
    )
    parser.add_argument(
        '--backend',
        choices=['pytorch', 'onnxruntime'],
        default='pytorch',
        help='run the PyTorch checkpoint or an exported ONNX file',
    )
    parser.add_argument(
        '--device', default=None, help='e.g. cpu or cuda:0 (default: auto)'
    )
    parser.add_argument(
        '--host',
        default='127.0.0.1',
        help='address to listen on (0.0.0.0: every interface)',
    )
    parser.add_argument(
        '--port', type=int, default=7860, help='port of the page'
    )
    parser.add_argument(
        '--examples',
        default=None,
        help='an image or folder of example images (default: a few of the '
        "config's test set)",
    )
    args = parser.parse_args(argv)
    if args.checkpoint is None:
        if args.backend == 'pytorch':
            parser.error('expected CONFIG CHECKPOINT.')
        # onnxruntime with one positional: MODEL.onnx, its own metadata.
        args.config, args.checkpoint = None, args.config
    return args


def main(argv: Optional[Sequence[str]] = None, block: bool = True):
    """Entry point: check the inputs, load the model once, serve the page.

    Args:
        argv (Sequence[str], optional): The arguments; None reads
            ``sys.argv``.
        block (bool): Serve until interrupted; False returns once the
            page is up. Defaults to True.

    Returns:
        gradio.Blocks: The page (``close()`` stops the server).
    """
    args = parse_args(argv)
    try:
        check_demo_sources(args.config, args.checkpoint, args.backend)
        examples = list_images(args.examples) if args.examples else None
    except (FileNotFoundError, ValueError) as err:
        # One line naming what is missing, no traceback.
        sys.exit(f'tools/demo/app.py: error: {err}')
    # Before Gradio is imported: no usage statistics leave this machine.
    os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
    demo = SCRIMDemo(
        args.config,
        args.checkpoint,
        device=args.device,
        backend=args.backend,
        examples=examples,
    )
    print(f'{len(demo.examples)} example images', flush=True)
    return demo.launch(
        host=args.host, port=args.port, prevent_thread_lock=not block
    )


if __name__ == '__main__':
    main()
