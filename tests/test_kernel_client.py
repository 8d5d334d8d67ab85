"""The render's kernel client (analysis.report._kernel_client): ready once the kernel has
answered kernel_info and gone idle for it, without jupyter_client's 0.2 s of IOPub silence."""

from __future__ import annotations

import asyncio
from queue import Empty

from analysis.report._kernel_client import ReadyClient
from analysis.report.render import IPCKernelManager


def test_a_renders_kernel_is_ready_when_it_answers_and_runs_code(tmp_path, monkeypatch):
    monkeypatch.setenv("KO_IPC_DIR", str(tmp_path))

    async def run():
        manager = IPCKernelManager()
        await manager.start_kernel()
        client = manager.client()
        assert isinstance(client, ReadyClient)
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            reply = await client.execute_interactive("x = 6 * 7", timeout=60)
            assert reply["content"]["status"] == "ok"
            outputs = []
            await client.execute_interactive("print(x)", timeout=60, output_hook=outputs.append)
            return [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"]
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)
            assert not await manager.is_alive()

    assert asyncio.run(run()) == ["42\n"]


class _Channel:
    """A channel that hands out the given messages, then nothing (Empty)."""

    def __init__(self, messages):
        self.messages = list(messages)

    async def get_msg(self, timeout=None):
        if not self.messages:
            raise Empty
        return self.messages.pop(0)


def _status(parent: str, state: str) -> dict:
    return {"msg_type": "status", "parent_header": {"msg_id": parent}, "content": {"execution_state": state}}


class _FedClient(ReadyClient):
    iopub_channel = None       # a plain attribute, set by the test, in place of the real channel


def test_the_idle_status_of_the_request_itself_is_what_makes_it_ready():
    client = _FedClient()
    client.iopub_channel = _Channel([_status("old", "busy"), _status("old", "idle"), _status("new", "busy"),
                                     {"msg_type": "stream", "parent_header": {"msg_id": "new"}, "content": {}},
                                     _status("new", "idle")])
    assert asyncio.run(client._idle_for("new"))
    client.iopub_channel = _Channel([_status("old", "idle"), _status("new", "busy")])
    assert not asyncio.run(client._idle_for("new"))       # IOPub not (yet) connected: the request is sent again
