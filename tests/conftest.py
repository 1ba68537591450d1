import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-expected",
        action="store_true",
        help="rewrite the expected-output files under tests/expected/ instead of comparing",
    )


@pytest.fixture
def update_expected(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-expected"))


@pytest.fixture(scope="session")
def real_data(tmp_path_factory):
    """The real Fashion-MNIST, decompressed from Debian's package into a temporary folder.

    Skipped only where the package is not installed (CI installs it: make test).
    """
    from archlab.training import data

    if not data.DEBIAN_DIR.is_dir():
        pytest.skip("real Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    return data.load_fashion_mnist(tmp_path_factory.mktemp("fashion-mnist"), download=False)
