from __future__ import annotations

import pathlib
from typing import Callable, Dict, Iterator, List, Optional

import pytest

import bosun
from bosun_server import BosunServer

StartServer = Callable[..., BosunServer]


@pytest.fixture
def start_server(tmp_path: pathlib.Path) -> Iterator[StartServer]:
    """Starts bosun servers (config: TOML text; env: extra variables), each
    in its own data dir; all stop at the end of the test."""
    servers: List[BosunServer] = []

    def start(config: str = "", env: Optional[Dict[str, str]] = None) -> BosunServer:
        workdir = tmp_path / f"bosun-{len(servers)}"
        workdir.mkdir()
        server = BosunServer(workdir, config=config, env=env)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: StartServer) -> BosunServer:
    return start_server()


@pytest.fixture
def client(server: BosunServer) -> Iterator[bosun.Client]:
    with bosun.connect(server.address) as client:
        yield client
