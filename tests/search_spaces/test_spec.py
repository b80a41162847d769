import itertools
import json
import random

import numpy as np
import pytest

from search_spaces import (
    Arch,
    ArchError,
    ConvLayer,
    SpaceError,
    StageArch,
    get_space,
    list_presets,
    space_from_dict,
)

PRESETS = list_presets()
PUBLISHED = ["maxvit", "mambaout", "vcmamba", "mobile"]  # designs from the papers, at 224 and 32 (-small)


def test_presets_are_listed():
    expected = {"hybrid-tiny", "hybrid-small", "hybrid-seq", "hybrid-mobile"}
    expected |= {n for name in PUBLISHED for n in (name, f"{name}-small")}
    assert expected <= set(PRESETS)


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_presets_mix_families_at_224_and_32(name):
    for preset, size in ((name, 224), (f"{name}-small", 32)):
        space = get_space(preset)
        assert space.input.size == size
        assert len({b for stage in space.stages for b in stage.blocks}) >= 2


@pytest.mark.parametrize("name", PRESETS)
def test_preset_sampling_is_contained_and_canonical(name):
    space = get_space(name)
    rng = random.Random(0)
    for arch in [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(30)]:
        assert space.contains(arch)
        again = space.parse(json.loads(arch.to_json()))
        assert again == arch and again.id == arch.id
        assert space.decode(space.encode(arch)) == arch
        assert len(arch.id) == 64


def test_a_preset_mixes_all_three_block_types():
    space = get_space("hybrid-small")
    assert {"conv", "attention", "ssm"} <= set(space.stages[-1].blocks)
    assert space.stages[0].blocks == ["conv"]  # early stage conv-only


def test_arch_id_is_independent_of_key_order():
    space = get_space("hybrid-tiny")
    arch = space.sample(random.Random(3))
    shuffled = json.loads(arch.to_json(), object_pairs_hook=lambda kv: dict(reversed(kv)))
    assert space.parse(shuffled).id == arch.id


def test_sample_is_seeded():
    space = get_space("hybrid-small")
    assert space.sample(random.Random(7)) == space.sample(random.Random(7))


def _tiny_space(downsampling: dict | None = None):
    return space_from_dict({
        "name": "enum", "input": {"kind": "image", "channels": 1, "size": 8, "scales": [0.5, 1.0]},
        "num_classes": 3, "stem": {"widths": [8, 16]},
        "stages": [
            {"depths": [1, 2], "widths": [8], "blocks": ["conv"]},
            {"depths": [1], "widths": [16, 24], "stride": 2, "blocks": ["conv", "attention", "ssm"]}
            | (downsampling or {}),
        ],
        "block_params": {"conv": {"kernels": [3, 5], "expands": [1], "se": [False, True]},
                         "attention": {"heads": [1, 2], "mlp_ratios": [1]},
                         "ssm": {"states": [4], "expands": [1, 2]}},
    })


@pytest.mark.parametrize("downsampling", [None, {"transitions": ["conv", "pool"], "strides": [1, 2]}])
def test_cardinality_matches_brute_force_enumeration(downsampling):
    space = _tiny_space(downsampling)
    dims = space.dimensions()
    archs = {space.from_values({d.name: v for d, v in zip(dims, combo, strict=True)}).id
             for combo in itertools.product(*[d.choices for d in dims])}
    assert space.cardinality() == len(archs)


def test_one_hot_marks_active_dimensions_only():
    space = get_space("hybrid-small")
    small, large = space.smallest(), space.largest()
    assert space.one_hot(small).sum() < space.one_hot(large).sum()
    vec = space.one_hot(large)
    assert set(np.unique(vec)) <= {0.0, 1.0} and vec.shape == space.one_hot(small).shape


def test_contains_names_the_offending_field():
    space = get_space("hybrid-small")
    arch = space.largest()
    bad_stage = arch.stages[1].model_copy(update={"layers": (ConvLayer(kernel=9, expand=2, se=False),)})
    bad = arch.model_copy(update={"stages": (arch.stages[0], bad_stage, arch.stages[2])})
    with pytest.raises(ArchError, match=r"stages\[1\]\.layers\[0\]\.kernel = 9 .*\[3, 5, 7\]"):
        space.contains(bad)
    with pytest.raises(ArchError, match=r"resolution = 5"):
        space.contains(arch.model_copy(update={"resolution": 5}))
    with pytest.raises(ArchError, match="stages"):
        space.contains(Arch(resolution=8, stem_width=16, stages=(StageArch(width=16, layers=()),)))


