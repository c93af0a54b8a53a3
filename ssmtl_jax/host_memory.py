"""Keep freed host memory in the process instead of handing it back to the OS.

glibc serves every allocation over 32 MiB with a fresh mmap and unmaps it on free, so each new
activation-sized buffer is page-faulted in again, which on a virtualised CPU can be slower than
the arithmetic that fills the buffer. XLA:CPU's buffers and the host-side convolution of
`models/host_conv.py` both allocate such blocks every step. Serving them from the heap and never
trimming it makes the second step reuse the first step's pages. This is the same fix as running
JAX on CPU under TCMalloc, without an LD_PRELOAD.
"""

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_done = False


def retain_freed_memory() -> bool:
  """Applies the glibc settings once per process; returns whether they took effect.

  A no-op (False) off Linux/glibc. Memory freed by the process stays mapped for reuse, so the
  resident size stays at the peak of what the process has used.
  """
  global _done
  if _done or not sys.platform.startswith("linux"):
    return _done
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
  except (OSError, AttributeError):  # musl and others have no mallopt
    ok = False
  _done = ok
  return ok
