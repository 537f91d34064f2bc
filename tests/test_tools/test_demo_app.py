# Copyright (c) scrim-mm contributors. All rights reserved.
"""The demo page: ``scrim_mm.apis.SCRIMDemo`` in-process, then
``tools/demo/app.py`` served and driven in a real (headless) Chromium.

The browser test needs Debian's ``chromium`` (``/usr/bin/chromium``, which
``.ci/run`` installs) and the ``playwright`` package, which drives that
browser and never downloads one. Without them it skips, except under
``CI=true``, where it fails. ``SCRIM_DEMO_SCREENSHOT=FILE`` also writes its
screenshot to FILE as a 256-colour PNG (the README's
``docs/figures/demo_page.png``).
"""

import copy
import os
import os.path as osp
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from scrim_mm.apis import (
    SCRIMDemo,
    check_demo_sources,
    config_examples,
    read_demo_image,
)
from scrim_mm.apis.demo_app import NO_ATTENTION_NOTE
from scrim_mm.visualization import STAGE_COLORS
from tests.test_apis.demo_run import CONFIG, REPO, load_script
from tests.test_apis.demo_run import demo_run as _demo_run

app_tool = load_script('tools/demo/app.py', 'i22_demo_app_tool')
CHROMIUM = '/usr/bin/chromium'
# True once no Gradio status overlay (``.wrap.full``) shows, even fading.
IDLE = """() => Array.from(document.querySelectorAll('.wrap.full')).every(
    w => w.classList.contains('hide') && getComputedStyle(w).opacity === '0')
"""


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory):
    return _demo_run(tmp_path_factory)


@pytest.fixture(scope='module')
def demo_config(demo_run, tmp_path_factory) -> str:
    """The demo config with the run's data as its test set."""
    path = tmp_path_factory.mktemp('i22_config') / 'scrim_demo_page.py'
    path.write_text(
        f'_base_ = [{CONFIG!r}]\n'
        'test_dataloader = dict(dataset=dict(data_root='
        f'{demo_run["data_root"]!r}))\n'
    )
    return str(path)


@pytest.fixture(scope='module')
def demo(demo_run, demo_config) -> SCRIMDemo:
    return SCRIMDemo(demo_config, demo_run['checkpoint'], device='cpu')


def _save(tmp_path, name: str, array: np.ndarray, mode=None) -> str:
    path = str(tmp_path / name)
    Image.fromarray(array, mode).save(path)
    return path


def test_examples_come_from_the_test_set(demo, demo_run):
    # One image of each class, in the test set's order.
    assert demo.examples == demo_run['test_images']
    missing = copy.deepcopy(demo.inferencer.model._config)
    missing.test_dataloader.dataset.data_root = '/nonexistent/demo_cub'
    assert config_examples(missing) == []
    assert (
        config_examples(demo.inferencer.model._config, 2)
        == (demo_run['test_images'][:2])
    )


def test_predict_matches_the_inferencer_on_the_file(demo, demo_run):
    image = demo_run['test_images'][1]
    answer = demo.predict(image)
    assert answer['ok'], answer['message']
    # The inferencer reading the path itself, as tools/infer.py does.
    (expected,) = demo.inferencer([image], topk=5)
    assert list(answer['topk']) == [t['class'] for t in expected['topk']]
    np.testing.assert_allclose(
        list(answer['topk'].values()),
        [t['score'] for t in expected['topk']],
        rtol=1e-5,
    )
    top1 = expected['pred_class']
    assert answer['message'].startswith(f'**Top-1: {top1}**')
    # Regions: per stage, best navigator score first, as infer gives them.
    got = sorted((r['stage'], -r['score']) for r in answer['regions'])
    want = sorted((r['stage'], -r['score']) for r in expected['regions'])
    np.testing.assert_allclose(
        [s for _, s in got], [s for _, s in want], rtol=1e-5
    )
    assert [r['stage'] for r in answer['regions']] == [s for s, _ in got]
    ranks = [r['rank'] for r in answer['regions']]
    assert ranks == [1, 2, 1, 2]  # K = 2 regions on each of two stages
    for stage in ('s3', 's4'):
        scores = [r['score'] for r in answer['regions'] if r['stage'] == stage]
        assert scores == sorted(scores, reverse=True)
    # The picture of draw_regions, the table in its stage colours.
    assert answer['picture'].ndim == 3 and answer['picture'].shape[2] == 3
    assert answer['picture'].shape[1] > 600  # regions and 2 x 2 heat maps
    for color in STAGE_COLORS[:2]:
        assert f'rgb{color}' in answer['regions_html']
    assert '4 part attention maps' in answer['message']