def test_attention_layer_in_conv_only_stage_is_rejected():
    space = get_space("hybrid-small")
    data = space.largest().to_dict()
    data["stages"][0]["layers"][0] = {"type": "attention", "heads": 1, "mlp_ratio": 1}
    with pytest.raises(ArchError, match=r"stages\[0\]\.layers\[0\]\.type = 'attention'"):
        space.parse(data)


def test_parse_reports_malformed_arch_json():
    space = get_space("hybrid-tiny")
    with pytest.raises(ArchError, match="stem_width"):
        space.parse({"resolution": 8, "stages": []})
    with pytest.raises(ArchError, match="type"):
        space.parse({"resolution": 8, "stem_width": 8, "stages": [{"width": 8, "layers": [{"type": "lstm"}]}]})


def test_unknown_preset_lists_the_presets():
    with pytest.raises(SpaceError, match="unknown search space 'hybrid-huge'.*hybrid-small"):
        get_space("hybrid-huge")


def test_malformed_yaml_and_invalid_fields(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages: [\n")
    with pytest.raises(SpaceError, match="malformed YAML"):
        get_space(str(bad))
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: x\ninput: {kind: video, channels: 1, size: 8}\nnum_classes: 2\nstem: {widths: [8]}\nstages: []\n")
    with pytest.raises(SpaceError, match=r"input\.kind"):
        get_space(str(wrong))
    with pytest.raises(SpaceError, match="not found"):
        get_space(str(tmp_path / "missing.yaml"))


def test_ssm_width_must_divide_into_heads():
    with pytest.raises(SpaceError, match="head_dim"):
        space_from_dict({
            "name": "x", "input": {"kind": "image", "channels": 1, "size": 8}, "num_classes": 2,
            "stem": {"widths": [8]}, "stages": [{"depths": [1], "widths": [12], "blocks": ["ssm"]}],
        })


def test_load_from_file_roundtrip(tmp_path):
    import yaml

    space = get_space("hybrid-seq")
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space.model_dump(mode="json")))
    assert get_space(str(path)) == space


def test_with_input_retargets_to_the_data():
    space = get_space("hybrid-small").with_input((3, 32, 32), 100)
    assert space.input_shape == (3, 32, 32) and space.num_classes == 100
    assert space.input.resolutions == [24, 32]
    with pytest.raises(SpaceError, match="sequence"):
        get_space("hybrid-small").with_input((1, 64), 4)


def test_a_choice_added_to_a_family_leaves_old_arch_ids_alone():
    """`projection` came to the attention family later: at its default it is not in the JSON, so archs
    saved before (and their ids, the keys of stored candidates) are unchanged."""
    space = get_space("hybrid-small")
    arch = space.largest()
    assert "attention" in arch.layer_types() and "projection" not in arch.to_json()
    assert space.parse(json.loads(arch.to_json())).id == arch.id
    conv = arch.to_dict()
    conv["stages"][-1]["layers"][0]["projection"] = "conv"
    with pytest.raises(ArchError, match="projection"):  # hybrid-small offers no conv projection
        space.parse(conv)


def test_searchable_downsampling_is_a_stage_choice():
    space = _tiny_space({"transitions": ["conv", "embed", "pool"], "strides": [1, 2]})
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(40)]
    assert {(a.stages[1].transition, a.stages[1].stride) for a in archs} == {
        (k, s) for k in ("conv", "embed", "pool") for s in (1, 2)}
    for arch in archs:
        assert space.parse(json.loads(arch.to_json())) == arch and space.decode(space.encode(arch)) == arch
    assert space.largest().stages[1].stride == 1 and space.smallest().stages[1].stride == 2
    bad = archs[0].to_dict()
    bad["stages"][0]["transition"] = "pool"  # stage 0 has a fixed stride
    with pytest.raises(ArchError, match="fixed stride"):
        space.parse(bad)
    bad = archs[0].to_dict()
    bad["stages"][1]["stride"] = 3
    with pytest.raises(ArchError, match="stride"):
        space.parse(bad)
    with pytest.raises(SpaceError, match="transitions"):
        _tiny_space({"strides": [1, 2]})
    with pytest.raises(SpaceError, match="transitions"):
        _tiny_space({"transitions": ["shuffle"]})
