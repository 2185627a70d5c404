"""Every identifier the mock hands out is drawn from the seed, so transcripts replay exactly."""

from __future__ import annotations

import random
import uuid


class SeededIds:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"ids:{seed}")

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def token(self, nbytes: int = 12) -> str:
        return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()
