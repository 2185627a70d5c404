"""Every identifier the mock hands out is drawn from the seed, so transcripts replay exactly."""

from __future__ import annotations

import random
import uuid


class SeededIds:
    def __init__(self, seed: int, restart: int = 0) -> None:
        # A state directory opened again draws from a stream of its own (mock_server/persistence):
        # ids issued before the restart are not drawn again. The first run's stream is the
        # in-memory mock's, so a fresh state directory changes no transcript.
        self._rng = random.Random(f"ids:{seed}:restart:{restart}" if restart else f"ids:{seed}")

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def token(self, nbytes: int = 12) -> str:
        return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()
