"""One settings object: flags override environment variables, which override defaults."""

from __future__ import annotations

import pytest

from sandgrain.config import Settings
from sandgrain.errors import InputError


def test_defaults_derive_from_home():
    s = Settings.from_env({}, home="/data/sg")
    assert s.store == "/data/sg/store" and s.database_url == "sqlite:////data/sg/sandgrain.sqlite"
    assert s.executor == "local" and s.retries == 2 and s.storage_options() == {}


def test_environment_then_flags():
    env = {
        "SANDGRAIN_HOME": "/env/home",
        "SANDGRAIN_STORE": "s3://bucket/prefix",
        "SANDGRAIN_S3_ENDPOINT": "http://127.0.0.1:9000",
        "SANDGRAIN_EXECUTOR": "dask://scheduler:8786",
        "SANDGRAIN_RETRIES": "5",
    }
    s = Settings.from_env(env)
    assert (s.home, s.store, s.executor, s.retries) == (
        "/env/home",
        "s3://bucket/prefix",
        "dask://scheduler:8786",
        5,
    )
    assert s.storage_options() == {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}
    flagged = Settings.from_env(env, executor="local:3", retries=0, store_url=None)
    assert (flagged.executor, flagged.retries, flagged.store) == (
        "local:3",
        0,
        "s3://bucket/prefix",
    )


@pytest.mark.parametrize("value", ["many", "-1"])
def test_bad_retries(value):
    with pytest.raises(InputError, match="retries"):
        Settings.from_env({"SANDGRAIN_RETRIES": value})
