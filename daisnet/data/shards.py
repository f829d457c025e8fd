"""Streaming writes and direct reads of one-row-per-chunk shards, in Zarr v3's sharding format.

Why not `array[a:b] = rows`: zarr 3.1 writes part of a shard by reading the whole shard file,
adding the new chunks and writing the whole file back, so filling a shard batch by batch costs
O(shard) I/O per batch, and it goes through an async pipeline per chunk (measured: ~50 ms per
KINS image for images alone). `ShardWriter` encodes each chunk once with the array's own codec
settings, appends it to the shard file and writes the index at the end: memory is one batch.
`ShardReader` reads a row with one `pread` and one decompression, the shard index cached:
reading a training sample (image + ~24 masks) through zarr costs ~25 index reads + 25 chunk reads.

Both handle exactly the layout `daisnet.data.prepared` creates (checked, else an error): shards
along axis 0, one row per chunk, inner codecs [bytes (little endian), blosc, crc32c] (the CRC32C of
each chunk after it, little endian: damaged bytes fail the read, never read as pixels; stores written
before 2026-12-04 have no chunk checksum and are read as they are), index codecs
[bytes, crc32c] at the end of the shard (the Zarr v3 sharding spec: the index holds an
(offset, length) uint64 pair per chunk, 2^64 - 1 for an absent chunk, then the CRC32C of the
index). What they write, zarr reads (tests/test_shards.py). The writer writes every shard file,
even one of empty rows, so a missing file is damage: the reader raises `ShardError`, never zeros.
"""

from __future__ import annotations

import os
from pathlib import Path

import google_crc32c
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec

EMPTY = np.uint64(2**64 - 1)


class ShardError(ValueError):
    """A shard file that is missing, truncated, or whose index fails its checksum."""


def use_global_blosc() -> None:
    """Make numcodecs use blosc's global context, one thread, from any thread.

    Off the main thread (a Dask worker's task thread, zarr's thread pool) numcodecs otherwise
    calls `blosc_compress_ctx`, which builds and frees a compression context per chunk: measured
    in a Dask worker, 2.4 ms instead of 0.08 ms per 1242 x 375 mask. One thread: the work is
    already spread over processes.
    """
    import numcodecs.blosc

    numcodecs.blosc.use_threads = True
    numcodecs.blosc.set_nthreads(1)
_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def _layout(array: zarr.Array) -> tuple[int, Blosc, Path, bool]:
    """(rows per shard, the chunk compressor, the array's folder, whether each chunk carries a CRC32C),
    or an error if not our layout."""
    codecs = array.metadata.codecs
    ok = len(codecs) == 1 and isinstance(codecs[0], ShardingCodec)
    if ok:
        sharding = codecs[0]
        inner, index = sharding.codecs, sharding.index_codecs
        ok = (tuple(sharding.chunk_shape) == (1, *array.shape[1:])
              and len(inner) in (2, 3) and isinstance(inner[0], BytesCodec) and isinstance(inner[1], BloscCodec)
              and (len(inner) == 2 or isinstance(inner[2], Crc32cCodec))
              and len(index) == 2 and isinstance(index[0], BytesCodec) and isinstance(index[1], Crc32cCodec)
              and str(sharding.index_location.value) == "end" and np.dtype(array.dtype).byteorder in "=|<")
    if not ok:
        raise ValueError(f"array {array.path!r}: not a one-row-per-chunk sharded blosc array")
    blosc = inner[1]
    compressor = Blosc(cname=blosc.cname.value, clevel=blosc.clevel, shuffle=_SHUFFLE[blosc.shuffle.value],
                       blocksize=blosc.blocksize, typesize=blosc.typesize)
    root = Path(array.store_path.store.root) / array.path
    return int(array.shards[0]), compressor, root, len(inner) == 3


def _shard_file(array: zarr.Array, root: Path, shard: int) -> Path:
    return root / array.metadata.encode_chunk_key((shard,) + (0,) * (array.ndim - 1))


