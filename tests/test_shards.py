"""The streaming shard writer and direct reader agree with zarr, for every dtype of the store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from daisnet.data.prepared import StoreLayout, create_store
from daisnet.data.shards import ShardError, ShardReader, ShardWriter


@pytest.fixture()
def store(tmp_path: Path) -> zarr.Group:
    layout = StoreLayout(images=7, instances=10, canvas=(5, 6), depth=True, images_per_shard=3,
                         instances_per_shard=4)
    return create_store(tmp_path / "s.zarr", layout, {})


@pytest.mark.parametrize("name", ["images", "depth_gt", "amodal"])
def test_written_shards_read_back_through_zarr(store: zarr.Group, name: str) -> None:
    array = store[name]
    rng = np.random.default_rng(0)
    if array.dtype == bool:
        data = rng.random(array.shape) < 0.3
    elif array.dtype == np.uint8:
        data = rng.integers(0, 256, array.shape, dtype=np.uint8)
    else:
        data = rng.random(array.shape).astype(np.float32)
    data[4] = 0  # an all-zero row is left out of the shard, as zarr does
    per = array.shards[0]
    for shard in range(-(-array.shape[0] // per)):
        rows = data[shard * per:(shard + 1) * per]
        with ShardWriter(array, shard) as writer:
            writer.append(rows[:1])  # in several batches
            writer.append(rows[1:])
    reopened = zarr.open_group(store.store_path.store.root, mode="r")[name]
    assert np.array_equal(reopened[:], data)  # zarr checks the index CRC too
    reader = ShardReader(array)
    assert np.array_equal(reader.read(0, array.shape[0]), data)
    assert np.array_equal(reader.read(2, 5), data[2:5])
    assert reader.read(3, 3).shape == (0, *array.shape[1:])


def test_reader_agrees_with_zarr_written_shards(store: zarr.Group) -> None:
    array = store["visible"]
    data = np.random.default_rng(1).random(array.shape) < 0.5
    array[:] = data  # zarr's own writer
    assert np.array_equal(ShardReader(array).read(0, 10), data)


def test_writer_refuses_a_short_or_long_shard(store: zarr.Group) -> None:
    array = store["amodal"]
    writer = ShardWriter(array, 0)
    with pytest.raises(ValueError, match="too many rows"):
        writer.append(np.ones((5, 5, 6), bool))
    with pytest.raises(ValueError, match="expected 4"):
        writer.close()
    writer.file.close()


def test_other_layouts_are_refused(tmp_path: Path) -> None:
    plain = zarr.create_array(tmp_path / "plain.zarr", shape=(4, 3), chunks=(2, 3), dtype="uint8")
    with pytest.raises(ValueError, match="not a one-row-per-chunk"):
        ShardReader(plain)


def test_reader_refuses_a_missing_or_damaged_shard_instead_of_zeros(store: zarr.Group) -> None:
    array = store["images"]  # 7 rows, 3 per shard
    for shard in range(3):
        with ShardWriter(array, shard) as writer:
            writer.append(np.zeros((min(3, 7 - 3 * shard), *array.shape[1:]), np.uint8))  # empty rows: file written
    root = Path(store.store_path.store.root) / "images"
    assert ShardReader(array).read(0, 7).shape == (7, 5, 6, 3)
    (root / "c.1.0.0.0").unlink()
    with pytest.raises(ShardError, match="shard file c.1.0.0.0 is missing"):
        ShardReader(array).read(0, 7)
    (root / "c.0.0.0.0").write_bytes(b"x" * 100)
    with pytest.raises(ShardError, match="c.0.0.0.0 is corrupt"):
        ShardReader(array).read(0, 1)


@pytest.mark.parametrize("reader", ["ours", "zarr"])
def test_corrupt_bytes_inside_a_chunk_fail_the_read(store: zarr.Group, reader: str) -> None:
    """32 damaged bytes inside a shard's data (not its index) are found by each chunk's CRC32C, by our
    reader and by zarr's, instead of being read as pixels (issue 31, D)."""
    array = store["images"]
    data = np.random.default_rng(2).integers(0, 256, array.shape, dtype=np.uint8)
    for shard in range(3):
        with ShardWriter(array, shard) as writer:
            writer.append(data[shard * 3:(shard + 1) * 3])
    shard_file = Path(store.store_path.store.root) / "images" / "c.0.0.0.0"
    raw = bytearray(shard_file.read_bytes())
    raw[20:52] = bytes(b ^ 0xFF for b in raw[20:52])  # inside the first chunk's compressed bytes
    shard_file.write_bytes(bytes(raw))
    if reader == "ours":
        with pytest.raises(ShardError, match="row 0 of 'images' fails its checksum"):
            ShardReader(array).read(0, 3)
    else:
        with pytest.raises(ValueError, match="checksum"):
            zarr.open_group(store.store_path.store.root, mode="r")["images"][0]
    assert np.array_equal(ShardReader(array).read(3, 7), data[3:7])  # the other shards read as before
