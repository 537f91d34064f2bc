# Copyright (c) scrim-mm contributors. All rights reserved.
"""Installation script of scrim-mm.

``pip install -e .`` installs the runtime dependencies with ranges.
mmcv comes through an extra so that a full mmcv that a user already has
(e.g. from ``mim install mmcv``) is never overwritten by mmcv-lite:

* ``pip install -e .[lite]`` adds ``mmcv-lite`` (enough for classification);
* ``pip install -e .[tests]`` adds the test and lint tools;
* ``pip install -e .[deploy]`` adds onnx, onnxruntime and onnxscript
  (``tools/deployment/pytorch2onnx.py``, ``tools/infer.py --backend
  onnxruntime``);
* ``pip install -e .[demo]`` adds Gradio (``tools/demo/app.py``).
"""

import os.path as osp
import shutil

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Read one file of ``requirements/``, without comments."""
    with open(osp.join(HERE, 'requirements', name), encoding='utf-8') as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def read_version() -> str:
    """Read ``__version__`` without importing the package."""
    scope: dict = {}
    with open(osp.join(HERE, 'scrim_mm', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def add_mim_extension() -> None:
    """Ship ``configs/`` inside the package as ``scrim_mm/.mim/configs``.

    mmpretrain does the same for its own configs: after a regular (not
    editable) install there is no repository next to the package, and the
    model names of ``configs/scrim/metafile.yml`` (``get_model(
    'scrim_r50_cub')``) must still find their config files. The copy is
    git-ignored.
    """
    src = osp.join(HERE, 'configs')
    dst = osp.join(HERE, 'scrim_mm', '.mim', 'configs')
    if not osp.isdir(src):  # building from an sdist that already has it
        return
    if osp.isdir(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst)


add_mim_extension()

with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='scrim-mm',
    version=read_version(),
    description='SCRIM fine-grained recognition as an mmpretrain plugin',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['scrim_mm', 'scrim_mm.*']),
    include_package_data=True,
    package_data={
        'scrim_mm': ['.mim/configs/**/*.py', '.mim/configs/**/*.yml']
    },
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'lite': read_requirements('lite.txt'),
        'tests': read_requirements('tests.txt'),
        'deploy': read_requirements('deploy.txt'),
        'demo': read_requirements('demo.txt'),
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    zip_safe=False,
)