def verify_shards(array: zarr.Array) -> None:
    """Raise a ShardError for the first shard file that is missing or fails its index checksum.

    Arrays of another layout than ours are not checked."""
    try:
        per_shard, _, root, _ = _layout(array)
    except ValueError:
        return
    for shard in range(-(-array.shape[0] // per_shard)):
        read_index(_shard_file(array, root, shard), per_shard)


def read_index(path: Path, per_shard: int) -> np.ndarray:
    """The (per_shard, 2) (offset, length) index at the end of a shard file, its CRC32C checked.

    Our writers write every shard file, even one of empty rows: a missing file is an error, not zeros."""
    size = 16 * per_shard
    try:
        with open(path, "rb") as f:
            total = f.seek(0, os.SEEK_END)
            if total < size + 4:
                raise ShardError(f"shard file {path.name} is truncated ({total} bytes)")
            f.seek(-(size + 4), os.SEEK_END)
            raw, crc = f.read(size), f.read(4)
    except FileNotFoundError:
        raise ShardError(f"shard file {path.name} is missing") from None
    if np.frombuffer(crc, dtype="<u4")[0] != google_crc32c.value(raw):
        raise ShardError(f"shard file {path.name} is corrupt (its index fails the checksum)")
    index = np.frombuffer(raw, dtype="<u8").reshape(per_shard, 2)
    stored = index[:, 0] != EMPTY
    if (index[stored, 0] + index[stored, 1] > total - size - 4).any():
        raise ShardError(f"shard file {path.name} is corrupt (its index points past the data)")
    return index


def _crc(data: bytes) -> bytes:
    """CRC32C as the Zarr v3 crc32c codec stores it: 4 bytes, little endian."""
    return np.uint32(google_crc32c.value(data)).astype("<u4").tobytes()


class ShardWriter:
    """Write shard `shard` of `array` row by row, in order; `close()` writes the index.

    Rows that equal the fill value (all zeros) are not stored, as zarr does by default.
    """

    def __init__(self, array: zarr.Array, shard: int) -> None:
        self.per_shard, self.compressor, root, self.checksummed = _layout(array)
        use_global_blosc()
        self.array, self.shard = array, shard
        self.start = shard * self.per_shard
        self.stop = min(self.start + self.per_shard, array.shape[0])
        self.index = np.full((self.per_shard, 2), EMPTY, dtype="<u8")
        self.path = _shard_file(array, root, shard)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "wb")
        self.offset = 0
        self.next_row = self.start

    def append(self, rows: np.ndarray) -> None:
        """Append rows (n, *row_shape) to the shard; they follow the rows written before."""
        rows = np.ascontiguousarray(rows, dtype=self.array.dtype)  # C order: what the format means
        if self.next_row + len(rows) > self.stop:
            raise ValueError(f"shard {self.shard} holds rows [{self.start}, {self.stop}): too many rows")
        for row in rows:
            if row.any():
                encoded = self.compressor.encode(row)
                if self.checksummed:
                    encoded += _crc(encoded)
                self.file.write(encoded)
                self.index[self.next_row - self.start] = (self.offset, len(encoded))
                self.offset += len(encoded)
            self.next_row += 1

    def close(self) -> None:
        if self.next_row != self.stop:
            raise ValueError(f"shard {self.shard}: {self.next_row - self.start} rows written, expected "
                             f"{self.stop - self.start}")
        index = self.index.reshape(self.per_shard, *([1] * (self.array.ndim - 1)), 2).tobytes()
        self.file.write(index)
        self.file.write(_crc(index))
        self.file.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.file.close()


class ShardReader:
    """Rows of a one-row-per-chunk sharded array, read with one pread each (indexes cached)."""

    def __init__(self, array: zarr.Array) -> None:
        self.per_shard, self.compressor, self.root, self.checksummed = _layout(array)
        use_global_blosc()
        self.array = array
        self.row_shape = tuple(array.shape[1:])
        self.dtype = np.dtype(array.dtype)
        self.indexes: dict[int, np.ndarray] = {}

    def _index(self, shard: int) -> np.ndarray:
        if shard not in self.indexes:
            self.indexes[shard] = read_index(_shard_file(self.array, self.root, shard), self.per_shard)
        return self.indexes[shard]

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros((stop - start, *self.row_shape), dtype=self.dtype)
        for shard in range(start // self.per_shard, (stop - 1) // self.per_shard + 1 if stop > start else 0):
            index = self._index(shard)
            lo, hi = max(start, shard * self.per_shard), min(stop, (shard + 1) * self.per_shard)
            with open(_shard_file(self.array, self.root, shard), "rb") as f:
                fd = f.fileno()
                for row in range(lo, hi):
                    offset, length = index[row - shard * self.per_shard]
                    if offset == EMPTY:
                        continue
                    data = os.pread(fd, int(length), int(offset))
                    if self.checksummed:
                        data, crc = data[:-4], data[-4:]
                        if crc != _crc(data):
                            raise ShardError(f"shard file {_shard_file(self.array, self.root, shard).name} is corrupt "
                                             f"(row {row} of {self.array.path!r} fails its checksum)")
                    self.compressor.decode(data, out=out[row - start])
        return out
