import pytest

from tests.structure_files import CIFS, read_structure

__all__ = ['read_structure']


@pytest.fixture(params=CIFS)
def structure(request):
    return request.param, read_structure(request.param)
