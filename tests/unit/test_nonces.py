"""The sealing nonces (adapters/erasure/mapper.py): drawn from os.urandom in bulk, each
12 fresh bytes used once, never shared with a forked child."""

import os

from adapters.erasure.mapper import NONCE_BYTES, _Nonces


def test_every_nonce_is_new_across_draws() -> None:
    nonces = _Nonces()
    got = [nonces() for _ in range(3 * _Nonces.PER_DRAW + 5)]  # four draws
    assert all(len(n) == NONCE_BYTES for n in got)
    assert len(set(got)) == len(got)


def test_a_forked_child_does_not_reuse_its_parents_pool() -> None:
    nonces = _Nonces()
    parent = [nonces() for _ in range(3)]  # the rest of this draw stays in the pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next nonces, then leave without cleanup
        os.close(read)
        os.write(write, b"".join(nonces() for _ in range(4)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    child = [data[i : i + NONCE_BYTES] for i in range(0, len(data), NONCE_BYTES)]
    mine = parent + [nonces() for _ in range(4)]  # what the parent's pool gives next
    assert len(child) == 4
    assert not set(child) & set(mine)
