import json

import pytest

from matomo_posthog.transform import DEFAULT_MAPPING, Mapping, load_mapping


def write(tmp_path, data, name="mapping.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_the_default_mapping():
    assert Mapping() == DEFAULT_MAPPING
    assert DEFAULT_MAPPING.event_name_template == "{category}: {action}"
    assert DEFAULT_MAPPING.emit_goals is False
    assert DEFAULT_MAPPING.dimension_property("4") == "dimension4"


def test_a_full_overrides_file_is_read(tmp_path):
    path = write(tmp_path, {
        "event_names": {"download": "File Downloaded"},
        "event_name_template": "{category} - {action}",
        "emit_goals": True,
        "drop_properties": ["$ip"],
        "rename_properties": {"dimension1": "plan"},
        "custom_dimensions": {"3": "section"},
        "drop_ip": False,
    })

    mapping = load_mapping(path)

    assert mapping.event_names == {"download": "File Downloaded"}
    assert mapping.emit_goals is True
    assert mapping.drop_properties == ("$ip",)
    assert mapping.dimension_property("3") == "section"
    assert mapping.apply({"$ip": "1.2.3.4", "dimension1": "pro", "title": "Home"}) == {"plan": "pro", "title": "Home"}


def test_an_empty_file_object_is_the_default(tmp_path):
    assert load_mapping(write(tmp_path, {})) == DEFAULT_MAPPING


@pytest.mark.parametrize(
    "data, message",
    [
        ({"emit_goal": True}, "unknown key 'emit_goal'"),
        ({"event_names": {"download": ""}}, "event_names entry 'download'"),
        ({"event_names": {"event": "X"}}, "event_name_template"),
        ({"event_names": {"13": "X"}}, "content_impression"),
        ({"event_name_template": "{category} {label}"}, "['label']"),
        ({"event_name_template": "{category"}, "not a valid template"),
        ({"event_name_template": "{category:d}"}, "not a valid template"),
        ({"emit_goals": "yes"}, "emit_goals must be true or false"),
        ({"drop_properties": "$ip"}, "drop_properties must be a list"),
        ({"rename_properties": {"a": 1}}, "rename_properties entry 'a'"),
        ({"custom_dimensions": {"three": "x"}}, "custom_dimensions key 'three'"),
        ([], "must hold a JSON object"),
    ],
)
def test_bad_overrides_name_the_file_and_the_key(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ValueError) as error:
        load_mapping(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_unreadable_and_invalid_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="missing.json: cannot read"):
        load_mapping(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        load_mapping(write(tmp_path, "{", name="broken.json"))
