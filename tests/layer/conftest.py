import pytest


@pytest.fixture(autouse=True)
def _every_backend(backend):
    """Run every test in this folder on each database x cache combination,
    with the container registry already loaded (a once-per-process cost)."""
    from tests.testapp.models import Item

    Item.cached.get_many([0])
    yield backend
