"""TFRecord framing without TensorFlow.

A TFRecord file is a plain concatenation of records, each framed as::

    uint64  length            (little endian)
    uint32  masked crc32c of the 8 length bytes
    bytes   data[length]
    uint32  masked crc32c of data

Files written here are byte-identical to those of `tf.io.TFRecordWriter`
(uncompressed), so TensorFlow, grain's `TFRecordIterDataset` and other standard
readers can read them. Random access needs the byte offset of each record;
`TFRecordWriter.write` returns it so callers can keep an index beside the file.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

import google_crc32c

HEADER_BYTES = 12  # uint64 length + uint32 masked crc of the length.
FOOTER_BYTES = 4  # uint32 masked crc of the data.
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


class TFRecordError(ValueError):
  """A TFRecord file is corrupt or truncated."""


def masked_crc32c(data: bytes) -> int:
  """Returns the masked crc32c TFRecord stores for `data`.

  Masking exists because computing the CRC of a string that itself contains
  embedded CRCs is problematic; the constants come from TensorFlow's
  `tsl/lib/hash/crc32c.h`.

  Args:
    data: The bytes to checksum.

  Returns:
    The masked checksum as an unsigned 32-bit integer.
  """
  crc = google_crc32c.value(data)
  return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def frame_record(data: bytes) -> bytes:
  """Returns the full framed bytes (header + data + footer) of one record."""
  length = _LENGTH.pack(len(data))
  return b"".join((length, _CRC.pack(masked_crc32c(length)), data,
                   _CRC.pack(masked_crc32c(data))))


class TFRecordWriter:
  """Writes records to one uncompressed TFRecord file.

  Use as a context manager::

    with TFRecordWriter(path) as w:
      offset = w.write(payload)

  Attributes:
    path: The file being written.
  """

  def __init__(self, path: str | os.PathLike[str]):
    self.path = os.fspath(path)
    self._file: BinaryIO | None = open(self.path, "wb")
    self._offset = 0
    self.num_records = 0

  def write(self, data: bytes) -> int:
    """Appends one record.

    Args:
      data: The record payload (e.g. a serialized `tf.train.Example`).

    Returns:
      The byte offset of the record's header in the file, which
      `read_record_at` accepts.
    """
    if self._file is None:
      raise ValueError(f"{self.path}: write() after close().")
    offset = self._offset
    framed = frame_record(bytes(data))
    self._write_bytes(framed)
    self._offset += len(framed)
    self.num_records += 1
    return offset

  def _write_bytes(self, framed: bytes) -> None:
    with self._naming_the_file():
      self._file.write(framed)

  @contextlib.contextmanager
  def _naming_the_file(self):
    """An OSError without a file name (a full disk reports none) gets this writer's path."""
    try:
      yield
    except OSError as e:
      if e.filename is None:
        raise OSError(e.errno, e.strerror, self.path) from None
      raise

  def abort(self) -> None:
    """Closes and removes the partial file, whatever state the disk is in."""
    if self._file is not None:
      try:
        self._file.close()
      except OSError:
        pass  # the unflushed tail is being thrown away anyway
      self._file = None
    if os.path.exists(self.path):
      os.remove(self.path)

  @property
  def bytes_written(self) -> int:
    """Bytes written so far, i.e. the offset the next record will get."""
    return self._offset

  def flush(self) -> None:
    if self._file is not None:
      self._file.flush()

  def close(self) -> None:
    """Flushes and closes the file (also fsyncs, since callers rename after)."""
    if self._file is not None:
      with self._naming_the_file():
        self._file.flush()
        os.fsync(self._file.fileno())
      self._file.close()
      self._file = None

  def __enter__(self) -> TFRecordWriter:
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def _check_crc(name: str, where: str, what: str, payload: bytes,
               stored: int) -> None:
  if masked_crc32c(payload) != stored:
    raise TFRecordError(
        f"{name}: CRC mismatch in the {what} of {where}; the file is corrupt.")


