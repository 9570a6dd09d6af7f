"""posecli.options.LiftOptions: one frozen, validated set of options with every default."""
import dataclasses
import pickle

import pytest

from posecli.errors import UsageError
from posecli.options import LiftOptions


def test_defaults_are_valid_and_frozen():
    o = LiftOptions()
    assert (o.detector, o.person, o.max_people, o.flip, o.formats) == ("blazepose-full", "auto", 5, True, ("json",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.flip = False


@pytest.mark.parametrize("value, expected", [("all", "all"), ("AUTO", "auto"), ("3", 3), (2, 2)])
def test_person_is_normalised(value, expected):
    assert LiftOptions(person=value).person == expected


@pytest.mark.parametrize("fields, words", [
    ({"person": "everyone"}, "--person"), ({"person": 0}, "--person"),
    ({"threads": 0}, "--threads must be at least 1"), ({"max_people": 0}, "--max-people"),
    ({"backend": "tf"}, "backend"), ({"focal": -1.0}, "--focal"), ({"formats": ()}, "--format"),
    ({"bvh_scale": 0.0}, "--bvh-scale"),
])
def test_impossible_values_are_one_line_usage_errors(fields, words):
    with pytest.raises(UsageError, match=words):
        LiftOptions(**fields)


def test_pickles_and_records_only_what_shapes_outputs(tiny_weights):
    o = LiftOptions(weights=tiny_weights, threads=3, overwrite=True, formats=("json", "bvh"))
    back = pickle.loads(pickle.dumps(o))
    assert back == o and back.record() == o.record()
    assert "threads" not in o.record() and "overwrite" not in o.record()
    assert o.record()["formats"] == ["bvh", "json"] and len(o.record()["weights_sha256"]) == 64
    assert o.replace(threads=1).model_key() != o.model_key()
    assert o.replace(overwrite=False).record() == o.record()


def test_keypoint_file_with_person_all_gives_a_list(tiny_weights):
    import posecli
    from conftest import REPO
    res = posecli.lift(REPO / "examples" / "cmu_07_05_walk.keypoints.json", person="all",
                       weights=tiny_weights)
    assert isinstance(res, list) and len(res) == 1 and res[0].world is not None