def test_bad_inputs_get_messages_and_the_demo_goes_on(
    demo, demo_run, tmp_path, monkeypatch
):
    for path, message in [
        (
            None,
            'upload=None: no image was given; upload an image or pick an '
            'example.',
        ),
        (
            str(tmp_path / 'gone.jpg'),
            'upload=gone.jpg: the file is not there any more; upload it '
            'again.',
        ),
    ]:
        answer = demo.predict(path)
        assert not answer['ok'] and answer['message'] == message
        assert answer['topk'] is None and answer['picture'] is None
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    notes = tmp_path / 'notes.txt'
    notes.write_text('not an image\n')
    assert demo.predict(str(empty))['message'] == (
        'upload=empty.jpg: the file is empty (0 bytes); upload an image '
        'file (JPEG, PNG, BMP, TIFF or WebP).'
    )
    assert demo.predict(str(notes))['message'] == (
        'upload=notes.txt: not an image that can be read; upload an image '
        'file (JPEG, PNG, BMP, TIFF or WebP).'
    )
    # The page marks errors; a cleared upload only says what to do.
    outputs = demo._page_outputs(str(notes))
    assert outputs[:3] == (None, None, '')
    assert outputs[3].startswith('**Error:** upload=notes.txt: not an image')
    assert demo._page_outputs(None)[3].startswith('upload=None: no image')

    rgb = np.asarray(Image.open(demo_run['test_images'][0]).convert('RGB'))
    grey = _save(tmp_path, 'grey.png', rgb[..., 0].copy(), 'L')
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 90, np.uint8)])
    rgba = _save(tmp_path, 'rgba.png', rgba, 'RGBA')
    for path, note in [
        (grey, 'The image is grey (mode L): read with three equal channels'),
        (rgba, 'The image has mode RGBA: its alpha channel (transparency) '),
    ]:
        answer = demo.predict(path)
        assert answer['ok'], answer['message']
        assert note in answer['message']
        # Converted as tools/infer.py converts it: the same scores.
        (expected,) = demo.inferencer([path], topk=5)
        np.testing.assert_allclose(
            list(answer['topk'].values()),
            [t['score'] for t in expected['topk']],
            rtol=1e-5,
        )

    # 10,000 px wide: shrunk to 4096 on its longer side, then classified.
    wide = _save(tmp_path, 'wide.png', np.resize(rgb, (300, 10_000, 3)))
    answer = demo.predict(wide)
    assert answer['ok'], answer['message']
    assert (
        'The image is 10000 x 300 px: shrunk to 4096 x 123 px (longer side '
        'at most 4096 px).'
    ) in answer['message']
    with pytest.raises(ValueError) as err:
        read_demo_image(wide, max_pixels=1_000_000)
    assert str(err.value) == (
        'upload=wide.png: the image is too large (10000 x 300 px, more '
        'than 1,000,000 pixels); shrink it first.'
    )
    with monkeypatch.context() as patch:
        patch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)
        with pytest.raises(ValueError) as err:
            read_demo_image(grey)
    assert str(err.value) == (
        'upload=grey.png: the image is too large (more pixels than PIL '
        'decodes safely, Image.MAX_IMAGE_PIXELS x 2); shrink it first.'
    )
    img, notes_ = read_demo_image(demo_run['test_images'][0])
    assert img.shape == rgb.shape and notes_ == []
    # Still serving.
    assert demo.predict(demo_run['test_images'][0])['ok']


