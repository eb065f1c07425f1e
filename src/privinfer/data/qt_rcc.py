"""A reader for Qt's binary resource files (``.rcc``), so photos packed in them can be used.

GCompris ships its activity pictures only inside such files. The layout (Qt's ``rcc`` tool,
format versions 1-3) is a header, a tree of fixed-size nodes, a table of names and a table of
data blobs, all big-endian:

- header: ``b"qres"``, version, tree offset, data offset, names offset (u32 each) and, from
  version 3, the OR of all file flags (u32);
- node: name offset (u32), flags (u16), then for a folder the child count (u32) and the index of
  its first child node (u32), for a file the country and language (u16 each) and its data offset
  (u32); from version 2 every node also carries a last-modified time (u64);
- name: length in UTF-16 units (u16), hash (u32), the UTF-16BE text;
- data: length (u32), the bytes. A zlib-compressed file (flag 0x01) is stored the way
  ``qCompress`` writes it, a 4-byte uncompressed length before the zlib stream; a
  zstd-compressed one (flag 0x04, Qt 5.13+) is a plain zstd frame.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from privinfer.errors import PrivinferError

MAGIC = b"qres"
FLAG_ZLIB = 0x01
FLAG_DIRECTORY = 0x02
FLAG_ZSTD = 0x04


class RccFormatError(PrivinferError):
    """The bytes are not a Qt resource file this reader understands."""


@dataclass(frozen=True)
class RccHeader:
    version: int
    tree_offset: int
    data_offset: int
    names_offset: int
    flags: int

    @property
    def node_size(self) -> int:
        return 22 if self.version >= 2 else 14


@dataclass(frozen=True)
class RccFile:
    """One file inside a resource file: its path (``/``-separated, no leading slash) and bytes."""

    path: str
    data: bytes


def read_header(blob: bytes) -> RccHeader:
    """Parse the header.

    Raises:
        RccFormatError: the magic is wrong, the version unknown, or an offset lies outside the file.
    """
    if len(blob) < 20 or blob[:4] != MAGIC:
        raise RccFormatError("not a Qt resource file (no 'qres' magic)")
    version, tree, data, names = struct.unpack_from(">IIII", blob, 4)
    if version not in (1, 2, 3):
        raise RccFormatError(f"Qt resource format version {version} is not supported (1-3 are)")
    flags = struct.unpack_from(">I", blob, 20)[0] if version >= 3 else 0
    if max(tree, data, names) > len(blob):
        raise RccFormatError("Qt resource header points past the end of the file")
    return RccHeader(version, tree, data, names, flags)


def iter_files(blob: bytes) -> Iterator[RccFile]:
    """Every file in the resource, depth first, decompressed.

    Raises:
        RccFormatError: the file is malformed, or a member is zstd-compressed and the optional
            ``zstandard`` package is not installed.
    """
    header = read_header(blob)
    try:
        yield from _walk(blob, header, 0, "", depth=0)
    except (struct.error, IndexError, zlib.error) as error:
        raise RccFormatError(f"malformed Qt resource file: {error}") from None


def read_files(blob: bytes) -> dict[str, bytes]:
    """All files in the resource as ``{path: bytes}``."""
    return {entry.path: entry.data for entry in iter_files(blob)}


def _walk(blob: bytes, header: RccHeader, index: int, prefix: str, depth: int) -> Iterator[RccFile]:
    if depth > 64:  # a cycle in a corrupt tree would otherwise recurse forever
        raise RccFormatError("Qt resource tree is too deep (corrupt file?)")
    offset = header.tree_offset + index * header.node_size
    name_offset, flags = struct.unpack_from(">IH", blob, offset)
    name = _name(blob, header.names_offset + name_offset) if index else ""
    path = f"{prefix}/{name}" if prefix else name
    if flags & FLAG_DIRECTORY:
        count, first = struct.unpack_from(">II", blob, offset + 6)
        for child in range(first, first + count):
            yield from _walk(blob, header, child, path, depth + 1)
        return
    data_offset = struct.unpack_from(">I", blob, offset + 10)[0]
    yield RccFile(path, _payload(blob, header.data_offset + data_offset, flags, path))


def _name(blob: bytes, offset: int) -> str:
    length = struct.unpack_from(">H", blob, offset)[0]
    start = offset + 6  # skip the u16 length and the u32 hash
    return blob[start : start + 2 * length].decode("utf-16-be")


def _payload(blob: bytes, offset: int, flags: int, path: str) -> bytes:
    size = struct.unpack_from(">I", blob, offset)[0]
    raw = blob[offset + 4 : offset + 4 + size]
    if len(raw) != size:
        raise RccFormatError(f"Qt resource member '{path}' runs past the end of the file")
    if flags & FLAG_ZSTD:
        return _unzstd(raw, path)
    if flags & FLAG_ZLIB:
        # qCompress format: a big-endian uncompressed length, then the zlib stream.
        expected = struct.unpack_from(">I", raw, 0)[0]
        data = zlib.decompress(raw[4:])
        if len(data) != expected:
            raise RccFormatError(f"Qt resource member '{path}' decompressed to {len(data)} bytes, expected {expected}")
        return data
    return raw


def _unzstd(raw: bytes, path: str) -> bytes:
    try:
        import zstandard
    except ImportError:
        raise RccFormatError(
            f"Qt resource member '{path}' is zstd-compressed; install the 'zstandard' package to read it"
        ) from None
    return zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 30)
