"""The output store's promotion on real Azurite: a recorded output is a server-side copy of exactly the blob the
gateway listed, by one Copy Blob From URL or, for large blobs, by blocks copied from the source; a source that
changed since it was listed is refused rather than recorded."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient, ContentSettings

from core.errors import Unavailable
from core.storage import outputs as store_module
from core.storage.azurite import AzuriteCredential
from core.storage.outputs import JobOutputs, container_of, uploads_of
from tests.conftest import AzuriteFixture

pytestmark = pytest.mark.azurite


@pytest.fixture
def store(azurite: AzuriteFixture) -> Iterator[tuple[JobOutputs, BlobServiceClient, str]]:
    service = BlobServiceClient(
        azurite.blob_url,
        credential=AzuriteCredential.for_endpoint(azurite.blob_url),
        **azurite.client_kwargs,
    )
    job_id = f"{uuid.uuid4().hex[:16]}-1234567890123-abcdef"
    outputs = JobOutputs(service)
    outputs.create(job_id)
    yield outputs, service, job_id
    outputs.delete(job_id)


def upload(service: BlobServiceClient, job_id: str, name: str, data: bytes) -> None:
    service.get_blob_client(uploads_of(job_id), name).upload_blob(
        data, overwrite=True, content_settings=ContentSettings("text/csv")
    )


def recorded(service: BlobServiceClient, job_id: str, name: str) -> bytes:
    return bytes(service.get_blob_client(container_of(job_id), name).download_blob().readall())


def test_a_promoted_blob_is_a_copy_of_the_listed_one(
    store: tuple[JobOutputs, BlobServiceClient, str],
) -> None:
    outputs, service, job_id = store
    upload(service, job_id, "a.csv", b"1,2\n")
    listed = outputs.uploaded(job_id)["a.csv"]
    assert listed.md5 == base64.b64encode(hashlib.md5(b"1,2\n").digest()).decode()
    assert not listed.copied
    outputs.promote(job_id, {"r1/a.csv": listed})
    assert recorded(service, job_id, "r1/a.csv") == b"1,2\n"


def test_a_source_changed_since_it_was_listed_is_refused(
    store: tuple[JobOutputs, BlobServiceClient, str],
) -> None:
    outputs, service, job_id = store
    upload(service, job_id, "a.csv", b"first\n")
    listed = outputs.uploaded(job_id)["a.csv"]
    upload(service, job_id, "a.csv", b"second, swapped in after the listing\n")
    with pytest.raises(Unavailable):
        outputs.promote(job_id, {"r1/a.csv": listed})
    assert "r1/a.csv" not in {
        b.name for b in service.get_container_client(container_of(job_id)).list_blobs()
    }


def test_a_source_gone_since_it_was_listed_is_refused(
    store: tuple[JobOutputs, BlobServiceClient, str],
) -> None:
    outputs, service, job_id = store
    upload(service, job_id, "a.csv", b"1\n")
    listed = outputs.uploaded(job_id)["a.csv"]
    outputs.close_uploads(job_id)  # the job ended meanwhile (another report)
    with pytest.raises(Unavailable):
        outputs.promote(job_id, {"r1/a.csv": listed})
    outputs.promote(job_id, {})  # nothing to copy: nothing happens


def test_large_blobs_are_copied_as_blocks(
    store: tuple[JobOutputs, BlobServiceClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs, service, job_id = store
    monkeypatch.setattr(store_module, "SYNC_COPY_LIMIT", 1024)
    monkeypatch.setattr(store_module, "COPY_BLOCK", 1000)
    data = bytes(range(256)) * 20  # 5120 bytes: 6 blocks of at most 1000
    upload(service, job_id, "big.bin", data)
    listed = outputs.uploaded(job_id)["big.bin"]
    outputs.promote(job_id, {"r1/big.bin": listed})
    assert recorded(service, job_id, "r1/big.bin") == data
    props = service.get_blob_client(container_of(job_id), "r1/big.bin").get_blob_properties()
    assert base64.b64encode(props.content_settings.content_md5).decode() == listed.md5
    blocks = service.get_blob_client(container_of(job_id), "r1/big.bin").get_block_list()[0]
    assert len(blocks) == 6

    upload(
        service, job_id, "big.bin", data[::-1]
    )  # changed after the listing: the block copy is refused too
    with pytest.raises(Unavailable):
        outputs.promote(job_id, {"r2/big.bin": listed})


def test_closing_uploads_leaves_the_recorded_outputs(
    store: tuple[JobOutputs, BlobServiceClient, str],
) -> None:
    outputs, service, job_id = store
    upload(service, job_id, "a.csv", b"1\n")
    outputs.promote(job_id, {"r1/a.csv": outputs.uploaded(job_id)["a.csv"]})
    outputs.close_uploads(job_id)
    outputs.close_uploads(job_id)  # again: nothing happens
    assert outputs.uploaded(job_id) == {}
    assert recorded(service, job_id, "r1/a.csv") == b"1\n"


@pytest.mark.parametrize(
    ("name", "header"),
    [
        (
            "mixing_index.csv",
            "attachment; filename=\"mixing_index.csv\"; filename*=UTF-8''mixing_index.csv",
        ),
        ('a"b;c.csv', "attachment; filename=\"a_b_c.csv\"; filename*=UTF-8''a%22b%3Bc.csv"),
        (
            "résumé\r\nX-Evil: 1.csv",
            'attachment; filename="r_sum___X-Evil: 1.csv"; '
            "filename*=UTF-8''r%C3%A9sum%C3%A9%0D%0AX-Evil%3A%201.csv",
        ),
    ],
)
def test_the_download_disposition_is_escaped_where_it_is_built(name: str, header: str) -> None:
    assert store_module.attachment(name) == header