def test_model_failure_is_a_message(demo, demo_run, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('no memory left')

    monkeypatch.setattr(demo.inferencer, 'forward', broken)
    image = demo_run['test_images'][0]
    name = osp.basename(image)
    assert demo.predict(image)['message'] == (
        f'upload={name}: the model failed on this image (RuntimeError: no '
        'memory left); try another image, and see the server log.'
    )
    monkeypatch.undo()
    assert demo.predict(image)['ok']


def test_requests_take_turns(demo, demo_run, monkeypatch):
    forward = demo.inferencer.forward
    running, most = [0], [0]

    def counted(*args, **kwargs):
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.05)  # long enough for the threads to overlap
        try:
            return forward(*args, **kwargs)
        finally:
            running[0] -= 1

    monkeypatch.setattr(demo.inferencer, 'forward', counted)
    answers = []
    threads = [
        threading.Thread(
            target=lambda p=p: answers.append(demo.predict(p)['ok'])
        )
        for p in demo_run['test_images']
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [True] * 4 and most[0] == 1
    # Gradio's queue too: one request at a time, for every event.
    pytest.importorskip('gradio')
    page = demo.build()
    limits = {f.name: f.concurrency_limit for f in page.fns.values()}
    assert limits['_page_outputs'] == 1
    assert page._queue.default_concurrency_limit == 1


def test_missing_gradio_is_named(demo, monkeypatch):
    monkeypatch.setitem(sys.modules, 'gradio', None)  # import fails
    with pytest.raises(ImportError) as err:
        demo.build()
    assert str(err.value) == (
        'package=gradio: not installed; install the demo extra (pip '
        'install -e .[demo]).'
    )


def test_missing_sources_stop_the_start(demo_run, tmp_path, capsys):
    ckpt = demo_run['checkpoint']
    cases = [
        (
            [str(tmp_path / 'nope.py'), ckpt],
            f'config={tmp_path / "nope.py"}: no such config file or model '
            "name; give a config file or a name of mmpretrain.list_models("
            "'scrim*').",
        ),
        (
            ['scrim_r18_nonexistent', ckpt],
            'config=scrim_r18_nonexistent: no such config file or model '
            'name; give a config file or a name of mmpretrain.list_models('
            "'scrim*').",
        ),
        (
            [CONFIG, str(tmp_path / 'epoch_9.pth')],
            f'checkpoint={tmp_path / "epoch_9.pth"}: no such checkpoint '
            'file; give the path of one (e.g. work_dirs/demo/epoch_16.pth '
            'after `make demo`).',
        ),
        (
            ['--backend', 'onnxruntime', str(tmp_path / 'model.onnx')],
            f'checkpoint={tmp_path / "model.onnx"}: no such ONNX file; give '
            'the path of one (e.g. work_dirs/demo/epoch_16.pth after `make '
            'demo`).',
        ),
        (
            [CONFIG, ckpt, '--examples', str(tmp_path / 'none')],
            f'{tmp_path / "none"}: no such image file or folder.',
        ),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as err:
            app_tool.main(argv)
        text = str(err.value.code)
        assert text == f'tools/demo/app.py: error: {message}'
        assert '\n' not in text
    # A model name is a config too.
    check_demo_sources('scrim_r18_demo', ckpt)
    with pytest.raises(ValueError, match=r'^backend=tensorrt: unknown'):
        check_demo_sources(CONFIG, ckpt, backend='tensorrt')
    with pytest.raises(ValueError, match=r'^config=None: the pytorch'):
        check_demo_sources(None, ckpt)
    with pytest.raises(SystemExit):
        app_tool.parse_args([CONFIG])
    assert 'expected CONFIG CHECKPOINT' in capsys.readouterr().err
    args = app_tool.parse_args(['m.onnx', '--backend', 'onnxruntime'])
    assert (args.config, args.checkpoint) == (None, 'm.onnx')


def test_onnx_backend_says_it_has_no_attentions(
    demo, demo_run, tmp_path_factory
):
    pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    from scrim_mm.deployment import build_metadata, export_onnx

    cfg = demo.inferencer.model._config
    onnx_file = export_onnx(
        demo.inferencer.model,
        str(tmp_path_factory.mktemp('i22_onnx') / 'scrim.onnx'),
        (96, 96),
        metadata=build_metadata(cfg, demo.inferencer.model, (96, 96)),
    )
    ort_demo = SCRIMDemo(
        None, onnx_file, backend='onnxruntime', examples=demo.examples
    )
    image = demo_run['test_images'][2]
    answer = ort_demo.predict(image)
    assert answer['ok'], answer['message']
    assert not ort_demo.has_attention and demo.has_attention
    assert NO_ATTENTION_NOTE in answer['message']
    assert '4 regions, 0 part attention maps' in answer['message']
    torch_answer = demo.predict(image)
    assert list(answer['topk']) == list(torch_answer['topk'])
    np.testing.assert_allclose(
        list(answer['topk'].values()),
        list(torch_answer['topk'].values()),
        atol=1e-4,
    )
    pytest.importorskip('gradio')
    page = ort_demo.build()
    texts = [str(getattr(b, 'value', '')) for b in page.blocks.values()]
    assert any(NO_ATTENTION_NOTE in t for t in texts)


def _need(what: str) -> None:
    """Skip, or fail under CI, when the browser test cannot run."""
    message = (
        f"{what}; the browser test needs Debian's chromium (apt-get install "
        '-y chromium chromium-driver) and pip install -r requirements/ci.txt'
    )
    if os.environ.get('CI') == 'true':
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _wait_for_page(url: str, server: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f'the demo server exited:\n{log.read_text()[-3000:]}')
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f'no page at {url}:\n{log.read_text()[-3000:]}')


def test_page_in_a_real_browser(demo, demo_run, demo_config, tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need('the playwright package is not installed')
    if not os.access(CHROMIUM, os.X_OK):
        _need(f'{CHROMIUM} is missing')
    try:
        import gradio  # noqa: F401
    except ImportError:
        _need('gradio is not installed')
    # The test image the model is surest of: its top-1 is the same
    # in every process whatever the float rounding.
    margins = []
    for path in demo_run['test_images']:
        scores = sorted(demo.predict(path)['topk'].values(), reverse=True)
        margins.append((scores[0] - scores[1], path))
    image = max(margins)[1]
    expected = next(iter(demo.predict(image)['topk']))
    notes = tmp_path / 'notes.txt'
    notes.write_text('not an image\n')

    port = _free_port()
    url = f'http://127.0.0.1:{port}/'
    log = tmp_path / 'server.log'
    env = dict(
        os.environ, OMP_NUM_THREADS='1', GRADIO_ANALYTICS_ENABLED='False'
    )
    with open(log, 'w') as out:
        server = subprocess.Popen(
            [
                sys.executable,
                str(REPO / 'tools' / 'demo' / 'app.py'),
                demo_config,
                demo_run['checkpoint'],
                '--device',
                'cpu',
                '--port',
                str(port),
            ],
            cwd=str(tmp_path),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_page(url, server, log)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True
            )
            page = browser.new_page(viewport={'width': 1280, 'height': 900})
            page.goto(url)
            upload = page.locator('#scrim-demo-upload input[type=file]')
            message = page.locator('#scrim-demo-message')

            upload.wait_for(state='attached')

            def send(path: str, wanted: str) -> str:
                if not upload.count():  # a file is shown: clear it first
                    page.locator(
                        '#scrim-demo-upload [aria-label=Clear]'
                    ).click()
                    upload.wait_for(state='attached')
                    page.wait_for_function(
                        'document.querySelector("#scrim-demo-message")'
                        '.innerText.startsWith("upload=None")'
                    )
                upload.set_input_files(path)
                page.wait_for_function(
                    'w => document.querySelector("#scrim-demo-message")'
                    '.innerText.includes(w)',
                    arg=wanted,
                    timeout=60_000,
                )
                # Gradio's progress overlays gone, their fade-out ended.
                page.wait_for_function(IDLE, timeout=60_000)
                return message.inner_text()

            def check_answer() -> None:
                assert (
                    page.locator('#scrim-demo-topk')
                    .inner_text()
                    .split('\n')[1]
                    == expected
                )
                size = page.locator('#scrim-demo-picture img').evaluate(
                    'img => [img.naturalWidth, img.naturalHeight]'
                )
                assert size[0] > 600 and size[1] > 300, size
                rows = page.locator('#scrim-demo-regions tbody tr')
                assert rows.count() == 4

            assert (
                page.locator('#scrim-demo-intro')
                .inner_text()
                .startswith('SCRIM: what the model sees')
            )
            text = send(image, 'Top-1')
            assert text.startswith(f'Top-1: {expected}')
            check_answer()
            text = send(str(notes), 'Error')
            assert text == (
                'Error: upload=notes.txt: not an image that can be read; '
                'upload an image file (JPEG, PNG, BMP, TIFF or WebP).'
            )
            assert page.locator('#scrim-demo-picture img').count() == 0
            text = send(image, 'Top-1')
            assert text.startswith(f'Top-1: {expected}')
            check_answer()
            shot = tmp_path / 'demo_page.png'
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        assert shot.stat().st_size > 10_000
        if os.environ.get('SCRIM_DEMO_SCREENSHOT'):
            # 256 colours, as the README's other pictures: 3x smaller.
            Image.open(shot).convert('RGB').quantize(
                colors=256, method=Image.Quantize.MEDIANCUT
            ).save(os.environ['SCRIM_DEMO_SCREENSHOT'], optimize=True)
        assert server.poll() is None, 'the server stopped'
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert 'Traceback' not in log.read_text(), log.read_text()[-3000:]
