# Copyright (c) scrim-mm contributors. All rights reserved.
"""configs/scrim/metafile.yml is valid for mmpretrain's ModelHub."""

import pytest
from mmpretrain.apis import ModelHub, get_model, list_models

from ._shared import METAFILE, REPO, SCRIM_CONFIG_DIR, metafile_models

STEMS = sorted(p.stem for p in SCRIM_CONFIG_DIR.glob('*.py'))


@pytest.fixture
def hub(monkeypatch):
    """An empty ModelHub (mmpretrain's own index not loaded)."""
    monkeypatch.setattr(ModelHub, '_models_dict', {})
    monkeypatch.setattr(ModelHub, '_ModelHub__mmpretrain_registered', True)
    return ModelHub


def test_metafile_lists_every_config():
    models = metafile_models()
    assert sorted(models) == STEMS
    for name, model in models.items():
        assert model['Config'] == f'configs/scrim/{name}.py'
        assert model['In Collection'] == 'SCRIM'
        # Nothing was trained on the benchmarks: no results, no weights.
        results = model['Results']
        assert [r['Task'] for r in results] == ['Image Classification']
        assert all(not r['Metrics'] for r in results)
        assert 'Weights' not in model


def test_metafile_registers(hub):
    hub.register_model_index(str(METAFILE), config_prefix=str(REPO))
    scrim = [s for s in STEMS if s.startswith('scrim')]
    assert list_models('scrim') == scrim
    assert list_models('cpl') == [s for s in STEMS if s.startswith('cpl')]
    meta = hub.get('scrim_r50_cub')
    assert meta.config.model.type == 'SCRIMClassifier'
    assert meta.weights is None
    assert hub.get('cpl_swin-large_8xb8_cub-384px').config.model.neck.type == (
        'CPLNeck'
    )
    model = get_model('scrim_r18_demo')
    assert type(model).__name__ == 'SCRIMClassifier'
    assert not model.training


def test_metafile_names_are_new_to_mmpretrain(monkeypatch):
    monkeypatch.setattr(ModelHub, '_models_dict', {})
    monkeypatch.setattr(ModelHub, '_ModelHub__mmpretrain_registered', False)
    existing = set(list_models())
    assert 'resnet50_8xb8_cub' in existing
    assert existing.isdisjoint(metafile_models())
    ModelHub.register_model_index(str(METAFILE), config_prefix=str(REPO))
    assert set(list_models()) == existing | set(STEMS)
