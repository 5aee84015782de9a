from datetime import date
from pathlib import Path

import pytest

from matomo_posthog.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    path = tmp_path / "sites.toml"
    path.write_text(text)
    return path


def test_shipped_config_files_load():
    for name in ("matomo_posthog.toml", "demo.toml"):
        sites = load_config(ROOT / "include" / name)
        assert sites and all(site.dag_id.startswith("matomo_to_posthog_site_") for site in sites)


def test_defaults_apply_and_sites_override_them(tmp_path):
    path = write(tmp_path, """
[defaults]
page_size = 500
[[sites]]
site_id = 1
timezone = "UTC+5.5"
start_date = "2024-01-01"
[[sites]]
site_id = 2
timezone = "America/New_York"
start_date = 2023-06-01
page_size = 200
""")
    one, two = load_config(path)
    assert (one.page_size, two.page_size) == (500, 200)
    assert two.start_date == date(2023, 6, 1)
    assert one.storage == (tmp_path / "data").resolve().as_uri()


def test_object_storage_url_is_kept_as_given(tmp_path):
    path = write(tmp_path, '[[sites]]\nsite_id = 1\ntimezone = "UTC"\nstart_date = "2024-01-01"\n'
                           'storage = "s3://aws_default@bucket/prefix"\n')
    assert load_config(path)[0].storage == "s3://aws_default@bucket/prefix"


@pytest.mark.parametrize(
    "text, message",
    [
        ('[[sites]]\nsite_id = 1\ntimezone = "Mars/Base"\nstart_date = "2024-01-01"\n', r"sites\[0\].*Mars/Base"),
        ('[[sites]]\nsite_id = 1\nstart_date = "2024-01-01"\n', "'timezone' is required"),
        ('[[sites]]\nsite_id = 1\ntimezone = "UTC"\nstart_date = "2024-01-01"\npage_sise = 5\n', "unknown key 'page_sise'"),
        ('[[sites]]\nsite_id = 1\ntimezone = "UTC"\nstart_date = "01/02/2024"\n', "not a YYYY-MM-DD"),
        ('[[sites]]\nsite_id = 0\ntimezone = "UTC"\nstart_date = "2024-01-01"\n', "positive whole number"),
        ("[defaults]\n", "no \\[\\[sites\\]\\]"),
        ("not toml = = =", "not valid TOML"),
        ('[[sites]]\nsite_id = 1\ntimezone = "UTC"\nstart_date = "2024-01-01"\n' * 2, "listed twice"),
    ],
)
def test_bad_config_names_file_and_problem(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_config_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")