def parse_framed(buf: bytes, name: str, where: str, verify: bool = True,
                 expected_length: int | None = None) -> bytes:
  """Checks and unwraps one complete framed record held in memory.

  Args:
    buf: Exactly header + data + footer bytes of one record.
    name: File name used in error messages.
    where: Record description used in error messages (e.g. "record 3 at
      offset 120").
    verify: Whether to check both CRCs.
    expected_length: If given, the data length the caller's index recorded.

  Returns:
    The record data.

  Raises:
    TFRecordError: If the buffer is truncated or a CRC does not match.
  """
  if len(buf) < HEADER_BYTES + FOOTER_BYTES:
    raise TFRecordError(f"{name}: truncated {where}: only {len(buf)} bytes.")
  length_bytes = buf[:8]
  (length,) = _LENGTH.unpack(length_bytes)
  if verify:
    _check_crc(name, where, "length", length_bytes, _CRC.unpack_from(buf, 8)[0])
  if expected_length is not None and length != expected_length:
    raise TFRecordError(
        f"{name}: {where} has length {length} but the index says "
        f"{expected_length}; the index does not match the file.")
  end = HEADER_BYTES + length
  if len(buf) < end + FOOTER_BYTES:
    raise TFRecordError(
        f"{name}: truncated {where}: expected {length} data bytes + CRC, got "
        f"{len(buf) - HEADER_BYTES} bytes.")
  data = buf[HEADER_BYTES:end]
  if verify:
    _check_crc(name, where, "data", data, _CRC.unpack_from(buf, end)[0])
  return data


def iter_records(path: str | os.PathLike[str],
                 verify: bool = True) -> Iterator[bytes]:
  """Yields the records of a TFRecord file in order.

  Args:
    path: The file to read.
    verify: Whether to check the CRCs of every record.

  Yields:
    Each record's data.

  Raises:
    TFRecordError: On a CRC mismatch or a truncated record; the message names
      the file, the record index and its byte offset.
  """
  name = os.fspath(path)
  with open(name, "rb") as f:
    index, offset = 0, 0
    while True:
      header = f.read(HEADER_BYTES)
      if not header:
        return
      where = f"record {index} at offset {offset}"
      if len(header) < HEADER_BYTES:
        raise TFRecordError(
            f"{name}: truncated {where}: header has {len(header)} of "
            f"{HEADER_BYTES} bytes.")
      (length,) = _LENGTH.unpack_from(header)
      if verify:
        # Check the length before trusting it to size a read.
        _check_crc(name, where, "length", header[:8], _CRC.unpack_from(header, 8)[0])
      rest = f.read(length + FOOTER_BYTES)
      yield parse_framed(header + rest, name, where, verify=verify)
      index += 1
      offset += HEADER_BYTES + length + FOOTER_BYTES


def read_record_at(file_obj_or_path: str | os.PathLike[str] | BinaryIO | int,
                   offset: int, verify: bool = True,
                   length: int | None = None) -> bytes:
  """Reads the one record whose header starts at byte `offset`.

  Args:
    file_obj_or_path: A path, a binary file object opened for reading, or an
      OS-level file descriptor (read with `os.pread`, so it is safe to share
      between threads).
    offset: Byte offset of the record header (as returned by
      `TFRecordWriter.write`).
    verify: Whether to check both CRCs.
    length: The data length if known (e.g. from an index); lets the record be
      read with a single read call and is checked against the header.

  Returns:
    The record data.

  Raises:
    TFRecordError: On a CRC mismatch, a truncated record, or a length that
      disagrees with `length`; the message names the file and offset.
  """
  if isinstance(file_obj_or_path, (str, os.PathLike)):
    with open(file_obj_or_path, "rb") as f:
      return read_record_at(f, offset, verify, length)
  if isinstance(file_obj_or_path, int):
    fd = file_obj_or_path
    name = f"<fd {fd}>"
    read = lambda n, at: os.pread(fd, n, at)
  else:
    f = file_obj_or_path
    name = getattr(f, "name", repr(f))

    def read(n: int, at: int) -> bytes:
      f.seek(at)
      return f.read(n)

  where = f"record at offset {offset}"
  if length is not None:
    buf = read(HEADER_BYTES + length + FOOTER_BYTES, offset)
    return parse_framed(buf, str(name), where, verify, expected_length=length)
  header = read(HEADER_BYTES, offset)
  if len(header) < HEADER_BYTES:
    raise TFRecordError(f"{name}: truncated {where}: header has {len(header)} "
                        f"of {HEADER_BYTES} bytes.")
  if verify:
    _check_crc(str(name), where, "length", header[:8],
               _CRC.unpack_from(header, 8)[0])
  (n,) = _LENGTH.unpack_from(header)
  rest = read(n + FOOTER_BYTES, offset + HEADER_BYTES)
  return parse_framed(header + rest, str(name), where, verify)
