"""Erasure (GDPR): crypto-shredding of personal fields and `forget viewer`.

See docs/erasure.md. The hook into the write side is `install_shredding`, called by
adapters.eventstore.factory.open_shared_store.
"""

from adapters.erasure.fields import ERASABLE, ERASED
from adapters.erasure.keys import KeyStore
from adapters.erasure.mapper import ShreddingMapper, install_shredding, keys_for

__all__ = ["ERASABLE", "ERASED", "KeyStore", "ShreddingMapper", "install_shredding", "keys_for"]
