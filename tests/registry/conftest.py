"""Every registry test runs on both backends: a DuckDB directory and PostgreSQL."""

from tests.conftest import backends_fixture

backend = backends_fixture()
